"""The host side of a guest boot here: each reference VM, its tree and QEMU's argv.

Entry points: `reference_guests()` -> `Guest` (from ghafgen's plan of each profile),
`base_tree`, `merged_tree`, `tree_to_boot` and `qemu_argv(guest, ...)` (for the GPU
VM: `gpu_guest_tree`, `gpu_boot_argv`), which
mirrors microvm.nix's QEMU runner for the module. tests/guestinit.py runs it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import libfdt

from ghafgen.catalog.fdtview import FdtView
from ghafgen.catalog.load import qemu_virt
from ghafgen.derive.runtime import VmStack, runtime_stack
from ghafgen.render import dt
from ghafgen.render.plan import VmPlan, plan
from ghafgen.rules.engine import validate
from ghafgen.toolchain.guestbase import (
    VIRT_MACHINE,
    add_bridge_node,
    dump_qemu_virt,
    gpu_variant_base,
    guest_base,
    name_bridge_node,
)
from ghafgen.toolchain.realtools import compile_dts
from ghafgen.tools import run

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "nix" / "modules"

# The runner's -append: "${kernelConsole} reboot=t panic=-1 ${kernelParams}", where
# kernelConsole is "console=ttyAMA0" on aarch64 when qemu.serialConsole (default
# true), and kernelParams is boot.kernelParams, which microvm.nix's optimization
# module (optimize.enable, default true) extends with "8250.nr_uarts=1". NixOS
# adds "loglevel=4" (boot.consoleLogLevel); its init= does not apply to busybox.
SERIAL_CONSOLE_PARAM = "console=ttyAMA0"
RUNNER_PARAMS = ("reboot=t", "panic=-1")
NIXOS_PARAMS = ("loglevel=4", "8250.nr_uarts=1")


@dataclass(frozen=True)
class Guest:
    """One VM of one reference target, as its generated module describes it."""

    target: str
    vm: VmPlan
    dts: Path | None  # the committed guest tree additions, vms/<vm>.dts
    runs: VmStack  # what runs on the board: the QEMU and guest kernel ghafgen pins

    @property
    def on_board(self) -> str:
        """What this VM runs on the board, which the boot here stands in for."""
        kernel = (
            f"Linux {self.runs.kernel} + {', '.join(self.runs.kernel_patches)}"
            if self.runs.kernel
            else "the user's guest kernel"
        )
        return f"{self.runs.qemu}; {kernel}"

    @property
    def id(self) -> str:
        return f"{self.target}/{self.vm.name}"

    @property
    def base_dtb_stand_in(self) -> bool:
        """A BPMP VM without a guest tree: the pinned QEMU emits /bpmp (and the
        device's node) itself, Debian's does not, so the test hands QEMU the
        base tree with -dtb (the module gives no -dtb)."""
        return self.vm.bpmp and self.dts is None

    @property
    def serial_console(self) -> bool:
        """microvm.qemu.serialConsole as the module leaves it (microvm.nix default: on)."""
        return not self.vm.pci_serial_console

    def passed_nodes(self) -> list[tuple[str, dt.GuestDevice]]:
        """(path in the merged tree, placement) of each platform device in vms/<vm>.dts."""
        in_tree = [d for d in self.vm.platform if not d.guest.qemu_emits_node]
        bus = qemu_virt().platform_bus_path
        return [(f"{bus}/{g.node_name}", g) for g in dt.place_on_platform_bus(in_tree)]

    def faulting_nodes(self) -> list[str]:
        """Passed nodes whose driver touches its registers at probe: here nothing is
        behind them, so they fault (the test boots a variant with them disabled).

        A BPMP-backed node asks for its clocks first and, with no BPMP driver in
        the stock kernel, defers before it touches the device; any other passed
        node's driver maps and writes its region (the SBSA UART:
        pl011_register_port, seen in the boot test).
        """
        return [path for path, g in self.passed_nodes() if not g.dev.guest.bpmp]


def reference_guests() -> list[Guest]:
    """Every VM of every profile in profiles/, from ghafgen's own plan of it."""
    out = []
    for path in sorted((ROOT / "profiles").glob("*.toml")):
        report = validate([path])
        profile, board = report.usable[0]
        target = plan(profile, board, path.relative_to(ROOT).as_posix())
        stacks = {s.vm: s for s in runtime_stack(profile, board)[1]}
        for vm in target.vms:
            dts = MODULES / target.name / "vms" / f"{vm.name}.dts"
            found = dts if dts.is_file() else None
            out.append(Guest(target.name, vm, found, stacks[vm.name]))
    return out


def base_tree(guest: Guest, folder: Path) -> Path:
    """The VM's base tree as the pinned QEMU gives it (ghafgen.toolchain.guestbase): the local
    QEMU's own dump for the VM's shape, plus the bridge's /bpmp for a BPMP VM."""
    dtb = guest_base(
        folder, vcpus=guest.vm.vcpus, mem_mib=guest.vm.mem_mib, bpmp=guest.vm.bpmp
    )
    assert dtb is not None, "qemu-system-aarch64 is missing"
    return dtb


def merged_tree(guest: Guest, base: Path, folder: Path) -> Path:
    """The guest tree the VM boots: QEMU's tree with vms/<vm>.dts applied by fdtoverlay."""
    assert guest.dts is not None
    dtbo = folder / "guest.dtbo"
    ok, _warnings, err = compile_dts(guest.dts, dtbo)
    assert ok, err
    out = folder / "merged.dtb"
    run(["fdtoverlay", "-i", str(base), "-o", str(out), str(dtbo)]).or_raise()
    return out


def gpu_guest_tree(dts: Path, dumped: Path, folder: Path) -> Path:
    """The GPU VM's guest tree on a stand-in QEMU's dumped virt tree: the
    platform bus moved as the GPU variant writes it and QEMU's RAM node dropped
    (`gpu_variant_base`, as the VM's preStart does on the variant's dump), the
    bridge's /bpmp added and named, then `dts` applied by fdtoverlay."""
    base = folder / "gpu-base.dtb"
    data = gpu_variant_base(dumped.read_bytes())
    base.write_bytes(name_bridge_node(add_bridge_node(data)))
    dtbo = folder / "gpu-guest.dtbo"
    ok, _warnings, err = compile_dts(dts, dtbo)
    assert ok, err
    out = folder / "gpu-merged.dtb"
    run(["fdtoverlay", "-i", str(base), "-o", str(out), str(dtbo)]).or_raise()
    return out


# QEMU's virt machine puts RAM here (hw/arm/virt.c, VIRT_MEM); the GPU variant
# moves it to 0x2000000000 (catalog t234-gpu.toml, qemu.ram_base).
VIRT_RAM_BASE = 0x40000000


def gpu_bank(tree: Path) -> tuple[str, int, int]:
    """(path, base, size) of the guest bank the GPU VM's tree adds: its one
    /memory node once QEMU's own is dropped."""
    view = FdtView(tree.read_bytes())
    (path,) = [p for _off, p in view.nodes() if p.startswith("/memory@")]
    cells = view.cells(view.offset(path), "reg")
    return path, (cells[0] << 32) | cells[1], (cells[2] << 32) | cells[3]


def reserved_regions(tree: Path) -> list[tuple[str, int, int]]:
    """(node name, base, size) of each child of /reserved-memory."""
    view = FdtView(tree.read_bytes())
    out = []
    for off, path in view.nodes():
        if path.startswith("/reserved-memory/"):
            c = view.cells(off, "reg")
            out.append(
                (path.rsplit("/", 1)[1], (c[0] << 32) | c[1], (c[2] << 32) | c[3])
            )
    return out


def gpu_stand_in_memory(tree: Path) -> list[str]:
    """QEMU's memory arguments that put RAM behind the GPU VM's guest bank here.

    On the board the variant keeps the -dtb's /memory nodes (patch 0003), the
    bank is the vm_cma carve-out mapped 1:1 (vfio-platform mmio-base), and QEMU
    adds its own RAM at 0x2000000000. The stand-in QEMU NOPs every /memory node
    of a -dtb (hw/arm/boot.c arm_load_dtb, the code 0003 disables), writes its
    own RAM from 0x40000000, and has no mmio-base: so the test gives it two NUMA
    nodes, the first up to the bank and the second the bank's size, which QEMU
    places at the bank's base and writes as /memory@<base> with the bank's reg
    (plus numa-node-id = <1>). What differs: the guest runs NUMA with 1 GiB at
    0x40000000 instead of 6 GiB at 0x2000000000, and that first node covers
    the variant's platform-bus window below the bank (0x60000000-0x80000000),
    so here RAM, not a passed device, is behind the GPU bus's regions.
    """
    _path, base, size = gpu_bank(tree)
    low = base - VIRT_RAM_BASE
    assert low > 0 and low % (1 << 20) == 0 and size % (1 << 20) == 0
    return [
        "-m",
        f"{(low + size) >> 20}M",
        "-object",
        f"memory-backend-ram,id=below-bank,size={low >> 20}M",
        "-object",
        f"memory-backend-ram,id=bank,size={size >> 20}M",
        "-numa",
        "node,nodeid=0,memdev=below-bank",
        "-numa",
        "node,nodeid=1,memdev=bank",
    ]


def disabled(tree: Path, paths: list[str], dest: Path) -> Path:
    """A copy of `tree` with the nodes at `paths` set to status = "disabled"."""
    fdt = libfdt.Fdt(tree.read_bytes())
    fdt.resize(fdt.totalsize() + 256 * len(paths))
    for path in paths:
        fdt.setprop_str(fdt.path_offset(path), "status", "disabled")
    fdt.pack()
    dest.write_bytes(bytes(fdt.as_bytearray()))
    return dest


def tree_to_boot(
    guest: Guest, base: Path, generated: Path | None, folder: Path
) -> tuple[Path | None, str]:
    """The tree the test boots (None: QEMU's own) and which one it is."""
    if guest.base_dtb_stand_in:
        return base, "base tree (the bridge's /bpmp added; no device node here)"
    if generated is None:
        return None, "as generated"
    faulting = guest.faulting_nodes()
    if not faulting:
        return generated, "as generated"
    return (
        disabled(generated, faulting, folder / "variant.dtb"),
        f"test variant, {', '.join(faulting)} disabled (nothing behind it here)",
    )


def stdout_path(tree: Path) -> str:
    """The node of QEMU's first UART (chosen/stdout-path), e.g. /pl011@9000000."""
    view = FdtView(tree.read_bytes())
    return str(view.strings(view.offset("/chosen"), "stdout-path")[0])


def alias(tree: Path, name: str) -> str:
    view = FdtView(tree.read_bytes())
    got = view.strings(view.offset("/aliases"), name)
    return str(got[0]) if got else ""


def cmdline(guest: Guest, extra: tuple[str, ...] = ()) -> str:
    """The -append microvm.nix builds from the module (see SERIAL_CONSOLE_PARAM)."""
    console = SERIAL_CONSOLE_PARAM if guest.serial_console else ""
    params = (*guest.vm.kernel_params, *NIXOS_PARAMS, *extra)
    return f"{console} {' '.join(RUNNER_PARAMS)} {' '.join(params)}"


def qemu_argv(
    guest: Guest,
    kernel: Path,
    initrd: Path,
    folder: Path,
    extra_params: tuple[str, ...] = (),
    serial_log: Path | None = None,
) -> list[str]:
    """QEMU's argv as microvm.nix's runner builds it for this module, for TCG here.

    Not given, because nothing here can back them: vfio-platform / vfio-pci devices
    (no device to pass), vhost-vsock (needs the host's vhost_vsock), hugepage
    backing. ivshmem files go to `folder` instead of /dev/shm.
    """
    vm = guest.vm
    # QEMU splits option values at commas; paths go into such values below.
    for path in (folder, kernel, initrd):
        if "," in str(path):
            raise ValueError(f"QEMU cannot take a path with a comma: {path}")
    argv = [
        "qemu-system-aarch64",
        "-name",
        vm.name,
        "-M",
        VIRT_MACHINE,
        "-m",
        f"{vm.mem_mib}M",
        "-smp",
        str(vm.vcpus),
        "-nodefaults",
        "-no-user-config",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-chardev",
        "stdio,id=stdio,signal=off",
        # The runner's devType is "pci" on the virt machine (not "microvm").
        "-device",
        "virtio-rng-pci",
    ]
    if guest.serial_console:
        argv += ["-serial", "chardev:stdio"]
    elif serial_log is not None:
        argv += ["-serial", f"file:{serial_log}"]
    # The runner gives "-cpu host" with KVM; an arm64 guest here runs under TCG.
    argv += ["-cpu", "max", "-append", cmdline(guest, extra_params), "-nographic"]
    for letter, vol in zip("abcdefgh", vm.volumes, strict=False):
        image = folder / f"{letter}.img"
        with image.open("wb") as f:
            f.truncate(vol.size_mib << 20)  # sparse, as a fresh volume
        argv += [
            "-drive",
            f"id=vd{letter},format=raw,file={image},if=none,aio=threads,"
            "discard=unmap,read-only=off",
            "-device",
            f"virtio-blk-pci,drive=vd{letter}",
        ]
    if vm.network_mac:
        net = f"{vm.name}-net"
        argv += [
            "-netdev",
            f"user,id={net}",
            "-device",
            f"virtio-net-pci,netdev={net},mac={vm.network_mac},romfile=",
        ]
    if guest.base_dtb_stand_in:
        argv += ["-dtb", "ghafgen-guest.dtb"]
    args = list(vm.qemu_args)
    while args:
        flag, value = args.pop(0), args.pop(0)
        if value.startswith(("vfio-platform,", "vfio-pci,")):
            continue
        argv += [flag, value.replace("mem-path=/dev/shm/", f"mem-path={folder}/")]
    return argv


def gpu_boot_argv(
    guest: Guest, kernel: Path, initrd: Path, folder: Path
) -> tuple[list[str], Path]:
    """(QEMU's argv, the guest tree) for the GPU VM: its tree as its preStart
    builds it on the variant (`gpu_guest_tree`, on this QEMU's dump for the
    VM's shape), written where the module's -dtb names it, and the stand-in's
    memory (`gpu_stand_in_memory`) in place of -m."""
    assert guest.dts is not None and guest.vm.gpu is not None
    dumped = dump_qemu_virt(folder, guest.vm.vcpus, guest.vm.mem_mib)
    assert dumped is not None, "qemu-system-aarch64 is missing"
    tree = gpu_guest_tree(guest.dts, dumped, folder)
    argv = qemu_argv(guest, kernel, initrd, folder)
    dtb = argv[argv.index("-dtb") + 1]
    shutil.copy(tree, folder / dtb)
    at = argv.index("-m")
    assert argv[at + 1] == f"{guest.vm.mem_mib}M", argv[at : at + 2]
    argv[at : at + 2] = gpu_stand_in_memory(tree)
    return argv, tree
