"""One test per crash class of the hostile-input review: the message each now gives."""

from __future__ import annotations

import shutil
from pathlib import Path

from ghafgen.profile.parse import load_text
from tests.conftest import ROOT, require, run_ghafgen

UARTA = ROOT / "profiles" / "orin-agx-uarta.toml"
TARGET = "nvidia-jetson-orin-agx-uarta"


def test_deep_nesting_is_a_finding_not_a_recursion_error():
    for text in (
        "x = " + "[" * 600 + "]" * 600,
        "x = " + "{a = " * 1000 + "1" + "}" * 1000,
    ):
        result = load_text(text, "p.toml")
        assert [f.rule_id for f in result.findings] == ["GG001"]
        assert "nested too deeply" in result.findings[0].message


def test_a_lock_file_of_the_wrong_shape_is_gg010(tmp_path: Path):
    profile = tmp_path / "p.toml"
    profile.write_text(
        UARTA.read_text() + '\n[sources.ghaf]\nurl = "https://example.org/g.git"\n'
    )
    for bad in (
        "[1, 2]",
        '{"sources": [1]}',
        '{"sources": {"ghaf": {"url": 1}}}',
        '{"sources": {"ghaf": {"url": "--x", "rev": "", "hash": ""}}}',
    ):
        (tmp_path / "ghafgen.lock").write_text(bad)
        done = run_ghafgen("validate", str(profile))
        assert done.returncode == 1, bad
        assert (
            "error[GG010]" in done.stdout and "not a ghafgen lock file" in done.stdout
        )
        assert "Traceback" not in done.stdout + done.stderr


def test_check_counts_no_hidden_temp_tree_as_a_target(tmp_path: Path):
    require("nix-instantiate")
    out = tmp_path / "out"
    assert run_ghafgen("generate", str(UARTA), "-o", str(out)).returncode == 0
    shutil.copytree(out / TARGET, out / f".{TARGET}.tmp-999")
    shutil.copytree(out / TARGET, out / f".{TARGET}.old")
    done = run_ghafgen("check", str(out), "--format", "json")
    import json

    targets = {r["target"] for r in json.loads(done.stdout)["results"]}
    assert targets == {TARGET}


def test_garbage_in_sysfs_names_the_file(tmp_path: Path):
    root = tmp_path / "root"
    shutil.copytree(ROOT / "tests/data/sysfs/agx-gpu", root, symlinks=True)
    dev = root / "sys/bus/pci/devices/0005:01:00.0"
    (dev / "resource").write_text("0x1000 nothex 0x0\n")
    done = run_ghafgen("discover", "--root", str(root))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: {dev}/resource: 'nothex' is not a hex number; is this a real or "
        "captured sysfs tree?"
    )


def test_path_options_are_checked_before_running(tmp_path: Path):
    tarball = tmp_path / "linux.tar.xz"
    tarball.write_bytes(b"\xfd7zXZ\x00")
    done = run_ghafgen("check", str(ROOT / "nix/modules"), "--kernel-src", str(tarball))
    assert done.returncode == 2
    assert (
        "Invalid value for '--kernel-src'" in done.stderr and "is a file" in done.stderr
    )
    done = run_ghafgen("check", str(ROOT / "nix/modules"), "--base-dtb", str(UARTA))
    assert done.returncode == 2
    assert "is not a compiled device tree (.dtb)" in done.stderr


def test_format_is_a_fixed_choice():
    done = run_ghafgen("validate", "--format", "yaml", str(UARTA))
    assert done.returncode == 2
    assert "'yaml' is not one of 'text', 'json'" in done.stderr
    assert "--format <text|json>" in run_ghafgen("validate", "--help").stdout


def test_capture_is_byte_reproducible_and_never_overwrites(tmp_path: Path):
    sysfs = str(ROOT / "tests/data/sysfs/agx-gpu")
    one, two = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    assert (
        run_ghafgen("discover", "--root", sysfs, "--capture", str(one)).returncode == 0
    )
    import time

    time.sleep(1.1)  # gzip would stamp a new time into its header
    assert (
        run_ghafgen("discover", "--root", sysfs, "--capture", str(two)).returncode == 0
    )
    assert one.read_bytes() == two.read_bytes()
    again = run_ghafgen("discover", "--root", sysfs, "--capture", str(one))
    assert again.returncode == 2
    assert f"error: {one} exists; ghafgen does not overwrite a capture" in again.stderr
    assert one.read_bytes() == two.read_bytes()
