"""`ghafgen verify` on a host capture synthesized from a committed target.

The board is built by tests/livecapture.py from the committed nix/modules files
(overlays applied by fdtoverlay to the 6.12 tree, parameters from host.nix, the
QEMU command line from the VM module and microvm.nix's runner); verify reads
its expectations from the committed manifest. A good board passes; each broken
variant fails on the link of the chain it breaks, and on no other check.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen.cli import app
from tests import livecapture as lc
from tests.conftest import require, run_ghafgen

pytestmark = pytest.mark.real_tools

UARTA = "nvidia-jetson-orin-agx-uarta"
MGBE0 = "nvidia-jetson-orin-agx-mgbe0-net-vm"
WIFI = "nvidia-jetson-orin-agx-wifi-net-vm"


def board(target: str, base: Path, tmp: Path, skip_overlay: str = "") -> Path:
    require("dtc")
    require("fdtoverlay")
    files = lc.TargetFiles.read(target)
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    dtb = lc.applied_tree(files, base, work, skip=skip_overlay)
    root = tmp / "root"
    lc.board_tree(files, dtb, root)
    return root


def verify(root: Path, target: str, *extra: str) -> tuple[int, dict]:
    res = CliRunner().invoke(
        app,
        [
            "verify",
            str(lc.MODULES / target),
            "--root",
            str(root),
            "--format",
            "json",
            *extra,
        ],
    )
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def packed(target: str, root: Path, tmp: Path) -> Path:
    files = lc.TargetFiles.read(target)
    return lc.pack(
        root, tmp / "board.tar.gz", lc.device_nodes(files, lc.groups_of(root))
    )


def failures(doc: dict) -> list[tuple[str, str]]:
    return [(c["link"], c["subject"]) for c in doc["checks"] if not c["ok"]]


@pytest.mark.parametrize("target", [UARTA, MGBE0, WIFI])
def test_a_board_running_the_target_passes(
    target: str, orin_dtb_612: Path, tmp_path: Path
):
    root = board(target, orin_dtb_612, tmp_path)
    code, doc = verify(packed(target, root, tmp_path), target)
    assert failures(doc) == []
    assert code == 0
    subjects = {c["subject"] for c in doc["checks"]}
    links = {c["link"] for c in doc["checks"]}
    assert links == {"kernel", "overlay", "binding", "VM"}
    # A few facts written here from the committed files, to show what was checked.
    if target == UARTA:
        assert (
            "/proc/cmdline has vfio_iommu_type1.allow_unsafe_interrupts=1" in subjects
        )
        assert (
            "/bpmp_host_proxy allowed-clocks" in subjects
        )  # overlays/bpmp-host-proxy.dts
        assert "/bus@0/serial@3100000 iommus" in subjects  # &uarta in the 6.12 tree
        assert "3100000.serial bound to vfio-platform" in subjects
        assert (
            "microvm@uart-vm has -device vfio-platform,host=3100000.serial" in subjects
        )
        assert "microvm@uart-vm QEMU is qemu-platform-bpmp-10.1.5" in subjects
        assert "/dev/bpmp-host group kvm mode 0660" in subjects
        assert (
            "/dev/ghafgen/vfio-3100000.serial leads to the VFIO group of 3100000.serial"
            in subjects
        )
    elif target == WIFI:
        # devices/*.nix binds 0001:01:00.0 to vfio-pci; the VM module gives it to
        # microvm.devices, which the runner turns into -device vfio-pci,host=...
        assert "0001:01:00.0 bound to vfio-pci" in subjects
        assert "microvm@net-vm has -device vfio-pci,host=0001:01:00.0" in subjects
        assert "/bus@0/pcie@14100000 iommus" in subjects  # overlays/*-iommu-group.dts
    else:
        assert "/proc/cmdline has arm-smmu.disable_bypass=0" in subjects
        assert (
            "microvm@net-vm has -device vfio-platform,host=6800000.ethernet,startup-rearm=on"
            in subjects
        )


Break = Callable[[Path], None]


def _cmdline_without(param: str) -> Break:
    def brk(root: Path) -> None:
        f = root / "proc/cmdline"
        words = f.read_text().split()
        assert param in words
        f.write_text(" ".join(w for w in words if w != param) + "\n")

    return brk


def _clocks(change: Callable[[list[int]], list[int]]) -> Break:
    def brk(root: Path) -> None:
        f = root / "sys/firmware/devicetree/base/bpmp_host_proxy/allowed-clocks"
        raw = f.read_bytes()
        ids = [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), 4)]
        f.write_bytes(b"".join(i.to_bytes(4, "big") for i in change(ids)))

    return brk


def _driver(dev: str, driver: str) -> Break:
    def brk(root: Path) -> None:
        lc.link(
            root / f"sys/devices/platform/bus@0/{dev}/driver",
            f"../../../../bus/platform/drivers/{driver}",
        )

    return brk


def _qemu_without(arg: str) -> Break:
    def brk(root: Path) -> None:
        (f,) = root.glob("proc/*/cmdline")
        argv = f.read_bytes().split(b"\0")[:-1]
        i = argv.index(arg.encode())
        del argv[i - 1 : i + 1]
        f.write_bytes(b"".join(a + b"\0" for a in argv))

    return brk


def _allow_also(path: str) -> Break:
    def brk(root: Path) -> None:
        (f,) = root.glob("etc/systemd/system/*.d/overrides.conf")
        f.write_text(f.read_text() + f"DeviceAllow={path} rw\n")

    return brk


def _also_in_group(dev: str, other: str) -> Break:
    def brk(root: Path) -> None:
        group = os.readlink(root / f"sys/devices/platform/bus@0/{dev}/iommu_group")
        lc.link(
            root
            / "sys/kernel/iommu_groups"
            / group.rsplit("/", 1)[-1]
            / "devices"
            / other,
            f"../../../../devices/platform/bus@0/{other}",
        )

    return brk


def _relink(path: str, target: str) -> Break:
    def brk(root: Path) -> None:
        lc.link(root / path, target)

    return brk


# (what breaks, how, the checks that must fail: (link, subject))
BROKEN: list[tuple[str, Break, list[tuple[str, str]]]] = [
    (
        "a missing parameter",
        _cmdline_without("vfio_iommu_type1.allow_unsafe_interrupts=1"),
        [("kernel", "/proc/cmdline has vfio_iommu_type1.allow_unsafe_interrupts=1")],
    ),
    (
        "an allow list one ID short",
        _clocks(lambda ids: ids[:-1]),
        [("overlay", "/bpmp_host_proxy allowed-clocks")],
    ),
    (
        "a foreign clock allowed",
        _clocks(lambda ids: [*ids, 9999]),
        [("overlay", "/bpmp_host_proxy allowed-clocks")],
    ),
    (
        "a device on the wrong driver",
        _driver("3100000.serial", "serial-tegra"),
        [("binding", "3100000.serial bound to vfio-platform")],
    ),
    (
        "a VM started without its device",
        _qemu_without("vfio-platform,host=3100000.serial"),
        [
            ("VM", "microvm@uart-vm has -device vfio-platform,host=3100000.serial"),
        ],
    ),
    (
        "a foreign device allowed to the VM",
        _allow_also("/dev/ghafgen/vfio-6800000.ethernet"),
        [("VM", "microvm@uart-vm DeviceAllow= is its own devices")],
    ),
    (
        "a VM's device link leading to another group",
        _relink("dev/ghafgen/vfio-3100000.serial", "../vfio/12"),
        [
            (
                "VM",
                "/dev/ghafgen/vfio-3100000.serial leads to the VFIO group of 3100000.serial",
            )
        ],
    ),
    (
        "an IOMMU group shared with a device the VM is not given",
        _also_in_group("3100000.serial", "3110000.serial"),
        [("binding", "IOMMU group 11 of 3100000.serial passed whole to uart-vm")],
    ),
]


@pytest.mark.parametrize(
    ("what", "brk", "expected"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_a_broken_board_fails_on_its_link(
    what: str,
    brk: Break,
    expected: list[tuple[str, str]],
    orin_dtb_612: Path,
    tmp_path: Path,
):
    root = board(UARTA, orin_dtb_612, tmp_path)
    brk(root)
    code, doc = verify(packed(UARTA, root, tmp_path), UARTA)
    assert code == 1
    assert failures(doc) == expected
    bad = [c for c in doc["checks"] if not c["ok"]]
    assert all(c["source"] and c["hint"] and c["found"] for c in bad)


def test_an_overlay_not_applied_fails_on_the_overlay_link(
    orin_dtb_612: Path, tmp_path: Path
):
    root = board(UARTA, orin_dtb_612, tmp_path, skip_overlay="uarta-passthrough")
    code, doc = verify(packed(UARTA, root, tmp_path), UARTA)
    assert code == 1
    bad = [c for c in doc["checks"] if not c["ok"]]
    assert {c["link"] for c in bad} == {"overlay"}
    by_subject = {c["subject"]: c for c in bad}
    # 6.12's P3737 tree enables serial@3100000 (status "okay") but gives it no
    # iommus and no dma-coherent; the overlay adds iommus = <&smmu_niso0 0x7f>
    # and dma-coherent.
    assert set(by_subject) == {
        "/bus@0/serial@3100000 iommus",
        "/bus@0/serial@3100000 dma-coherent",
    }
    assert by_subject["/bus@0/serial@3100000 iommus"]["source"] == (
        "overlays/uarta-passthrough.dts"
    )


def test_device_nodes_with_the_wrong_mode_fail_on_the_binding_link(
    orin_dtb_612: Path, tmp_path: Path
):
    root = board(UARTA, orin_dtb_612, tmp_path)
    files = lc.TargetFiles.read(UARTA)
    nodes = [
        (p, gid, 0o600 if p == "dev/bpmp-host" else m)
        for p, gid, m in lc.device_nodes(files, lc.groups_of(root))
    ]
    code, doc = verify(lc.pack(root, tmp_path / "b.tar.gz", nodes), UARTA)
    assert code == 1
    (bad,) = [c for c in doc["checks"] if not c["ok"]]
    assert (bad["link"], bad["found"]) == ("binding", "group kvm, mode 0600")


def test_the_capture_holds_exactly_what_was_read_and_verifies_the_same(
    orin_dtb_612: Path, tmp_path: Path
):
    """A folder capture (as unpacked by a user) read, re-captured, and read again."""
    root = board(UARTA, orin_dtb_612, tmp_path)
    first = tmp_path / "first.tar.gz"
    code, doc = verify(packed(UARTA, root, tmp_path), UARTA, "--capture", str(first))
    assert code == 0
    with tarfile.open(first) as tar:
        names = set(tar.getnames())
    # What verify read, and nothing it did not: the proxy node's files, not the
    # whole tree (6.12's tree has thousands of properties).
    assert "sys/firmware/devicetree/base/bpmp_host_proxy/allowed-clocks" in names
    assert "proc/cmdline" in names
    assert not any(
        n.startswith("sys/firmware/devicetree/base/bus@0/i2c@") for n in names
    )
    assert len(names) < 200
    again, doc2 = verify(first, UARTA)
    assert (again, [c["ok"] for c in doc2["checks"]]) == (
        0,
        [c["ok"] for c in doc["checks"]],
    )
    # Unpacked as a user would (tar cannot make device nodes without root), the
    # folder reads the same but for the device nodes.
    out = tmp_path / "unpacked"
    with tarfile.open(first) as tar:
        plain = [m for m in tar.getmembers() if not (m.ischr() or m.isblk())]
        tar.extractall(out, members=plain, filter="data")
    code3, doc3 = verify(out, UARTA)
    assert code3 == 1
    assert {c["subject"].split()[0] for c in doc3["checks"] if not c["ok"]} == {
        "/dev/vfio/vfio",
        "/dev/vfio/11",
        "/dev/bpmp-host",
    }


def test_a_capture_link_out_of_the_root_is_not_followed(
    orin_dtb_612: Path, tmp_path: Path
):
    root = board(UARTA, orin_dtb_612, tmp_path)
    secret = tmp_path / "outside"
    secret.write_text("vfio_iommu_type1.allow_unsafe_interrupts=1\n")
    (root / "proc/cmdline").unlink()
    (root / "proc/cmdline").symlink_to(secret)
    code, doc = verify(root, UARTA)
    assert code == 1
    assert (
        "kernel",
        "/proc/cmdline has vfio_iommu_type1.allow_unsafe_interrupts=1",
    ) in failures(doc)
    # The refusal is named (the failure above shows the file was not read).
    done = run_ghafgen(
        "verify", str(lc.MODULES / UARTA), "--root", str(root), "--format", "json"
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"note: {root}/proc/cmdline: a link to {str(secret)!r}, outside --root; "
        "ghafgen reads only files inside the tree it is given; read as absent\n"
    )


def test_verify_as_a_user_runs_it(orin_dtb_612: Path, tmp_path: Path):
    """The real command: text output, exit 1 naming the link, exit 2 without a target."""
    root = board(UARTA, orin_dtb_612, tmp_path)
    _cmdline_without("vfio_iommu_type1.allow_unsafe_interrupts=1")(root)
    cap = packed(UARTA, root, tmp_path)
    done = run_ghafgen(
        "verify", str(lc.MODULES / UARTA / "ghafgen-manifest.json"), "--root", str(cap)
    )
    assert done.returncode == 1, done.stderr
    assert (
        "FAIL  kernel   /proc/cmdline has vfio_iommu_type1.allow_unsafe_interrupts=1"
        in done.stdout
    )
    assert (
        "      expected: vfio_iommu_type1.allow_unsafe_interrupts=1 (from host.nix)"
        in done.stdout
    )
    assert "the first broken link is 'kernel'" in done.stdout
    none = run_ghafgen("verify", "--root", str(cap))
    assert none.returncode == 2
    assert none.stderr.startswith("error: /etc/ghafgen: no target installed")
    assert "Traceback" not in none.stderr
    shutil.rmtree(root)


def test_a_fifo_or_an_oversized_file_in_the_capture_is_not_read(
    orin_dtb_612: Path, tmp_path: Path
):
    """A FIFO would block a plain read; verify opens non-blocking and reads only
    regular files, and refuses a file no sysfs file is as large as (exit 2)."""
    root = board(UARTA, orin_dtb_612, tmp_path)
    (root / "proc/cmdline").unlink()
    os.mkfifo(root / "proc/cmdline")
    code, doc = verify(root, UARTA)
    assert code == 1
    assert (
        "kernel",
        "/proc/cmdline has vfio_iommu_type1.allow_unsafe_interrupts=1",
    ) in failures(doc)
    (root / "proc/cmdline").unlink()
    (root / "proc/cmdline").write_bytes(b"x" * (2 << 20))
    res = CliRunner().invoke(
        app, ["verify", str(lc.MODULES / UARTA), "--root", str(root)]
    )
    assert res.exit_code == 2
    assert (
        "larger than 1 MiB; ghafgen reads no file of this kind that large" in res.output
    )
