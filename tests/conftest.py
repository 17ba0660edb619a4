"""Shared paths and helpers for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghafgen.profile.parse import load_text

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "profiles").glob("*.toml"))
BAD = sorted((ROOT / "tests" / "bad-profiles").glob("*.toml"))

AGX = '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\n'


@pytest.fixture
def parse():
    """Parse TOML text into a profile, failing the test on any finding."""

    def _parse(text: str):
        result = load_text(text, "p.toml")
        assert result.profile is not None, [f.render() for f in result.findings]
        return result.profile

    return _parse
