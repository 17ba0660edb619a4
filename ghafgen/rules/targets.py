"""Targets name a board the catalog has, and devices that board has."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import Board
from ghafgen.findings import Finding, declare, did_you_mean
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


def known_name_hint(word: str, choices: list[str]) -> str:
    """The closest catalog name to `word`, or the whole list."""
    return did_you_mean(word, choices, "known: " + ", ".join(choices), cutoff=0.5)


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
            key = pt.at("device") if pt.device != pt.name else pt.at()
            yield finding(
                "GG009",
                key,
                f"board '{b.name}' has no device or slot '{pt.device}'",
                known_name_hint(pt.device, b.passable()),
            )
