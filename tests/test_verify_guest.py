"""`ghafgen verify --guest` on captures of guests booted here.

Each guest boots as tests/test_guest_boot.py boots it (tests/guestboot.py: the
committed vms/<vm>.dts on QEMU's own tree, QEMU's argv as microvm.nix builds
it), under the stand-in kernel and QEMU, with tests/verifyinit.py's /init, which
prints the guest's tree, driver links and command line; verify reads that
capture against the committed manifest. What the stand-in cannot do (no BPMP
guest proxy, so BPMP-backed drivers wait; Debian's QEMU emits no MGBE0 node) is
asserted as such, so a change in either shows up.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen.cli import app
from tests.conftest import require
from tests.guestboot import (
    MODULES,
    Guest,
    base_tree,
    merged_tree,
    qemu_argv,
    reference_guests,
    tree_to_boot,
)
from tests.guestinit import StandIns, boot, stand_ins
from tests.verifyinit import capture_initramfs, capture_of

pytestmark = [pytest.mark.slow, pytest.mark.real_tools]

UARTA = "nvidia-jetson-orin-agx-uarta/uart-vm"
MGBE0 = "nvidia-jetson-orin-agx-mgbe0-net-vm/net-vm"
GUESTS = {g.id: g for g in reference_guests() if g.id in (UARTA, MGBE0)}


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> tuple[StandIns, Path]:
    for tool in ("qemu-system-aarch64", "dtc", "fdtoverlay", "fdtput"):
        require(tool)
    found = stand_ins()
    if found is None:
        pytest.skip(
            "Debian's arm64 kernel and busybox are not fetched "
            "(bash scripts/test.sh fetches them: scripts/guest-boot-deps.sh)"
        )
    folder = tmp_path_factory.mktemp("verify-boot")
    return found, capture_initramfs(found.busybox, folder / "capture.cpio")


def booted_capture(
    guest: Guest, kit: tuple[StandIns, Path], tmp: Path, drop: str = ""
) -> Path:
    """Boot the guest (its passed node at `drop` removed first) and return its capture."""
    found, initrd = kit
    base = base_tree(guest, tmp)
    generated = merged_tree(guest, base, tmp) if guest.dts else None
    tree, _variant = tree_to_boot(guest, base, generated, tmp)
    if tree is not None:
        shutil.copy(tree, tmp / "ghafgen-guest.dtb")
    if drop:
        subprocess.run(
            ["fdtput", "-r", str(tmp / "ghafgen-guest.dtb"), drop], check=True
        )
    result = boot(qemu_argv(guest, found.kernel, initrd, tmp), tmp)
    cap = capture_of(result.output, tmp / "guest.tar.gz")
    assert cap is not None, (
        f"{guest.id}: no capture; the guest said:\n{result.output[-3000:]}"
    )
    return cap


def verify_guest(guest: Guest, cap: Path) -> tuple[int, dict[str, dict[str, str]]]:
    res = CliRunner().invoke(
        app,
        [
            "verify",
            str(MODULES / guest.target),
            "--guest",
            "--vm",
            guest.vm.name,
            "--root",
            str(cap),
            "--format",
            "json",
        ],
    )
    assert res.exit_code in (0, 1), res.output
    doc = json.loads(res.stdout)
    assert {c["link"] for c in doc["checks"]} == {"guest"}
    return res.exit_code, {c["subject"]: c for c in doc["checks"]}


# The passed UART's node as vms/uart-vm.dts writes it on QEMU's platform bus
# (committed nix/modules/nvidia-jetson-orin-agx-uarta/vms/uart-vm.dts).
UART_NODE = "/platform-bus@c000000/serial@0"


def test_uarta_guest_has_its_node_bpmp_node_and_console(kit, tmp_path: Path):
    guest = GUESTS[UARTA]
    code, checks = verify_guest(guest, booted_capture(guest, kit, tmp_path))
    failed = {s for s, c in checks.items() if not c["ok"]}
    # The tree the VM module builds is the tree the guest booted with: every
    # property of vms/uart-vm.dts at its path, &bpmp resolved to the /bpmp node.
    assert f"{UART_NODE} present" in checks
    assert checks[f"{UART_NODE} clocks"]["ok"]
    assert (
        checks["3100000.serial's node on /platform-bus@c000000"]["found"] == UART_NODE
    )
    assert checks["BPMP node /bpmp"]["ok"]
    assert checks["console on ttyAMA0"]["ok"]
    assert checks["guest /proc/cmdline has clk_ignore_unused"]["ok"]
    # Stand-in: no bpmp-virt guest proxy, so nothing binds /bpmp, and the UART's
    # driver waits for its BPMP clocks (test_guest_boot.py: "supplier bpmp not ready").
    assert failed == {
        f"3100000.serial ({UART_NODE}) bound to a driver",
        "BPMP (/bpmp) bound to tegra-bpmp",
    }
    assert code == 1


def test_a_guest_booted_without_its_passed_node_fails(kit, tmp_path: Path):
    guest = GUESTS[UARTA]
    code, checks = verify_guest(
        guest, booted_capture(guest, kit, tmp_path, drop=UART_NODE)
    )
    assert code == 1
    assert not checks[f"{UART_NODE} present"]["ok"]
    node = checks["3100000.serial's node on /platform-bus@c000000"]
    assert (node["ok"], node["found"], node["source"]) == (
        False,
        "no such node",
        "vms/uart-vm.nix",
    )


def test_mgbe0_guest_capture_is_read(kit, tmp_path: Path):
    """MGBE0's node is QEMU's to write (the pinned QEMU's FDT binding); Debian's
    QEMU has none, so the stand-in boots the base tree and the node check fails,
    naming the VM module; the BPMP node and the console hold."""
    guest = GUESTS[MGBE0]
    code, checks = verify_guest(guest, booted_capture(guest, kit, tmp_path))
    failed = {s for s, c in checks.items() if not c["ok"]}
    assert checks["BPMP node /bpmp"]["ok"]
    assert checks["console on ttyAMA0"]["ok"]
    assert failed == {
        "6800000.ethernet's node on /platform-bus@c000000",
        "BPMP (/bpmp) bound to tegra-bpmp",
    }
    assert code == 1
