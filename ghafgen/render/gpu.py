"""The GPU group's device trees as data: the host overlay that hands ga10b, host1x,
its engines and the carve-outs to vfio-platform, and the guest tree additions.

Entry points: `host_overlay(board, gp)` and `guest_overlay(board, gp)`.
"""

from __future__ import annotations

from ghafgen.catalog.gpu import Engine
from ghafgen.catalog.model import Board, PlatformDevice
from ghafgen.derive.gpu import GpuPass
from ghafgen.derive.platform_bus import Placed
from ghafgen.render.display import (
    bus_ranges,
    display_nodes,
    memory_nodes,
    variant_overlay,
)
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
from ghafgen.render.escape import Safe
from ghafgen.render.wrappers import DUMMY, carveout_nodes, reg2


def _spis(numbers: tuple[int, ...] | list[int]) -> Safe:
    return cell_list([(GIC_SPI, n, IRQ_TYPE_LEVEL_HIGH) for n in numbers])


def _bpmp(board: Board, kind: str, names: tuple[str, ...]) -> Safe:
    table = board.soc.table(kind)
    return cell_list([("bpmp", table[n].id) for n in names])


def _resources(
    board: Board, dev: PlatformDevice, eng: Engine, flavor: str, *, guest: bool
) -> list[Prop]:
    props: list[Prop] = []
    clocks = dev.resources(flavor, "clock")
    if clocks:
        props.append(Prop("clocks", _bpmp(board, "clock", clocks)))
        if eng.clock_names:
            props.append(Prop("clock-names", strings(*eng.clock_names[: len(clocks)])))
    if eng.assigned_clock_rate and clocks:
        props.append(Prop("assigned-clocks", _bpmp(board, "clock", clocks[:1])))
        props.append(Prop("assigned-clock-rates", cells(eng.assigned_clock_rate)))
    if dev.resets:
        props.append(Prop("resets", _bpmp(board, "reset", dev.resets)))
        if dev.guest.reset_names:
            props.append(Prop("reset-names", strings(*dev.guest.reset_names)))
    if dev.power_domains:
        props.append(
            Prop("power-domains", _bpmp(board, "power-domain", dev.power_domains))
        )
    if eng.nvidia_bpmp:
        props.append(Prop("nvidia,bpmp", cells("bpmp")))
    if guest and eng.host1x_class is not None:
        props.append(Prop("nvidia,host1x-class", cells(eng.host1x_class, hex_=True)))
    return props


def _host_node(board: Board, dev: PlatformDevice, eng: Engine, flavor: str) -> Node:
    props = [
        Prop("compatible", strings(DUMMY)),
        Prop("reg", reg2(list(dev.reg))),
    ]
    if eng.reg_names:
        props.append(Prop("reg-names", strings(*eng.reg_names)))
    if dev.interrupts:
        props += [
            Prop("interrupt-parent", cells("gic")),
            Prop("interrupts", _spis(dev.interrupts)),
        ]
        if eng.interrupt_names:
            props.append(Prop("interrupt-names", strings(*eng.interrupt_names)))
    props += _resources(board, dev, eng, flavor, guest=False)
    if eng.interconnects:
        mc, emc = eng.interconnect_labels
        props += [
            Prop(
                "interconnects",
                cell_list([(mc, client, emc) for _n, client in eng.interconnects]),
            ),
            Prop("interconnect-names", strings(*eng.interconnect_names)),
        ]
    if eng.ranges:
        props += [
            Prop("#address-cells", cells(2)),
            Prop("#size-cells", cells(2)),
            Prop("ranges", _identity(eng.ranges)),
        ]
    if dev.iommu_sid is None:
        raise ValueError(f"catalog: group member {dev.key!r} has no iommu_sid")
    props += [
        Prop("iommus", cells(eng.smmu, dev.iommu_sid, hex_=True)),
        Prop("dma-coherent", None),
        Prop("status", strings("okay")),
    ]
    return Node(dev.node, "", tuple(props))


def _identity(ranges: tuple[tuple[int, int], ...]) -> Safe:
    return cell_list([(0, a, 0, a, 0, s) for a, s in ranges], hex_=True)


def host_overlay(board: Board, gp: GpuPass, flavor: str) -> Overlay:
    """Carve-outs reserved and wrapped, originals switched off, members re-created
    under their bus with the dummy compatible, their stream IDs and dma-coherent."""
    reserved_memory, wrappers = carveout_nodes(gp.carveouts)
    # Each fragment states its target's cells (2 and 2 on Tegra234's root, bus@0
    # and host1x alike), so dtc can check `reg` here; the values are unchanged.
    two = (Prop("#address-cells", cells(2)), Prop("#size-cells", cells(2)))
    fragments = [Fragment("", "/", two, (reserved_memory, *wrappers))]
    # Switch the originals off: a parent, and its children as nodes (created
    # disabled where the tree lacks them, as mainline lacks NVJPG).
    paths = [p for k in gp.group.members for p in gp.group.engines[k].disable]
    disabled: dict[str, list[str]] = {}
    for path in paths:
        parent, _, name = path.rpartition("/")
        if parent in paths:
            disabled.setdefault(parent, []).append(name)
        else:
            disabled.setdefault(path, [])
    off = (Prop("status", strings("disabled")),)
    regs = {dev.node.split("@")[-1]: dev.reg for dev in gp.members}
    for path, kids in disabled.items():
        kid_nodes = tuple(
            Node(c, "", (Prop("reg", reg2(list(regs[c.split("@")[-1]]))), *off))
            for c in kids
        )
        fragments.append(Fragment("", path, (*off, *two) if kids else off, kid_nodes))
    by_parent: dict[str, list[Node]] = {}
    for dev in gp.members:
        eng = gp.group.engines[dev.key]
        by_parent.setdefault(eng.host_parent, []).append(
            _host_node(board, dev, eng, flavor)
        )
    for parent, nodes in by_parent.items():
        fragments.append(Fragment("", parent, two, tuple(nodes)))
    return Overlay(
        name="gpu-passthrough",
        description="ga10b, host1x and its engines to vfio-platform, with carve-outs",
        compatible=board.soc.compatible,
        fragments=tuple(fragments),
    )


def _guest_node(
    board: Board, dev: PlatformDevice, eng: Engine, placed: Placed, children: list[Node]
) -> Node:
    props = [
        Prop("compatible", strings(*dev.guest.compatible)),
        Prop("reg", reg2([(r.host, r.size) for r in placed.regions])),
    ]
    if eng.reg_names:
        props.append(Prop("reg-names", strings(*eng.reg_names)))
    if placed.spis:
        props.append(Prop("interrupts", _spis(placed.spis)))
        if eng.interrupt_names:
            props.append(Prop("interrupt-names", strings(*eng.interrupt_names)))
    props += _resources(board, dev, eng, "l4t", guest=True)
    if eng.ranges:
        props += [
            Prop("#address-cells", cells(2)),
            Prop("#size-cells", cells(2)),
            Prop("ranges", _identity(eng.ranges)),
        ]
    if eng.nvidia_bpmp:
        props.append(Prop("dma-coherent", None))
    props.append(Prop("status", strings(eng.guest_status)))
    label = dev.flavors["l4t"].label if "l4t" in dev.flavors else ""
    return Node(
        dev.node.replace("host1x_pt@", "host1x@"),
        label or dev.key,
        tuple(props),
        tuple(children),
    )


def guest_overlay(board: Board, gp: GpuPass) -> Overlay:
    """The members on QEMU's platform bus at their own addresses, translated by the
    bus's `ranges` to where QEMU put them; the guest bank and its carve-outs;
    the root compatible drivers test. The pinned QEMU emits /bpmp itself."""
    q = gp.group.qemu
    placed = {p.dt_name: p for p in gp.placed}
    # Each region at its own address, translated to its offset on QEMU's bus
    # (one address cell there) by a bus of ours, which leaves QEMU's node as is.
    bus_base = q.platform_bus_base
    member_ranges: list[tuple[int | str, ...]] = [
        (0, r.host, r.guest - bus_base, 0, r.size)
        for dev in gp.members
        for r in placed[dev.dt_name].regions
    ]
    first = int(member_ranges[0][2])
    # The accelerated role's display sits on the same bus, behind its windows.
    shown = display_nodes(board, gp) if gp.role.display else None
    if shown is not None:
        member_ranges += bus_ranges(shown.ranges, bus_base)
    children: dict[str, list[Node]] = {}
    for dev in reversed(gp.members):
        eng = gp.group.engines[dev.key]
        if eng.guest_parent:
            children.setdefault(eng.guest_parent, []).insert(
                0, _guest_node(board, dev, eng, placed[dev.dt_name], [])
            )
    bus_nodes: list[Node] = []
    for dev in gp.members:
        eng = gp.group.engines[dev.key]
        if eng.guest_parent:
            continue
        bus_nodes.append(
            _guest_node(board, dev, eng, placed[dev.dt_name], children.get(dev.key, []))
        )
    if shown is not None:
        bus_nodes += shown.bus_nodes
    # Providers without registers sit at the root, where Linux populates them.
    extras: list[Node] = list(shown.root_nodes) if shown is not None else []
    for x in gp.group.extras:
        extras.append(
            Node(
                x.node,
                x.label,
                (
                    Prop("compatible", strings(*x.compatible)),
                    Prop("#interconnect-cells", cells(1)),
                    Prop("clocks", _bpmp(board, "clock", x.clocks)),
                    Prop("clock-names", strings(*x.clock_names)),
                    Prop("nvidia,bpmp", cells("bpmp")),
                    Prop("status", strings("okay")),
                ),
            )
        )
    bank = gp.group.guest_memory
    reserved = []
    for r in gp.group.reserved:
        props = [Prop("compatible", strings(r.compatible))]
        if r.reusable:
            props.append(Prop("reusable", None))
        if r.no_map:
            props.append(Prop("no-map", None))
        props.append(Prop("reg", reg2([(r.base, r.size)])))
        if r.cma_default:
            props.append(Prop("linux,cma-default", None))
        props.append(Prop("status", strings("okay")))
        reserved.append(Node(f"{r.node}@{r.base:x}", r.label, tuple(props)))
    if shown is not None:
        reserved += shown.reserved
    carveouts = [r.label for r in gp.group.reserved if r.carveout]
    root_nodes = (
        *extras,
        # NVIDIA's host1x driver numbers its instance by this alias.
        Node(
            "aliases",
            "",
            (
                Prop(
                    "host1x",
                    strings(f"{q.platform_bus_path}/gpu-bus@{first:x}/host1x@13e00000"),
                ),
            ),
        ),
        Node(
            f"memory@{bank.base:x}",
            "",
            (
                Prop("device_type", strings("memory")),
                Prop("reg", reg2([(bank.base, bank.size)])),
            ),
        ),
        *memory_nodes(tuple(reserved), carveouts),
    )
    return variant_overlay(
        gp,
        "the GPU group",
        root_nodes,
        "gpu-bus",
        first,
        member_ranges,
        tuple(bus_nodes),
    )
