"""Run every rule over one or more profiles. Entry point: `validate(paths, cat)`.

Profiles are checked alone first. Then each physical host (`target.host`,
default the target name) is checked as one unit: the host-scope rules run once
on the view of all its profiles joined (rules.hostview), so a rule that keeps
VMs apart holds whether they are declared in one file or several.
"""

from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from ghafgen.catalog import Catalog, UnknownSeries
from ghafgen.catalog.model import Board
from ghafgen.errors import ProfileError
from ghafgen.findings import Finding, Location, Severity, sort_key
from ghafgen.profile.lockfile import read_lock
from ghafgen.profile.model import Profile
from ghafgen.profile.parse import LoadResult, load
from ghafgen.rules.hostview import first_claims, host_view
from ghafgen.rules.registry import CHECKS, EVERY_CLAIM, finding
from ghafgen.rules.targets import known_name_hint


class Checked(NamedTuple):
    """One profile after validation: its model and board, when both exist."""

    path: Path
    profile: Profile | None
    board: Board | None
    findings: tuple[Finding, ...]
    unusable: bool

    @property
    def ok(self) -> bool:
        return (
            self.profile is not None
            and self.board is not None
            and not any(f.severity is Severity.ERROR for f in self.findings)
        )


class Report(NamedTuple):
    checked: tuple[Checked, ...]
    system_findings: tuple[Finding, ...]
    # Profiles of a host with an error of the host-scope or system rules.
    host_invalid: frozenset[Path] = frozenset()

    @property
    def valid(self) -> int:
        """Profiles with no error of their own and none shared with their host."""
        return sum(c.ok and c.path not in self.host_invalid for c in self.checked)

    @property
    def findings(self) -> list[Finding]:
        every = [f for c in self.checked for f in c.findings] + list(
            self.system_findings
        )
        return sorted(every, key=sort_key)

    @property
    def unusable(self) -> bool:
        return any(c.unusable for c in self.checked)

    @property
    def usable(self) -> list[tuple[Profile, Board]]:
        """(profile, board) of every profile that parsed and names a known board."""
        return [
            (c.profile, c.board)
            for c in self.checked
            if c.profile is not None and c.board is not None
        ]

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    @property
    def exit_code(self) -> int:
        if self.unusable:
            return 2
        return 1 if self.errors else 0


def board_of(profile: Profile, cat: Catalog) -> tuple[Board | None, list[Finding]]:
    """The target's board in `cat`, its mainline facts those of the host kernel's series."""
    t = profile.target
    try:
        # An L4T tree is L4T's whatever the kernel: its facts are not keyed by series.
        return cat.board(t.board, t.series if t.dt_flavor == "mainline" else None), []
    except UnknownSeries as e:
        return None, [
            finding(
                "GG007",
                t.at("kernel_version"),
                str(e),
                f'use kernel_version = "{cat.kernel_pins.host_series}" (the pinned host '
                f'kernel), another of {", ".join(e.known)}, or dt_flavor = "l4t"',
            )
        ]
    except ProfileError:
        return None, [
            finding(
                "GG008",
                profile.target.at("board"),
                f"unknown board '{profile.target.board}'",
                known_name_hint(profile.target.board, cat.board_names()),
            )
        ]


def run_checks(scope: str, profile: Profile, board: Board) -> list[Finding]:
    """Every check of `scope` ("profile" or "host") on one (host) profile; all
    but the EVERY_CLAIM rules see each device with its first claimant only."""
    once = first_claims(profile)
    return [
        f
        for info, check in CHECKS[scope]
        for f in check(profile if info.id in EVERY_CLAIM else once, board)
    ]


def apply_rules(
    result: LoadResult, cat: Catalog, *, as_host: bool = True
) -> tuple[Board | None, list[Finding]]:
    """Board lookup and every rule of one profile that parsed; `as_host` adds the
    host-scope rules on the profile alone (its own host). `validate` runs those
    per host instead."""
    found = list(result.findings)
    if result.profile is None:
        return None, found
    board, missing = board_of(result.profile, cat)
    found += missing
    if board is not None:
        found += run_checks("profile", result.profile, board)
        if as_host:
            found += run_checks("host", result.profile, board)
    return board, found


def check_host(group: list[tuple[Profile, Board]]) -> list[Finding]:
    """The host-scope rules over one host's profiles joined, and the system rules.
    Profiles that name different boards (GG704) are not one machine to model:
    each is then checked as its own host."""
    found = [f for _info, check in CHECKS["system"] for f in check(group)]
    if len({b.name for _p, b in group}) == 1:
        return found + run_checks("host", host_view(group), group[0][1])
    for p, b in group:
        found += run_checks("host", p, b)
    return found


def with_pins(result: LoadResult, folder: Path) -> LoadResult:
    """Attach the pins of ghafgen.lock beside the profile (a bad lock is a finding)."""
    if result.profile is None or not result.profile.sources:
        return result
    try:
        pins = read_lock(folder)
    except ProfileError as e:
        bad = finding(
            "GG010",
            Location(result.profile.file, 1),
            str(e),
            "delete ghafgen.lock and run ghafgen prefetch",
        )
        return LoadResult(result.profile, (*result.findings, bad))
    return LoadResult(result.profile._replace(pins=pins), result.findings)


def _once(paths: list[Path]) -> list[Path]:
    """Each file once, however it is spelled: a profile is not its own neighbour."""
    seen: dict[Path, Path] = {}
    for path in paths:
        try:
            key = path.resolve()
        except OSError:
            key = path
        seen.setdefault(key, path)
    return list(seen.values())


def validate(paths: list[Path], cat: Catalog) -> Report:
    """Every rule over `paths`, each board from `cat`."""
    checked = []
    for path in _once(paths):
        result = with_pins(load(path, cat=cat), path.parent)
        board, found = apply_rules(result, cat, as_host=False)
        checked.append(
            Checked(
                path,
                result.profile,
                board,
                tuple(sorted(found, key=sort_key)),
                result.unusable,
            )
        )
    hosts: dict[str, list[tuple[Profile, Board]]] = defaultdict(list)
    paths_of: dict[str, list[Path]] = defaultdict(list)
    for c in checked:
        if c.profile is not None and c.board is not None:
            hosts[c.profile.host].append((c.profile, c.board))
            paths_of[c.profile.host].append(c.path)
    system: list[Finding] = []
    host_invalid: set[Path] = set()
    for host, group in hosts.items():
        found = check_host(group)
        if any(f.severity is Severity.ERROR for f in found):
            host_invalid.update(paths_of[host])
        system.extend(found)
    return Report(tuple(checked), tuple(system), frozenset(host_invalid))
