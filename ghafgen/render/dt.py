"""Device-tree overlays as data: host overlays and guest trees for one profile.

Entry points: `host_overlays(profile, board)` and `guest_overlay(vm, devices)`.
Property values are rendered to DTS syntax here, through the escaping filters.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghafgen.catalog.model import Board, PlatformDevice, QemuVirt
from ghafgen.derive.allowlist import (
    AllowList,
    VmAllowList,
    per_vm_form,
    platform_devices,
    vm_allow_lists,
)
from ghafgen.derive.platform_bus import Bus, Device, lay_out
from ghafgen.derive.slots import slots_in_use
from ghafgen.profile.model import Profile
from ghafgen.render.escape import Safe, dts_name, dts_str

GIC_SPI = 0
IRQ_TYPE_LEVEL_HIGH = 4


@dataclass(frozen=True)
class Prop:
    name: str
    value: Safe | None  # None: a property without value (`dma-coherent;`)


@dataclass(frozen=True)
class Node:
    name: str
    label: str
    props: tuple[Prop, ...]
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Fragment:
    target_label: str  # `target = <&label>` when set, else `target-path`
    target_path: str
    props: tuple[Prop, ...] = ()
    nodes: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Overlay:
    name: str
    description: str
    compatible: str
    fragments: tuple[Fragment, ...]

    @property
    def file(self) -> str:
        return f"overlays/{self.name}.dts"

    @property
    def nix_name(self) -> str:
        """Name in hardware.deviceTree.overlays."""
        return f"ghafgen-{self.name}"


def strings(*values: str) -> Safe:
    return Safe(", ".join(dts_str(v) for v in values))


def cells(*values: int | str, hex_: bool = False) -> Safe:
    """`<...>` with integers (decimal, or hex for addresses) and `&label` references."""
    out = [
        f"&{dts_name(v)}" if isinstance(v, str) else (f"{v:#x}" if hex_ else str(v))
        for v in values
    ]
    return Safe("<" + " ".join(out) + ">")


def cell_list(groups: list[tuple[int | str, ...]], hex_: bool = False) -> Safe:
    return Safe(", ".join(cells(*g, hex_=hex_) for g in groups))


def _target(board: Board, dev: PlatformDevice, flavor: str) -> tuple[str, str]:
    view = dev.flavors[flavor]
    return (view.label, "") if view.label else ("", view.path)


def platform_overlay(
    profile: Profile, board: Board, dev: PlatformDevice
) -> Overlay | None:
    """Mark a platform device for passthrough, or None when its node needs no change."""
    flavor = profile.target.dt_flavor
    props: list[Prop] = []
    if dev.host_compatible_override:
        props.append(Prop("compatible", strings(dev.host_compatible_override)))
    if dev.needs_sid_marking:
        sid = board.soc.passthrough_sid
        props.append(Prop("iommus", cells(board.soc.smmu_platform, sid, hex_=True)))
        props.append(Prop("dma-coherent", None))
    if not props:
        return None
    props.append(Prop("status", strings("okay")))
    label, path = _target(board, dev, flavor)
    return Overlay(
        name=f"{dev.key}-passthrough",
        description=f"{dev.dt_name} ({dev.key}) passthrough",
        compatible=board.soc.compatible,
        fragments=(Fragment(label, path, tuple(props)),),
    )


def pcie_overlay(profile: Profile, board: Board, slot_key: str) -> Overlay | None:
    """Empty the controller's `iommus` on trees where it has one (L4T)."""
    ctl = board.slots[slot_key].controller
    view = ctl.flavors[profile.target.dt_flavor]
    if not view.controller_iommus:
        return None
    return Overlay(
        name=f"{slot_key}-iommu-group",
        description=f"take {ctl.dt_name} out of its endpoints' IOMMU group",
        compatible=board.soc.compatible,
        fragments=(Fragment("", view.path, (Prop("iommus", Safe("<>")),)),),
    )


_LISTS = (
    ("allowed-clocks", "clock"),
    ("allowed-resets", "reset"),
    ("allowed-power-domains", "power-domain"),
)


def _vm_node(vm: VmAllowList) -> Node:
    """One VM's node: its device name, its own IDs, the ones it shares with the
    host or another VM (protected)."""
    props = [Prop("device-name", strings(vm.device))]
    props += [
        Prop(name, cells(*vm.allowed.ids(kind)))
        for name, kind in _LISTS
        if vm.allowed.of(kind)
    ]
    props += [
        Prop(
            name.replace("allowed-", "allowed-protected-"),
            cells(*vm.protected_ids(kind)),
        )
        for name, kind in _LISTS
        if vm.protected_ids(kind)
    ]
    return Node(vm.vm, "", tuple(props))


def proxy_overlay(
    board: Board, allowed: AllowList, per_vm: tuple[VmAllowList, ...] = ()
) -> Overlay:
    """Ghaf's single node (one /dev/bpmp-host), or with per-VM enforcement one child
    per VM (one /dev/bpmp-host-<vm> each). Either way ghafgen's proxy patch reads
    the allowed-protected-* lists (Ghaf's proxy ignores them)."""
    props = [Prop("compatible", strings("nvidia,bpmp-host-proxy"))]
    if not per_vm:
        props += [
            Prop(name, cells(*allowed.ids(kind)))
            for name, kind in _LISTS
            if allowed.of(kind)
        ]
        props += [
            Prop(name.replace("allowed-", "allowed-protected-"), cells(*ids))
            for name, kind in _LISTS
            if (ids := allowed.protected_ids(kind))
        ]
    props.append(Prop("status", strings("okay")))
    children = tuple(_vm_node(vm) for vm in per_vm)
    node = Node("bpmp_host_proxy", "bpmp_host_proxy", tuple(props), children)
    return Overlay(
        name="bpmp-host-proxy",
        description="BPMP host proxy and its allow list"
        + (", one node per VM" if per_vm else ""),
        compatible=board.soc.compatible,
        fragments=(Fragment("", "/", nodes=(node,)),),
    )


def host_overlays(profile: Profile, board: Board, allowed: AllowList) -> list[Overlay]:
    out: list[Overlay] = []
    for _name, dev in platform_devices(profile, board):
        ov = platform_overlay(profile, board, dev)
        if ov is not None:
            out.append(ov)
    for pt in slots_in_use(profile, board):
        ov = pcie_overlay(profile, board, pt.device)
        if ov is not None:
            out.append(ov)
    if any(d.uses_bpmp for _n, d in platform_devices(profile, board)):
        per_vm = vm_allow_lists(profile, board) if per_vm_form(profile, board) else ()
        out.append(proxy_overlay(board, allowed, per_vm))
    return out


@dataclass(frozen=True)
class GuestDevice:
    """Where a passed platform device lands on the guest's platform bus."""

    dev: PlatformDevice
    offsets: tuple[tuple[int, int], ...]  # (offset in the bus window, size)
    spis: tuple[int, ...]

    @property
    def node_name(self) -> str:
        return f"{self.dev.node.split('@')[0]}@{self.offsets[0][0]:x}"


def place_on_platform_bus(
    devices: list[PlatformDevice], virt: QemuVirt
) -> list[GuestDevice]:
    """Lay devices out on the pinned QEMU's virt platform bus, in -device order."""
    bus = Bus(
        virt.platform_bus_base,
        virt.platform_bus_size,
        virt.platform_bus_first_spi,
        virt.platform_bus_spis,
    )
    placed = lay_out(bus, [Device(d.dt_name, d.reg, d.irq_count) for d in devices])
    return [
        GuestDevice(dev, tuple((r.guest - bus.base, r.size) for r in p.regions), p.spis)
        for dev, p in zip(devices, placed, strict=True)
    ]


def guest_node(board: Board, g: GuestDevice) -> Node:
    soc = board.soc
    guest = g.dev.guest
    props = [
        Prop("compatible", strings(*guest.compatible)),
        Prop("reg", cell_list([(off, size) for off, size in g.offsets], hex_=True)),
    ]
    if g.spis:
        props.append(
            Prop(
                "interrupts",
                cell_list([(GIC_SPI, s, IRQ_TYPE_LEVEL_HIGH) for s in g.spis]),
            )
        )
    if guest.current_speed:
        props.append(Prop("current-speed", cells(guest.current_speed)))
    if guest.bpmp:
        clocks = [("bpmp", soc.clocks[c].id) for c in guest.guest_clocks]
        resets = [("bpmp", soc.resets[r].id) for r in g.dev.resets]
        # Names only where the guest binding has them (serial/8250.yaml has none).
        if clocks:
            props.append(Prop("clocks", cell_list(clocks)))  # type: ignore[arg-type]
            if guest.clock_names:
                props.append(Prop("clock-names", strings(*guest.clock_names)))
        if resets:
            props.append(Prop("resets", cell_list(resets)))  # type: ignore[arg-type]
            if guest.reset_names:
                props.append(Prop("reset-names", strings(*guest.reset_names)))
    if g.dev.instance_of == "i2c":
        # An I2C controller node addresses its bus devices (i2c-controller.yaml).
        props += [Prop("#address-cells", cells(1)), Prop("#size-cells", cells(0))]
    props.append(Prop("status", strings("okay")))
    return Node(g.node_name, g.dev.key, tuple(props))


def guest_overlay(board: Board, vm: str, devices: list[PlatformDevice]) -> Overlay:
    """The VM's additions to QEMU's virt tree: its passed devices' nodes, no more."""
    virt = board.catalog.qemu_virt
    placed = place_on_platform_bus(devices, virt)
    # No /bpmp here: the pinned QEMU's bridge emits it (and its phandle); the
    # devices' `&bpmp` references resolve against it when the VM starts.
    root_nodes: list[Node] = []
    aliases = tuple(
        Prop(f"serial{i}", strings(f"{virt.platform_bus_path}/{g.node_name}"))
        for i, g in enumerate(g for g in placed if g.dev.instance_of == "uart")
    )
    if aliases:
        root_nodes.append(Node("aliases", "", aliases))
    fragments = []
    if root_nodes:
        fragments.append(Fragment("", "/", nodes=tuple(root_nodes)))
    # The bus's own cells (as QEMU sets them), so dtc can check `reg` here.
    bus_cells = (Prop("#address-cells", cells(1)), Prop("#size-cells", cells(1)))
    fragments.append(
        Fragment(
            "",
            virt.platform_bus_path,
            bus_cells,
            tuple(guest_node(board, g) for g in placed),
        )
    )
    return Overlay(
        name=vm,
        description=f"guest tree additions for {vm}",
        compatible="linux,dummy-virt",
        fragments=tuple(fragments),
    )
