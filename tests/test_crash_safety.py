"""`generate` killed at random points leaves the old or the new complete set, never a mix;
two runs at once are serialized by the output directory's lock."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ghafgen.render.output import MANIFEST, sha256
from tests.conftest import PROFILES, ROOT

KILLS = int(
    os.environ.get("GHAFGEN_CRASH_KILLS", "40" if os.environ.get("CI") else "16")
)


def variant(folder: Path, bump: int) -> list[Path]:
    """Copies of the reference profiles whose generated files differ by `bump`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in PROFILES:
        text = p.read_text()
        assert 'description = "' in text, p  # every reference profile has one
        dest = folder / p.name
        dest.write_text(
            text.replace('description = "', f'description = "variant {bump}: ', 1)
        )
        out.append(dest)
    return out


def snapshot(outdir: Path) -> dict[str, dict[str, bytes]]:
    """target -> files, of every complete target folder."""
    return {
        d.name: {
            p.relative_to(d).as_posix(): p.read_bytes()
            for p in d.rglob("*")
            if p.is_file()
        }
        for d in outdir.iterdir()
        if d.is_dir() and not d.name.startswith(".")
    }


def generate(profiles: list[Path], outdir: Path, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ghafgen",
            "generate",
            *map(str, profiles),
            "-o",
            str(outdir),
        ],
        cwd=cwd,
        # This checkout's ghafgen, not whichever one is installed (cwd is a temp dir).
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def assert_consistent(
    state: dict[str, dict[str, bytes]], sets: list[dict[str, dict[str, bytes]]]
) -> None:
    for target, files in state.items():
        manifest = files[MANIFEST].decode()
        for rel, data in files.items():
            if rel != MANIFEST:
                assert f'"{rel}": "{sha256(data)}"' in manifest, (
                    f"{target}/{rel} not as recorded"
                )
        assert any(files == s.get(target) for s in sets), f"{target} is a mix of runs"


@pytest.fixture
def runs(tmp_path: Path) -> tuple[list[Path], list[Path], dict, dict, Path]:
    old = variant(tmp_path / "old", 0)
    new = variant(tmp_path / "new", 1)
    expected = []
    for profiles in (old, new):
        out = tmp_path / f"expect-{profiles[0].parent.name}"
        done = generate(profiles, out, tmp_path)
        assert done.wait() == 0
        expected.append(snapshot(out))
    # Headers name the profile path, which differs between the two folders
    # only in the folder name; the runs below use the same two folders.
    return old, new, expected[0], expected[1], tmp_path


def test_sigkill_at_random_points_leaves_old_or_new(runs):
    old, new, want_old, want_new, tmp = runs
    outdir = tmp / "out"
    assert generate(old, outdir, tmp).wait() == 0
    rng = random.Random(20261123)
    killed_mid_run = 0
    for i in range(KILLS):
        profiles = new if i % 2 == 0 else old
        proc = generate(profiles, outdir, tmp)
        time.sleep(rng.uniform(0.05, 0.45))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid_run += 1
        proc.wait()
        # A kill may land between two targets: each folder is whole, from either run.
        assert_consistent(snapshot(outdir), [want_old, want_new])
    assert killed_mid_run >= KILLS // 4, "kills never landed while generate ran"
    # The next run cleans up whatever a kill left behind and finishes the job.
    assert generate(new, outdir, tmp).wait() == 0
    assert snapshot(outdir) == want_new
    assert not [
        p for p in outdir.iterdir() if ".tmp-" in p.name or p.name.endswith(".old")
    ]


def test_concurrent_runs_are_serialized(runs):
    old, new, want_old, want_new, tmp = runs
    outdir = tmp / "out"
    for _ in range(4):
        a, b = generate(old, outdir, tmp), generate(new, outdir, tmp)
        assert a.wait() == 0 and b.wait() == 0
        state = snapshot(outdir)
        assert_consistent(state, [want_old, want_new])
        assert state in (want_old, want_new)


def test_missing_output_parent_is_created(tmp_path: Path):
    out = tmp_path / "a" / "b" / "c"
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "generate", str(PROFILES[0]), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert any(out.iterdir())
    shutil.rmtree(tmp_path / "a")
