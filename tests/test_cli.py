"""The command line: help, version, formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ghafgen import __version__
from ghafgen.cli import app
from tests.conftest import PROFILES, ROOT

runner = CliRunner()


def test_version_and_help():
    assert runner.invoke(app, ["--version"]).output.strip() == f"ghafgen {__version__}"
    out = runner.invoke(app, ["--help"]).output
    for command in ("validate", "show", "schema", "rules"):
        assert command in out


def test_python_dash_m_runs():
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and __version__ in done.stdout


def test_validate_json_matches_text(tmp_path: Path):
    bad = tmp_path / "p.toml"
    bad.write_text(
        '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\n\n[vms.a]\n'
        'vcpus = 99\nmemory = "1G"\n'
    )
    data = json.loads(
        runner.invoke(app, ["validate", "--format", "json", str(bad)]).output
    )
    rules = {(f["rule"], f["line"]) for f in data["findings"]}
    assert ("GG501", 6) in rules and data["exit"] == 1
    text = runner.invoke(app, ["validate", str(bad)])
    assert text.exit_code == 1
    assert f"{bad}:6: error[GG501]: VM 'a' has 99 vCPUs" in text.output


def test_missing_file_is_unusable_input(tmp_path: Path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "cannot read profile" in result.output


def test_syntax_error_is_unusable_input(tmp_path: Path):
    bad = tmp_path / "p.toml"
    bad.write_text('[target\nname = "t"\n')
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:1: error[GG001]: TOML syntax" in result.output


def test_bad_format_option():
    result = runner.invoke(app, ["validate", "--format", "xml", str(PROFILES[0])])
    assert result.exit_code == 2


def test_rules_lists_every_rule():
    out = runner.invoke(app, ["rules"]).output
    data = json.loads(runner.invoke(app, ["rules", "--format", "json"]).output)
    assert len(data) >= 35
    for r in data:
        assert f"{r['id']} {r['name']}" in out


def test_show_boards():
    out = runner.invoke(app, ["show", "--boards"]).output
    assert "jetson-agx-orin-devkit" in out and "pcie-x8" in out


def test_rules_page_is_generated_from_the_registry():
    page = (ROOT / "docs" / "rules.md").read_text()
    assert page == runner.invoke(app, ["rules", "--format", "markdown"]).output, (
        "regenerate: ghafgen rules --format markdown > docs/rules.md"
    )
    for r in json.loads(runner.invoke(app, ["rules", "--format", "json"]).output):
        assert f"| {r['id']} | {r['name']} |" in page
