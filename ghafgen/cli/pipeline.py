"""The stages joined: validate the profiles, then render and write them.

Entry point: `generate(paths, outdir, cat, compare_only=..., force=..., layout=...)`.
It lives with the commands because only this layer may call both rules and
render. Nothing is written unless every profile validates without errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ghafgen.catalog import Catalog
from ghafgen.render.output import Outcome
from ghafgen.render.write import write_all
from ghafgen.rules.engine import Report, validate


@dataclass(frozen=True)
class Generated:
    report: Report
    outcomes: tuple[Outcome, ...]
    orphans: tuple[str, ...] = ()  # folders of a renamed target, left as they are


def generate(
    paths: list[Path],
    outdir: Path,
    cat: Catalog,
    *,
    compare_only: bool = False,
    force: bool = False,
    layout: str = "default",
) -> Generated:
    """Validate every profile against `cat`; if none has an error, write them all
    (or, `compare_only`, compare).

    Raises:
        ProfileError: a profile does not fit the layout.
        OutputError: hand-edited files, or an unwritable output directory.
    """
    report = validate(paths, cat)
    if report.exit_code != 0:
        return Generated(report, ())
    valid = []
    for c in report.checked:  # each file once, as validate read it
        assert c.profile is not None and c.board is not None  # exit code 0
        valid.append((c.path, c.profile, c.board))
    written = write_all(
        valid, outdir, compare_only=compare_only, force=force, layout=layout
    )
    return Generated(report, written.outcomes, written.orphans)
