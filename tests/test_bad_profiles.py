"""The bad-profile corpus: each file names the rule and line it must produce."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen import catalog
from ghafgen.cli import app
from ghafgen.findings import Finding, Severity
from ghafgen.rules import REGISTRY
from ghafgen.rules.engine import validate
from tests.conftest import BAD, BAD_HOSTS


def expectations(path: Path, *, required: bool = True) -> list[tuple[str, int]]:
    head = path.read_bytes().split(b"\n", 1)[0].decode()
    found = [(r, int(n)) for r, n in re.findall(r"(GG\d{3})@(\d+)", head)]
    assert found or not required, f"{path.name} has no '# expect: GGnnn@LINE' header"
    return found


def host_expectations(folder: Path) -> list[tuple[Path, str, int]]:
    """(file, rule, line) from each profile's header; the other files of the
    host say on their first line why they are there."""
    found = [
        (path, rule_id, line)
        for path in sorted(folder.glob("*.toml"))
        for rule_id, line in expectations(path, required=False)
    ]
    assert found, f"{folder.name}: no profile has a '# expect: GGnnn@LINE' header"
    return found


def expects_error(path: Path) -> bool:
    """A case of warnings only (GG011, say) validates with exit 0 and still reports them."""
    return any(REGISTRY[r].severity is Severity.ERROR for r, _ in expectations(path))


def assert_well_written(f: Finding) -> None:
    """A message and a hint; the message starts in lower case and has no final stop."""
    assert f.message and f.hint, f.render()
    assert not f.message.endswith("."), f.message
    first = re.split(r"[\s(]", f.message)[0]
    acronym = first.rstrip("s").isupper()
    assert first.islower() or acronym or first[0] in "'\"0123456789", f.message


def test_corpus_is_large_enough():
    assert len(BAD) >= 40
    assert len(BAD_HOSTS) >= 8


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_profile_gives_rule_and_line(path: Path):
    report = validate([path], catalog.load())
    got = {(f.rule_id, f.src.line) for f in report.findings}
    for rule_id, line in expectations(path):
        assert (rule_id, line) in got, (
            f"want {rule_id} at line {line}, got {sorted(got)}"
        )
    assert report.exit_code in ((1, 2) if expects_error(path) else (0,))
    for f in report.findings:
        assert f.src.file == str(path)
        assert_well_written(f)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_profile_cli_prints_clean_error(path: Path):
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code in ((1, 2) if expects_error(path) else (0,))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    rule_id, line = expectations(path)[0]
    assert re.search(rf"{re.escape(str(path))}:{line}: \w+\[{rule_id}\]", result.output)
    assert "hint:" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("folder", BAD_HOSTS, ids=[p.name for p in BAD_HOSTS])
def test_bad_host_gives_rule_and_line(folder: Path):
    files = sorted(folder.glob("*.toml"))
    assert len(files) >= 2, f"{folder.name}: a host case has two profiles or more"
    for path in files:
        alone = validate([path], catalog.load())
        # Each profile is fine on its own: the host is what breaks the rule.
        assert alone.errors == 0, [f.render() for f in alone.findings]
    report = validate(files, catalog.load())
    got = {(f.src.file, f.rule_id, f.src.line) for f in report.findings}
    for path, rule_id, line in host_expectations(folder):
        assert (str(path), rule_id, line) in got, (
            f"want {rule_id} at {path.name}:{line}, got {sorted(got)}"
        )
    assert report.exit_code == 1 and report.valid == 0
    for f in report.findings:
        assert f.src.file in {str(p) for p in files}
        assert_well_written(f)


@pytest.mark.parametrize("folder", BAD_HOSTS, ids=[p.name for p in BAD_HOSTS])
def test_bad_host_cli_prints_clean_error(folder: Path):
    files = sorted(folder.glob("*.toml"))
    result = CliRunner().invoke(app, ["validate", *map(str, files)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    path, rule_id, line = host_expectations(folder)[0]
    assert re.search(
        rf"{re.escape(str(path))}:{line}: error\[{rule_id}\]", result.output
    )
    assert "hint:" in result.output
    assert "Traceback" not in result.output
