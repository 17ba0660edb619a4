"""The host side of a guest boot here: each reference VM, its tree and QEMU's argv.

Entry points: `reference_guests()` -> `Guest` (from ghafgen's plan of each profile),
`base_tree`, `merged_tree`, `tree_to_boot` and `qemu_argv(guest, ...)`, which
mirrors microvm.nix's QEMU runner for the module. tests/guestinit.py runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import libfdt

from ghafgen.catalog.fdtview import FdtView
from ghafgen.catalog.load import qemu_virt
from ghafgen.derive.runtime import VmStack, runtime_stack
from ghafgen.render import dt
from ghafgen.render.plan import VmPlan, plan
from ghafgen.rules.engine import validate
from ghafgen.toolchain.guestbase import guest_base
from ghafgen.toolchain.realtools import compile_dts
from ghafgen.tools import run

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "nix" / "modules"

# microvm.nix's QEMU runner on aarch64 (microvm-nix/microvm.nix 71beea0,
# lib/runners/qemu.nix): machine "virt" (options.nix mkDefault on aarch64) with
# {accel = "kvm:tcg"; gic-version = "max";}, joined in attribute-name order.
# Here there is no KVM for an arm64 guest, so accel is tcg (the runner's fallback).
MACHINE = "virt,accel=tcg,gic-version=max"
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
        MACHINE,
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
