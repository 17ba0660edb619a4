"""Patches ghafgen writes itself: the vfio_platform reset relaxation and the QEMU memory map.

Entry points: `VFIO_RESET` (a fixed diff) and `qemu_memmap(bar_size)`.
Patches that exist upstream (the bpmp-virt series) are fetched, never written here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghafgen.catalog.load import qemu_virt

GIB = 1 << 30


@dataclass(frozen=True)
class Patch:
    name: str
    file: str
    description: str
    diff: str


# drivers/vfio/platform/vfio_platform.c lines 16-22 are the same in Linux 6.1,
# 6.6 and 6.12. Tegra devices have no vfio reset handler; without this,
# vfio-platform refuses to open them.
def _diff(*lines: str) -> str:
    """A diff body from its lines; written as a list so that no formatter can strip
    the single space of a blank context line."""
    return "\n".join(lines) + "\n"


BLANK = " "  # a blank line of context

VFIO_RESET = Patch(
    name="vfio-platform-reset-not-required",
    file="patches/vfio-platform-reset-not-required.patch",
    description="vfio_platform: do not require a reset handler (Tegra devices have none)",
    diff=_diff(
        "diff --git a/drivers/vfio/platform/vfio_platform.c "
        "b/drivers/vfio/platform/vfio_platform.c",
        "--- a/drivers/vfio/platform/vfio_platform.c",
        "+++ b/drivers/vfio/platform/vfio_platform.c",
        "@@ -16,7 +16,7 @@",
        ' #define DRIVER_AUTHOR   "Antonios Motakis <a.motakis@virtualopensystems.com>"',
        ' #define DRIVER_DESC     "VFIO for platform devices - User Level meta-driver"',
        BLANK,
        "-static bool reset_required = true;",
        "+static bool reset_required = false;",
        " module_param(reset_required, bool, 0444);",
        ' MODULE_PARM_DESC(reset_required, "override reset requirement (default: 1)");',
        BLANK,
    ),
)


@dataclass(frozen=True)
class MemMap:
    """Where the seed's layout puts the enlarged window and guest RAM for one BAR."""

    window_base: int
    window_size: int
    ram_base: int


def memmap_for(bar_size: int) -> MemMap:
    """Window from 0x40000000 up to the end of the first naturally aligned BAR slot."""
    base = qemu_virt().memmap_window_base
    bar_at = (base + bar_size - 1) // bar_size * bar_size
    end = bar_at + bar_size
    size = (end - base + GIB - 1) // GIB * GIB
    return MemMap(base, size, base + size)


def qemu_memmap(vm: str, bar_size: int) -> Patch:
    m = memmap_for(bar_size)
    return Patch(
        name=f"qemu-virt-memmap-{vm}",
        file=f"patches/qemu-virt-memmap-{vm}.patch",
        description=(
            f"hw/arm/virt.c: {m.window_size >> 30} GiB PCIe window at {m.window_base:#x}, "
            f"RAM at {m.ram_base:#x}, for a {bar_size >> 30} GiB BAR in {vm}"
        ),
        diff=_diff(
            "diff --git a/hw/arm/virt.c b/hw/arm/virt.c",
            "--- a/hw/arm/virt.c",
            "+++ b/hw/arm/virt.c",
            "@@ -161,8 +161,9 @@ static const MemMapEntry base_memmap[] = {",
            "     [VIRT_SECURE_MEM] =         { 0x0e000000, 0x01000000 },",
            "     [VIRT_PCIE_MMIO] =          { 0x10000000, 0x2eff0000 },",
            "     [VIRT_PCIE_PIO] =           { 0x3eff0000, 0x00010000 },",
            "-    [VIRT_PCIE_ECAM] =          { 0x3f000000, 0x01000000 },",
            f"+    /* ghafgen: {m.window_size >> 30} GiB for a {bar_size >> 30} GiB BAR "
            "(seed-pcie layout) */",
            f"+    [VIRT_PCIE_ECAM] =          {{ {m.window_base:#x}, {m.window_size:#x} }},",
            "     /* Actual RAM size depends on initial RAM and device memory settings */",
            "-    [VIRT_MEM] =                { GiB, LEGACY_RAMLIMIT_BYTES },",
            f"+    [VIRT_MEM] =                {{ {m.ram_base:#x}, LEGACY_RAMLIMIT_BYTES }},",
            " };",
            BLANK,
        ),
    )
