"""The integrated GPU group and the display in one profile: who gets them, in
which role, and where QEMU puts them.

Entry points: `roles(profile, board)` (each VM's role and the host's topology,
read by the rules and renderers), `gpu_pass(profile, board)` (the VM given the
group, its members and carve-outs, or None) and `placement(group, members)`
(QEMU's platform-bus layout, which the guest tree's `ranges` and interrupts
must match).
"""

from __future__ import annotations

from typing import NamedTuple

from ghafgen.catalog.gpu import Carveout, GpuGroup, GpuRole, Topology
from ghafgen.catalog.model import DISPLAY_GROUP, GPU_GROUP, Board, PlatformDevice
from ghafgen.derive.platform_bus import Bus, Device, Placed, lay_out
from ghafgen.profile.model import Passthrough, Profile

# The role of the group's VM until profiles name one: compute (t234-gpu.toml
# [roles.gpu]), the only topology ghafgen's reference GPU target has.
DEFAULT_ROLE = "gpu"


class GpuPass(NamedTuple):
    """One VM's GPU or display role as one profile passes it."""

    vm: str
    group: GpuGroup
    members: tuple[
        PlatformDevice, ...
    ]  # the group's, in its order; () for display only
    entries: tuple[Passthrough, ...]  # the profile entries, in profile order
    placed: tuple[Placed, ...]  # placement(group, members, role)
    role: GpuRole

    @property
    def carveouts(self) -> tuple[Carveout, ...]:
        """The GPU group's own carve-outs this VM takes (the display's own go
        into its display host overlay, render/display.py)."""
        return tuple(c for c in self.group.carveouts if c in self.role.carveouts)

    @property
    def qemu_args(self) -> tuple[str, ...]:
        """`-device` arguments in the order the placement assumes."""
        out: list[str] = []
        for p in self.placed:
            out += ["-device", p.qemu_arg]
        return tuple(out)

    @property
    def host_devices(self) -> tuple[str, ...]:
        """Every host device vfio-platform must hold: carve-out wrappers, keyholes,
        then members."""
        return tuple(p.dt_name for p in self.placed)


def group_entries(profile: Profile, board: Board) -> list[Passthrough]:
    """Enabled passthroughs of group members, in profile order."""
    return [
        pt
        for pt in profile.enabled
        if pt.device in board.devices and board.devices[pt.device].group == GPU_GROUP
    ]


def passes(profile: Profile, board: Board) -> dict[str, GpuPass]:
    """Each VM whose GPU and display devices make one of the catalog's roles,
    with its placement (VMs matching no role are the rules' to explain)."""
    top = roles(profile, board)
    if not top.vms:
        return {}
    group = board.catalog.gpu_group
    out = {}
    for vm, vr in top.vms.items():
        members = tuple(board.devices[k] for k in group.members if k in vr.role.devices)
        out[vm] = GpuPass(
            vm, group, members, vr.entries, placement(group, members, vr.role), vr.role
        )
    return out


def gpu_pass(profile: Profile, board: Board) -> GpuPass | None:
    """The group's VM when the profile passes the whole group to one VM (in the
    gpu or gui role), else None (the rules say what is wrong with a split or
    partial group)."""
    return next((gp for gp in passes(profile, board).values() if gp.members), None)


def placement(
    group: GpuGroup,
    members: tuple[PlatformDevice, ...],
    role: GpuRole | None = None,
) -> tuple[Placed, ...]:
    """The role's carve-outs and keyholes (each at its mmio-base), then the
    members, laid out on the variant's platform bus as QEMU does; Ghaf passes
    them in that order (passthrough/payload/default.nix:89-99)."""
    q = group.qemu
    bus = Bus(q.platform_bus_base, q.platform_bus_size, q.first_spi, q.spis)
    carve = group.carveouts if role is None else role.carveouts
    holes = () if role is None else role.keyholes
    return lay_out(
        bus,
        [Device(c.dt_name, ((c.base, c.size),), 0, c.base) for c in carve]
        + [Device(h.dt_name, ((h.base, h.size),), 0, h.mmio_base) for h in holes]
        + [Device(d.dt_name, d.reg, d.irq_count) for d in members],
    )


def role_entries(profile: Profile, board: Board) -> list[Passthrough]:
    """Enabled passthroughs of the GPU group's members and of the display."""
    return [
        pt
        for pt in profile.enabled
        if pt.device in board.devices
        and board.devices[pt.device].group in (GPU_GROUP, DISPLAY_GROUP)
    ]


class VmRole(NamedTuple):
    """One VM's role: the catalog's record of what it owns, and the entries giving it."""

    vm: str
    role: GpuRole
    entries: tuple[Passthrough, ...]  # in profile order

    @property
    def name(self) -> str:
        """ "gpu" | "display" | "gui", the key other modules wire to."""
        return self.role.key


class GpuTopology(NamedTuple):
    """The GPU and display roles of one profile (or one host's joined profiles)."""

    vms: dict[str, VmRole]  # VM -> its role, in profile order
    topology: Topology | None  # None: no role, or a set of roles Ghaf has no name for
    # VMs whose GPU and display devices match no role (the group split, say):
    # the rules say what is wrong with them.
    unmatched: dict[str, tuple[Passthrough, ...]]

    @property
    def name(self) -> str:
        """The topology's key, "" when nothing is passed, "mixed" when no topology fits."""
        if self.topology is not None:
            return self.topology.key
        return "mixed" if self.vms or self.unmatched else ""

    def role(self, vm: str) -> str:
        """The VM's role name, "" for none."""
        r = self.vms.get(vm)
        return r.name if r is not None else ""


def roles(profile: Profile, board: Board) -> GpuTopology:
    """Each VM given GPU group members or the display, matched to the role whose
    devices are exactly the ones it gets, and the topology those roles make.
    Entries to no VM are left to the rules (GG801, GG808)."""
    by_vm: dict[str, list[Passthrough]] = {}
    for pt in role_entries(profile, board):
        if pt.vm is not None:
            by_vm.setdefault(pt.vm, []).append(pt)
    if not by_vm:
        return GpuTopology({}, None, {})
    catalog = board.catalog.gpu_roles
    vms: dict[str, VmRole] = {}
    unmatched: dict[str, tuple[Passthrough, ...]] = {}
    for vm, entries in by_vm.items():
        keys = frozenset(pt.device for pt in entries)
        role = next((r for r in catalog.roles.values() if r.devices == keys), None)
        if role is None:
            unmatched[vm] = tuple(entries)
        else:
            vms[vm] = VmRole(vm, role, tuple(entries))
    names = [r.role.key for r in vms.values()]
    topology = None
    if not unmatched and len(names) == len(set(names)):
        topology = catalog.topology(frozenset(names))
    return GpuTopology(vms, topology, unmatched)
