"""Human and JSON reports of a discovery: the board, IOMMU groups, candidate devices.

Every string the tree supplied (model, compatible, driver names) is printed
through `printable`: a capture is someone else's files, and an ESC sequence
or a newline in sysfs must not drive the terminal or forge an output line.
JSON escapes them by itself.
"""

from __future__ import annotations

from dataclasses import asdict

from ghafgen.catalog import Catalog
from ghafgen.discover.sysfs import Discovery
from ghafgen.findings import printable
from ghafgen.table import render


def _note(d: Discovery, members: tuple[str, ...]) -> str:
    kinds = {f.bdf: f.kind for f in d.pci}
    endpoints = [m for m in members if kinds.get(m) not in (None, "bridge")]
    shared = [m for m in members if m not in endpoints]
    if endpoints and shared:
        return "root-port overlay needed: " + ", ".join(shared) + " share the group"
    if len(endpoints) > 1:
        return "pass together"
    return ""


def _describe(d: Discovery, name: str) -> str:
    fn = next((f for f in d.pci if f.bdf == name), None)
    if fn is not None:
        return f"{name} {fn.id} {fn.kind} ({printable(fn.driver or 'no driver')})"
    dev = next((p for p in d.platform if p.name == name), None)
    return (
        f"{name} ({printable(dev.driver or 'no driver')})" if dev else printable(name)
    )


def _module_lines(d: Discovery, cat: Catalog) -> list[str]:
    """The module SKU and its catalogued RAM and cores, against what the kernel saw."""
    from ghafgen.discover.boarddraft import missing_facts

    if d.board is None:
        return [f"missing: {printable(m)}" for m in missing_facts(d, cat)]
    b = cat.board(d.board)
    if b.module is None:
        return []
    m = b.module
    seen = d.mem_kib // 1024
    # MemTotal is RAM less firmware carve-outs (a few hundred MiB to ~2 GiB).
    fits = m.ram_mib * 0.85 <= seen <= m.ram_mib
    return [
        f"module: {m.description}: {m.ram_mib // 1024} GiB RAM, "
        f"{m.cpu_cores} CPU cores"
        + ("" if fits else f"; WARNING: the kernel sees {seen} MiB")
        + ("" if d.cpus == m.cpu_cores else f"; WARNING: {d.cpus} CPUs online")
    ]


def discovery_text(d: Discovery, cat: Catalog) -> str:
    board = cat.board(d.board).description if d.board else "no catalog board matches"
    lines = [
        f"{printable(d.model)}: {board}; {d.cpus} CPUs, {d.mem_kib // 1024} MiB",
        "compatible: " + printable(", ".join(d.compatible)),
        *_module_lines(d, cat),
        "",
        "IOMMU groups:",
    ]
    rows = [
        [g, "; ".join(_describe(d, m) for m in members), printable(_note(d, members))]
        for g, members in sorted(d.groups.items(), key=lambda x: int(x[0]))
    ]
    lines.append(render(["group", "devices", "notes"], rows))
    if d.board:
        b = cat.board(d.board)
        names = {p.name for p in d.platform}
        lines += ["", "Passable platform devices:"]
        lines += [
            f"  {dev.key:8} {dev.dt_name:18} {'present' if dev.dt_name in names else 'absent'}"
            for dev in b.devices.values()
        ]
    return "\n".join(lines)


def discovery_json(d: Discovery, cat: Catalog) -> dict[str, object]:
    return {
        "model": d.model,
        "compatible": list(d.compatible),
        "board": d.board,
        "carrier": d.carrier,
        "sku": d.sku,
        "ram_mib": (
            cat.board(d.board).ram_mib
            if d.board and cat.board(d.board).module
            else None
        ),
        "cpus": d.cpus,
        "mem_kib": d.mem_kib,
        "groups": {g: list(m) for g, m in d.groups.items()},
        "pci": [asdict(f) | {"kind": f.kind} for f in d.pci],
        "platform": [asdict(p) for p in d.platform],
        "notes": {g: _note(d, m) for g, m in d.groups.items() if _note(d, m)},
    }
