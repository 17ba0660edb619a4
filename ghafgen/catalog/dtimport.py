"""`ghafgen catalog import`: read a vendor device tree into catalog facts, or diff it.

Entry points: `read_tree(blob)` -> list of `Imported` nodes, `as_toml(...)`, and
`diff(nodes, board, flavor)` -> disagreements with the committed catalog, whose
mainline facts are those of the kernel series `board` was loaded for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ghafgen.catalog.fdtview import FdtView
from ghafgen.catalog.model import Board
from ghafgen.errors import GhafgenError
from ghafgen.fileio import read_regular

# An Orin DTB is ~300 KiB and its preprocessed source ~1 MiB.
MAX_TREE_BYTES = 64 << 20
# dtc copies the file either names into the tree (and so into the imported
# TOML): any file the user can read, named by whoever wrote the source.
_READS_A_FILE = re.compile(rb"/include/|/incbin/|^[ \t]*#[ \t]*include\b", re.M)


class BadTree(GhafgenError):
    """A tree ghafgen will not import: it reads other files, or its facts do not add up."""


# Passthrough-capable kinds of node, by compatible.
KINDS = {
    "nvidia,tegra234-uart": "serial",
    "nvidia,tegra194-hsuart": "serial",
    "arm,sbsa-uart": "serial",
    "nvidia,tegra234-mgbe": "ethernet",
    "nvidia,tegra194-i2c": "i2c",
    "nvidia,tegra234-pcie": "pcie",
    "nvidia,tegra234-display": "display",
    "nvidia,ga10b": "gpu",
}


@dataclass(frozen=True)
class Imported:
    """One passthrough-capable node as the tree describes it."""

    path: str
    dt_name: str  # kernel platform-device name, "3100000.serial"
    kind: str
    label: str
    compatible: tuple[str, ...]
    status: str
    reg: tuple[tuple[int, int], ...]
    interrupts: tuple[int, ...]  # GIC SPI numbers
    clocks: tuple[tuple[str, int], ...]  # (clock-names entry, BPMP ID)
    resets: tuple[tuple[str, int], ...]
    power_domains: tuple[int, ...]
    iommu_sid: int | None
    pci_domain: int | None = None
    num_lanes: int | None = None
    extra: dict[str, int] = field(default_factory=dict)


def _pairs(cells: list[int], width: int) -> list[list[int]]:
    if width <= 0:  # `#address-cells = <0>` and no size: nothing to group
        return []
    return [cells[i : i + width] for i in range(0, len(cells), width)]


def _reg(t: FdtView, off: int, path: str) -> tuple[tuple[int, int], ...]:
    """(address, size) pairs; a `reg` the parent's cell counts cannot split is
    an error, never an empty or shifted list."""
    ac = t.cell_count(off, "#address-cells", 2)
    sc = t.cell_count(off, "#size-cells", 1)
    cells = t.cells(off, "reg")
    if cells and (ac + sc == 0 or len(cells) % (ac + sc)):
        raise BadTree(
            f"{path}: 'reg' has {len(cells)} cells, which the parent's "
            f"#address-cells = <{ac}> and #size-cells = <{sc}> cannot split into "
            "(address, size) entries; fix the tree (dtc's reg_format check says the same)"
        )
    out = []
    for chunk in _pairs(cells, ac + sc):
        addr = int.from_bytes(b"".join(c.to_bytes(4, "big") for c in chunk[:ac]), "big")
        size = int.from_bytes(b"".join(c.to_bytes(4, "big") for c in chunk[ac:]), "big")
        out.append((addr, size))
    return tuple(out)


def _named_ids(
    t: FdtView, off: int, prop: str, names_prop: str
) -> tuple[tuple[str, int], ...]:
    ids = [pair[1] for pair in _pairs(t.cells(off, prop), 2) if len(pair) == 2]
    names = t.strings(off, names_prop) or [""] * len(ids)
    return tuple(zip(names, ids, strict=False))


def read_tree(blob: bytes) -> list[Imported]:
    """Every passthrough-capable node of a DTB."""
    t = FdtView(blob)
    labels: dict[str, str] = {}  # path -> its first label
    for name, path in t.symbols().items():
        labels.setdefault(path, name)
    found = []
    for off, path in t.nodes():
        compatible = tuple(t.strings(off, "compatible"))
        kind = next((KINDS[c] for c in compatible if c in KINDS), None)
        if kind is None:
            continue
        reg = _reg(t, off, path)
        unit = path.rsplit("@", 1)[-1] if "@" in path else ""
        spis = [
            c[1]
            for c in _pairs(t.cells(off, "interrupts"), 3)
            if len(c) == 3 and c[0] == 0
        ]
        iommus = t.cells(off, "iommus")
        iommu_map = t.cells(off, "iommu-map")
        sid = (
            iommus[1]
            if len(iommus) >= 2
            else (iommu_map[2] if len(iommu_map) >= 3 else None)
        )
        domain = t.cells(off, "linux,pci-domain")
        lanes = t.cells(off, "num-lanes")
        found.append(
            Imported(
                path=path,
                dt_name=f"{unit.lower()}.{path.rsplit('/', 1)[-1].split('@')[0]}",
                kind=kind,
                label=labels.get(path, ""),
                compatible=compatible,
                status=(t.strings(off, "status") or ["okay"])[0],
                reg=reg,
                interrupts=tuple(spis),
                clocks=_named_ids(t, off, "clocks", "clock-names"),
                resets=_named_ids(t, off, "resets", "reset-names"),
                power_domains=tuple(
                    p[1]
                    for p in _pairs(t.cells(off, "power-domains"), 2)
                    if len(p) == 2
                ),
                iommu_sid=sid,
                pci_domain=domain[0] if domain else None,
                num_lanes=lanes[0] if lanes else None,
            )
        )
    return found


def as_toml(nodes: list[Imported], source: str) -> str:
    """Catalog-style TOML for the imported nodes (facts only; review before committing).

    Strings come from the tree as they are (a label, a compatible, a status may
    hold anything), so a TOML writer quotes them; the source name goes into a
    comment with its control characters made spaces.
    """
    import re

    import tomlkit

    doc = tomlkit.document()
    name = re.sub(r"[\x00-\x1f\x7f]", " ", source)
    doc.add(tomlkit.comment(f"Imported by `ghafgen catalog import` from {name}."))
    doc.add(tomlkit.nl())
    imported = tomlkit.table(is_super_table=True)
    for n in nodes:
        t = tomlkit.table()
        t.add("path", n.path)
        t.add("dt_name", n.dt_name)
        t.add("kind", n.kind)
        t.add("label", n.label)
        t.add("compatible", list(n.compatible))
        t.add("status", n.status)
        t.add(
            "reg",
            [
                [tomlkit.integer(f"{a:#x}"), tomlkit.integer(f"{s:#x}")]
                for a, s in n.reg
            ],
        )
        t.add("interrupts", list(n.interrupts))
        t.add("clocks", [[nm, i] for nm, i in n.clocks])
        t.add("resets", [[nm, i] for nm, i in n.resets])
        t.add("power_domains", list(n.power_domains))
        if n.iommu_sid is not None:
            t.add("iommu_sid", tomlkit.integer(f"{n.iommu_sid:#x}"))
        if n.pci_domain is not None:
            t.add("pci_domain", n.pci_domain)
        if n.num_lanes is not None:
            t.add("num_lanes", n.num_lanes)
        imported.add(n.dt_name.replace(".", "-"), t)
    doc.add("imported", imported)
    return tomlkit.dumps(doc)


@dataclass(frozen=True)
class Disagreement:
    device: str
    fact: str
    catalog: str
    tree: str

    def render(self) -> str:
        return f"{self.device}: {self.fact}: catalog {self.catalog}, tree {self.tree}"


def _ids(board: Board, kind: str, names: tuple[str, ...]) -> list[tuple[str, int]]:
    return [(n, board.soc.resource(kind, n).id) for n in names]


class _Differ:
    """Collects disagreements; `same` records one when the two values differ."""

    def __init__(self) -> None:
        self.found: list[Disagreement] = []

    def same(self, device: str, fact: str, ours: object, theirs: object) -> None:
        if ours != theirs:
            self.found.append(Disagreement(device, fact, str(ours), str(theirs)))


def _diff_device(
    d: _Differ, board: Board, flavor: str, key: str, node: Imported | None
) -> None:
    dev = board.devices[key]
    view = dev.flavors.get(flavor)
    if view is None:
        if node is not None:
            d.same(key, "presence", f"absent from {board.tree(flavor)}", node.path)
        return
    name = f"{dev.key} ({dev.dt_name})"
    if node is None:
        d.same(name, "presence", view.path or view.label, "absent")
        return
    if view.path:
        d.same(name, "path", view.path, node.path)
    if view.label:
        d.same(name, "label", view.label, node.label)
    d.same(name, "reg", [list(r) for r in dev.reg], [list(r) for r in node.reg])
    if dev.interrupts:
        d.same(name, "interrupts", list(dev.interrupts), list(node.interrupts))
    clocks = _ids(board, "clock", dev.resources(flavor, "clock"))
    for pos, (ours, theirs) in enumerate(zip(clocks, node.clocks, strict=False)):
        if ours[1] != theirs[1]:
            d.found.append(
                Disagreement(
                    name,
                    f"clock '{theirs[0]}' (#{pos})",
                    f"{ours[1]} ({ours[0]})",
                    str(theirs[1]),
                )
            )
    d.same(name, "clock count", len(clocks), len(node.clocks))
    resets = [i for _n, i in _ids(board, "reset", dev.resources(flavor, "reset"))]
    d.same(name, "resets", sorted(resets), sorted(i for _n, i in node.resets))
    pds = [
        i
        for _n, i in _ids(board, "power-domain", dev.resources(flavor, "power-domain"))
    ]
    d.same(name, "power domains", pds, list(node.power_domains))
    if dev.iommu_sid is not None:
        sid = hex(node.iommu_sid) if node.iommu_sid is not None else None
        d.same(name, "iommu sid", hex(dev.iommu_sid), sid)


def _diff_slot(d: _Differ, board: Board, flavor: str, key: str, node: Imported) -> None:
    ctl = board.slots[key].controller
    view = ctl.flavors.get(flavor)
    if view is None:
        return
    name = f"{key} ({ctl.dt_name})"
    d.same(name, "path", view.path, node.path)
    d.same(name, "pci domain", ctl.domain, node.pci_domain)
    d.same(name, "lanes", board.slots[key].tree_lanes, node.num_lanes)
    d.same(name, "iommu sid", hex(ctl.sid), hex(node.iommu_sid or 0))
    ours = [i for _n, i in _ids(board, "clock", ctl.clocks)]
    d.same(name, "clocks", ours, [i for _n, i in node.clocks])


def _diff_sibling(d: _Differ, board: Board, key: str, node: Imported) -> None:
    sib = board.soc.siblings[key]
    name = f"{sib.key} ({sib.dt_name})"
    # The catalog lists every ID the headers give an instance; the node may use fewer.
    d.same(
        name,
        "clocks not in the catalog",
        [],
        sorted({i for _n, i in node.clocks} - sib.clocks),
    )
    d.same(name, "resets", sorted(sib.resets), sorted(i for _n, i in node.resets))
    d.same(name, "power domains", sorted(sib.power_domains), sorted(node.power_domains))


def diff(nodes: list[Imported], board: Board, flavor: str) -> list[Disagreement]:
    """Every fact of the catalog's `flavor` view (for the board's kernel series)
    that the tree contradicts."""
    by_name = {n.dt_name: n for n in nodes}
    d = _Differ()
    for key, dev in board.devices.items():
        # A group's overlay re-creates its members' host nodes under other
        # names; tests/test_gpu.py compares them with the real tree.
        if dev.group:
            continue
        _diff_device(d, board, flavor, key, by_name.get(dev.dt_name))
    for key, slot in board.slots.items():
        if slot.controller.dt_name in by_name:
            _diff_slot(d, board, flavor, key, by_name[slot.controller.dt_name])
    for key, sib in board.soc.siblings.items():
        if sib.dt_name in by_name:
            _diff_sibling(d, board, key, by_name[sib.dt_name])
    return d.found


def dts_source(path: Path) -> bytes:
    """A vendor DTS's bytes, refused when dtc would read another file for it.

    Raises:
        BadTree: it holds /include/, /incbin/ or #include (with its line).
        fileio.Unreadable: not a regular file, or over MAX_TREE_BYTES.
    """
    data = read_regular(path, limit=MAX_TREE_BYTES)
    found = _READS_A_FILE.search(data)
    if found:
        line = data.count(b"\n", 0, found.start()) + 1
        word = found.group().decode().strip()
        raise BadTree(
            f"{path}:{line}: {word} makes dtc read another file into the tree; "
            "ghafgen imports one self-contained source: preprocess it and inline "
            "what it includes, or compile it yourself and pass --dtb"
        )
    return data


def blob(path: Path, *, dts: bool = False) -> bytes:
    """A DTB's bytes, or a DTS compiled with dtc first.

    dtc compiles a copy of the bytes checked by `dts_source`, in an empty
    folder, so what it reads is what was checked.
    """
    if not dts:
        return read_regular(path, limit=MAX_TREE_BYTES)
    import tempfile

    from ghafgen.tools import run

    source = dts_source(path)
    with tempfile.TemporaryDirectory(prefix="ghafgen-import-") as tmp:
        # The copy keeps the source's name, so dtc's messages name the file.
        (Path(tmp) / "src").mkdir()
        copy, out = Path(tmp) / "src" / path.name, Path(tmp) / "tree.dtb"
        copy.write_bytes(source)
        run(
            ["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(out), "--", str(copy)],
            cwd=Path(tmp),
        ).or_raise()
        return out.read_bytes()


def read(path: Path, *, dts: bool = False) -> list[Imported]:
    """Read a DTB, or a DTS compiled with dtc first."""
    data = blob(path, dts=dts)
    try:
        return read_tree(data)
    except BadTree as e:
        raise BadTree(f"{path}: {e}") from None
