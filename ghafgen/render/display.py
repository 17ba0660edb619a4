"""The display role's guest device tree: nvdisplay on QEMU's platform bus behind
its register windows (only the keyholes backed), the DCE relay's guest nodes,
and, for the display-only role, its RAM banks and carve-outs.

Entry points: `display_nodes(board, gp)` (what the display adds to any guest
that has it, the accelerated one included), `guest_overlay(board, gp)` (the
display-only role's whole tree additions), `dcb_overlay(tree, board)` (the
board's DCB image into the display node of either) and `host_overlay(board,
gp)` (the display owner's carve-outs and keyholes wrapped on the host). The
rest of the host side is the DCE relay's (render/dcerelay.py).
"""

from __future__ import annotations

from typing import NamedTuple

from ghafgen.catalog.gpu import Carveout, GuestDisplay, Reserved
from ghafgen.catalog.model import Board
from ghafgen.derive.gpu import GpuPass
from ghafgen.render.dt import (
    GIC_SPI,
    IRQ_TYPE_LEVEL_HIGH,
    Fragment,
    Node,
    Overlay,
    Prop,
    cell_list,
    cells,
    strings,
)
from ghafgen.render.escape import Safe, dts_str
from ghafgen.render.wrappers import carveout_nodes, reg2, reserved_memory, wrapper

SCANOUT_LABEL = "dce_scanout"


class DisplayNodes(NamedTuple):
    """What the display adds to a guest tree."""

    ranges: tuple[tuple[int, int, int], ...]  # (host, guest, size) windows
    bus_nodes: tuple[Node, ...]  # under the bus that translates the windows
    root_nodes: tuple[Node, ...]  # the DCE relay's nodes, without registers
    reserved: tuple[Node, ...]  # the scanout pool


def _check_windows(gp: GpuPass, g: GuestDisplay) -> None:
    """Each keyhole lands where its window puts it, and no other device QEMU
    places falls inside a register window (the driver would reach it there).
    The fuse window is left out: its node stays disabled, and Ghaf maps it
    onto guest RAM."""
    holes = {h.dt_name for h in gp.role.keyholes}
    for p in gp.placed:
        for r in p.regions:
            hit = [
                w
                for w in g.windows
                if r.guest < w.guest + w.size and w.guest < r.guest + r.size
            ]
            if p.dt_name in holes:
                if not any(r.guest - w.guest == r.host - w.host for w in hit):
                    raise ValueError(
                        f"keyhole {p.dt_name} at {r.guest:#x} is not where the "
                        "display's window maps it (catalog/data/t234-gpu-roles.toml)"
                    )
            elif hit:
                raise ValueError(
                    f"{p.dt_name} at {r.guest:#x} lies in the display's window "
                    f"'{hit[0].name}' (catalog/data/t234-gpu-roles.toml)"
                )


def display_nodes(board: Board, gp: GpuPass) -> DisplayNodes:
    """The display node behind its windows, the fuse dummy it looks up, the DCE
    relay's nodes and the scanout pool its memory-region names."""
    g = board.catalog.gpu_roles.guest
    _check_windows(gp, g)
    bpmp = "bpmp"
    display = Node(
        g.node,
        g.label,
        (
            Prop("compatible", strings(g.compatible)),
            Prop("reg", reg2([(w.host, w.size) for w in g.windows])),
            Prop("reg-names", strings(*(w.name for w in g.windows))),
            Prop(
                "interrupts",
                cell_list([(GIC_SPI, n, IRQ_TYPE_LEVEL_HIGH) for n in g.interrupts]),
            ),
            Prop("interrupt-names", strings(*g.interrupt_names)),
            Prop("power-domains", cells(bpmp, g.power_domain)),
            Prop("clocks", cell_list([(bpmp, i) for i, _n in g.clocks])),
            Prop("clock-names", strings(*(n for _i, n in g.clocks))),
            Prop("resets", cell_list([(bpmp, i) for i, _n in g.resets])),
            Prop("reset-names", strings(*(n for _i, n in g.resets))),
            Prop("nvidia,bpmp", cells(bpmp)),
            Prop("nvidia,num-dpaux-instance", cells(g.num_dpaux)),
            Prop("memory-region", cells(SCANOUT_LABEL)),
            Prop("nvidia,disp-sw-soc-chip-id", cells(g.chip_id, hex_=True)),
            Prop("non-coherent", None),
            Prop("status", strings("okay")),
        ),
        (
            Node(
                "nvdisplay-niso",
                "",
                (
                    Prop("compatible", strings(g.niso_compatible)),
                    Prop("dma-coherent", None),
                ),
            ),
        ),
    )
    fuse = Node(
        g.fuse_node,
        "",
        (
            Prop("compatible", strings(g.fuse_compatible)),
            Prop("reg", reg2([(g.fuse.host, g.fuse.size)])),
            Prop("clocks", cells(bpmp, g.fuse_clock)),
            Prop("clock-names", strings("fuse")),
            Prop("status", strings("disabled")),
        ),
    )
    # No reg: the hooked tegra-dce skips its MMIO when dce-virtual-pa is set,
    # and a register-less node belongs at the root, where Linux populates it.
    relay = (
        Node(
            "dce",
            "",
            (
                Prop("compatible", strings(g.dce_compatible)),
                Prop("dce-virtual-pa", _pair(g.dce_virtual_pa)),
                Prop("status", strings("okay")),
            ),
        ),
        Node(
            "dce-guest-proxy",
            "",
            (
                Prop("compatible", strings(g.dce_proxy_compatible)),
                Prop("dce-virtual-pa", _pair(g.dce_virtual_pa)),
                Prop(
                    "interrupts",
                    cell_list([(GIC_SPI, g.dce_spi, IRQ_TYPE_LEVEL_HIGH)]),
                ),
                Prop("status", strings("okay")),
            ),
        ),
    )
    scanout = _scanout(gp)
    pool = Node(
        f"{SCANOUT_LABEL}@{scanout.base:x}",
        SCANOUT_LABEL,
        (
            # Not reusable: the pool lies outside every RAM bank, and CMA
            # would walk its pages as System RAM.
            Prop("compatible", strings("shared-dma-pool")),
            Prop("reg", reg2([(scanout.base, g.scanout_pool)])),
            Prop("status", strings("okay")),
        ),
    )
    return DisplayNodes(
        ranges=tuple((w.host, w.guest, w.size) for w in (g.fuse, *g.windows)),
        bus_nodes=(fuse, display),
        root_nodes=relay,
        reserved=(pool,),
    )


def _pair(value: int) -> Safe:
    return cells(value >> 32, value & 0xFFFFFFFF, hex_=True)


def _scanout(gp: GpuPass) -> Carveout:
    return next(c for c in gp.role.carveouts if c.scanout)


def _reserved_node(r: Reserved) -> Node:
    props = [Prop("compatible", strings(r.compatible))]
    if r.reusable:
        props.append(Prop("reusable", None))
    if r.no_map:
        props.append(Prop("no-map", None))
    props.append(Prop("reg", reg2([(r.base, r.size)])))
    if r.cma_default:
        props.append(Prop("linux,cma-default", None))
    props.append(Prop("status", strings("okay")))
    return Node(f"{r.node}@{r.base:x}", r.label, tuple(props))


def bus_ranges(
    windows: tuple[tuple[int, int, int], ...], bus_base: int
) -> list[tuple[int | str, ...]]:
    """`ranges` of a bus under QEMU's platform bus (one address cell there)."""
    return [(0, host, guest - bus_base, 0, size) for host, guest, size in windows]


def guest_overlay(board: Board, gp: GpuPass) -> Overlay:
    """The display-only role: its RAM banks, carve-outs and the display's nodes."""
    group = gp.group
    q = group.qemu
    g = board.catalog.gpu_roles.guest
    shown = display_nodes(board, gp)
    banks = [c for c in gp.role.carveouts if c.guest_memory]
    ranges = bus_ranges(shown.ranges, q.platform_bus_base)
    first = min(int(r[2]) for r in ranges)
    carveouts = [r.label for r in g.reserved if r.carveout]
    icc = tuple(
        Node(
            x.node,
            x.label,
            (
                Prop("compatible", strings(*x.compatible)),
                Prop("#interconnect-cells", cells(1)),
                Prop(
                    "clocks",
                    cell_list([("bpmp", board.soc.clocks[c].id) for c in x.clocks]),
                ),
                Prop("clock-names", strings(*x.clock_names)),
                Prop("nvidia,bpmp", cells("bpmp")),
                Prop("status", strings("okay")),
            ),
        )
        for x in group.extras
    )
    root_nodes = (
        *icc,
        *shown.root_nodes,
        Node(
            f"memory@{banks[0].base:x}",
            "",
            (
                Prop("device_type", strings("memory")),
                Prop("reg", reg2([(c.base, c.size) for c in banks])),
            ),
        ),
        *memory_nodes(
            (*(_reserved_node(r) for r in g.reserved), *shown.reserved), carveouts
        ),
    )
    return variant_overlay(
        gp,
        "the display through the DCE relay",
        root_nodes,
        "display-bus",
        first,
        ranges,
        shown.bus_nodes,
    )


def memory_nodes(reserved: tuple[Node, ...], carveouts: list[str]) -> tuple[Node, Node]:
    """The guest's reserved regions and the carve-outs NVIDIA's drivers look up
    (`nvidia,carveouts` memory-region), as every GPU-variant guest has them."""
    return (
        reserved_memory(reserved),
        Node(
            "tegra-carveouts",
            "",
            (
                Prop("compatible", strings("nvidia,carveouts")),
                Prop("memory-region", cells(*carveouts)),
                Prop("status", strings("okay")),
            ),
        ),
    )


def variant_overlay(
    gp: GpuPass,
    what: str,
    root_nodes: tuple[Node, ...],
    bus: str,
    first: int,
    ranges: list[tuple[int | str, ...]],
    bus_nodes: tuple[Node, ...],
) -> Overlay:
    """A GPU-variant guest's overlay: its root nodes, and a translating bus
    `bus`@`first` on QEMU's platform bus holding `bus_nodes` at the host's
    addresses (`ranges`)."""
    q = gp.group.qemu
    return Overlay(
        name=gp.vm,
        description=f"guest tree additions for {gp.vm}: {what}",
        compatible="linux,dummy-virt",
        fragments=(
            Fragment(
                "",
                "/",
                (
                    Prop("compatible", strings(*gp.group.root_compatible)),
                    # QEMU's root cells, so dtc can check `reg` here.
                    Prop("#address-cells", cells(2)),
                    Prop("#size-cells", cells(2)),
                ),
                root_nodes,
            ),
            Fragment(
                "",
                q.platform_bus_path,
                # The bus's own cells, as QEMU writes them.
                (Prop("#address-cells", cells(1)), Prop("#size-cells", cells(1))),
                (
                    Node(
                        f"{bus}@{first:x}",
                        "",
                        (
                            Prop("compatible", strings("simple-bus")),
                            Prop("#address-cells", cells(2)),
                            Prop("#size-cells", cells(2)),
                            Prop("ranges", cell_list(ranges, hex_=True)),
                        ),
                        bus_nodes,
                    ),
                ),
            ),
        ),
    )


class DcbOverlay(NamedTuple):
    """The DCB image into a guest's display node: an overlay source whose one
    line includes the file of the pinned Ghaf tree, which the VM's guest-tree
    build compiles with that file beside it and checks by length and hash."""

    ghaf_key: str  # sources.toml [ghaf]: the file
    file_name: str  # what the overlay includes
    node_path: str  # the display node in the guest tree
    bytes: int
    sha256: str

    @property
    def dts(self) -> str:
        return (
            "/dts-v1/;\n/plugin/;\n\n/ {\n\tfragment@0 {\n"
            f"\t\ttarget-path = {dts_str(self.node_path)};\n"
            "\t\t__overlay__ {\n"
            f"\t\t\t/include/ {dts_str(self.file_name)}\n"
            "\t\t};\n\t};\n};\n"
        )


def _path_of(tree: Overlay, name: str) -> str:
    """Where the node `name` lands once `tree` is applied."""

    def walk(nodes: tuple[Node, ...], at: str) -> str:
        for n in nodes:
            here = f"{at.rstrip('/')}/{n.name}"
            if n.name == name:
                return here
            found = walk(n.children, here)
            if found:
                return found
        return ""

    for f in tree.fragments:
        found = walk(f.nodes, f.target_path)
        if found:
            return found
    raise ValueError(f"the guest overlay {tree.name!r} has no {name}")


def dcb_overlay(tree: Overlay, board: Board) -> DcbOverlay:
    """The DCB overlay for the guest whose tree additions are `tree`."""
    g = board.catalog.gpu_roles.guest
    path = board.catalog.sources["ghaf"].paths[g.dcb.ghaf]
    return DcbOverlay(
        g.dcb.ghaf,
        path.rsplit("/", 1)[-1],
        _path_of(tree, g.node),
        g.dcb.bytes,
        g.dcb.sha256,
    )


def host_overlay(board: Board, gp: GpuPass) -> Overlay:
    """What the display's VM holds on the host: its role's own carve-outs
    (those the GPU group does not own) reserved and wrapped, and a wrapper per
    display keyhole. The display engine itself stays the host's."""
    carve = [c for c in gp.role.carveouts if c not in gp.group.carveouts]
    reserved_memory, wrappers = carveout_nodes(carve)
    holes = tuple(
        wrapper(h.wrapper, h.base, h.size, h.smmu, h.sid) for h in gp.role.keyholes
    )
    two = (Prop("#address-cells", cells(2)), Prop("#size-cells", cells(2)))
    return Overlay(
        name="display-passthrough",
        description="the display's carve-outs and register keyholes to vfio-platform",
        compatible=board.soc.compatible,
        fragments=(Fragment("", "/", two, (reserved_memory, *wrappers, *holes)),),
    )
