"""nix/modules holds the generated output of every reference profile; it must not drift.

After a deliberate change: `python3 -m pytest tests/test_golden.py --update-golden`,
then review `git diff nix/modules` like code.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.cli.pipeline import generate
from ghafgen.render.files import render_target
from ghafgen.render.output import MANIFEST, manifest
from ghafgen.render.plan import plan
from ghafgen.render.write import contents_facts, host_facts
from ghafgen.rules.engine import validate
from tests.conftest import PROFILES, ROOT

MODULES = ROOT / "nix" / "modules"


def expected(path: Path) -> tuple[str, dict[str, bytes]]:
    report = validate([path], catalog.load())
    profile, board = report.usable[0]
    name = path.relative_to(ROOT).as_posix()
    p = plan(profile, board, name)
    files = render_target(p)
    files[MANIFEST] = manifest(
        profile.target.name,
        name,
        profile.sha256,
        files,
        host_facts(p),
        contents_facts(p),
    )
    return profile.target.name, files


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_committed_output_matches_profile(
    path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(ROOT)
    if request.config.getoption("--update-golden"):
        generate([path.relative_to(ROOT)], MODULES, catalog.load(), force=True)
    target, files = expected(path)
    folder = MODULES / target
    on_disk = {
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
    }
    assert on_disk == set(files), "run pytest --update-golden and review the diff"
    for rel, data in files.items():
        have = (folder / rel).read_bytes()
        if have != data:
            diff = "".join(
                difflib.unified_diff(
                    have.decode().splitlines(keepends=True),
                    data.decode().splitlines(keepends=True),
                    f"nix/modules/{target}/{rel}",
                    "generated",
                )
            )
            pytest.fail(f"{rel} drifted (pytest --update-golden to accept):\n{diff}")


def test_no_stale_targets():
    targets = {expected(p)[0] for p in PROFILES}
    assert {p.name for p in MODULES.iterdir() if p.is_dir()} == targets
