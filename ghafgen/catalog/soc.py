"""The whole-SoC device catalog: every device node of a real tree, classed for passthrough.

`scan(blob, soc)` reads every node with `reg` and clocks, resets, power
domains or `iommus`, and derives from the tree's own facts (and the catalog's
protected and host-critical clocks) how a guest could get it: through the BPMP
host proxy with an allow list, as a plain platform device, as a PCIe function,
or not at all, with the reason. `as_toml`/`load` write and read the committed
result (`data/t234-devices.toml`), which `ghafgen show --devices` and
`docs/devices.md` print.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NamedTuple

from ghafgen.catalog.fdtview import FdtView
from ghafgen.catalog.model import Soc
from ghafgen.records import Or, record

BPMP = "bpmp"  # BPMP-virtualized platform device: the host proxy's allow list
PLAIN = "plain"  # platform device without BPMP resources
PCIE = "pcie"  # PCIe controller: its endpoints pass as PCIe functions (vfio-pci)
NOT = "not passable"
CLASSES = (BPMP, PLAIN, PCIE, NOT)
# The kernel series whose board trees data/soc/ is generated from (tests/trees.py
# BOARD_DTS_612): its rows are that series' mainline facts.
SERIES = "6.12"

# Kinds of node, by the first compatible the tree gives them.
KINDS = {
    "uart": "serial",
    "hsuart": "serial",
    "sbsa-uart": "serial",
    "mgbe": "ethernet",
    "eqos": "ethernet",
    "mttcan": "can",
    "i2c": "i2c",
    "spi": "spi",
    "qspi": "spi",
    "pwm": "pwm",
    "xusb": "usb",
    "xudc": "usb",
    "sdhci": "sdmmc",
    "hda": "audio",
    "ahub": "audio",
    "admaif": "audio",
    "i2s": "audio",
    "dmic": "audio",
    "dspk": "audio",
    "adma": "audio",
    "agic": "audio",
    "display": "display",
    "host1x": "graphics",
    "vic": "graphics",
    "nvdec": "graphics",
    "ga10b": "gpu",
    "pcie": "pcie",
    "pcie-ep": "pcie",
    "se-aes": "crypto",
    "se-hash": "crypto",
    "gpcdma": "dma",
    "emc": "memory",
    "efuse": "fuse",
    "rtc": "rtc",
}


class SocDevice(NamedTuple):
    """One device node of the tree, its resources and its passthrough class (a
    `[[device]]` of data/soc/<tree>.toml, read by these annotations)."""

    path: str
    dt_name: str
    label: str
    kind: str
    compatible: tuple[str, ...]
    clocks: tuple[int, ...]
    resets: tuple[int, ...]
    power_domains: tuple[int, ...]
    iommu_sid: Annotated[int | None, Or(None)]  # no key: the node has no iommus
    passthrough: str
    reason: str
    enabled: bool = False  # the board tree enables the node (status okay)


def _kind(compatible: tuple[str, ...]) -> str:
    for c in compatible:
        tail = c.split(",", 1)[-1]
        for part in (tail.split("-", 1)[-1], tail):
            if part in KINDS:
                return KINDS[part]
    return "other"


def _ids(t: FdtView, off: int, prop: str) -> tuple[int, ...]:
    cells = t.cells(off, prop)
    return tuple(cells[i + 1] for i in range(0, len(cells) - 1, 2))


def _boot_flash(t: FdtView, path: str, nodes: list[tuple[int, str]]) -> bool:
    return any(
        p.startswith(path + "/") and "jedec,spi-nor" in t.strings(off, "compatible")
        for off, p in nodes
    )


# Properties by which one node claims another (or a part of it) for its own use.
REFERENCES = (
    "phys",
    "pwms",
    "remote-endpoint",
    "usb-role-switch",
    "nvidia,xusb-padctl",
    "i2c-bus",
    "ddc-i2c-bus",
    "nvidia,i2c-bus",
)


def _claims(t: FdtView, nodes: list[tuple[int, str]]) -> list[tuple[str, str, str]]:
    """(claimed path, claiming path, property) for every reference property."""
    by_phandle = {}
    for off, path in nodes:
        ph = t.cells(off, "phandle")
        if ph:
            by_phandle[ph[0]] = path
    out = []
    for off, path in nodes:
        for prop in REFERENCES:
            for cell in t.cells(off, prop):
                if cell in by_phandle:
                    out.append((by_phandle[cell], path, prop))
    return out


def _claimed_by(path: str, claims: list[tuple[str, str, str]]) -> str:
    """A node outside `path`'s subtree that claims it or one of its parts, or ''."""
    inside = (path, path + "/")
    for claimed, by, prop in claims:
        if (claimed == path or claimed.startswith(inside[1])) and not (
            by == path or by.startswith(inside[1])
        ):
            return f"{by} ({prop})"
    return ""


@dataclass(frozen=True)
class _Node:
    off: int
    path: str
    clocks: tuple[int, ...]
    resets: tuple[int, ...]
    pds: tuple[int, ...]


def _classify(
    t: FdtView,
    n: _Node,
    soc: Soc,
    nodes: list[tuple[int, str]],
    users: dict[tuple[str, int], list[str]],
    claims: list[tuple[str, str, str]],
) -> tuple[str, str]:
    compatible = tuple(t.strings(n.off, "compatible"))
    kind = _kind(compatible)
    protected = {r.id for r in soc.clocks.values() if r.protected}
    critical = [
        {r.id: r.name for r in table.values() if r.host_critical}
        for table in (soc.clocks, soc.resets)
    ]
    if any(c.endswith("-pcie") for c in compatible):
        return PCIE, (
            "PCIe root port: its endpoints pass as PCIe functions (vfio-pci); "
            "the controller stays with the host"
        )
    if any(c.endswith("-pcie-ep") for c in compatible):
        return NOT, "PCIe endpoint mode: the SoC is the device, nothing to give a guest"
    hit = [
        crit[i]
        for crit, ids in zip(critical, (n.clocks, n.resets), strict=True)
        for i in ids
        if i in crit
    ]
    if hit:
        return NOT, f"uses {hit[0]}, which the host needs (memory or boot storage)"
    if "/host1x@" in n.path or kind == "graphics":
        return NOT, (
            "host1x engine: passes only in the GPU group (ga10b, host1x, VIC, "
            "NVDEC and NVJPG to one VM, catalog/data/t234-gpu.toml); alone it "
            "needs host1x channels and syncpoints, which QEMU does not emulate"
        )
    if "/aconnect@" in n.path:
        return NOT, (
            "audio processing engine inside aconnect: needs its AGIC and ADMA, "
            "which the host drives"
        )
    if t.prop(n.off, "nvidia,bpmp") is not None:
        return NOT, (
            "talks to the BPMP firmware itself (nvidia,bpmp); the host proxy "
            "forwards clock, reset and power-domain requests only"
        )
    if t.prop(n.off, "mboxes") is not None:
        return NOT, "needs HSP mailboxes, a firmware interface QEMU lacks"
    if _boot_flash(t, n.path, nodes):
        return (
            NOT,
            "holds the boot firmware's flash (jedec,spi-nor), which the host updates",
        )
    sid = t.cells(n.off, "iommus")
    sids = (("stream ID", sid[1]),) if len(sid) >= 2 else ()
    for kind_name, ids in (("power domain", n.pds), ("clock", n.clocks)):
        for i in ids:
            if kind_name == "clock" and i in protected:
                continue
            others = [p for p in users[(kind_name, i)] if p != n.path]
            if others:
                return NOT, (
                    f"shares {kind_name} {i} with {others[0]}: allowing it would "
                    "let the guest switch off a host device"
                )
    for kind_name, i in sids:
        others = [p for p in users[(kind_name, i)] if p != n.path]
        if others:
            return NOT, (
                f"shares stream ID {i:#x} with {others[0]}: one IOMMU context, "
                "so the guest could DMA as that device"
            )
    parents = t.cells(n.off, "assigned-clock-parents")[1::2]
    loose = [p for p in parents if p not in protected]
    if loose:
        return NOT, (
            f"its clock's parent {loose[0]} is not a protected root: allowing it "
            "would let the guest re-rate a clock other devices run from"
        )
    by = _claimed_by(n.path, claims)
    if by:
        return NOT, f"the host's {by} refers to it or a device on it"
    if not (n.clocks or n.resets or n.pds):
        return PLAIN, "no BPMP resources: vfio-platform alone"
    dma = (
        f"own stream ID {sid[1]:#x}"
        if len(sid) >= 2
        else "no stream ID in the tree: the overlay gives it the passthrough ID"
    )
    return BPMP, f"its clocks, resets and power domains are its own; {dma}"


def scan(blob: bytes, soc: Soc) -> list[SocDevice]:
    """Every device node of the tree (reg plus clocks/resets/power-domains/iommus)."""
    t = FdtView(blob)
    nodes = t.nodes()
    labels: dict[str, str] = {}
    for name, path in sorted(t.symbols().items()):
        labels.setdefault(path, name)
    found: list[_Node] = []
    for off, path in nodes:
        if not t.cells(off, "reg") or path.startswith("/__"):
            continue
        if not any(
            t.prop(off, p) is not None
            for p in ("clocks", "resets", "power-domains", "iommus")
        ):
            continue
        found.append(
            _Node(
                off,
                path,
                _ids(t, off, "clocks"),
                _ids(t, off, "resets"),
                _ids(t, off, "power-domains"),
            )
        )
    users: dict[tuple[str, int], list[str]] = defaultdict(list)
    for n in found:
        for i in n.clocks:
            users[("clock", i)].append(n.path)
        for i in n.pds:
            users[("power domain", i)].append(n.path)
        sid = t.cells(n.off, "iommus")
        if len(sid) >= 2:
            users[("stream ID", sid[1])].append(n.path)
    claims = _claims(t, nodes)
    out = []
    for n in found:
        compatible = tuple(t.strings(n.off, "compatible"))
        cls, why = _classify(t, n, soc, nodes, users, claims)
        sid = t.cells(n.off, "iommus")
        unit = n.path.rsplit("@", 1)[-1]
        base = n.path.rsplit("/", 1)[-1].split("@")[0]
        out.append(
            SocDevice(
                path=n.path,
                dt_name=f"{unit}.{base}",
                label=labels.get(n.path, ""),
                kind=_kind(compatible),
                compatible=compatible,
                clocks=n.clocks,
                resets=n.resets,
                power_domains=n.pds,
                iommu_sid=sid[1] if len(sid) >= 2 else None,
                passthrough=cls,
                reason=why,
                enabled=(t.strings(n.off, "status") or ["okay"])[0] in ("okay", "ok"),
            )
        )
    return out


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def as_toml(devices: list[SocDevice], source: str) -> str:
    lines = [
        f"# Generated by `ghafgen catalog import --soc` from {source}.",
        "# Every value is read from the tree; `passthrough` and `reason` are derived",
        "# from it (ghafgen/catalog/soc.py). Do not edit: regenerate.",
        "",
    ]
    for d in devices:
        lines += [
            "[[device]]",
            f"path = {_q(d.path)}",
            f"dt_name = {_q(d.dt_name)}",
            f"label = {_q(d.label)}",
            f"kind = {_q(d.kind)}",
            "compatible = [" + ", ".join(_q(c) for c in d.compatible) + "]",
            f"clocks = {list(d.clocks)}",
            f"resets = {list(d.resets)}",
            f"power_domains = {list(d.power_domains)}",
        ]
        if d.iommu_sid is not None:
            lines.append(f"iommu_sid = {d.iommu_sid:#x}")
        lines += [
            f"passthrough = {_q(d.passthrough)}",
            f"reason = {_q(d.reason)}",
            f"enabled = {'true' if d.enabled else 'false'}",
            "",
        ]
    return "\n".join(lines)


def load(path: Path) -> list[SocDevice]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        record(SocDevice, d, f"{path.name} [[device]] {i}")
        for i, d in enumerate(doc.get("device", []))
    ]
