"""What runs on the board for one profile: each VM's QEMU and kernel, the host's kernel
and patches, all from the versions ghafgen pins (catalog runtime.toml).

Entry point: `runtime_stack(profile, board)`. Both generation and `ghafgen show` read
it, so what is shown is what is generated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ghafgen.catalog import Catalog
from ghafgen.catalog.model import Board, PlatformDevice
from ghafgen.derive.allowlist import bpmp_owners, per_vm_form, platform_devices
from ghafgen.derive.gpu import GpuPass, passes
from ghafgen.derive.resources import (
    channel_group,
    channel_shm,
    vm_account,
    volume_dir,
)
from ghafgen.derive.slots import slots_in_use
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


def unbound_devices(
    devices: list[PlatformDevice], cat: Catalog
) -> list[PlatformDevice]:
    """Passed devices the pinned QEMU has no FDT binding for, so would refuse:
    their guest node is ghafgen's, and ghafgen's QEMU patch binds them."""
    emits = set(cat.qemu_virt.emits_node)
    # A group's VM boots its own -dtb, with which QEMU writes no platform-bus
    # nodes (virt.c virt_machine_done): t234-gpu.toml [qemu.dtb] says whether
    # its members still need a binding.
    return [
        d
        for d in devices
        if not d.guest.qemu_emits_node
        and not emits & set(d.qemu_compatibles)
        and (not d.group or cat.gpu_group.qemu.needs_fdt_binding)
    ]


def guest_series(devices: list[PlatformDevice], cat: Catalog) -> str:
    """The pinned guest series when a passed device needs it (BPMP hooks, drivers)."""
    needed = any(d.guest.bpmp or d.guest.min_kernel for d in devices)
    return cat.kernel_pins.guest_series if needed else ""


def _vm(profile: Profile, board: Board, name: str, gp: GpuPass | None) -> VmStack:
    mine = {pt.name for pt in profile.enabled if pt.vm == name}
    devices = [d for n, d in platform_devices(profile, board) if n in mine]
    bpmp = any(d.guest.bpmp for d in devices)
    build = board.catalog.qemu_build
    if gp is not None and gp.vm != name:
        gp = None
    if devices:
        gone = build.vfio_platform_removed
        qemu = f"QEMU {build.version} (pinned: vfio-platform is gone from {gone})"
        patches = (build.bridge_patches if bpmp else ()) + build.irqfd_patches
        if unbound_devices(devices, board.catalog):
            patches += (f"qemu-vfio-platform-bindings-{name}.patch (ghafgen)",)
        if gp is not None:
            paths = board.catalog.sources["ghaf"].paths
            patches += tuple(
                paths[k].rsplit("/", 1)[-1] for k in gp.group.qemu.extra_patches
            )
        if bpmp and per_vm_form(profile, board):
            patches += ("qemu-bpmp-guest-host-device.patch (ghafgen)",)
    else:
        qemu, patches = "microvm.nix's QEMU", ()
    series = guest_series(devices, board.catalog)
    kernel_patches: tuple[str, ...] = tuple(
        dict.fromkeys(k for d in devices for k in d.guest.ghaf_patches)
    )
    if gp is not None:
        k = gp.group.kernel
        kernel_patches = (*k.patches, *kernel_patches)
        role = board.catalog.gpu_guest_role(gp.role.key)
        kernel_patches += tuple(f"{k.oot_package}: {p}" for p in role.oot_patches)
    if bpmp:
        kernel_patches += ("bpmp-virt proxy drivers", f"bpmp-virt hooks ({series})")
    return VmStack(
        name, qemu, tuple(p.split("/")[-1] for p in patches), series, kernel_patches
    )


def runtime_stack(profile: Profile, board: Board) -> tuple[HostStack, list[VmStack]]:
    """The host's and each VM's stack; a GPU or display VM's in its role."""
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
        if per_vm_form(profile, board):
            patches += ("bpmp-host-proxy-per-vm (ghafgen)",)
    params = tuple(
        f"arm-smmu.disable_bypass=0 ({d.key})" for d in devices if d.smmu_bypass_reason
    )
    host = HostStack(
        kernel=f"Linux {profile.target.kernel_version} (target.kernel_version)",
        patches=patches,
        params=params,
        smmu_patch_reasons=reasons,
    )
    vm_passes = passes(profile, board)
    return host, [
        _vm(profile, board, name, vm_passes.get(name)) for name in profile.vms
    ]


# ------------------------------------------------------------ device access
# What each microvm@<vm> unit may open (systemd DevicePolicy=closed plus
# DeviceAllow=), and whom it runs as. microvm.nix runs every VM as user
# `microvm`, group `kvm` (nixos-modules/host/default.nix: `user = "microvm";
# group = "kvm"` for every microvm@ unit), so file ownership could not tell two
# VMs apart; ghafgen gives each VM's QEMU its own user and group (vm_account),
# which owns that VM's state dir, device nodes and volume folders, and the
# per-unit device cgroup stays as a second fence.
KVM = "/dev/kvm"
VFIO_CONTAINER = "/dev/vfio/vfio"
VHOST_VSOCK = "/dev/vhost-vsock"  # microvm.nix lib/runners/qemu.nix: vhost-vsock-<bus>
# Ghaf's own VM modules give system VMs tap interfaces (QEMU opens /dev/net/tun,
# and /dev/vhost-net with vhost=on, microvm.nix lib/runners/qemu.nix); ghafgen
# does not see them, so the Ghaf layout allows both (uncertain: no Ghaf VM
# module was evaluated here).
GHAF_LAYOUT_DEVICES = ("/dev/net/tun", "/dev/vhost-net")


# DT names and BDFs; nothing a udev rule or a systemd setting would read as syntax.
_DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]*")


def vfio_link(device: str) -> str:
    """A stable name for the VFIO group of `device` (a DT name or a BDF), made by
    udev: the group number is only known on the board."""
    return f"/dev/ghafgen/vfio-{device}"


@dataclass(frozen=True)
class DeviceAccess:
    vm: str
    devices: tuple[str, ...]  # DeviceAllow paths, each opened read-write
    vfio: tuple[str, ...]  # passed DT names and BDFs, one udev link each
    bpmp: str  # its BPMP device, "" without one
    shm: tuple[str, ...]  # its channels' files (a file mount namespace, not a device)
    shm_denied: tuple[str, ...]  # the other channels' files, made inaccessible
    user: str = ""  # the user and group its QEMU runs as (vm_account); "": microvm
    shm_groups: tuple[str, ...] = ()  # one per file in `shm`: who may map it
    volume_dirs: tuple[str, ...] = ()  # its folders on host disks
    pci: tuple[str, ...] = ()  # the BDFs among `vfio` (microvm.nix's pci-setup)

    @property
    def _owner(self) -> str:
        # := so that no later rule (Ghaf's `GROUP="kvm"` ones) widens it again.
        return f'OWNER:="{self.user}", GROUP:="{self.user}", MODE:="0600"'

    @property
    def pci_chown_args(self) -> str:
        """`chown`'s arguments that give the VM's PCI group nodes back to its user
        (an ExecStartPost= line: names checked as in udev_rules)."""
        for d in (*self.pci, self.user):
            if not _DEVICE_NAME.fullmatch(d):
                raise ValueError(f"unsafe device name {d!r}")
        links = " ".join(vfio_link(d) for d in self.pci)
        return f"{self.user}:{self.user} {links}"

    @property
    def udev_rules(self) -> tuple[str, ...]:
        """Name each passed device's VFIO group node after the device, and give
        it and the VM's BPMP device to the VM's user alone."""
        for d in (*self.vfio, self.bpmp.removeprefix("/dev/"), self.user):
            if d and not _DEVICE_NAME.fullmatch(d):
                raise ValueError(f"unsafe device name {d!r}")
        owner = f", {self._owner}" if self.user else ""
        rules = [
            f'SUBSYSTEM=="vfio", KERNEL=="[0-9]*", '
            f'TEST=="/sys/kernel/iommu_groups/%k/devices/{d}", '
            f'SYMLINK+="{vfio_link(d).removeprefix("/dev/")}"{owner}'
            for d in self.vfio
        ]
        if self.bpmp and self.user:
            rules.append(f'KERNEL=="{self.bpmp.removeprefix("/dev/")}"{owner}')
        return tuple(rules)


# The one proxy device Ghaf's host proxy creates, and its QEMU bridge opens.
BPMP_HOST_DEVICE = "/dev/bpmp-host"


def bpmp_device(profile: Profile, board: Board, vm: str) -> str:
    """The proxy device `vm`'s QEMU opens: its own with per-VM enforcement."""
    owners = bpmp_owners(profile, board)
    if vm not in owners:
        return ""
    if per_vm_form(profile, board):
        return f"{BPMP_HOST_DEVICE}-{vm}"
    return BPMP_HOST_DEVICE


def device_access(
    profile: Profile, board: Board, layout: str = "default"
) -> list[DeviceAccess]:
    """Per VM, exactly the device nodes its QEMU opens, from the profile."""
    out = []
    vm_passes = passes(profile, board)
    for name, vm in profile.vms.items():
        mine = [pt for pt in profile.enabled if pt.vm == name]
        gp = vm_passes.get(name)
        # A role's VM holds what its QEMU is given: carve-outs, keyholes, members.
        vfio = list(gp.host_devices) if gp is not None else []
        vfio += [
            board.devices[pt.device].dt_name
            for pt in mine
            if pt.device in board.devices
            and (gp is None or pt.device not in gp.role.devices)
        ]
        pci = [
            f.bdf
            for pt in slots_in_use(profile, board)
            if pt.vm == name
            for f in pt.functions
        ]
        vfio += pci
        bpmp = bpmp_device(profile, board, name)
        devices = [KVM]
        if vfio:
            devices.append(VFIO_CONTAINER)
            devices += [vfio_link(d) for d in vfio]
        if bpmp:
            devices.append(bpmp)
        if gp is not None and gp.role.display:
            # The display owner's QEMU opens the DCE relay's proxy device.
            devices.append(board.catalog.dce_relay.proxy.device)
        if vm.vsock_cid is not None:
            devices.append(VHOST_VSOCK)
        if layout == "ghaf":
            devices += GHAF_LAYOUT_DEVICES
        channels = [c for c in profile.channels.values() if name in c.vms]
        others = [c for c in profile.channels.values() if name not in c.vms]
        target = profile.target.name
        folders = [
            volume_dir(disk.host_path, target, name)
            for vol in vm.volumes
            if (disk := profile.disks.get(vol.disk)) is not None and disk.host_path
        ]
        out.append(
            DeviceAccess(
                name,
                tuple(devices),
                tuple(vfio),
                bpmp,
                tuple(channel_shm(target, c.name) for c in channels),
                tuple(channel_shm(target, c.name) for c in others),
                # Ghaf's VMs attach tap interfaces microvm.nix creates for user
                # microvm (nixos-modules/microvm/interfaces.nix); they keep it.
                vm_account(name) if layout != "ghaf" else "",
                tuple(
                    channel_group(target, c.name) if layout != "ghaf" else ""
                    for c in channels
                ),
                tuple(dict.fromkeys(folders)),
                tuple(pci),
            )
        )
    return out
