"""What one target's generated files say, decided in Python from a checked profile.

Entry point: `plan(profile, board, profile_name)`. Templates only print a plan.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from ghafgen.catalog import Catalog
from ghafgen.catalog.gpu import GpuKernel, GuestRole
from ghafgen.catalog.model import (
    DISPLAY_GROUP,
    Board,
    Fact,
    KernelPins,
    PinnedSource,
    PlatformDevice,
    QemuBuild,
)
from ghafgen.derive.allowlist import (
    AllowList,
    allow_list,
    per_vm_form,
    platform_devices,
)
from ghafgen.derive.gpu import GpuPass, gpu_pass, passes
from ghafgen.derive.resources import (
    binding_unit,
    channel_shm,
    ghaf_vm_name,
    vm_account,
    volume_image,
)
from ghafgen.derive.runtime import (
    BPMP_HOST_DEVICE,
    DeviceAccess,
    bpmp_device,
    device_access,
    guest_series,
    smmu_patch_reasons,
    unbound_devices,
)
from ghafgen.derive.slots import slots_in_use
from ghafgen.errors import ProfileError
from ghafgen.profile.model import Passthrough, Profile, Volume
from ghafgen.render import display as display_dt
from ghafgen.render import dt
from ghafgen.render import gpu as gpu_dt
from ghafgen.render.dcerelay import DceRelay, dce_relay
from ghafgen.render.patches import (
    VFIO_RESET,
    Patch,
    bridge_host_device,
    proxy_per_vm,
    qemu_fdt_bindings,
)

# Host kernel symbols; Ghaf's bpmp-virt-common and bpmp-virt-host modules.
PASSTHROUGH_CONFIG = ("VFIO", "VFIO_IOMMU_TYPE1", "VIRTIO_PCI", "VIRTIO_MMIO")
PCI_CONFIG = ("PCI_STUB", "VFIO_PCI")
PLATFORM_CONFIG = ("VFIO_PLATFORM",)
BPMP_HOST_CONFIG = ("TEGRA_BPMP_HOST_PROXY",)
# Guest side of BPMP virtualization (Ghaf's mgbe0-net-vm guest kernel):
# tegra_bpmp_match[] needs a 186/194/234 SoC, TEGRA_BPMP needs HSP and IVC.
BPMP_GUEST_CONFIG = (
    ("ARCH_TEGRA", "yes"),
    ("ARCH_TEGRA_234_SOC", "yes"),
    ("TEGRA_HSP_MBOX", "yes"),
    ("TEGRA_IVC", "yes"),
    ("TEGRA_BPMP", "yes"),
    ("TEGRA_BPMP_GUEST_PROXY", "yes"),
    ("TEGRA_BPMP_HOST_PROXY", "no"),
    ("CLK_TEGRA_BPMP", "yes"),
    ("RESET_TEGRA_BPMP", "yes"),
    ("PM_GENERIC_DOMAINS", "yes"),
)
HOST_PARAMS = (
    # Level-triggered platform IRQs cannot be remapped 1:1; let VFIO forward them.
    "vfio_iommu_type1.allow_unsafe_interrupts=1",
)
# Lets every stream ID without an SMMU context DMA untranslated: only a passed
# device that needs it (catalog `smmu_bypass_reason`) justifies it.
SMMU_BYPASS_PARAM = "arm-smmu.disable_bypass=0"
# The guest's clk_disable_unused()/genpd_power_off_unused() would reach the real
# BPMP through the proxy and switch off clocks the host needs.
BPMP_GUEST_PARAMS = ("clk_ignore_unused", "pd_ignore_unused")
# QEMU on aarch64 does not deliver MSIs of passed PCI devices (seed-pcie).
PCI_GUEST_PARAMS = ("pci=nomsi",)
# Who may open the VFIO and BPMP proxy device nodes: QEMU runs as user microvm,
# group kvm (microvm.nix), and both nodes are 0600 root otherwise.
DEVICE_GROUP = "kvm"
DEVICE_MODE = "0660"
# Where a VM's console reaches its stdio. microvm.nix (lib/runners/qemu.nix) gives
# QEMU `-chardev stdio,id=stdio`, wires QEMU's pl011 to it (qemu.serialConsole,
# default on) and boots with console=ttyAMA0. A passed UART whose guest driver
# is the pl011's own (the SBSA UART, amba-pl011.c: ports ttyAMA) shares its port
# numbers and probes first (guest boot test, Linux 6.12): with the guest tree's
# serial0 alias, or without any, it is ttyAMA0, and that console leaves stdio.
# Such a VM gets its console on a PCI serial card on stdio instead, as Ghaf's
# uarti-net-vm does (ttyS0: microvm.nix's 8250.nr_uarts=1 leaves one 8250 port).
PCI_SERIAL_CONSOLE = ("-device", "pci-serial,chardev=stdio")
PCI_SERIAL_PARAM = "console=ttyS0"
# Ghaf's own build of the pinned platform QEMU (with the BPMP bridge), used
# by the Ghaf layout instead of ghafgen's qemu-platform.nix.
GHAF_QEMU_PACKAGE = "ghaf-qemu-bpmp"
# Ghaf's per-VM extension points (modules/hardware/definition.nix).
GHAF_VMS = ("guivm", "audiovm", "netvm", "gpuvm", "dispvm")
LAYOUTS = ("default", "ghaf")
_UNIT_ARG = re.compile(r"[A-Za-z0-9:._-]+")
# A DT compatible as it may appear in a C string of the QEMU binding patch.
_COMPATIBLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9,._+-]*")


@dataclass(frozen=True)
class KernelConfig:
    name: str
    symbols: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Binding:
    """A oneshot unit that hands a device to vfio before its VM starts."""

    name: str  # passthrough name
    unit: str
    bus: str  # "platform" | "pci"
    devices: tuple[str, ...]
    vm: str | None
    description: str
    overlay: dt.Overlay | None
    blacklist: tuple[str, ...] = ()
    group: str = ""  # the device group whose overlay writes the node

    @property
    def exec_args(self) -> str:
        args = (self.bus, *self.devices)
        for a in args:
            if not _UNIT_ARG.fullmatch(a):
                raise ValueError(f"unsafe unit argument {a!r}")
        return " ".join(args)

    @property
    def before(self) -> tuple[str, ...]:
        if self.vm is None:
            return ()
        units = [f"microvm@{self.vm}.service"]
        if self.bus == "pci":
            units.insert(0, f"microvm-pci-devices@{self.vm}.service")
        return tuple(units)


@dataclass(frozen=True)
class VolumePlan:
    image: str
    mount: str
    size_mib: int


@dataclass(frozen=True)
class ChannelPlan:
    name: str
    size: int
    path: str  # resources.channel_shm: target-scoped

    @property
    def qemu_args(self) -> tuple[str, ...]:
        # Every member maps the same file: that is the shared region.
        return (
            "-object",
            f"memory-backend-file,id=ivshmem-{self.name},"
            f"mem-path={self.path},size={self.size},share=on",
            "-device",
            f"ivshmem-plain,memdev=ivshmem-{self.name}",
        )


@dataclass(frozen=True)
class CpuPlan:
    """systemd settings of one VM's microvm@ unit: one policy for all its vCPUs (PCT)."""

    vm: str
    affinity: tuple[int, ...]
    weight: int | None
    rt_priority: int | None

    @property
    def unit(self) -> str:
        return f"microvm@{self.vm}"

    @property
    def affinity_text(self) -> str:
        return " ".join(str(c) for c in sorted(set(self.affinity)))

    @property
    def pin_args(self) -> str:
        """Core of vCPU 0, 1, ... for pin-vcpus.sh."""
        return " ".join(str(c) for c in self.affinity)


# Ghaf's build of the pinned platform QEMU with the GPU variant's patches.
GHAF_QEMU_GPU_PACKAGE = "ghaf-qemu-bpmp-gpu"


@dataclass(frozen=True)
class GpuVmPlan:
    """What the VM given the GPU group adds (catalog/data/t234-gpu.toml)."""

    qemu_args: tuple[str, ...]  # carve-outs (mmio-base), then the members
    hosts: tuple[str, ...]  # host devices in -device order: carve-outs, then members
    qemu_patches: tuple[str, ...]  # keys of the Ghaf tree's paths
    memory_node: str  # QEMU's own RAM node, dropped from the base tree
    kernel: GpuKernel  # the guest kernel and its in-tree patches
    guest: GuestRole  # what the guest loads, patches and carries in its role
    role: str = "gpu"  # the VM's role (catalog/data/t234-gpu-roles.toml)
    dcb: display_dt.DcbOverlay | None = None  # display roles: the board's DCB

    @property
    def ghaf_keys(self) -> tuple[str, ...]:
        """Every file of the Ghaf tree the VM's module fetches."""
        g = self.guest
        dce = (*g.dce.patches, g.dce.source_key) if g.dce else ()
        userspace = tuple(k for pkg in g.graphics for r in pkg.paths for k in r.patches)
        dcb = (self.dcb.ghaf_key,) if self.dcb else ()
        return (
            self.qemu_patches
            + self.kernel.patches
            + g.oot_patches
            + dce
            + userspace
            + dcb
        )


@dataclass(frozen=True)
class VmPlan:
    name: str
    vcpus: int
    mem_mib: int
    kernel_params: tuple[str, ...]
    platform: tuple[PlatformDevice, ...]
    pci_functions: tuple[str, ...]
    guest_tree: dt.Overlay | None
    bpmp: bool
    guest_config: tuple[tuple[str, str], ...]
    guest_kernel: str  # the pinned guest series ("6.12") when a passed device needs it
    guest_patches: tuple[str, ...]  # keys of the Ghaf tree's patch paths
    # QEMU bindings for passed devices whose guest node the VM's -dtb holds.
    fdt_bindings: Patch | None = None
    layout: str = "default"
    hugepages: bool = False
    vsock_cid: int | None = None
    volumes: tuple[VolumePlan, ...] = ()
    channels: tuple[ChannelPlan, ...] = ()
    network_mac: str = ""  # a QEMU user-mode virtio NIC when set
    console: bool = False
    # Its own BPMP proxy device when per-VM enforcement is on ("" otherwise:
    # the bridge opens its built-in /dev/bpmp-host).
    bpmp_device: str = ""
    pci_serial_console: bool = False  # see PCI_SERIAL_CONSOLE
    gpu: GpuVmPlan | None = None

    @property
    def qemu_user(self) -> str:
        """The user and group its QEMU runs as (isolation.nix)."""
        return vm_account(self.name)

    @property
    def ghaf_key(self) -> str:
        """Ghaf names system VMs without the dash: net-vm -> netvm."""
        return ghaf_vm_name(self.name)

    @property
    def qemu_args(self) -> tuple[str, ...]:
        args: list[str] = list(self.gpu.qemu_args) if self.gpu else []
        for dev in self.own_platform:
            opts = dev.guest.device_options
            args += [
                "-device",
                f"vfio-platform,host={dev.dt_name}" + (f",{opts}" if opts else ""),
            ]
        if self.guest_tree is not None:
            args += ["-dtb", "ghafgen-guest.dtb"]
        for ch in self.channels:
            args += ch.qemu_args
        if self.bpmp_device:
            args += ["-global", f"nvidia_bpmp_guest.host-device={self.bpmp_device}"]
        if self.pci_serial_console:
            args += PCI_SERIAL_CONSOLE
        return tuple(args)

    @property
    def own_platform(self) -> tuple[PlatformDevice, ...]:
        """Passed platform devices outside the GPU group's placed -device list."""
        if self.gpu is None:
            return self.platform
        return tuple(d for d in self.platform if not d.group)

    @property
    def vfio_platform_hosts(self) -> tuple[str, ...]:
        """Every host device the VM's QEMU gets with -device vfio-platform, in order."""
        own = tuple(d.dt_name for d in self.own_platform)
        return (self.gpu.hosts if self.gpu else ()) + own

    @property
    def custom_qemu(self) -> bool:
        """Runs the pinned platform QEMU: stock QEMU has no vfio-platform since 10.2."""
        return bool(self.platform)

    @property
    def guest_kernel_attr(self) -> str:
        return "linuxPackages_" + self.guest_kernel.replace(".", "_")

    @property
    def ghaf_layout(self) -> bool:
        """Ghaf's layout: Ghaf sets the hypervisor, vCPUs, memory and QEMU package."""
        return self.layout == "ghaf"

    @property
    def imports_bpmp_virt(self) -> bool:
        """The guest kernel (or its QEMU) takes patches from the generated bpmp-virt.nix."""
        return self.bpmp or bool(self.guest_patches) or self.gpu is not None

    @property
    def ghaf_qemu_package(self) -> str:
        """Ghaf's build of this VM's QEMU (the GPU's variant for the GPU VM)."""
        return GHAF_QEMU_GPU_PACKAGE if self.gpu else GHAF_QEMU_PACKAGE

    @property
    def needs_let(self) -> bool:
        return self.imports_bpmp_virt or self.custom_qemu

    @property
    def bridge_device(self) -> str:
        """The proxy device this VM's QEMU bridge opens."""
        return self.bpmp_device or BPMP_HOST_DEVICE

    @property
    def overrides_qemu(self) -> bool:
        """Ghaf's QEMU package needs this VM's binding or bridge patch on top."""
        return bool(self.fdt_bindings or self.bpmp_device)

    @property
    def bpmp_bridge(self) -> str:
        """qemu.nix's `bpmpBridge` argument, as Nix."""
        return "true" if self.bpmp else "false"

    @property
    def guest_overlay_name(self) -> str:
        """The store name of the compiled guest overlay."""
        return f"ghafgen-{self.name}-guest.dtbo"

    @property
    def network_id(self) -> str:
        return f"{self.name}-net"

    @property
    def has_assertions(self) -> bool:
        return bool(self.guest_kernel) or self.custom_qemu

    @property
    def guest_patch_entries(self) -> tuple[tuple[str, str], ...]:
        """(kernelPatches name, bpmp-virt.nix ghafPatches key) of each Ghaf-tree patch."""
        keys = (self.gpu.kernel.patches if self.gpu else ()) + self.guest_patches
        return tuple(("ghaf-" + k.replace("_", "-"), k) for k in keys)


@dataclass(frozen=True)
class TargetPlan:
    name: str
    profile_name: str
    description: str
    board: Board
    flavor: str
    kernel_version: str
    kernel_configs: tuple[KernelConfig, ...]
    patches: tuple[Patch, ...]
    host_params: tuple[str, ...]
    bindings: tuple[Binding, ...]
    overlays: tuple[dt.Overlay, ...]
    vms: tuple[VmPlan, ...]
    allowed: AllowList
    bpmp: bool
    ghaf: PinnedSource
    udev_rules: tuple[str, ...] = field(default=())
    # Why the host kernel needs Ghaf's SMMU coherency patch (empty: it does not).
    smmu_patch_reasons: tuple[str, ...] = ()
    layout: str = "default"
    bpmp_allow_all: bool = False
    cpus: tuple[CpuPlan, ...] = ()
    isolated_cores: tuple[int, ...] = ()
    # What each microvm@ unit may open (isolation.nix).
    access: tuple[DeviceAccess, ...] = ()
    # ghafgen's proxy patch, wherever the BPMP proxy runs (None: no proxy), and
    # with per-VM enforcement the bridge patch (None: the bridge as pinned opens
    # Ghaf's single /dev/bpmp-host).
    proxy_patch: Patch | None = None
    bridge_patch: Patch | None = None
    # The DCE relay's host side, for the VM given the display (None: the host
    # keeps it).
    relay: DceRelay | None = None

    @property
    def shm_files(self) -> tuple[tuple[str, str], ...]:
        """Each channel file once, with the group of its members' users."""
        pairs = (p for a in self.access for p in zip(a.shm, a.shm_groups, strict=True))
        return tuple(dict.fromkeys(pairs))

    @property
    def isolation_params(self) -> tuple[str, ...]:
        if not self.isolated_cores:
            return ()
        cores = ",".join(str(c) for c in sorted(self.isolated_cores))
        return (f"isolcpus={cores}", f"nohz_full={cores}", f"rcu_nocbs={cores}")

    @property
    def hugepage_params(self) -> tuple[str, ...]:
        """Reserve at boot the 2 MiB pages hugepage-backed guests map (aarch64, 4K kernel
        pages: 2M is the default huge page size)."""
        mib = sum(vm.mem_mib for vm in self.vms if vm.hugepages)
        if not mib:
            return ()
        return ("hugepagesz=2M", f"hugepages={(mib + 1) // 2}")

    @property
    def partition_params(self) -> tuple[str, ...]:
        return self.isolation_params + self.hugepage_params

    @property
    def ghaf_layout(self) -> bool:
        return self.layout == "ghaf"

    @property
    def pins_vcpus(self) -> bool:
        """Some VM's vCPUs are pinned one by one (partitions.nix needs pin-vcpus.sh)."""
        return any(cpu.affinity for cpu in self.cpus)

    @property
    def has_partitions(self) -> bool:
        return bool(self.cpus or self.partition_params)

    @property
    def ghaf_qemu_package(self) -> str:
        return GHAF_QEMU_PACKAGE

    @property
    def platform_qemu(self) -> bool:
        """Some VM runs the pinned platform QEMU (default layout: qemu.nix builds it)."""
        return any(vm.custom_qemu for vm in self.vms)

    @property
    def kernels(self) -> KernelPins:
        return self.board.catalog.kernel_pins

    @property
    def qemu(self) -> QemuBuild:
        return self.board.catalog.qemu_build

    @property
    def bpmp_node(self) -> str:
        """Where the pinned QEMU's bridge puts the guest's BPMP node."""
        return self.board.catalog.qemu_virt.bpmp_node

    @property
    def bpmp_series(self) -> tuple[str, ...]:
        """Host kernel series the pinned BPMP host proxy and hooks build on."""
        return self.kernels.host_bpmp_series

    @property
    def ghaf_patches(self) -> tuple[str, ...]:
        """Ghaf-tree patches any guest of this target applies."""
        keys = [k for vm in self.vms for k in vm.guest_patches]
        keys += [k for vm in self.vms if vm.gpu for k in vm.gpu.ghaf_keys]
        return tuple(dict.fromkeys(keys))

    @property
    def needs_ghaf_source(self) -> bool:
        return (
            self.bpmp
            or bool(self.smmu_patch_reasons)
            or any(vm.bpmp or vm.guest_patches or vm.custom_qemu for vm in self.vms)
        )

    @property
    def proxy_overlay(self) -> dt.Overlay | None:
        return next((o for o in self.overlays if o.name == "bpmp-host-proxy"), None)


def _symbols(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((n, "yes") for n in names)


def _binding(
    profile: Profile,
    board: Board,
    pt: Passthrough,
    gp: GpuPass | None = None,
    gpu_overlay: dt.Overlay | None = None,
    display_overlay: dt.Overlay | None = None,
) -> Binding:
    target = pt.vm or "a VM started by hand"
    if pt.device in board.devices:
        dev = board.devices[pt.device]
        if dev.group == DISPLAY_GROUP:
            return _display_binding(pt, dev, target, gp, display_overlay)
        # The group's carve-out wrappers and its overlay go with its first member.
        first = gp is not None and dev.key == gp.group.members[0]
        carve = tuple(c.dt_name for c in gp.carveouts) if gp and first else ()
        overlay = gpu_overlay if first else dt.platform_overlay(profile, board, dev)
        return Binding(
            name=pt.name,
            unit=binding_unit(pt.name),
            bus="platform",
            devices=(*carve, dev.dt_name),
            vm=pt.vm,
            description=f"Bind {dev.dt_name} ({dev.key}) to vfio-platform for {target}",
            overlay=overlay,
            blacklist=dev.host_driver_modules,
            group=dev.group,
        )
    functions = tuple(f.bdf for f in pt.functions)
    return Binding(
        name=pt.name,
        unit=binding_unit(pt.name),
        bus="pci",
        devices=functions,
        vm=pt.vm,
        description=f"Bind {' '.join(functions)} ({pt.device}) to vfio-pci for {target}",
        overlay=dt.pcie_overlay(profile, board, pt.device),
    )


def _display_binding(
    pt: Passthrough,
    dev: PlatformDevice,
    target: str,
    gp: GpuPass | None,
    overlay: dt.Overlay | None,
) -> Binding:
    """The display's binding holds its role's carve-outs and keyholes, never the
    engine itself: the host keeps display@13800000 and its R5; `overlay`
    (render/display.py host_overlay) writes the wrappers these name."""
    held: tuple[str, ...] = ()
    if gp is not None:
        # The GPU group's own carve-outs go with its first member's binding.
        held = tuple(c.dt_name for c in gp.role.carveouts if c not in gp.carveouts)
        held += tuple(h.dt_name for h in gp.role.keyholes)
    return Binding(
        name=pt.name,
        unit=binding_unit(pt.name),
        bus="platform",
        devices=held,
        vm=pt.vm,
        description=f"Bind the display's keyholes and scanout ({dev.key}) to "
        f"vfio-platform for {target}",
        overlay=overlay,
        group=dev.group,
    )


def _vm_plan(
    profile: Profile,
    board: Board,
    name: str,
    layout: str,
    gp: GpuPass | None,
) -> VmPlan:
    vm = profile.vms[name]
    mine = [pt for pt in profile.enabled if pt.vm == name]
    platform = tuple(
        board.devices[pt.device] for pt in mine if pt.device in board.devices
    )
    functions = tuple(
        f.bdf
        for pt in slots_in_use(profile, board)
        if pt.vm == name
        for f in pt.functions
    )
    if gp is not None and gp.vm != name:
        gp = None
    role = board.catalog.gpu_guest_role(gp.role.key) if gp is not None else None
    in_tree = [d for d in platform if not d.guest.qemu_emits_node and not d.group]
    bpmp = any(d.guest.bpmp for d in platform)
    pci_console = any(d.guest.tty == "ttyAMA" for d in platform)
    params = list(vm.kernel_params)
    for extra in (
        (BPMP_GUEST_PARAMS if bpmp else ())
        + (PCI_GUEST_PARAMS if functions else ())
        + ((PCI_SERIAL_PARAM,) if pci_console else ())
        + (role.kernel_params if role else ())
    ):
        if extra not in params:
            params.append(extra)
    guest_config: list[tuple[str, str]] = list(BPMP_GUEST_CONFIG) if bpmp else []
    for dev in platform:
        guest_config += _symbols(dev.guest.kernel_config)
    if gp is not None:
        guest_config += _symbols(gp.group.kernel.kernel_config)
    if gp is not None:
        guest_tree: dt.Overlay | None = (
            gpu_dt.guest_overlay(board, gp)
            if gp.members
            else display_dt.guest_overlay(board, gp)
        )
    else:
        guest_tree = dt.guest_overlay(board, name, in_tree) if in_tree else None
    return VmPlan(
        name=name,
        vcpus=vm.vcpus,
        mem_mib=vm.memory >> 20,
        kernel_params=tuple(params),
        platform=platform,
        pci_functions=functions,
        guest_tree=guest_tree,
        bpmp=bpmp,
        guest_config=tuple(dict.fromkeys(guest_config)),
        guest_kernel=vm.kernel or guest_series(list(platform), board.catalog),
        fdt_bindings=_fdt_bindings(name, in_tree, board.catalog),
        guest_patches=tuple(
            dict.fromkeys(k for d in platform for k in d.guest.ghaf_patches)
        ),
        layout=layout,
        hugepages=vm.hugepages,
        vsock_cid=vm.vsock_cid,
        volumes=tuple(_volume(profile, vm.name, v) for v in vm.volumes),
        channels=tuple(
            ChannelPlan(c.name, c.size, channel_shm(profile.target.name, c.name))
            for c in profile.channels.values()
            if name in c.vms
        ),
        network_mac=_mac(profile.target.name, name) if "network" in vm.shared else "",
        console="console" in vm.shared,
        bpmp_device=(
            bpmp_device(profile, board, name) if per_vm_form(profile, board) else ""
        ),
        pci_serial_console=pci_console,
        gpu=(
            _gpu_vm(gp, role, guest_tree, board)
            if gp is not None and role is not None
            else None
        ),
    )


def _gpu_vm(
    gp: GpuPass, role: GuestRole, tree: dt.Overlay | None, board: Board
) -> GpuVmPlan:
    q = gp.group.qemu
    return GpuVmPlan(
        qemu_args=gp.qemu_args,
        hosts=gp.host_devices,
        qemu_patches=q.extra_patches,
        memory_node=q.memory_node if q.drop_qemu_memory_node else "",
        kernel=gp.group.kernel,
        guest=role,
        role=gp.role.key,
        dcb=(
            display_dt.dcb_overlay(tree, board)
            if gp.role.display and tree is not None
            else None
        ),
    )


def _fdt_bindings(vm: str, devices: list[PlatformDevice], cat: Catalog) -> Patch | None:
    """A binding for each device QEMU would refuse: its guest node is ghafgen's."""
    pairs = []
    # QEMU matches a binding against every compatible of the host node, and
    # board trees replace some (UARTA is nvidia,tegra194-hsuart on 6.12's P3737
    # tree): bind each one the catalog knows for the node.
    for dev in unbound_devices(devices, cat):
        for compat in dev.qemu_compatibles:
            if not _COMPATIBLE.fullmatch(compat) or not _UNIT_ARG.fullmatch(dev.key):
                raise ValueError(f"unsafe compatible {compat!r} of {dev.key!r}")
            pairs.append((compat, dev.key))
    return qemu_fdt_bindings(vm, tuple(pairs)) if pairs else None


def _volume(profile: Profile, vm: str, vol: Volume) -> VolumePlan:
    disk = profile.disks.get(vol.disk)
    folder = disk.host_path if disk is not None else ""
    image = volume_image(folder, profile.target.name, vm, vol.name)
    return VolumePlan(image, vol.mount, vol.size >> 20)


def _mac(target: str, vm: str) -> str:
    """A stable locally administered MAC, the same on every machine."""
    digest = hashlib.sha256(f"{target}/{vm}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def _host_overlays(
    profile: Profile,
    board: Board,
    allowed: AllowList,
    roles: tuple[dt.Overlay, ...],
) -> list[dt.Overlay]:
    """Every host overlay; the GPU group's and the display's go before the proxy's."""
    out = dt.host_overlays(profile, board, allowed)
    at = next((i for i, o in enumerate(out) if o.name == "bpmp-host-proxy"), len(out))
    out[at:at] = roles
    return out


def pinned_source(profile: Profile, name: str, cat: Catalog) -> PinnedSource:
    """The catalog's pin of a source, or the profile's own from ghafgen.lock."""
    default = cat.sources[name]
    pin = profile.pins.get(name) if name in profile.sources else None
    if pin is None:
        return default
    return default._replace(
        url=pin.url,
        rev=pin.rev,
        hash=pin.hash,
        fact=Fact(source=f"{profile.file} [sources.{name}], ghafgen.lock"),
    )


def plan(
    profile: Profile,
    board: Board,
    profile_name: str,
    layout: str = "default",
) -> TargetPlan:
    """Everything the target's files say; a GPU or display VM carries the guest
    of its derived role (derive.gpu.passes).

    Raises:
        ProfileError: with layout "ghaf", a VM that is not one of Ghaf's system VMs.
    """
    if layout == "ghaf":
        for vm in profile.vms:
            if ghaf_vm_name(vm) not in GHAF_VMS:
                raise ProfileError(
                    f"--layout ghaf: VM '{vm}' is not a Ghaf system VM; Ghaf extends "
                    "guests through ghaf.hardware.definition.<vm> for "
                    + ", ".join(f"{k[:-2]}-vm" for k in GHAF_VMS)
                    + " (rename the VM, or use the default layout)"
                )
    platform = [d for _n, d in platform_devices(profile, board)]
    gp = gpu_pass(profile, board)
    vm_passes = passes(profile, board)
    has_pci = bool(slots_in_use(profile, board))
    bpmp = any(d.uses_bpmp for d in platform)
    allowed = allow_list(profile, board)
    symbols = PASSTHROUGH_CONFIG + (PCI_CONFIG if has_pci else ())
    symbols += PLATFORM_CONFIG if platform else ()
    symbols += BPMP_HOST_CONFIG if bpmp else ()
    ids = [i for pt in profile.enabled if pt.binding == "ids" for i in pt.ids]
    bypass = any(d.smmu_bypass_reason for d in platform)
    params = (
        HOST_PARAMS
        + ((SMMU_BYPASS_PARAM,) if bypass else ())
        + ((f"vfio-pci.ids={','.join(dict.fromkeys(ids))}",) if ids else ())
    )
    gpu_overlay = (
        gpu_dt.host_overlay(board, gp, profile.target.dt_flavor) if gp else None
    )
    display_overlays = {
        vm: display_dt.host_overlay(board, p)
        for vm, p in vm_passes.items()
        if p.role.display
    }
    udev = [f'SUBSYSTEM=="vfio", GROUP="{DEVICE_GROUP}", MODE="{DEVICE_MODE}"']
    per_vm = bpmp and per_vm_form(profile, board)
    if bpmp:
        # QEMU opens /dev/bpmp-host; it is 0600 root otherwise. Ghaf's layout
        # runs every VM as microvm:kvm, so these rules give kvm the nodes and
        # only each unit's DeviceAllow= keeps one VM off another's device; in
        # the default layout isolation.nix's := rules hand each VM's nodes to
        # its own QEMU user instead.
        names = "bpmp-host-*" if per_vm else "bpmp-host"
        udev.insert(
            0, f'KERNEL=="{names}", GROUP="{DEVICE_GROUP}", MODE="{DEVICE_MODE}"'
        )
    return TargetPlan(
        name=profile.target.name,
        profile_name=profile_name,
        description=profile.target.description,
        board=board,
        flavor=profile.target.dt_flavor,
        kernel_version=profile.target.kernel_version,
        kernel_configs=(KernelConfig("ghafgen-passthrough-config", _symbols(symbols)),),
        patches=(VFIO_RESET,) if platform else (),
        host_params=params,
        bindings=tuple(
            _binding(
                profile,
                board,
                pt,
                vm_passes.get(pt.vm or "") or gp,
                gpu_overlay,
                display_overlays.get(pt.vm or ""),
            )
            for pt in profile.enabled
        ),
        overlays=tuple(
            _host_overlays(
                profile,
                board,
                allowed,
                (
                    *((gpu_overlay,) if gpu_overlay else ()),
                    *display_overlays.values(),
                ),
            )
        ),
        vms=tuple(
            _vm_plan(profile, board, name, layout, vm_passes.get(name))
            for name in profile.vms
        ),
        allowed=allowed,
        bpmp=bpmp,
        ghaf=pinned_source(profile, "ghaf", board.catalog),
        udev_rules=tuple(udev),
        smmu_patch_reasons=smmu_patch_reasons(profile, board),
        layout=layout,
        bpmp_allow_all=profile.virtualization.bpmp_allow_all and bpmp,
        cpus=tuple(
            CpuPlan(vm.name, vm.pinning, vm.cpu_weight, vm.rt_priority)
            for vm in profile.vms.values()
            if vm.pinning or vm.cpu_weight is not None or vm.rt_priority is not None
        ),
        isolated_cores=profile.target.isolated_cores,
        access=tuple(device_access(profile, board, layout)),
        # Ghaf's node passes MRQ_DEBUG and more to any guest (docs/security.md):
        # ghafgen's policy replaces it wherever the proxy runs.
        proxy_patch=proxy_per_vm() if bpmp else None,
        bridge_patch=bridge_host_device() if per_vm else None,
        relay=next(
            (
                dce_relay(vm, board.catalog, layout)
                for vm, gpass in sorted(vm_passes.items())
                if gpass.role.display
            ),
            None,
        ),
    )
