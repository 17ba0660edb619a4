"""The host side of a guest boot here: each reference VM, its tree and QEMU's argv.

Entry points: `reference_guests()` -> `Guest` (from ghafgen's plan of each profile),
`base_tree`, `merged_tree`, `tree_to_boot`, `runner_commands(guests, lib, microvm)`
(the QEMU command microvm.nix's runner builds for each generated module) and
`for_here(command, guest, ...)` (that command with the substitutions this machine
needs; for the GPU VM: `gpu_guest_tree`, `gpu_boot_argv`). tests/guestinit.py
runs it.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import libfdt

from ghafgen import catalog
from ghafgen.catalog.fdtview import FdtView
from ghafgen.derive.runtime import VmStack, runtime_stack
from ghafgen.render import dt
from ghafgen.render.plan import VmPlan, plan
from ghafgen.rules.engine import validate
from ghafgen.toolchain.guestbase import (
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
        bus = catalog.load().qemu_virt.platform_bus_path
        return [
            (f"{bus}/{g.node_name}", g)
            for g in dt.place_on_platform_bus(in_tree, catalog.load().qemu_virt)
        ]

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
        report = validate([path], catalog.load())
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
        folder,
        catalog.load().qemu_virt,
        vcpus=guest.vm.vcpus,
        mem_mib=guest.vm.mem_mib,
        bpmp=guest.vm.bpmp,
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
    data = gpu_variant_base(dumped.read_bytes(), catalog.load())
    base.write_bytes(
        name_bridge_node(
            add_bridge_node(data, catalog.load().qemu_virt), catalog.load().qemu_virt
        )
    )
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


def gpu_banks(tree: Path) -> list[tuple[int, int]]:
    """(base, size) of every bank of the guest's one /memory node (disp-vm's
    has two)."""
    view = FdtView(tree.read_bytes())
    (path,) = [p for _off, p in view.nodes() if p.startswith("/memory@")]
    c = view.cells(view.offset(path), "reg")
    return [
        ((c[i] << 32) | c[i + 1], (c[i + 2] << 32) | c[i + 3])
        for i in range(0, len(c), 4)
    ]


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


# Flags of the runner's command that take no value.
NO_VALUE = frozenset(
    {"-nodefaults", "-no-user-config", "-no-reboot", "-enable-kvm", "-nographic"}
)
RUNNER_EVAL = ROOT / "tests" / "data" / "eval" / "runner-argv.nix"
# Devices of the runner's command that `for_here` leaves out (its items 4, 5).
NOT_HERE = (
    "virtio-blk-pci,drive=store",
    "vfio-platform,",
    "vfio-pci,",
    "vhost-vsock-pci,",
)


def runner_commands(
    guests: list[Guest], lib: Path, microvm: Path, qemu_runner: Path | None = None
) -> dict[str, str]:
    """Guest id -> the QEMU command microvm.nix's runner builds for the VM's
    generated module (tests/data/eval/runner-argv.nix: the module evaluated with
    nixpkgs' lib and microvm.nix's own guest modules, then lib/runners/qemu.nix,
    or the copy `qemu_runner` names, called as lib/runner.nix calls it)."""
    modules = {
        g.id: {
            "name": g.vm.name,
            "path": str(MODULES / g.target / "vms" / f"{g.vm.name}.nix"),
        }
        for g in guests
    }
    argv = [
        "nix-instantiate", "--eval", "--strict", "--json", str(RUNNER_EVAL),
        "--argstr", "libPath", str(lib),
        "--argstr", "microvmSrc", str(microvm),
        "--argstr", "modulesJson", json.dumps(modules),
    ]  # fmt: skip
    if qemu_runner is not None:
        argv += ["--arg", "qemuRunner", str(qemu_runner)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    commands: dict[str, str] = json.loads(json.loads(done.stdout))
    return commands


def options(command: str) -> list[list[str]]:
    """The runner's command (a shell line: escapeShellArgs, and vfio-pci
    devices outside it) as [binary], then [flag] or [flag, value] each."""
    words = shlex.split(command)
    out = [[words[0]]]
    rest = words[1:]
    while rest:
        flag = rest.pop(0)
        assert flag.startswith("-"), f"{flag!r} is not a QEMU option: {command}"
        if flag in NO_VALUE:
            out.append([flag])
        else:
            assert rest and not rest[0].startswith("-"), (
                f"{flag} has no value: {command}"
            )
            out.append([flag, rest.pop(0)])
    return out


def for_here(
    command: str,
    guest: Guest,
    kernel: Path,
    initrd: Path,
    folder: Path,
    extra_params: tuple[str, ...] = (),
    serial_log: Path | None = None,
) -> list[str]:
    """The runner's command as this machine can run it: only these changes.

    1. The binary: Debian's qemu-system-aarch64 for the module's QEMU
       (nixpkgs' or the pinned platform QEMU; the boot test's docstring).
    2. -kernel and -initrd: Debian's arm64 kernel and the busybox initramfs
       for the module's NixOS kernel and stage-1 initrd.
    3. KVM: an arm64 guest on this host runs under TCG, so `accel=kvm:tcg` in
       -M becomes `accel=tcg`, -enable-kvm goes and `-cpu host` is `-cpu max`.
    4. The store disk (-drive id=store and its virtio-blk device) goes: it
       holds the NixOS closure; the busybox initramfs is the userspace here.
    5. Host devices that are not here go: vfio-platform and vfio-pci (no
       device to pass), vhost-vsock-pci (needs the host's vhost_vsock).
    6. Volume images (microvm.volumes, created by the runner when missing)
       are sparse files of the volume's size in `folder`; ivshmem files under
       /dev/shm go to `folder` too.
    7. For the test only: `extra_params` appended to -append (earlycon, for
       the as-generated boot that faults), `-serial file:` for that boot of a
       VM whose stdio is a PCI serial card, and `-dtb ghafgen-guest.dtb` for
       a BPMP VM without a guest tree (`Guest.base_dtb_stand_in`).
    Everything else (machine, memory, vCPUs, -append, the other devices,
    -smbios, -sandbox, -qmp, -nographic, the module's extraArgs) is run as
    the runner gives it; the relative -dtb and -qmp paths land in `folder`,
    where QEMU runs.
    """
    for path in (folder, kernel, initrd):
        if "," in str(path):
            raise ValueError(f"QEMU cannot take a path with a comma: {path}")
    volumes = {v.image: v for v in guest.vm.volumes}
    (binary,), *opts = options(command)
    assert binary.endswith("/bin/qemu-system-aarch64"), binary
    argv = ["qemu-system-aarch64"]
    for opt in opts:
        flag, value = opt[0], opt[1] if len(opt) > 1 else ""
        if flag == "-enable-kvm":
            continue
        if flag == "-kernel":
            assert value.endswith("-linux/Image"), value
            value = str(kernel)
        elif flag == "-initrd":
            assert value.endswith("-initrd/initrd"), value
            value = str(initrd)
        elif flag == "-M":
            assert ",accel=kvm:tcg," in f",{value},", value
            value = value.replace("accel=kvm:tcg", "accel=tcg")
        elif flag == "-cpu" and value == "host":
            value = "max"
        elif flag == "-drive" and value.startswith("id=store,"):
            continue  # 4.
        elif flag == "-device" and value.startswith(NOT_HERE):
            continue  # 4. and 5.
        elif flag == "-drive":
            image = re.search(r"(?:^|,)file=([^,]+)", value)
            assert image is not None and image[1] in volumes, value
            local = folder / Path(image[1]).name
            size = volumes[image[1]].size_mib << 20
            with local.open("wb") as f:
                f.truncate(size)  # sparse, as a fresh volume
            value = value.replace(f"file={image[1]}", f"file={local}")
        elif flag == "-object":
            value = value.replace("mem-path=/dev/shm/", f"mem-path={folder}/")
        elif flag == "-append" and extra_params:
            value = f"{value} {' '.join(extra_params)}"
        argv += [flag, value] if value else [flag]
    if serial_log is not None and not guest.serial_console:
        argv += ["-serial", f"file:{serial_log}"]
    if guest.base_dtb_stand_in:
        assert "-dtb" not in argv, "the module gives -dtb; the stand-in should not"
        argv += ["-dtb", "ghafgen-guest.dtb"]
    return argv


@functools.cache
def reference_commands() -> dict[str, str]:
    """`runner_commands` of every reference guest, with the pinned nixpkgs lib
    and microvm.nix (tests/pinned.py; raises pinned.Unavailable without them)."""
    from tests import pinned

    return runner_commands(
        reference_guests(), pinned.tree("nixpkgs.lib"), pinned.tree("microvm.nix")
    )


def qemu_argv(
    guest: Guest,
    kernel: Path,
    initrd: Path,
    folder: Path,
    extra_params: tuple[str, ...] = (),
    serial_log: Path | None = None,
) -> list[str]:
    """QEMU's argv for a reference guest: its runner's command, `for_here`."""
    command = reference_commands()[guest.id]
    return for_here(command, guest, kernel, initrd, folder, extra_params, serial_log)


def appended(argv: list[str]) -> str:
    """The -append of an argv."""
    return argv[argv.index("-append") + 1]


def gpu_boot_argv(
    guest: Guest, kernel: Path, initrd: Path, folder: Path, command: str | None = None
) -> tuple[list[str], Path]:
    """(QEMU's argv, the guest tree) for the GPU VM: its tree as its preStart
    builds it on the variant (`gpu_guest_tree`, on this QEMU's dump for the
    VM's shape), written where the module's -dtb names it, and the stand-in's
    memory (`gpu_stand_in_memory`) in place of -m."""
    assert guest.dts is not None and guest.vm.gpu is not None
    dumped = dump_qemu_virt(folder, guest.vm.vcpus, guest.vm.mem_mib)
    assert dumped is not None, "qemu-system-aarch64 is missing"
    tree = gpu_guest_tree(guest.dts, dumped, folder)
    if command is None:
        command = reference_commands()[guest.id]
    argv = for_here(command, guest, kernel, initrd, folder)
    dtb = argv[argv.index("-dtb") + 1]
    shutil.copy(tree, folder / dtb)
    at = argv.index("-m")
    assert argv[at + 1] == f"{guest.vm.mem_mib}M", argv[at : at + 2]
    argv[at : at + 2] = gpu_stand_in_memory(tree)
    return argv, tree
