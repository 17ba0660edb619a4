"""Where QEMU's platform bus puts vfio-platform devices.

Entry point: `lay_out(bus, devices)`. QEMU links each `-device` in command-line
order (hw/core/platform-bus.c, platform_bus_link_device): the device's IRQs
take the lowest free lines, then each of its MMIO regions the first free slot
aligned to the region's size rounded up to a power of two, searched from the
device's mmio-base when it names one, else from the start of the bus. A guest
tree's `reg`, `ranges` and `interrupts` must say the same.
"""

from typing import NamedTuple


class Bus(NamedTuple):
    """One machine's platform bus: its window and its interrupt lines."""

    base: int
    size: int
    first_spi: int
    spis: int


class Device(NamedTuple):
    """A vfio-platform device as QEMU is given it."""

    dt_name: str
    reg: tuple[tuple[int, int], ...]  # (host address, size) per region
    irq_count: int
    mmio_base: int | None = None  # -device ...,mmio-base=: mapped there (1:1)


class Region(NamedTuple):
    host: int  # the device's own (host physical) address
    guest: int  # where QEMU maps it in the guest
    size: int


class Placed(NamedTuple):
    """One vfio-platform device as QEMU lays it out."""

    dt_name: str
    regions: tuple[Region, ...]
    spis: tuple[int, ...]
    mmio_base: int | None = None

    @property
    def qemu_arg(self) -> str:
        opts = f",mmio-base={self.mmio_base:#x}" if self.mmio_base is not None else ""
        return f"vfio-platform,host={self.dt_name}{opts}"


def _align(size: int) -> int:
    """QEMU's alignment for a region: its size rounded up to a power of two."""
    return 1 << (size - 1).bit_length()


def lay_out(bus: Bus, devices: list[Device]) -> tuple[Placed, ...]:
    """`devices` in -device order, as QEMU places them on `bus`.

    Raises:
        ValueError: a region does not fit the window, or the lines run out.
    """
    taken: list[tuple[int, int]] = []  # (offset, end) in the window
    spi = 0

    def fit(length: int, start: int) -> int:
        step = _align(length)
        off = start
        while off + length <= bus.size:
            clash = max(
                (b for a, b in taken if off + length > a and off < b), default=None
            )
            if clash is None:
                taken.append((off, off + length))
                return off
            # Every slot before `clash` overlaps that region too: QEMU would try
            # each in turn and refuse it, so step over them at once.
            off += -(-(clash - off) // step) * step
        raise ValueError(f"platform bus cannot fit a region of {length:#x} bytes")

    out: list[Placed] = []
    for dev in devices:
        spis = tuple(range(bus.first_spi + spi, bus.first_spi + spi + dev.irq_count))
        spi += dev.irq_count
        if spi > bus.spis:
            raise ValueError("platform bus is out of interrupt lines")
        start = 0 if dev.mmio_base is None else dev.mmio_base - bus.base
        regions = tuple(
            Region(addr, bus.base + fit(length, start), length)
            for addr, length in dev.reg
        )
        out.append(Placed(dev.dt_name, regions, spis, dev.mmio_base))
    return tuple(out)
