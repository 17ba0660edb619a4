"""The integrated GPU group: passed whole to one VM, alone on its platform bus,
with carve-outs that fit and a guest kernel its patch series supports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ghafgen.catalog.model import DISPLAY_GROUP, GPU_GROUP, Board
from ghafgen.findings import Finding
from ghafgen.profile.model import Passthrough, Profile
from ghafgen.rules.registry import ERROR, finding, rule
from ghafgen.units import format_size

if TYPE_CHECKING:
    from ghafgen.derive.gpu import GpuPass


def passes_group(p: Profile, b: Board) -> bool:
    """Whether the profile passes any GPU group member. The group's catalog and
    placement load only then, so validating any other profile skips them."""
    return any(
        pt.device in b.devices and b.devices[pt.device].group == GPU_GROUP
        for pt in p.enabled
    )


def whole_group(p: Profile, b: Board) -> GpuPass | None:
    """The GPU group's pass when the profile gives it whole to one VM (else
    GG801/GG802 say why), loading the group's modules only if it passes any."""
    if not passes_group(p, b):
        return None
    from ghafgen.derive.gpu import gpu_pass

    return gpu_pass(p, b)


def _entries(p: Profile, b: Board) -> list[Passthrough]:
    """The profile's entries for group members, loading the group's modules
    only if there are any."""
    if not passes_group(p, b):
        return []
    from ghafgen.derive.gpu import group_entries

    return group_entries(p, b)


@rule(
    "GG801",
    "gpu-group-split",
    ERROR,
    fix="Give ga10b, host1x, vic, nvdec and nvjpg to the same VM.",
)
def gpu_group_split(p: Profile, b: Board) -> Iterator[Finding]:
    """The GPU and its host1x engines go to one VM, one that ghafgen generates."""
    entries = _entries(p, b)
    if not entries:
        return
    first = entries[0]
    if all(pt.vm is None for pt in entries):
        yield finding(
            "GG801",
            first.at(),
            f"'{first.device}' and the rest of its group go to no VM",
            "the group's carve-outs, guest tree and QEMU variant come with the VM "
            'ghafgen generates for it: set vm = "gpu-vm" on each member',
        )
        return
    for pt in entries[1:]:
        if pt.vm != first.vm:
            yield finding(
                "GG801",
                pt.at("vm"),
                f"'{pt.device}' goes to {pt.vm or 'the host'} but '{first.device}' "
                f"to {first.vm or 'the host'}",
                "the GPU's jobs run through host1x and its engines, and its carve-outs "
                "share the GPU's stream ID: pass the whole group to one VM",
            )


@rule(
    "GG802",
    "gpu-group-incomplete",
    ERROR,
    fix="Add the group's missing members as passthrough entries to the same VM.",
)
def gpu_group_incomplete(p: Profile, b: Board) -> Iterator[Finding]:
    """A GPU group member is passed without the others."""
    entries = _entries(p, b)
    if not entries:
        return
    group = b.catalog.gpu_group
    have = {pt.device for pt in entries}
    missing = [k for k in group.members if k not in have]
    if have - {"host1x"}:
        # A GPU or media engine without host1x is GG811's, with Ghaf's reason.
        missing = [k for k in missing if k != "host1x"]
    if missing:
        vm = entries[0].vm or "vm"
        yield finding(
            "GG802",
            entries[0].at(),
            f"'{entries[0].device}' is passed without "
            + ", ".join(f"'{k}'" for k in missing),
            "Ghaf passes the group whole (CUDA needs the physical host1x); add "
            + " ".join(
                f'[hardware.nvidia.passthroughs.{k}] vm = "{vm}"' for k in missing
            ),
        )


@rule(
    "GG803",
    "gpu-vm-not-alone",
    ERROR,
    fix="Give the GPU VM's other platform devices to another VM.",
)
def gpu_vm_not_alone(p: Profile, b: Board) -> Iterator[Finding]:
    """The GPU and display VMs take no platform device outside the group and the display."""
    gp = whole_group(p, b)
    variant = {gp.vm} if gp is not None else set()
    variant |= {
        pt.vm
        for pt in p.enabled
        if pt.vm
        and pt.device in b.devices
        and b.devices[pt.device].group == DISPLAY_GROUP
    }
    if not variant:
        return
    base = b.catalog.gpu_group.qemu.platform_bus_base
    for pt in p.enabled:
        dev = b.devices.get(pt.device)
        if (
            pt.vm in variant
            and dev is not None
            and dev.group
            not in (
                GPU_GROUP,
                DISPLAY_GROUP,
            )
        ):
            yield finding(
                "GG803",
                pt.at("vm"),
                f"'{pt.device}' goes to '{pt.vm}', which runs the GPU's QEMU variant",
                f"that QEMU moves the platform bus to {base:#x} and ghafgen lays out "
                "only the GPU group and the display there; pass this device to "
                "another VM",
            )


@rule(
    "GG804",
    "carveouts-exceed-ram",
    ERROR,
    scope="host",
    fix="Shrink the VMs' memory: the GPU's carve-outs leave the host's RAM too.",
)
def carveouts_exceed_ram(p: Profile, b: Board) -> Iterator[Finding]:
    """The GPU and display roles' carve-outs, the host's VMs and its reserve fit the board's RAM."""
    if not passes_group(p, b):
        return
    from ghafgen.derive.gpu import passes

    roles = passes(p, b)
    if not roles:
        return
    gp = next(iter(roles.values()))
    # Each carve-out once, however many roles name it; below DRAM (host1x's
    # shim aperture) is no RAM.
    taken = {c.key: c for r in roles.values() for c in r.role.carveouts}
    carve = sum(c.size for c in taken.values() if c.base >= 0x80000000)
    ram = b.ram_mib << 20
    total = sum(vm.memory for vm in p.vms.values()) + carve
    total += b.host_reserve_mib << 20
    if total > ram:
        vm = p.vms.get(gp.vm)
        yield finding(
            "GG804",
            vm.at("memory") if vm is not None else gp.entries[0].at(),
            f"the VMs, the host reserve and the GPU and display carve-outs "
            f"({format_size(carve)}) "
            f"take {format_size(total)}, more than the board's {format_size(ram)}",
            f"free {format_size(total - ram)}; the carve-outs are taken from the host "
            "before Linux boots (reserved-memory), apart from each VM's own RAM",
        )


def overlaps(spans: list[tuple[str, int, int]]) -> list[tuple[str, str]]:
    """Pairs of named [start, end) spans that overlap."""
    out = []
    for i, (a, a0, a1) in enumerate(spans):
        for b, b0, b1 in spans[i + 1 :]:
            if a0 < b1 and b0 < a1:
                out.append((a, b))
    return out


@rule(
    "GG805",
    "carveout-overlap",
    ERROR,
    fix="Fix the catalog's carve-outs (data/t234-gpu.toml): none may overlap, "
    "and the guest's reserved regions lie inside its memory bank.",
)
def carveout_overlap(p: Profile, b: Board) -> Iterator[Finding]:
    """Host carve-outs do not overlap; guest reserved regions fit the guest bank apart."""
    gp = whole_group(p, b)
    if gp is None:
        return
    from ghafgen.derive.gpu import passes

    where = gp.entries[0].at()
    # Every role's carve-outs on this host, each once (the split pair's too).
    taken = {c.key: c for r in passes(p, b).values() for c in r.role.carveouts}
    host = [(c.key, c.base, c.end) for c in taken.values()]
    for x, y in overlaps(host):
        yield finding(
            "GG805",
            where,
            f"host carve-outs '{x}' and '{y}' overlap",
            "each is handed to the guest 1:1 by its own vfio device; QEMU "
            "cannot map both (catalog/data/t234-gpu.toml, t234-gpu-roles.toml)",
        )
    bank = gp.group.guest_memory
    guest = [(r.key, r.base, r.end) for r in gp.group.reserved]
    for x, y in overlaps(guest):
        yield finding(
            "GG805",
            where,
            f"guest reserved regions '{x}' and '{y}' overlap",
            "two drivers would allocate from the same memory "
            "(catalog/data/t234-gpu.toml)",
        )
    for r in gp.group.reserved:
        if r.base < bank.base or r.end > bank.end:
            yield finding(
                "GG805",
                where,
                f"guest reserved region '{r.key}' ({r.base:#x}+{r.size:#x}) lies "
                f"outside the guest bank '{bank.key}' ({bank.base:#x}+{bank.size:#x})",
                "only the bank is backed 1:1 by host memory "
                "(catalog/data/t234-gpu.toml)",
            )


@rule(
    "GG806",
    "gpu-guest-kernel-unsupported",
    ERROR,
    fix='Leave the GPU VM\'s `kernel` unset or "6.12": the pinned patch series '
    "targets that series.",
)
def gpu_guest_kernel_unsupported(p: Profile, b: Board) -> Iterator[Finding]:
    """The GPU VM's kernel is the series Ghaf's GPU patch series supports."""
    gp = whole_group(p, b)
    if gp is None:
        return
    vm = p.vms.get(gp.vm)
    want = gp.group.kernel.series
    if vm is not None and vm.kernel and vm.kernel != want:
        yield finding(
            "GG806",
            vm.at("kernel"),
            f"VM '{vm.name}' asks for Linux {vm.kernel!r}; the pinned GPU patch series "
            f"and NVIDIA's out-of-tree modules are built for {want}",
            f'use kernel = "{want}" (Ghaf: linuxPackages_{want.replace(".", "_")} '
            "with jetpack-nixos's kernelPackagesOverlay)",
        )


@rule(
    "GG807",
    "gpu-with-smmu-bypass",
    ERROR,
    fix="Pass the device that needs arm-smmu.disable_bypass=0 (MGBE0) on a target "
    "without the GPU group.",
)
def gpu_with_smmu_bypass(p: Profile, b: Board) -> Iterator[Finding]:
    """No SMMU bypass on a host whose guest holds host1x's stream-ID tables."""
    if not passes_group(p, b):
        return
    for pt in p.enabled:
        dev = b.devices.get(pt.device)
        if dev is not None and dev.smmu_bypass_reason:
            yield finding(
                "GG807",
                pt.at(),
                f"'{pt.device}' needs arm-smmu.disable_bypass=0 on the host, and the "
                "GPU group's guest is given host1x's hypervisor window",
                "with bypass on, a stream ID without an SMMU context reaches memory "
                "untranslated, and that window's tables decide which stream IDs the "
                "guest's engines may use (Linux 6.12 drivers/gpu/host1x/dev.c, "
                "tegra234_sid_table; not tried on a board)",
            )
