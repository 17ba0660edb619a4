"""The shipped reference profiles validate clean and show their ownership."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen import catalog
from ghafgen.cli import app
from ghafgen.findings import Severity
from ghafgen.profile.parse import load
from ghafgen.rules.engine import validate
from tests.conftest import PROFILES, ROOT


def test_there_are_reference_profiles():
    names = {p.stem for p in PROFILES}
    assert {
        "orin-agx-uarta",
        "orin-agx-uarti-net-vm",
        "orin-agx-mgbe0-net-vm",
        "orin-agx-wifi-net-vm",
        "orin-agx-gpu-gui-vm",
    } <= names


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("\n## Reference profiles\n", 1)[1].split("\n## ", 1)[0]


def test_readme_tells_each_reference_profiles_board_and_flavour():
    """The README's table has one row per profile, with the board and dt_flavor
    the profile really has (issue 29: NX, Nano and I2C were called mainline)."""
    section = _readme_section()
    rows = {}
    for line in section.splitlines():
        m = re.fullmatch(r"\| `([a-z0-9-]+)` \| `([^`]+)` \| .+ \| (\w+) \|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    assert set(rows) == {p.stem for p in PROFILES}
    flavors = set()
    for path in PROFILES:
        profile = load(path).profile
        assert profile is not None, path
        flavors.add(profile.target.dt_flavor)
        assert rows[path.stem] == (profile.target.board, profile.target.dt_flavor)
    # The prose around the table may not call any of them mainline either.
    if "mainline" not in flavors:
        assert "mainline" not in section.lower()


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_reference_profile_has_no_error_or_warning(path: Path):
    report = validate([path], catalog.load())
    assert report.exit_code == 0
    serious = [f.render() for f in report.findings if f.severity is not Severity.INFO]
    assert serious == []


def test_all_reference_profiles_together():
    result = CliRunner().invoke(app, ["validate", *map(str, PROFILES)])
    assert result.exit_code == 0, result.output
    assert (
        f"{len(PROFILES)} profile(s), {len(PROFILES)} valid, 0 error(s)"
        in result.output
    )


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_show_prints_ownership_table(path: Path):
    result = CliRunner().invoke(app, ["show", str(path)])
    assert result.exit_code == 0, result.output
    assert "device" in result.output and "owner" in result.output
    data = json.loads(
        CliRunner().invoke(app, ["show", "--format", "json", str(path)]).output
    )
    rows = {d["device"]: d for d in data[0]["devices"]}
    report = validate([path], catalog.load())
    profile = report.usable[0][0]
    for pt in profile.enabled:
        assert rows[pt.device]["owner"] == pt.vm and rows[pt.device]["vfio"]


def test_show_gpu_profile_details():
    path = next(p for p in PROFILES if p.stem == "orin-agx-gpu-gui-vm")
    out = CliRunner().invoke(app, ["show", str(path)]).output
    row = next(line for line in out.splitlines() if line.startswith("pcie-x8"))
    assert "gui-vm" in row
    assert "0005:01:00.0 0005:01:00.1" in row
    assert "30/40 W" in row
    assert "/bus@0/pcie@141a0000 iommus emptied" in row
