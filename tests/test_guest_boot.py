"""Every guest of every reference target boots here, under QEMU (TCG), to userspace.

Each VM runs the QEMU command line microvm.nix's own runner builds for its
generated module (vms/<vm>.nix evaluated with the pinned nixpkgs lib and
microvm.nix, lib/runners/qemu.nix's `command`; tests/guestboot.py
`runner_commands`), changed only where this machine needs it
(`guestboot.for_here` lists each change and why), with the merged guest tree,
a busybox /init that reports what the kernel did, and then powers off.
Asserted per guest: userspace is reached on the VM's stdio with the runner's
-append, what the kernel says about each passed node, which device the
console is on, and `ghafgen verify --guest` on what /init captured, against
the committed target: each check holds, or fails or is not provable exactly
as the stand-ins below account for (tests/guestverify.py). A change to the
runner's arguments reaches the boot (`test_a_planted_runner_change_reaches_the_boot`).

Stand-ins (docs/runtime.md, "Guest boots here"), and what they do not prove:
- Kernel: Debian's stock arm64 kernel (linux-image-arm64, the newest the
  machine's sources offer), not the guest kernel the module builds (nixpkgs
  linuxPackages_6_12 with the bpmp-virt guest proxy, TEGRA_BPMP, DWMAC_TEGRA).
  The stock kernel has no BPMP driver, so a BPMP-backed node defers on `bpmp`;
  that its driver binds with the patched kernel is not shown here.
- QEMU: Debian's qemu-system-arm (10.0.x), not the pinned platform QEMU 10.1.5
  (Ghaf's patches: BPMP bridge, vfio-platform FDT bindings) that VMs given a
  platform device run, nor nixpkgs' QEMU that the others run. Debian's QEMU
  emits no /bpmp: the base tree gets it from ghafgen.toolchain.guestbase, as the bridge
  writes it, and a BPMP VM without a guest tree (MGBE0) boots that base tree
  with -dtb; the MGBE0 node the pinned QEMU emits is not here at all.
- Devices: nothing is passed (no vfio here). A passed region has nothing behind
  it; a node whose driver touches its registers at probe faults, so its guest
  boots twice: as generated (the fault is asserted) and as a test variant with
  that node disabled (the rest is asserted). Each guest prints which ran.
- Userspace: busybox, not NixOS; vhost-vsock and hugepage backing are left out.
- The GPU VM: its tree is built as its preStart builds it on Ghaf's GPU QEMU
  variant (platform bus at 0x60000000, QEMU's RAM node dropped), which is not
  installable here. The stand-in QEMU drops a -dtb's /memory nodes and puts RAM
  at 0x40000000, so the guest bank is given as a second NUMA node that QEMU
  places at the bank (tests/guestboot.py `gpu_stand_in_memory` says what
  differs). Nothing probes the group here (ga10b's driver is out of tree,
  host1x a module), so its tree boots as generated.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.catalog.fdtview import FdtView
from tests import facts
from tests.conftest import require
from tests.guestboot import (
    Guest,
    alias,
    appended,
    base_tree,
    for_here,
    gpu_bank,
    gpu_banks,
    gpu_boot_argv,
    merged_tree,
    reference_guests,
    reserved_regions,
    runner_commands,
    stdout_path,
    tree_to_boot,
)
from tests.guestinit import (
    Boot,
    StandIns,
    boot,
    initramfs,
    stand_ins,
)
from tests.guestverify import manifest_guest, stand_in_outcomes, verify_guest
from tests.trees import Tree

pytestmark = [pytest.mark.slow, pytest.mark.real_tools]

GUESTS = reference_guests()
# QEMU's PCI serial card (hw/char/serial-pci.c: PCI_VENDOR_ID_REDHAT,
# PCI_DEVICE_ID_REDHAT_SERIAL), the console of a VM whose ttyAMA0 is a passed UART.
PCI_SERIAL_ID = "0x1b36:0x0002"
STAND_IN = (
    "stand-in: Debian's stock arm64 kernel (no bpmp-virt guest proxy) and Debian's "
    "QEMU (no BPMP bridge, no MGBE0 FDT binding), not the pinned guest kernel and "
    "Ghaf QEMU 10.1.5"
)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> tuple[StandIns, Path]:
    """Debian's kernel and busybox (fetched by scripts/test.sh) and the initramfs."""
    for tool in ("qemu-system-aarch64", "dtc", "fdtoverlay"):
        require(tool)
    found = stand_ins()
    if found is None:
        pytest.skip(
            "Debian's arm64 kernel and busybox are not fetched "
            "(bash scripts/test.sh fetches them: scripts/guest-boot-deps.sh)"
        )
    qemu = subprocess.run(
        ["qemu-system-aarch64", "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    print(f"\nguest boots: {found.versions.replace(chr(10), ', ')}; {qemu}")
    return found, initramfs(
        found.busybox, tmp_path_factory.mktemp("boot") / "init.cpio"
    )


@pytest.fixture(scope="module")
def commands(nixpkgs_lib: Path, microvm_src: Path) -> dict[str, str]:
    """Guest id -> the QEMU command microvm.nix's runner builds for its module."""
    require("nix-instantiate")
    return runner_commands(GUESTS, nixpkgs_lib, microvm_src)


def _earlycon(base: Path) -> tuple[str, ...]:
    """Kernel messages on QEMU's pl011 from the first instruction, kept after the
    real console starts: how the as-generated boot's fault reaches the test."""
    unit = stdout_path(base).rsplit("@", 1)[1]
    return (f"earlycon=pl011,mmio32,0x{unit}", "keep_bootcon", "ignore_loglevel")


@pytest.mark.parametrize("guest", GUESTS, ids=[g.id for g in GUESTS])
def test_guest_boots_to_userspace(
    guest: Guest, kit: tuple[StandIns, Path], commands: dict[str, str], tmp_path: Path
) -> None:
    found, initrd = kit
    command = commands[guest.id]
    if guest.vm.gpu is not None:
        _boot_gpu_guest(guest, command, found, initrd, tmp_path)
        return
    base = base_tree(guest, tmp_path)
    generated = merged_tree(guest, base, tmp_path) if guest.dts else None
    faulting = guest.faulting_nodes()
    if generated is not None and faulting:
        shutil.copy(generated, tmp_path / "ghafgen-guest.dtb")
        log = tmp_path / "pl011.log"
        first = boot(
            for_here(
                command, guest, found.kernel, initrd, tmp_path, _earlycon(base), log
            ),
            tmp_path,
        )
        said = first.output + (log.read_text(errors="replace") if log.exists() else "")
        assert not first.userspace, (
            f"{guest.id}: reached userspace with {faulting} backed by nothing"
        )
        assert "synchronous external abort" in said, (
            f"{guest.id} as generated: expected the passed region with nothing behind "
            f"it to fault at probe; the kernel said:\n{said[-3000:]}"
        )
        where = re.findall(r"\] ((?:pc|lr) : \S+)", said)
        # The generator's console rule rests on this: the passed UART probes
        # before QEMU's pl011 has registered a port (ignore_loglevel shows it).
        unit = stdout_path(base).rsplit("@", 1)[1]
        before = said[: said.index("synchronous external abort")]
        assert f"{unit}.pl011: ttyAMA" not in before, (
            f"{guest.id}: QEMU's pl011 registered before the passed node probed"
        )
        print(f"{guest.id} as generated: {faulting} fault at probe: {where}")
    tree, variant = tree_to_boot(guest, base, generated, tmp_path)
    if tree is not None:
        # The module's extraArgs say `-dtb ghafgen-guest.dtb`, relative to the VM's
        # directory (its preStart writes it there); QEMU runs in tmp_path.
        shutil.copy(tree, tmp_path / "ghafgen-guest.dtb")

    argv = for_here(command, guest, found.kernel, initrd, tmp_path)
    result = boot(argv, tmp_path)
    _assert_userspace(guest, result, variant, argv)

    _assert_passed_nodes(guest, result, tree, faulting, found.kernel)
    _assert_console(guest, result, base, generated)
    disabled = [] if guest.base_dtb_stand_in or generated is None else faulting
    _assert_verified(guest, result, tree, disabled, found.kernel, tmp_path)


def _assert_verified(
    guest: Guest,
    result: Boot,
    tree: Path | None,
    disabled: list[str],
    kernel: Path,
    folder: Path,
) -> None:
    """`ghafgen verify --guest` on what the booted guest captured, against the
    committed target: every check holds but those the stand-ins account for
    (tests/guestverify.py, each with why), which fail or are not provable
    exactly as said, and the exit code follows."""
    capture = result.capture(folder / "guest-capture.tar.gz")
    assert capture is not None, f"{guest.id}: /init printed no capture"
    got = verify_guest(guest, capture)
    want = stand_in_outcomes(guest, tree, disabled, kernel)
    for subject in sorted({*want.failed, *want.unproven}):
        why = want.failed.get(subject) or want.unproven[subject]
        print(f"  verify: {subject}: {why}")
    failed = {s: got.checks[s] for s in got.subjects("failed")}
    assert got.subjects("failed") == set(want.failed), failed
    assert got.subjects("unproven") == set(want.unproven), got.checks
    held = got.subjects("held")
    # The console check and one per kernel parameter hold on every guest.
    assert len(held) > len(manifest_guest(guest)["guest"]["params"]), held
    assert got.code == want.code, (got.code, want)
    print(
        f"  verify --guest: exit {got.code}; {len(held)} held, "
        f"{len(want.unproven)} not provable here, {len(want.failed)} failed"
    )


def _built_in(kernel: Path, compatibles: tuple[str, ...]) -> bool:
    """Whether the stand-in kernel image has a built-in driver matching any of
    them: built-in drivers' of_match tables are plain strings in the image."""
    image = kernel.read_bytes()
    return any(c.encode() + b"\0" in image for c in compatibles)


def _assert_passed_nodes(
    guest: Guest,
    result: Boot,
    tree: Path | None,
    faulting: list[str],
    kernel: Path,
) -> None:
    bus = catalog.load().qemu_virt.platform_bus_path
    for path, g in guest.passed_nodes():
        dev = result.devices.get(path)
        said = result.dmesg(dev.name) if dev else []
        print(
            f"  {path} ({g.dev.key}): {dev}; deferred: "
            f"{result.deferred.get(dev.name) if dev else None}; dmesg: {said}"
        )
        if path in faulting:
            assert dev is None, f"{path} is disabled in the variant, yet has a device"
            continue
        assert dev is not None, f"{guest.id}: no device for passed node {path}"
        assert dev.driver == "none", (
            f"{path} bound to {dev.driver} with nothing behind it"
        )
        reason = result.deferred.get(dev.name, "")
        if not _built_in(kernel, g.dev.guest.compatible):
            # Debian builds this driver (i2c-tegra) as a module, which the busybox
            # initramfs does not load: nothing probes the node, so nothing defers.
            assert reason == "", (dev.name, reason)
            continue
        # Still waiting when /init reads devices_deferred, or, on a loaded
        # machine where the boot takes longer than the kernel's
        # deferred_probe_timeout (10 s after late init), given up by it with
        # the driver's reason (driver core: "deferred probe pending").
        timed_out = [
            line
            for line in result.dmesg(f"{dev.name}: deferred probe pending")
            if "clock" in line
        ]
        assert "supplier bpmp not ready" in reason or timed_out, (
            f"{guest.id}: {dev.name} should wait for its BPMP clocks ({STAND_IN}: "
            f"the stock kernel has no BPMP driver); devices_deferred: {result.deferred}"
        )
    if guest.vm.bpmp and tree is not None:
        bpmp = result.devices.get("/bpmp")
        print(f"  /bpmp: {bpmp} (the stock kernel has no BPMP driver)")
        assert bpmp is not None and bpmp.driver == "none", (
            f"{guest.id}: /bpmp should stay unbound under the stock kernel: {bpmp}"
        )
    for pdev in guest.vm.platform:
        if pdev.guest.qemu_emits_node:
            # Debian's QEMU has no FDT binding for it and nothing is passed here.
            on_bus = [n for n in result.devices if n.startswith(bus + "/")]
            assert on_bus == [], on_bus
            print(
                f"  {pdev.dt_name}: no node here (the pinned QEMU emits it; {STAND_IN})"
            )
    if guest.vm.pci_functions:
        print(f"  PCI functions {', '.join(guest.vm.pci_functions)}: not passed here")


def _assert_console(
    guest: Guest, result: Boot, base: Path, generated: Path | None
) -> None:
    """The console is on the device wired to the VM's stdio (the markers came
    through it): QEMU's first UART (pl011) or, for a VM whose ttyAMA0 is a
    passed UART, the PCI serial card."""
    path, pci_id = result.tty(result.console)
    if guest.serial_console:
        unit = stdout_path(base).rsplit("@", 1)[1]
        assert result.console == "ttyAMA0", result.console
        assert f"/{unit}.pl011/" in path + "/", f"ttyAMA0 is {path}, not QEMU's pl011"
    else:
        assert result.console == "ttyS0", result.console
        assert pci_id == PCI_SERIAL_ID, f"ttyS0 is {path} ({pci_id})"
    if generated is None:
        return
    # On the board the passed UARTs answer. A console among a passed UART's port
    # names (its driver's, e.g. ttyAMA) is not sure to be QEMU's device: the SBSA
    # UART probes before the pl011 and, as serial0, is ttyAMA0.
    first = alias(generated, "serial0")
    for node, g in guest.passed_nodes():
        tty = g.dev.guest.tty
        if not tty:
            continue
        on_board = f"{tty}0" if node == first else f"a {tty} port"
        assert not re.fullmatch(rf"{tty}\d+", result.console), (
            f"{guest.id}: on the board {node} is {on_board}, so "
            f"console={result.console} would not be sure to reach the VM's stdio"
        )
        print(f"  console {result.console} ({path}); the passed UART is {on_board}")


def _assert_userspace(
    guest: Guest, result: Boot, variant: str, argv: list[str]
) -> None:
    """The guest, booted as `variant` says, reached userspace with the kernel
    command line the runner gave it, which holds exactly the parameters the
    module promises (`promised_cmdline`, a literal table in tests/facts.py)."""
    print(
        f"{guest.id}: {variant}; userspace={result.userspace} in {result.seconds:.1f} s;"
        f" console {result.console or '?'}\n  on the board: {guest.on_board}"
    )
    assert result.userspace, (
        f"{guest.id} ({variant}) printed no userspace marker on the VM's stdio "
        f"(exit {result.returncode}); {STAND_IN}; on the board: {guest.on_board}:\n"
        f"{result.output[-3000:]}"
    )
    words = appended(argv).split()
    # The kernel got what the runner's command line passed it ...
    assert result.cmdline.split() == words
    # ... and that is what its module promises (tests/facts.py, from Ghaf and
    # microvm.nix), not the -append the test built: order aside (NixOS merges
    # boot.kernelParams).
    assert sorted(words) == promised_cmdline(guest.id), (
        f"{guest.id}: /proc/cmdline is {result.cmdline!r}"
    )


def promised_cmdline(guest_id: str) -> list[str]:
    """The tokens of /proc/cmdline the guest's module promises, as a literal
    table has them (tests/facts.py GUEST_KERNEL_PARAMS and what microvm.nix
    and NixOS add), sorted."""
    console = () if guest_id in facts.NO_SERIAL_CONSOLE else (facts.MICROVM_CONSOLE,)
    return sorted(
        [
            *console,
            *facts.MICROVM_RUNNER_PARAMS,
            *facts.GUEST_KERNEL_PARAMS[guest_id],
            *facts.NIXOS_ADDED_PARAMS,
            facts.MICROVM_INIT,
        ]
    )


def _boot_gpu_guest(
    guest: Guest, command: str, found: StandIns, initrd: Path, folder: Path
) -> None:
    """The GPU VM: its guest tree built as its preStart builds it on the variant
    (tests/guestboot.py `gpu_guest_tree`: the variant's platform bus, QEMU's RAM
    node dropped, /bpmp named), given with -dtb, booted as generated.

    Nothing emulates the group here and no driver of the stock kernel probes
    it from the initramfs (ga10b's is NVIDIA's out-of-tree nvgpu; host1x is a
    module, not loaded), so no region is touched and no variant is needed.
    The stand-in QEMU's memory differs (`gpu_stand_in_memory`).
    """
    argv, tree = gpu_boot_argv(guest, found.kernel, initrd, folder, command)
    at = argv.index("-m")
    result = boot(argv, folder)
    _assert_userspace(
        guest,
        result,
        f"as generated, memory {argv[at + 1]} (stand-in for the bank)",
        argv,
    )

    _assert_gpu_memory(guest, result, tree)
    _assert_gpu_bus(guest, result, tree, found.kernel)
    # chosen/stdout-path of the merged tree: the console is QEMU's pl011.
    assert result.console == "ttyAMA0", result.console
    path, _pci = result.tty(result.console)
    unit = stdout_path(tree).rsplit("@", 1)[1]
    assert f"/{unit}.pl011/" in path + "/", path
    _assert_verified(guest, result, tree, [], found.kernel, folder)


def _assert_gpu_memory(guest: Guest, result: Boot, tree: Path) -> None:
    """The guest bank is a memory node of its own and every reserved region of
    the tree is set up inside it (early_init_fdt_scan_reserved_mem)."""
    _path, base, size = gpu_bank(tree)
    end = base + size - 1
    initmem = result.dmesg("Initmem setup node")
    print(f"  {'; '.join(ln.split('] ', 1)[1] for ln in initmem)}")
    assert f"Initmem setup node 1 [mem 0x{base:016x}-0x{end:016x}]" in "\n".join(
        initmem
    ), initmem
    regions = reserved_regions(tree)
    assert {r[0] for r in regions} == facts.GHAF_GUEST_RESERVED[guest.id], regions
    banks = gpu_banks(tree)
    lines = result.dmesg("OF: reserved mem: 0x")
    for node, lo, length in regions:
        said = [ln for ln in lines if ln.endswith(f" {node}")]
        assert said, f"{guest.id}: no reserved-memory line for {node}: {lines}"
        assert f"0x{lo:016x}..0x{lo + length - 1:016x}" in said[0], said[0]
        inside = any(b <= lo and lo + length <= b + n for b, n in banks)
        # The scanout pool lies outside every RAM bank, as in Ghaf (its
        # dtsi: 'Sits OUTSIDE every guest RAM bank'); every other region inside.
        assert inside != node.startswith("dce_scanout@"), (node, banks)
        print(f"  {said[0].split('] ', 1)[1]}")
    ((_node, lo, length),) = [r for r in regions if r[0].startswith("linux,cma@")]
    cma = result.dmesg("Reserved memory: created CMA memory pool at")
    assert cma, result.dmesg("Reserved memory")
    assert f"0x{lo:016x}, size {length >> 20} MiB" in cma[0], cma
    print(f"  {cma[0].split('] ', 1)[1]}")


def _cpu_address(tree: Tree, path: str) -> int:
    """The CPU address of the node's first region, through the ranges of
    every bus above it (an empty ranges: the same address)."""

    def cells(node: str, name: str) -> int:
        raw = tree.maybe(node, name)
        if raw is None:  # the devicetree spec's defaults
            return 2 if name == "#address-cells" else 1
        return int.from_bytes(raw, "big")

    def number(words: list[int]) -> int:
        return int.from_bytes(b"".join(w.to_bytes(4, "big") for w in words), "big")

    def parent(node: str) -> str:
        return node.rsplit("/", 1)[0] or "/"

    node = parent(path)
    addr = number(tree.cells(path, "reg")[: cells(node, "#address-cells")])
    while node != "/":
        raw = tree.maybe(node, "ranges")
        assert raw is not None, f"{node} has no ranges: {path} is not mapped"
        up = parent(node)
        child, above = cells(node, "#address-cells"), cells(up, "#address-cells")
        size = cells(node, "#size-cells")
        if raw:
            words = tree.cells(node, "ranges")
            step = child + above + size
            for i in range(0, len(words), step):
                c = number(words[i : i + child])
                p = number(words[i + child : i + child + above])
                n = number(words[i + child + above : i + step])
                if c <= addr < c + n:
                    addr = p + addr - c
                    break
            else:
                raise AssertionError(f"{node}'s ranges do not map {addr:#x}")
        node = up
    return addr


def _assert_gpu_bus(guest: Guest, result: Boot, tree: Path, kernel: Path) -> None:
    """The translating bus: each member directly on it is a platform device
    named by the address the kernel translated its first region to, through
    gpu-bus's ranges and the platform bus's: where Ghaf measured the variant
    maps it (tests/facts.py GHAF_GPU_GUEST_ADDRESS, `info mtree -f`)."""
    group = catalog.load().gpu_group
    in_tree = [path for _off, path in FdtView(tree.read_bytes()).nodes()]
    if any(d.group == "display" for d in guest.vm.platform):
        _assert_display_device(guest, result, tree, in_tree)
    members = {d.key: d for d in guest.vm.platform if d.group == "gpu"}
    if not members:
        return
    assert set(members) == set(facts.GHAF_GPU_GUEST_ADDRESS), members
    # The tree's host1x alias names the host1x node on the GPU bus.
    host1x = alias(tree, "host1x")
    bus = host1x.rsplit("/", 1)[0]
    for key in group.members:
        dev = members[key]
        name, unit = dev.node.split("@")
        name = name.removesuffix("_pt")
        (path,) = [p for p in in_tree if p.endswith(f"/{name}@{unit}")]
        guest_at = facts.GHAF_GPU_GUEST_ADDRESS[key]
        # The tree's own translation, walked here through every ranges above.
        assert _cpu_address(Tree(tree), path) == guest_at, (key, path)
        want = f"{guest_at:x}.{name}"
        got = result.devices.get(path)
        if path.rsplit("/", 1)[0] != bus:
            # host1x's children: its driver populates them (host1x_probe).
            assert got is None, f"{key} has a device with host1x unbound: {got}"
            print(f"  {path}: no device (its parent host1x is unbound)")
            continue
        assert got is not None, f"{guest.id}: no device for {path}"
        assert got.name == want, (got, want)
        assert got.driver == "none", got
        # ga10b's driver is out of tree; Debian builds host1x as a module,
        # which the busybox initramfs does not load: nothing probes, nothing
        # touches a region, nothing defers.
        assert not _built_in(kernel, dev.compatible), key
        assert got.name not in result.deferred, result.deferred
        print(f"  {path}: {got.name} (Ghaf measured {guest_at:#x}), unbound")
    assert host1x in result.devices, host1x
    bpmp = result.devices.get("/bpmp")
    print(f"  /bpmp: {bpmp} (the stock kernel has no BPMP driver)")
    assert bpmp is not None and bpmp.driver == "none", bpmp


def _assert_display_device(
    guest: Guest, result: Boot, tree: Path, in_tree: list[str]
) -> None:
    """The display node is a platform device named by where its nvdisplay
    window lands (Ghaf: 0x66200000), unbound: nvdisplay is out of tree."""
    (path,) = [p for p in in_tree if p.endswith("/display@13800000")]
    at = facts.GHAF_DISPLAY_GUEST_ADDRESS
    assert _cpu_address(Tree(tree), path) == at, path
    got = result.devices.get(path)
    assert got is not None, f"{guest.id}: no device for {path}"
    assert got.name == f"{at:x}.display", got
    assert got.driver == "none", got
    print(f"  {path}: {got.name} (Ghaf's window {at:#x}), unbound")


# The runner's stdio wiring (lib/runners/qemu.nix), and a planted change to it.
RUNNER_STDIO = '"-chardev" "stdio,id=stdio,signal=off"'
PLANTED_STDIO = '"-chardev" "null,id=stdio"'


def test_a_planted_runner_change_reaches_the_boot(
    kit: tuple[StandIns, Path],
    nixpkgs_lib: Path,
    microvm_src: Path,
    tmp_path: Path,
) -> None:
    """A copy of microvm.nix's qemu runner with one argument changed (the VM's
    stdio chardev made a null one): the command the boot test runs changes
    there and nowhere else, and the guest's boot no longer passes the test,
    whose markers come through that stdio. A hand-kept copy of the command
    line would have booted on as before."""
    found, initrd = kit
    require("nix-instantiate")
    runner = microvm_src / "lib" / "runners" / "qemu.nix"
    text = runner.read_text()
    assert text.count(RUNNER_STDIO) == 1, (
        "microvm.nix's runner changed: update the plant"
    )
    planted = tmp_path / "qemu.nix"
    planted.write_text(text.replace(RUNNER_STDIO, PLANTED_STDIO))
    # The smallest guest with QEMU's own tree: one boot.
    (guest,) = [g for g in GUESTS if g.id == "nvidia-jetson-orin-agx-partitions/rt-vm"]
    real = runner_commands([guest], nixpkgs_lib, microvm_src)[guest.id]
    changed = runner_commands([guest], nixpkgs_lib, microvm_src, planted)[guest.id]
    argv = for_here(real, guest, found.kernel, initrd, tmp_path)
    moved = for_here(changed, guest, found.kernel, initrd, tmp_path)
    assert [(a, b) for a, b in zip(argv, moved, strict=True) if a != b] == [
        ("stdio,id=stdio,signal=off", "null,id=stdio")
    ]
    result = boot(moved, tmp_path)
    with pytest.raises(AssertionError, match="printed no userspace marker"):
        _assert_userspace(guest, result, "planted runner change", moved)
    print(
        f"planted runner change: exit {result.returncode}, {len(result.output)} bytes"
    )
