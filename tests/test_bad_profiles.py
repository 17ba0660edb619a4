"""The bad-profile corpus: each file names the rule and line it must produce."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen.cli import app
from ghafgen.findings import Severity
from ghafgen.rules import REGISTRY
from ghafgen.rules.engine import validate
from tests.conftest import BAD


def expectations(path: Path) -> list[tuple[str, int]]:
    head = path.read_bytes().split(b"\n", 1)[0].decode()
    found = [(r, int(n)) for r, n in re.findall(r"(GG\d{3})@(\d+)", head)]
    assert found, f"{path.name} has no '# expect: GGnnn@LINE' header"
    return found


def expects_error(path: Path) -> bool:
    """A case of warnings only (GG011, say) validates with exit 0 and still reports them."""
    return any(REGISTRY[r].severity is Severity.ERROR for r, _ in expectations(path))


def test_corpus_is_large_enough():
    assert len(BAD) >= 40


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_profile_gives_rule_and_line(path: Path):
    report = validate([path])
    got = {(f.rule_id, f.src.line) for f in report.findings}
    for rule_id, line in expectations(path):
        assert (rule_id, line) in got, (
            f"want {rule_id} at line {line}, got {sorted(got)}"
        )
    assert report.exit_code in ((1, 2) if expects_error(path) else (0,))
    for f in report.findings:
        assert f.message and f.hint, f.render()
        assert f.src.file == str(path)
        assert not f.message.endswith("."), f.message
        first = re.split(r"[\s(]", f.message)[0]
        acronym = first.rstrip("s").isupper()
        assert first.islower() or acronym or first[0] in "'\"0123456789", f.message


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_profile_cli_prints_clean_error(path: Path):
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code in ((1, 2) if expects_error(path) else (0,))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    rule_id, line = expectations(path)[0]
    assert re.search(rf"{re.escape(str(path))}:{line}: \w+\[{rule_id}\]", result.output)
    assert "hint:" in result.output
    assert "Traceback" not in result.output
