"""Module SKUs: `discover` names the SKU and its RAM on captured trees of four
Orin modules and writes a profile that validates; `new-target --board` takes a
SKU; an unknown board gets a board draft naming what is missing."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_ghafgen

SYSFS = ROOT / "tests" / "data" / "sysfs"


def ghafgen(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    return run_ghafgen(*args, env=env)


@pytest.mark.parametrize(
    ("tree", "board", "sku", "ram_gib", "cores"),
    [
        ("agx-orin-64gb", "jetson-agx-orin-devkit", "p3701-0005", 64, 12),
        (
            "agx-orin-industrial",
            "jetson-agx-orin-devkit+p3701-0008",
            "p3701-0008",
            64,
            12,
        ),
        ("orin-nx-16gb", "jetson-orin-nx-devkit", "p3767-0000", 16, 8),
        ("orin-nano-8gb", "jetson-orin-nx-devkit+p3767-0005", "p3767-0005", 8, 6),
    ],
)
def test_discover_names_sku_and_ram_and_writes_a_valid_profile(
    tree: str, board: str, sku: str, ram_gib: int, cores: int, tmp_path: Path
):
    done = ghafgen("discover", "--root", str(SYSFS / tree), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["board"], report["sku"], report["ram_mib"]) == (
        board,
        sku,
        ram_gib * 1024,
    )
    text = ghafgen("discover", "--root", str(SYSFS / tree)).stdout
    line = next(ln for ln in text.splitlines() if ln.startswith("module: "))
    assert f"({sku.upper()}): {ram_gib} GiB RAM, {cores} CPU cores" in line
    assert "WARNING" not in line
    profile = tmp_path / f"{tree}.toml"
    done = ghafgen("discover", "--root", str(SYSFS / tree), "--profile", str(profile))
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(profile.read_text())["target"]["board"] == board
    assert f"Module {sku.upper()}" in profile.read_text()
    assert ghafgen("validate", str(profile)).returncode == 0


def test_an_unknown_carrier_gets_a_board_draft_not_a_crash(tmp_path: Path):
    profile = tmp_path / "u.toml"
    done = ghafgen(
        "discover",
        "--root",
        str(SYSFS / "unknown-carrier"),
        "--profile",
        str(profile),
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "wrote a board draft" in done.stderr
    assert not profile.exists()
    draft = (tmp_path / "u.board.toml").read_text()
    doc = tomllib.loads(draft)
    assert doc["board"]["carrier"] == "p3509-0000"
    missing = [ln for ln in draft.splitlines() if ln.startswith("# MISSING:")]
    assert any("carrier p3509-0000" in m for m in missing)
    # The module is known on another carrier: the draft says where.
    assert any("P3767-0000: catalogued on jetson-orin-nx-devkit" in m for m in missing)
    again = ghafgen(
        "discover", "--root", str(SYSFS / "unknown-carrier"), "--profile", str(profile)
    )
    assert again.returncode == 2 and "exists" in again.stderr


def test_an_unknown_sku_of_a_known_carrier_is_named(tmp_path: Path):
    root = tmp_path / "root"
    import shutil

    shutil.copytree(SYSFS / "agx-orin-64gb", root, symlinks=True)
    (root / "proc/device-tree/compatible").write_bytes(
        b"nvidia,p3737-0000+p3701-0099\0nvidia,p3701-0099\0nvidia,tegra234\0"
    )
    done = ghafgen("discover", "--root", str(root))
    assert done.returncode == 0
    assert (
        "missing: module P3701-0099: RAM, CPU cores and fused-off blocks" in done.stdout
    )


@pytest.mark.parametrize(
    ("given", "board"),
    [
        ("p3701-0008", "jetson-agx-orin-devkit+p3701-0008"),
        ("P3767-0003", "jetson-orin-nx-devkit+p3767-0003"),
        ("jetson-orin-nx-devkit+p3767-0001", "jetson-orin-nx-devkit+p3767-0001"),
    ],
)
def test_new_target_takes_a_sku(given: str, board: str, tmp_path: Path):
    done = ghafgen(
        "new-target",
        "t",
        "--board",
        given,
        "--passthrough",
        "uarta:uart-vm",
        "--vm",
        "uart-vm:1:512M",
        "--dir",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert tomllib.loads((tmp_path / "t.toml").read_text())["target"]["board"] == board


def test_new_target_refuses_an_unknown_sku(tmp_path: Path):
    done = ghafgen("new-target", "t", "--board", "p1234-0000", "--dir", str(tmp_path))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "module SKU such as p3701-0005" in done.stderr
