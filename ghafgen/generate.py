"""`ghafgen generate`: validate profiles, then render and write each target.

Entry point: `generate(paths, outdir, check=..., force=...)`. Nothing is
written unless every profile validates without errors.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from ghafgen.render.files import render_target
from ghafgen.render.output import Outcome, locked, write_target
from ghafgen.render.plan import plan
from ghafgen.validate import Report, validate


@dataclass(frozen=True)
class Generated:
    report: Report
    outcomes: tuple[Outcome, ...]


def display_name(path: Path) -> str:
    """The profile's path as generated headers show it: relative to the working directory."""
    try:
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()
    except ValueError:
        return path.name


def render(path: Path) -> tuple[str, dict[str, bytes], str] | None:
    """(target, files, profile hash) for one valid profile, else None."""
    report = validate([path])
    if report.exit_code != 0 or not report.usable:
        return None
    profile, board = report.usable[0]
    files = render_target(plan(profile, board, display_name(path)))
    return profile.target.name, files, profile.sha256


def generate(
    paths: list[Path], outdir: Path, *, check: bool = False, force: bool = False
) -> Generated:
    report = validate(paths)
    if report.exit_code != 0:
        return Generated(report, ())
    outcomes = []
    with contextlib.nullcontext() if check else locked(outdir):
        for path, (profile, board) in zip(paths, report.usable, strict=True):
            files = render_target(plan(profile, board, display_name(path)))
            outcomes.append(
                write_target(
                    outdir,
                    profile.target.name,
                    files,
                    profile=display_name(path),
                    profile_sha256=profile.sha256,
                    check=check,
                    force=force,
                )
            )
    return Generated(report, tuple(outcomes))
