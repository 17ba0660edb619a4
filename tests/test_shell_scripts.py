"""Every shell script ghafgen writes or ships passes shellcheck: the generated
bind-vfio.sh and pin-vcpus.sh of every reference target, and scripts/."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
GENERATED = sorted((ROOT / "nix" / "modules").glob("*/*.sh"))
OURS = sorted((ROOT / "scripts").glob("*.sh")) + [ROOT / ".ci" / "run"]


def test_there_are_generated_scripts_to_check() -> None:
    names = {p.name for p in GENERATED}
    assert {"bind-vfio.sh", "pin-vcpus.sh"} <= names


@pytest.mark.real_tools
@pytest.mark.parametrize(
    "script", GENERATED + OURS, ids=lambda p: str(p.relative_to(ROOT))
)
def test_shellcheck_finds_nothing(script: Path) -> None:
    shellcheck = require("shellcheck")
    # -x follows `. scripts/backports.sh` from the project root, as CI runs it.
    done = subprocess.run(
        [shellcheck, "-x", "--", str(script.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.real_tools
def test_shellcheck_would_see_an_unquoted_variable(tmp_path: Path) -> None:
    shellcheck = require("shellcheck")
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\nrm -rf $1/x\n")
    done = subprocess.run(
        [shellcheck, str(bad)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "SC2086" in done.stdout
