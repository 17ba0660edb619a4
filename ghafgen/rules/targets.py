"""Targets name a board the catalog has, and devices that board has."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from ghafgen.catalog.model import Board
from ghafgen.findings import Finding, declare
from ghafgen.profile.model import Profile
from ghafgen.rules.registry import ERROR, finding, rule

declare(
    "GG008",
    "unknown-board",
    ERROR,
    "The target names a board the catalog does not have.",
    "Use a board from `ghafgen show --boards`.",
    scope="profile",
)


def did_you_mean(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"did you mean '{near[0]}'?" if near else "known: " + ", ".join(choices)


@rule(
    "GG009",
    "unknown-device",
    ERROR,
    fix="Use a device or slot name the board has (see `ghafgen show --boards`).",
)
def unknown_device(p: Profile, b: Board) -> Iterator[Finding]:
    """Each passthrough names a device or PCIe slot of the target's board."""
    for pt in p.enabled:
        if pt.device not in b.devices and pt.device not in b.slots:
            key = pt.at("device") if pt.device != pt.name else pt.src
            yield finding(
                "GG009",
                key,
                f"board '{b.name}' has no device or slot '{pt.device}'",
                did_you_mean(pt.device, b.passable()),
            )
