"""Files ghafgen reads by itself, made hostile (issue 25, items 9-14).

A lock file beside a profile, a captured /sys and /proc tree, a vendor DTS
and a generated folder's manifest are someone else's files. Each case here
plants what the issue names (deep nesting, a FIFO, /dev/zero, a link out of
--root, terminal escapes, /incbin/, a deleted generated file, zero cells) and
runs `python -m ghafgen` as a user would, with a timeout: a clear message
naming the file, an exit code, no traceback, no hang, and nothing from
outside the tree in what ghafgen prints or writes. (Item 8, the output
folder's temp tree, is in tests/test_output_links.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ghafgen.discover.sysfs import SysfsReader
from tests.conftest import ROOT, require

GOOD = ROOT / "profiles" / "orin-agx-uarta.toml"
SYSFS = ROOT / "tests" / "data" / "sysfs" / "agx-gpu"
TARGET = "nvidia-jetson-orin-agx-uarta"
SECRET = "s3cret-outside-the-root"
# Far longer than any of these runs takes; a hang fails instead of stalling.
TIMEOUT = 120


def ghafgen(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`python -m ghafgen` with a timeout: a FIFO read would block forever."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    """A copy of a captured AGX Orin tree, to plant things in."""
    root = tmp_path / "root"
    shutil.copytree(SYSFS, root, symlinks=True)
    return root


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    return path


def _replace(path: Path) -> Path:
    path.unlink()
    return path


# Item 9: tracebacks.


@pytest.fixture
def pinned(tmp_path: Path) -> Path:
    """A profile that names a source, so that validation reads its ghafgen.lock."""
    p = tmp_path / "p.toml"
    p.write_text(
        GOOD.read_text() + '\n[sources.ghaf]\nurl = "https://example.invalid/g.git"\n'
    )
    return p


def test_a_lock_nested_100000_deep_is_a_finding(pinned: Path):
    # 700 KiB, under the lock's 1 MiB cap: the JSON reader itself meets the depth.
    (pinned.parent / "ghafgen.lock").write_text('{"s":' * 100_000 + "1" + "}" * 100_000)
    done = ghafgen("validate", str(pinned))
    assert done.returncode == 1
    assert (
        f"{pinned}:1: error[GG010]: {pinned.parent}/ghafgen.lock: not a ghafgen lock "
        "file (nested too deep to read); delete it and run ghafgen prefetch"
    ) in done.stdout
    done = ghafgen("prefetch", str(pinned))
    assert done.returncode == 2
    assert "ghafgen.lock: not a ghafgen lock file (nested too deep to read)" in (
        done.stderr
    )


def test_an_iommu_group_that_is_not_a_number_names_the_folder(capture: Path):
    (capture / "sys/kernel/iommu_groups/x/devices").mkdir(parents=True)
    done = ghafgen("discover", "--root", str(capture))
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {capture}/sys/kernel/iommu_groups/x: 'x' is not an IOMMU group "
        "number\n"
    )


def test_meminfo_as_dev_zero_is_refused_not_read(capture: Path):
    meminfo = _replace(capture / "proc/meminfo")
    meminfo.symlink_to("/dev/zero")
    done = ghafgen("discover", "--root", str(capture))
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {meminfo}: a link to '/dev/zero', outside --root; ghafgen reads "
        "only files inside the tree it is given\n"
    )
    if os.geteuid() == 0:  # mknod needs root: the device node itself, in the tree
        _replace(meminfo)
        os.mknod(meminfo, 0o444 | 0o020000, os.makedev(1, 5))  # /dev/zero's 1:5
        done = ghafgen("discover", "--root", str(capture))
        assert done.returncode == 2
        assert done.stderr == (
            f"error: {meminfo}: cannot read (a character device, not a regular file)\n"
        )


def test_a_file_past_the_cap_is_refused_with_a_note(capture: Path):
    meminfo = _replace(capture / "proc/meminfo")
    meminfo.write_bytes(b"MemTotal: 1 kB\n" + b"\0" * (2 << 20))
    done = ghafgen("discover", "--root", str(capture))
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {meminfo}: larger than 1 MiB; ghafgen reads no file of this kind "
        "that large\n"
    )


# Item 10: FIFOs and links out of --root.


def test_a_fifo_as_the_lock_file_does_not_hang_validate(pinned: Path):
    os.mkfifo(pinned.parent / "ghafgen.lock")
    done = ghafgen("validate", str(pinned))
    assert done.returncode == 1
    assert (
        f"error[GG010]: {pinned.parent}/ghafgen.lock: cannot read (a FIFO, not a "
        "regular file); delete it and run ghafgen prefetch"
    ) in done.stdout


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("proc/meminfo", "cannot read (a FIFO, not a regular file)"),
        ("proc/device-tree/compatible", "cannot read (a FIFO, not a regular file)"),
        ("sys/bus/pci/devices", "cannot list (Not a directory)"),
    ],
)
def test_a_fifo_in_a_capture_does_not_hang_discover(
    capture: Path, rel: str, message: str
):
    path = capture / rel
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    os.mkfifo(path)
    done = ghafgen("discover", "--root", str(capture))
    assert done.returncode == 2
    assert done.stderr == f"error: {path}: {message}\n"


@pytest.mark.parametrize("absolute", [True, False])
def test_a_link_out_of_the_root_copies_nothing_from_outside(
    capture: Path, secret: Path, tmp_path: Path, absolute: bool
):
    model = _replace(capture / "proc/device-tree/model")
    target = str(secret) if absolute else "../../../secret"
    assert (model.parent / target).resolve() == secret  # the link does lead there
    model.symlink_to(target)
    draft, archive = tmp_path / "draft.toml", tmp_path / "cap.tar.gz"
    done = ghafgen(
        "discover",
        "--root",
        str(capture),
        "--profile",
        str(draft),
        "--capture",
        str(archive),
    )
    assert done.returncode == 2
    assert SECRET not in done.stdout + done.stderr
    how = (
        f"a link to {str(secret)!r}, outside --root"
        if absolute
        else "a link to '../../../secret' leads above --root"
    )
    assert done.stderr == (
        f"error: {model}: {how}; ghafgen reads only files inside the tree it is given\n"
    )
    assert not draft.exists() and not archive.exists()


def test_links_inside_the_root_are_still_followed(capture: Path, tmp_path: Path):
    """A capture's own links (relative, or absolute into the root) are the tree's."""
    model = capture / "proc/device-tree/model"
    (capture / "proc/model-copy").write_bytes(model.read_bytes())
    _replace(model).symlink_to(capture / "proc/model-copy")
    compatible = capture / "proc/device-tree/compatible"
    (capture / "proc/compat-copy").write_bytes(compatible.read_bytes())
    _replace(compatible).symlink_to("../compat-copy")
    archive = tmp_path / "cap.tar.gz"
    done = ghafgen("discover", "--root", str(capture), "--capture", str(archive))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "NVIDIA Jetson AGX Orin Developer Kit: Jetson AGX Orin developer kit"
    )
    # The capture holds the bytes read, under the names they were read by.
    with tarfile.open(archive) as tar:
        member = tar.getmember("proc/device-tree/model")
        assert member.isreg()
        f = tar.extractfile(member)
        assert f is not None and f.read() == (capture / "proc/model-copy").read_bytes()


def test_the_live_tree_resolves_sysfs_links_as_the_kernel_does():
    """`--root /`: /sys/class/net/lo is a relative link into /sys/devices."""
    if not Path("/sys/class/net/lo").is_symlink():
        pytest.skip("no sysfs loopback link here")
    reader = SysfsReader(Path("/"))
    # The loopback device's address is all zeros (Linux drivers/net/loopback.c).
    assert reader.text("sys/class/net/lo/address") == "00:00:00:00:00:00\n"
    assert reader.link("sys/class/net/lo") == "lo"


# Item 11: terminal output escaped.

ESC_TITLE = "\x1b]0;owned\x07"
FORGED = "\nerror[GG001]: forged by the tree"


def test_sysfs_strings_reach_the_terminal_escaped(capture: Path):
    (capture / "proc/device-tree/model").write_bytes(
        f"Orin{ESC_TITLE}{FORGED}".encode() + b"\0"
    )
    driver = capture / "sys/bus/pci/devices/0005:01:00.0/driver"
    _replace(driver).symlink_to(f"../../../bus/pci/drivers/nv{ESC_TITLE}\nerror[GG002]")
    done = ghafgen("discover", "--root", str(capture))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert not [ln for ln in done.stdout.splitlines() if ln.startswith("error[")]
    assert done.stdout.splitlines()[0].startswith(
        "Orin\\x1b]0;owned\\x07\\nerror[GG001]: forged by the tree: Jetson AGX Orin"
    )
    assert "(nv\\x1b]0;owned\\x07\\nerror[GG002])" in done.stdout
    # JSON keeps the value as it is; json.dumps escapes it by itself.
    raw = ghafgen("discover", "--root", str(capture), "--format", "json")
    assert "\x1b" not in raw.stdout
    assert json.loads(raw.stdout)["model"] == f"Orin{ESC_TITLE}{FORGED}"


def test_an_unknown_board_is_named_escaped_and_its_draft_stays_toml(
    capture: Path, tmp_path: Path
):
    import tomllib

    compat = "nvidia,p9999-0000+p9999-0000\0" + f"x{ESC_TITLE}{FORGED}\0"
    (capture / "proc/device-tree/compatible").write_bytes(compat.encode())
    profile = tmp_path / "p.toml"
    done = ghafgen("discover", "--root", str(capture), "--profile", str(profile))
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert "x\\x1b]0;owned\\x07\\nerror[GG001]: forged by the tree" in done.stderr
    board = tmp_path / "p.board.toml"
    text = board.read_text()
    assert "\x1b" not in text
    assert not [ln for ln in text.splitlines() if ln.startswith("error[")]
    tomllib.loads(text)  # still one valid TOML document


def test_a_file_name_in_the_checked_folder_reaches_the_terminal_escaped(
    generated: Path,
):
    require("nix-instantiate")
    require("dtc")
    (generated / f"x{ESC_TITLE}{FORGED}.nix").write_text("{ a = ; }\n")
    done = ghafgen("check", str(generated), "--no-schemas")
    assert done.returncode == 1
    assert "\x1b" not in done.stdout
    assert not [ln for ln in done.stdout.splitlines() if ln.startswith("error[")]
    assert (
        f"FAIL nix-parse  {TARGET}/x\\x1b]0;owned\\x07\\nerror[GG001]: forged by "
        "the tree.nix: error: syntax error"
    ) in done.stdout


# Item 12: catalog import --dts reads no other file.


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ('  blob = /incbin/("{secret}");', "/incbin/"),
        ('/include/ "{secret}"', "/include/"),
    ],
)
def test_a_dts_that_names_another_file_is_refused_before_dtc(
    tmp_path: Path, secret: Path, line: str, word: str
):
    require("dtc")
    dts = tmp_path / "vendor.dts"
    dts.write_text(
        "/dts-v1/;\n/ {\n#address-cells = <2>;\n#size-cells = <2>;\n"
        "serial@3100000 {\n"
        '  compatible = "nvidia,tegra234-uart";\n'
        "  reg = <0 0x3100000 0 0x10000>;\n" + line.format(secret=secret) + "\n};\n};\n"
    )
    # The vector is live: dtc itself puts the file's bytes into the tree
    # (/include/ here is a syntax error after the node, so only /incbin/ shows it).
    if word == "/incbin/":
        out = tmp_path / "direct.dtb"
        subprocess.run(
            ["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(out), "--", str(dts)],
            check=True,
        )
        assert SECRET.encode() in out.read_bytes()
    done = ghafgen("catalog", "import", "--dts", str(dts))
    assert done.returncode == 2
    assert SECRET not in done.stdout + done.stderr
    assert done.stderr == (
        f"error: {dts}:8: {word} makes dtc read another file into the tree; ghafgen "
        "imports one self-contained source: preprocess it and inline what it "
        "includes, or compile it yourself and pass --dtb\n"
    )


def test_a_fifo_as_the_vendor_tree_is_refused(tmp_path: Path):
    fifo = tmp_path / "vendor.dtb"
    os.mkfifo(fifo)
    done = ghafgen("catalog", "import", "--dtb", str(fifo))
    assert done.returncode == 2
    assert done.stderr == f"error: {fifo}: cannot read (a FIFO, not a regular file)\n"


# Item 13: check against the manifest.


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    assert ghafgen("generate", str(GOOD), "-o", str(out)).returncode == 0
    return out / TARGET


def test_a_deleted_generated_file_fails_check(generated: Path):
    require("nix-instantiate")
    require("dtc")
    (generated / "vms/uart-vm.nix").unlink()
    done = ghafgen("check", str(generated), "--no-schemas")
    assert done.returncode == 1
    fails = [ln for ln in done.stdout.splitlines() if ln.startswith("FAIL")]
    assert fails == [
        f"FAIL manifest   {TARGET}/vms/uart-vm.nix: missing; the manifest lists it; "
        "regenerate with ghafgen generate"
    ]


def test_a_fifo_among_the_generated_files_does_not_hang_check(generated: Path):
    """nix-instantiate and dtc would block on it; check names it and goes on."""
    require("nix-instantiate")
    require("dtc")
    for rel in ("vms/uart-vm.nix", "overlays/uarta-passthrough.dts"):
        (generated / rel).unlink()
        os.mkfifo(generated / rel)
    done = ghafgen("check", str(generated), "--no-schemas")
    assert done.returncode == 1
    fails = [ln for ln in done.stdout.splitlines() if ln.startswith("FAIL")]
    assert fails == [
        f"FAIL manifest   {TARGET}/{rel}: cannot read (a FIFO, not a regular file)"
        for rel in ("overlays/uarta-passthrough.dts", "vms/uart-vm.nix")
    ]


def test_the_manifest_check_names_each_kind_of_difference(generated: Path):
    from ghafgen.toolchain.manifestcheck import differences

    assert differences(generated) == []
    (generated / "vms/uart-vm.nix").unlink()
    os.mkfifo(generated / "vms/uart-vm.nix")
    host = generated / "host.nix"
    host.write_text(host.read_text() + "# edited\n")
    default = generated / "default.nix"
    (generated / "default.nix.real").write_bytes(default.read_bytes())
    _replace(default).symlink_to("default.nix.real")  # same bytes, through a link
    shutil.rmtree(generated / "devices")
    assert differences(generated) == [
        ("default.nix", "cannot read (a symlink, not a regular file)"),
        (
            "devices/uarta.nix",
            "missing (no folder devices); regenerate with ghafgen generate",
        ),
        (
            "host.nix",
            "differs from what ghafgen wrote (sha256 not as in ghafgen-manifest.json)",
        ),
        ("vms/uart-vm.nix", "cannot read (a FIFO, not a regular file)"),
    ]
    (generated / "ghafgen-manifest.json").unlink()
    assert differences(generated) == [("ghafgen-manifest.json", "missing")]


# Item 14: zero cells.


@pytest.mark.parametrize(
    ("cells", "reg", "count"),
    [("<0>", "<0>", 2), ("<2>", "<1>", 2)],
    ids=["zero-cells", "not-a-multiple"],
)
def test_a_reg_the_cell_counts_cannot_split_is_an_error(
    tmp_path: Path, cells: str, reg: str, count: int
):
    require("dtc")
    dts = tmp_path / "cells.dts"
    dts.write_text(
        f"/dts-v1/;\n/ {{\n#address-cells = {cells};\n#size-cells = {reg};\n"
        'serial@0 {\n  compatible = "nvidia,tegra234-uart";\n  reg = <1 2>;\n};\n};\n'
    )
    done = ghafgen("catalog", "import", "--dts", str(dts))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"error: {dts}: /serial@0: 'reg' has {count} cells, which the parent's "
        f"#address-cells = {cells} and #size-cells = {reg} cannot split into "
        "(address, size) entries; fix the tree (dtc's reg_format check says the same)\n"
    )
