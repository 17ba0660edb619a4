"""The integrated GPU group in one profile: who gets it, and where QEMU puts it.

Entry points: `gpu_pass(profile, board)` (the VM given the group, its members
and carve-outs, or None) and `placement(group, members)` (QEMU's platform-bus
layout, which the guest tree's `ranges` and interrupts must match).
"""

from __future__ import annotations

from typing import NamedTuple

from ghafgen.catalog.gpu import Carveout, GpuGroup
from ghafgen.catalog.model import Board, PlatformDevice
from ghafgen.derive.platform_bus import Bus, Device, Placed, lay_out
from ghafgen.profile.model import Passthrough, Profile

# The role of the group's VM until profiles name one: compute (t234-gpu.toml
# [roles.gpu]), the only topology ghafgen's reference GPU target has.
DEFAULT_ROLE = "gpu"


class GpuPass(NamedTuple):
    """The group as one profile passes it."""

    vm: str
    group: GpuGroup
    members: tuple[PlatformDevice, ...]  # in the group's order
    entries: tuple[Passthrough, ...]  # the profile entries, in profile order
    placed: tuple[Placed, ...]  # placement(group, members)

    @property
    def carveouts(self) -> tuple[Carveout, ...]:
        return self.group.carveouts

    @property
    def qemu_args(self) -> tuple[str, ...]:
        """`-device` arguments in the order the placement assumes."""
        out: list[str] = []
        for p in self.placed:
            out += ["-device", p.qemu_arg]
        return tuple(out)

    @property
    def host_devices(self) -> tuple[str, ...]:
        """Every host device vfio-platform must hold: carve-out wrappers, then members."""
        return tuple(p.dt_name for p in self.placed)


def group_entries(profile: Profile, board: Board) -> list[Passthrough]:
    """Enabled passthroughs of group members, in profile order."""
    return [
        pt
        for pt in profile.enabled
        if pt.device in board.devices and board.devices[pt.device].group
    ]


def gpu_pass(profile: Profile, board: Board) -> GpuPass | None:
    """The group's VM when the profile passes the whole group to one VM, else None
    (the rules say what is wrong with a split or partial group)."""
    entries = group_entries(profile, board)
    if not entries:
        return None
    group = board.catalog.gpu_group
    vms = {pt.vm for pt in entries}
    keys = {pt.device for pt in entries}
    if len(vms) != 1 or None in vms or keys != set(group.members):
        return None
    (vm,) = vms
    assert vm is not None
    members = tuple(board.devices[k] for k in group.members)
    return GpuPass(vm, group, members, tuple(entries), placement(group, members))


def placement(
    group: GpuGroup, members: tuple[PlatformDevice, ...]
) -> tuple[Placed, ...]:
    """The carve-outs (each at its own address), then the members, laid out on
    the variant's platform bus as QEMU does."""
    q = group.qemu
    bus = Bus(q.platform_bus_base, q.platform_bus_size, q.first_spi, q.spis)
    return lay_out(
        bus,
        [Device(c.dt_name, ((c.base, c.size),), 0, c.base) for c in group.carveouts]
        + [Device(d.dt_name, d.reg, d.irq_count) for d in members],
    )
