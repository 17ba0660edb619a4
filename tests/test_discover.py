"""`discover` on the captured trees in tests/data/sysfs, and `new-target` in a pipe and
on a pseudo-terminal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pexpect
import pytest

from ghafgen import catalog
from ghafgen.discover.sysfs import SysfsReader, capture, discover
from tests.conftest import ROOT, run_ghafgen

SYSFS = ROOT / "tests" / "data" / "sysfs"


def ghafgen(
    *args: str, cwd: Path = ROOT, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Outside CI's environment, so that `new-target` behaves as on a developer's pipe."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    return run_ghafgen(*args, cwd=cwd, env=env, stdin=stdin)


def test_agx_gpu_draft_validates_and_passes_gpu_with_audio(tmp_path: Path):
    profile = tmp_path / "p.toml"
    done = ghafgen(
        "discover", "--root", str(SYSFS / "agx-gpu"), "--profile", str(profile)
    )
    assert done.returncode == 0, done.stderr
    assert ghafgen("validate", str(profile)).returncode == 0
    assert "# GUESS:" in profile.read_text()
    assert (
        ghafgen("generate", str(profile), "-o", str(tmp_path / "out")).returncode == 0
    )
    gui = (tmp_path / "out" / "discovered" / "vms" / "gui-vm.nix").read_text()
    assert 'path = "0005:01:00.0";' in gui and 'path = "0005:01:00.1";' in gui
    unit = (tmp_path / "out" / "discovered" / "devices" / "gpu.nix").read_text()
    assert '"pci 0005:01:00.0 0005:01:00.1"' in unit


def test_shared_group_reports_the_root_port_overlay():
    done = ghafgen("discover", "--root", str(SYSFS / "agx-shared-group"))
    assert done.returncode == 0
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("9 "))
    assert (
        "root-port overlay needed: 0005:00:00.0, 141a0000.pcie share the group" in line
    )


def test_orin_nx_is_recognised_and_its_nic_drafted(tmp_path: Path):
    found = discover(SYSFS / "orin-nx", catalog.load())
    assert (found.board, found.cpus) == ("jetson-orin-nx-devkit", 8)
    profile = tmp_path / "nx.toml"
    assert (
        ghafgen(
            "discover", "--root", str(SYSFS / "orin-nx"), "--profile", str(profile)
        ).returncode
        == 0
    )
    text = profile.read_text()
    assert 'device = "pcie-eth"' in text and 'vm = "net-vm"' in text
    assert "# [hardware.nvidia.passthroughs.nvme]" in text  # the host's disk stays
    assert ghafgen("validate", str(profile)).returncode == 0


def test_capture_saves_exactly_what_was_read(tmp_path: Path):
    reader = SysfsReader(SYSFS / "agx-gpu")
    first = discover(SYSFS / "agx-gpu", catalog.load(), reader)
    archive = tmp_path / "cap.tar.gz"
    count = capture(reader, archive)
    with tarfile.open(archive) as tar:
        names = {m.name for m in tar.getmembers() if not m.isdir()}
        tar.extractall(tmp_path / "x", filter="tar")
    assert len(names) == count
    assert names == {p for p in reader.read_paths if not p.endswith("/")}
    assert not [n for n in names if "of_node/compatible" in n and "3140000" in n]
    assert discover(tmp_path / "x", catalog.load()) == first


def test_missing_file_names_the_path(tmp_path: Path):
    root = tmp_path / "root"
    shutil.copytree(SYSFS / "orin-nx", root, symlinks=True)
    (root / "proc/device-tree/compatible").unlink()
    done = ghafgen("discover", "--root", str(root))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: {root}/proc/device-tree/compatible: missing; is --root a captured /sys and "
        "/proc tree (ghafgen discover --capture)?"
    )


def test_unreadable_file_names_the_path(tmp_path: Path):
    root = tmp_path / "root"
    shutil.copytree(SYSFS / "orin-nx", root, symlinks=True)
    (root / "proc/meminfo").unlink()
    (root / "proc/meminfo").mkdir()  # unreadable as a file, even for root
    done = ghafgen("discover", "--root", str(root))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {root}/proc/meminfo: cannot read (")
    assert "Traceback" not in done.stderr


def test_new_target_in_a_pipe_asks_nothing(tmp_path: Path):
    done = ghafgen(
        "new-target",
        "demo",
        "--board",
        "jetson-agx-orin-devkit",
        "--passthrough",
        "uarta:uart-vm",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "next: ghafgen generate profiles/demo.toml -o nix/modules" in done.stderr
    assert ghafgen("validate", "profiles/demo.toml", cwd=tmp_path).returncode == 0
    again = ghafgen(
        "new-target", "demo", "--board", "jetson-agx-orin-devkit", cwd=tmp_path
    )
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "error: profiles/demo.toml exists; ghafgen does not overwrite a profile"
    )


def test_new_target_without_board_in_a_pipe_says_what_to_give(tmp_path: Path):
    done = ghafgen("new-target", "demo", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: give --board, one of: jetson-agx-orin-devkit")
    assert not (tmp_path / "profiles").exists()


def test_new_target_on_a_terminal_asks_for_what_is_missing(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(ROOT)}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "ghafgen", "new-target", "tty-demo"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=30,
    )
    child.expect(r"board \(jetson-agx-orin-devkit, jetson-orin-nx-devkit\)")
    child.sendline("jetson-agx-orin-devkit")
    child.expect("devices to pass, DEVICE:VM")
    child.sendline("mgbe0:net-vm")
    child.expect("vCPUs for net-vm")
    child.sendline("2")
    child.expect("memory for net-vm")
    child.sendline("2G")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    text = (tmp_path / "profiles" / "tty-demo.toml").read_text()
    assert "vcpus = 2" in text and 'memory = "2G"' in text and 'vm = "net-vm"' in text
    assert ghafgen("validate", "profiles/tty-demo.toml", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("flag", ["--passthrough", "--vm"])
def test_new_target_refuses_malformed_flags(tmp_path: Path, flag: str):
    done = ghafgen(
        "new-target",
        "demo",
        "--board",
        "jetson-agx-orin-devkit",
        flag,
        "x",
        cwd=tmp_path,
    )
    assert done.returncode == 2 and done.stderr.startswith(f"error: {flag} 'x'")
