"""The integrated GPU group in one profile: who gets it, and where QEMU puts it.

Entry points: `gpu_pass(profile, board)` (the VM given the group, its members
and carve-outs, or None) and `placement(group, members)` (QEMU's platform-bus
layout,
which the guest tree's `ranges` and interrupts must match).
"""

from __future__ import annotations

from typing import NamedTuple

from ghafgen.catalog.gpu import Carveout, GpuGroup, gpu_group
from ghafgen.catalog.model import Board, PlatformDevice
from ghafgen.profile.model import Passthrough, Profile


class Region(NamedTuple):
    host: int  # the device's own (host physical) address
    guest: int  # where QEMU maps it in the guest
    size: int


class Placed(NamedTuple):
    """One vfio-platform device as QEMU lays it out."""

    dt_name: str
    regions: tuple[Region, ...]
    spis: tuple[int, ...]
    mmio_base: int | None = None  # set for carve-outs: mapped 1:1

    @property
    def qemu_arg(self) -> str:
        opts = f",mmio-base={self.mmio_base:#x}" if self.mmio_base is not None else ""
        return f"vfio-platform,host={self.dt_name}{opts}"


class GpuPass(NamedTuple):
    """The group as one profile passes it."""

    vm: str
    group: GpuGroup
    members: tuple[PlatformDevice, ...]  # in the group's order
    entries: tuple[Passthrough, ...]  # the profile entries, in profile order

    @property
    def carveouts(self) -> tuple[Carveout, ...]:
        return self.group.carveouts

    @property
    def placed(self) -> tuple[Placed, ...]:
        return placement(self.group, self.members)

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
    group = gpu_group()
    vms = {pt.vm for pt in entries}
    keys = {pt.device for pt in entries}
    if len(vms) != 1 or None in vms or keys != set(group.members):
        return None
    (vm,) = vms
    assert vm is not None
    members = tuple(board.devices[k] for k in group.members)
    return GpuPass(vm, group, members, tuple(entries))


def _align(size: int) -> int:
    """QEMU's alignment for a region: its size rounded up to a power of two."""
    return 1 << (size - 1).bit_length()


def placement(
    group: GpuGroup, members: tuple[PlatformDevice, ...]
) -> tuple[Placed, ...]:
    """Lay the carve-outs, then the members, on the variant's platform bus as QEMU
    does (platform-bus.c platform_bus_link_device): per device its IRQs take the
    lowest free lines, then each region the first naturally aligned free slot,
    searched from mmio-base when given, else from the bus start."""
    q = group.qemu
    base, size = q.platform_bus_base, q.platform_bus_size
    taken: list[tuple[int, int]] = []  # (offset, end) on the bus
    spi = 0
    out: list[Placed] = []

    def fit(length: int, start: int) -> int:
        align = _align(length)
        off = start
        while off + length <= size:
            if all(off + length <= a or off >= b for a, b in taken):
                taken.append((off, off + length))
                return off
            off += align
        raise ValueError(f"platform bus cannot fit a region of {length:#x} bytes")

    for c in group.carveouts:
        off = fit(c.size, c.base - base)
        out.append(Placed(c.dt_name, (Region(c.base, base + off, c.size),), (), c.base))
    for dev in members:
        spis = tuple(range(q.first_spi + spi, q.first_spi + spi + dev.irq_count))
        spi += dev.irq_count
        if spi > q.spis:
            raise ValueError("platform bus is out of interrupt lines")
        regions = tuple(
            Region(addr, base + fit(length, 0), length) for addr, length in dev.reg
        )
        out.append(Placed(dev.dt_name, regions, spis))
    return tuple(out)
