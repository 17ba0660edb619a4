"""The benchmarks' inputs stay valid: what bench.py times must still validate
and render, or the benchmark ends in a traceback instead of a table. Nothing
here is timed."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.synthetic import SHAPES, profile_text, write_catalog
from tests.conftest import run_ghafgen


def test_synthetic_profiles_validate_and_render(tmp_path: Path):
    catalog = write_catalog(tmp_path / "data", max(n for n, _vms in SHAPES))
    env = {**os.environ, "GHAFGEN_CATALOG": str(catalog)}
    paths = []
    for n, vms in SHAPES:
        path = tmp_path / f"synthetic-{n}.toml"
        path.write_text(profile_text(n, vms), encoding="utf-8")
        paths.append(str(path))
        # One at a time: profiles validated together share a host (GG7xx).
        done = run_ghafgen("validate", str(path), env=env)
        said = done.stdout + done.stderr
        assert done.returncode == 0, said
        # No warning either: bench.py's child refuses errors, and a warning is
        # the first sign of a rule about to bite.
        assert "error[" not in said and "warning[" not in said, said
        assert "1 profile(s), 1 valid, 0 error(s)" in said
    n, _vms = SHAPES[0]
    out = tmp_path / "out"
    made = run_ghafgen("generate", paths[0], "-o", str(out), env=env)
    assert made.returncode == 0, made.stderr
    assert "Traceback" not in made.stderr
    # One module per passed device (generated trees' layout): all of them made it.
    devices = sorted(p.stem for p in (out / "synthetic" / "devices").glob("*.nix"))
    assert devices == sorted(f"syn{i}" for i in range(n))
