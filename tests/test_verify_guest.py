"""`ghafgen verify --guest` on a guest that is wrong, booted here.

Every reference guest is booted, captured and verified in tests/test_guest_boot.py
(each check holds, or fails or is not provable exactly as the stand-ins
account for: tests/guestverify.py). Here, the UARTA guest, booted as that test
boots it (its runner's command line, the committed vms/uart-vm.dts on the base
tree, /init's capture), two ways it must fail:
- booted without its passed node: the node check fails, naming the guest link
  and the VM module;
- its capture showing a kernel that HAS the BPMP driver (a tegra-bpmp folder
  added to the guest's /sys/bus/platform/drivers): the BPMP node and the UART
  it clocks are then unbound for no reason the guest shows, so they fail
  instead of being not provable.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import require
from tests.guestboot import (
    Guest,
    base_tree,
    merged_tree,
    qemu_argv,
    reference_guests,
    tree_to_boot,
)
from tests.guestinit import StandIns, boot, initramfs, stand_ins
from tests.guestverify import BPMP_DRIVER, FAILED, UNPROVEN, verify_guest

pytestmark = [pytest.mark.slow, pytest.mark.real_tools]

UARTA = "nvidia-jetson-orin-agx-uarta/uart-vm"
# The passed UART's node as vms/uart-vm.dts writes it on QEMU's platform bus
# (committed nix/modules/nvidia-jetson-orin-agx-uarta/vms/uart-vm.dts).
UART_NODE = "/platform-bus@c000000/serial@0"
# Its checks, by the device key and bus of the committed manifest.
UART_ON_BUS = "3100000.serial's node on /platform-bus@c000000"
UART_BOUND = f"3100000.serial ({UART_NODE}) bound to a driver"
BPMP_BOUND = f"BPMP (/bpmp) bound to {BPMP_DRIVER}"


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
    return found, initramfs(found.busybox, folder / "init.cpio")


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
    cap = result.capture(tmp / "guest.tar.gz")
    assert cap is not None, (
        f"{guest.id}: no capture; the guest said:\n{result.output[-3000:]}"
    )
    return cap


@pytest.fixture(scope="module")
def uarta() -> Guest:
    (guest,) = [g for g in reference_guests() if g.id == UARTA]
    return guest


def test_a_guest_booted_without_its_passed_node_fails(kit, uarta, tmp_path: Path):
    got = verify_guest(uarta, booted_capture(uarta, kit, tmp_path, drop=UART_NODE))
    assert got.code == FAILED
    assert f"{UART_NODE} present" in got.subjects("failed")
    node = got.checks[UART_ON_BUS]
    assert (node["ok"], node["unproven"], node["link"], node["found"]) == (
        False,
        False,
        "guest",
        "no such node",
    )
    assert node["source"] == "vms/uart-vm.nix"


def with_driver(capture: Path, driver: str, dest: Path) -> Path:
    """A copy of the capture whose /sys/bus/platform/drivers also lists `driver`."""
    out = io.BytesIO()
    with (
        tarfile.open(capture) as src,
        tarfile.open(fileobj=out, mode="w:gz") as tar,
    ):
        names = src.getnames()
        for member in src.getmembers():
            tar.addfile(member, src.extractfile(member) if member.isfile() else None)
        folder = tarfile.TarInfo(f"./sys/bus/platform/drivers/{driver}")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        assert folder.name not in names
        tar.addfile(folder)
    dest.write_bytes(out.getvalue())
    return dest


def test_a_kernel_with_the_bpmp_driver_that_did_not_bind_fails(
    kit, uarta, tmp_path: Path
):
    capture = booted_capture(uarta, kit, tmp_path)
    as_booted = verify_guest(uarta, capture)
    # Debian's kernel: no tegra-bpmp at all, so not provable (the boot test's case).
    assert as_booted.code == UNPROVEN
    assert as_booted.subjects("unproven") == {UART_BOUND, BPMP_BOUND}
    assert BPMP_DRIVER in as_booted.checks[BPMP_BOUND]["hint"]
    assert "/bpmp" in as_booted.checks[UART_BOUND]["hint"]
    claimed = verify_guest(
        uarta, with_driver(capture, BPMP_DRIVER, tmp_path / "claimed.tar.gz")
    )
    assert claimed.code == FAILED
    assert claimed.subjects("unproven") == set()
    assert claimed.subjects("failed") == {UART_BOUND, BPMP_BOUND}
    assert claimed.checks[BPMP_BOUND]["found"] == "bpmp: no driver"
