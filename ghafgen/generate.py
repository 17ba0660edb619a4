"""`ghafgen generate`: validate profiles, then render and write each target.

Entry point: `generate(paths, outdir, check=..., force=...)`. Nothing is
written unless every profile validates without errors.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from ghafgen.profile.model import Profile
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


def manifest_meta(profile: Profile) -> dict[str, str]:
    """What `check` needs to pick the base tree the files were written for."""
    t = profile.target
    return {
        "board": t.board,
        "dt_flavor": t.dt_flavor,
        "kernel_version": t.kernel_version,
    }


def generate(
    paths: list[Path],
    outdir: Path,
    *,
    check: bool = False,
    force: bool = False,
    layout: str = "default",
) -> Generated:
    """Validate, plan and render every profile; only then write (or check) them.

    Raises:
        ProfileError: a profile does not fit the layout.
        OutputError: hand-edited files, or an unwritable output directory.
    """
    report = validate(paths)
    if report.exit_code != 0:
        return Generated(report, ())
    rendered = [
        (
            profile,
            display_name(path),
            render_target(plan(profile, board, display_name(path), layout)),
        )
        for path, (profile, board) in zip(paths, report.usable, strict=True)
    ]
    outcomes = []
    with contextlib.nullcontext() if check else locked(outdir):
        for profile, name, files in rendered:
            outcomes.append(
                write_target(
                    outdir,
                    profile.target.name,
                    files,
                    profile=name,
                    profile_sha256=profile.sha256,
                    check=check,
                    force=force,
                    meta=manifest_meta(profile),
                )
            )
    return Generated(report, tuple(outcomes))
