"""The outcome of `ghafgen verify`: one `Check` per fact, each naming the link of
the chain it belongs to, and its text and JSON forms.

Entry points: `Check`, `render_text(checks)`, `render_json(checks)`.
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
    hint: str = ""


def passed(link: str, subject: str, found: str = "") -> Check:
    return Check(link, subject, True, found=found)


def failed(
    link: str, subject: str, *, expected: str, source: str, found: str, hint: str
) -> Check:
    return Check(link, subject, False, expected, source, found, hint)


def exit_code(checks: list[Check]) -> int:
    """0 every check holds, 1 one failed."""
    return 0 if all(c.ok for c in checks) else 1


def render_text(checks: list[Check], target: str) -> str:
    lines = []
    for c in checks:
        if c.ok:
            lines.append(f"ok    {c.link:<8} {c.subject}")
            continue
        lines.append(f"FAIL  {c.link:<8} {c.subject}")
        lines.append(f"      expected: {c.expected} (from {c.source})")
        lines.append(f"      found:    {c.found}")
        lines.append(f"      hint: {c.hint}")
    bad = [c for c in checks if not c.ok]
    first = next((c.link for c in bad), "")
    lines.append(
        f"{target}: all {len(checks)} checks hold"
        if not bad
        else f"{target}: {len(bad)} of {len(checks)} checks failed; "
        f"the first broken link is '{first}'"
    )
    return "\n".join(lines) + "\n"


def render_json(checks: list[Check], target: str) -> str:
    doc = {
        "target": target,
        "ok": all(c.ok for c in checks),
        "failed": sum(not c.ok for c in checks),
        "checks": [c._asdict() for c in checks],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
