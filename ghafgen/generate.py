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
from ghafgen.render.plan import TargetPlan, plan
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


def host_facts(p: TargetPlan) -> dict[str, object]:
    """What a NixOS host configuration around the module needs: the kernel
    series the module is generated for, the tree flavour that picks how it is
    booted (nixpkgs' kernel, or jetpack-nixos for L4T), and jetpack-nixos's
    SoM and carrier board for the board."""
    return {
        "board": p.board.name,
        "dt_flavor": p.flavor,
        "kernel_series": ".".join(p.kernel_version.split(".")[:2]),
        "jetpack": {
            "som": p.board.jetpack_som,
            "carrierBoard": p.board.jetpack_carrier_board,
        },
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
    plans = [
        (profile, display_name(path), plan(profile, board, display_name(path), layout))
        for path, (profile, board) in zip(paths, report.usable, strict=True)
    ]
    rendered = [(pr, name, render_target(p), host_facts(p)) for pr, name, p in plans]
    outcomes = []
    with contextlib.nullcontext() if check else locked(outdir):
        for profile, name, files, host in rendered:
            outcomes.append(
                write_target(
                    outdir,
                    profile.target.name,
                    files,
                    profile=name,
                    profile_sha256=profile.sha256,
                    host=host,
                    check=check,
                    force=force,
                )
            )
    return Generated(report, tuple(outcomes))
