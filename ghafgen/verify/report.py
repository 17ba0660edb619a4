"""The outcome of `ghafgen verify`: one `Check` per fact, each naming the link of
the chain it belongs to, and its text and JSON forms.

A check holds, fails, or is not provable on the system read: the system itself
shows why it cannot hold there (say, a guest kernel without the driver at
all), so it is neither passed nor counted as a failure; it is named with that
cause and gives its own exit code, never 0.

Entry points: `Check`, `exit_code(checks)`, `render_text(checks)`, `render_json(checks)`.
"""

from __future__ import annotations

import json
from typing import NamedTuple

# The chain from a generated target to a running guest, in boot order.
LINKS = ("kernel", "overlay", "binding", "VM", "guest")


class Check(NamedTuple):
    link: str  # one of LINKS
    subject: str  # what was checked, e.g. "/proc/cmdline has 'x'"
    ok: bool
    expected: str = ""
    source: str = ""  # the generated file that asks for it
    found: str = ""
    hint: str = ""  # for a check not provable here: why, as the system shows it
    unproven: bool = False  # not ok, yet not a failure: not provable on this system


# No check failed, but some are not provable on the system read (2 is "cannot
# run", 3 a tool failure in the other commands).
UNPROVEN_EXIT = 4


def passed(link: str, subject: str, found: str = "") -> Check:
    return Check(link, subject, True, found=found)


def failed(
    link: str, subject: str, *, expected: str, source: str, found: str, hint: str
) -> Check:
    return Check(link, subject, False, expected, source, found, hint)


def unproven(
    link: str, subject: str, *, expected: str, source: str, found: str, why: str
) -> Check:
    """A check the system read cannot prove, with the cause it shows."""
    return Check(link, subject, False, expected, source, found, why, unproven=True)


def is_failed(check: Check) -> bool:
    return not check.ok and not check.unproven


def exit_code(checks: list[Check]) -> int:
    """0 every check holds, 1 one failed, UNPROVEN_EXIT none failed but some
    are not provable on this system."""
    if any(is_failed(c) for c in checks):
        return 1
    return UNPROVEN_EXIT if any(c.unproven for c in checks) else 0


def render_text(checks: list[Check], target: str) -> str:
    lines = []
    for c in checks:
        if c.ok:
            lines.append(f"ok    {c.link:<8} {c.subject}")
            continue
        if c.unproven:
            lines.append(f"N/P   {c.link:<8} {c.subject} (not provable here)")
            lines.append(f"      expected: {c.expected} (from {c.source})")
            lines.append(f"      found:    {c.found}")
            lines.append(f"      why: {c.hint}")
            continue
        lines.append(f"FAIL  {c.link:<8} {c.subject}")
        lines.append(f"      expected: {c.expected} (from {c.source})")
        lines.append(f"      found:    {c.found}")
        lines.append(f"      hint: {c.hint}")
    bad = [c for c in checks if is_failed(c)]
    open_ = sum(c.unproven for c in checks)
    first = next((c.link for c in bad), "")
    if bad:
        summary = (
            f"{len(bad)} of {len(checks)} checks failed"
            + (f" and {open_} are not provable here" if open_ else "")
            + f"; the first broken link is '{first}'"
        )
    elif open_:
        summary = (
            f"no check failed; {open_} of {len(checks)} are not provable on this "
            "system (N/P: each says why); run verify where they can hold"
        )
    else:
        summary = f"all {len(checks)} checks hold"
    lines.append(f"{target}: {summary}")
    return "\n".join(lines) + "\n"


def render_json(checks: list[Check], target: str) -> str:
    doc = {
        "target": target,
        "ok": all(c.ok for c in checks),
        "failed": sum(is_failed(c) for c in checks),
        "unproven": sum(c.unproven for c in checks),
        "checks": [c._asdict() for c in checks],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
