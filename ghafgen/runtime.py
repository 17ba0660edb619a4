"""What runs on the board for one profile: each VM's QEMU and kernel, the host's kernel
and patches, all from the versions ghafgen pins (catalog runtime.toml).

Entry point: `runtime_stack(profile, board)`. Both generation and `ghafgen show` read
it, so what is shown is what is generated.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghafgen.allowlist import platform_devices
from ghafgen.catalog.load import kernel_pins, qemu_build, qemu_virt
from ghafgen.catalog.model import Board, PlatformDevice
from ghafgen.profile.model import Profile


@dataclass(frozen=True)
class VmStack:
    vm: str
    qemu: str  # "QEMU 10.1.5 (pinned, ...)" or microvm.nix's
    qemu_patches: tuple[str, ...]
    kernel: str  # pinned series, or "" when the guest's kernel is the user's choice
    kernel_patches: tuple[str, ...]


@dataclass(frozen=True)
class HostStack:
    kernel: str
    patches: tuple[str, ...]
    params: tuple[str, ...]
    smmu_patch_reasons: tuple[str, ...]


def smmu_patch_reasons(profile: Profile, board: Board) -> tuple[str, ...]:
    """Passed devices vfio refuses on Tegra234 without the SMMU coherency patch."""
    flavor = profile.target.dt_flavor
    reasons = []
    for pt in profile.enabled:
        if pt.device in board.slots:
            reasons.append(f"{pt.name}: PCIe functions have no dma-coherent node")
        elif pt.device in board.devices:
            dev = board.devices[pt.device]
            view = dev.view(flavor)
            # The passthrough overlay of a SID-marked device adds dma-coherent, as
            # Ghaf's UARTI overlay does: its guest node has no DMA channels.
            if not dev.needs_sid_marking and (view is None or not view.dma_coherent):
                reasons.append(f"{pt.name}: its {flavor} node is not dma-coherent")
    return tuple(reasons)


def guest_series(devices: list[PlatformDevice]) -> str:
    """The pinned guest series when a passed device needs it (BPMP hooks, drivers)."""
    needed = any(d.guest.bpmp or d.guest.min_kernel for d in devices)
    return kernel_pins().guest_series if needed else ""


def _vm(profile: Profile, board: Board, name: str) -> VmStack:
    mine = {pt.name for pt in profile.enabled if pt.vm == name}
    devices = [d for n, d in platform_devices(profile, board) if n in mine]
    bpmp = any(d.guest.bpmp for d in devices)
    build = qemu_build()
    if devices:
        gone = build.vfio_platform_removed
        qemu = f"QEMU {build.version} (pinned: vfio-platform is gone from {gone})"
        patches = (build.bridge_patches if bpmp else ()) + build.irqfd_patches
        emits = set(qemu_virt().emits_node)
        if any(
            not emits & set(d.qemu_compatibles) and not d.guest.qemu_emits_node
            for d in devices
        ):
            patches += (f"qemu-vfio-platform-bindings-{name}.patch (ghafgen)",)
    else:
        qemu, patches = "microvm.nix's QEMU", ()
    series = guest_series(devices)
    kernel_patches: tuple[str, ...] = tuple(
        dict.fromkeys(k for d in devices for k in d.guest.ghaf_patches)
    )
    if bpmp:
        kernel_patches += ("bpmp-virt proxy drivers", f"bpmp-virt hooks ({series})")
    return VmStack(
        name, qemu, tuple(p.split("/")[-1] for p in patches), series, kernel_patches
    )


def runtime_stack(profile: Profile, board: Board) -> tuple[HostStack, list[VmStack]]:
    devices = [d for _n, d in platform_devices(profile, board)]
    bpmp = any(d.uses_bpmp for d in devices)
    reasons = smmu_patch_reasons(profile, board)
    patches = (("vfio-platform-reset-not-required",) if devices else ()) + (
        ("arm-smmu cache coherency (Ghaf)",) if reasons else ()
    )
    if bpmp:
        patches += (
            "bpmp-virt proxy drivers",
            f"bpmp-virt hooks ({profile.target.kernel_version})",
        )
    params = tuple(
        f"arm-smmu.disable_bypass=0 ({d.key})" for d in devices if d.smmu_bypass_reason
    )
    host = HostStack(
        kernel=f"Linux {profile.target.kernel_version} (target.kernel_version)",
        patches=patches,
        params=params,
        smmu_patch_reasons=reasons,
    )
    return host, [_vm(profile, board, name) for name in profile.vms]
