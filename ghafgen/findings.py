"""Findings: what a rule reports, with where it points and how to fix it.

Also the one home of rule IDs: `declare` records a rule's ID, name, severity
and general fix in REGISTRY, whether the profile parser (syntax rules) or a
check in ghafgen.rules reports it. Retired IDs are never reused.
"""

import difflib
import enum
import re
from collections.abc import Iterable
from typing import NamedTuple

# Control characters from a profile (a key, a file name) are shown escaped, so a
# finding cannot forge lines or move the terminal's cursor.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_NL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with control characters as Python escapes (a tab as `\\t`)."""
    pattern = _CONTROL_BUT_NL if keep_newlines else _CONTROL
    return pattern.sub(lambda m: repr(m.group())[1:-1], text)


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Location(NamedTuple):
    """A position in a profile: the file as the user named it, and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def seen_from(self, here: "Location") -> str:
        """This place as a finding at `here` names it: `line N` in the same file,
        else `file:line` (on a host, the other profile's)."""
        return f"line {self.line}" if self.file == here.file else str(self)


class Finding(NamedTuple):
    rule_id: str
    name: str
    severity: Severity
    src: Location
    message: str
    hint: str = ""

    def render(self) -> str:
        text = (
            f"{printable(str(self.src))}: {self.severity.value}[{self.rule_id}]: "
            f"{printable(self.message)}"
        )
        if self.hint:
            # Multi-line hints (a memory table) are ghafgen's own text.
            text += f"\n  hint: {printable(self.hint, keep_newlines=True)}"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule_id,
            "name": self.name,
            "severity": self.severity.value,
            "file": self.src.file,
            "line": self.src.line,
            "message": self.message,
            "hint": self.hint,
        }


def did_you_mean(
    word: str, choices: Iterable[str], otherwise: str, *, cutoff: float = 0.6
) -> str:
    """A hint naming the closest of `choices` to a mistyped `word`, else `otherwise`."""
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f"did you mean '{near[0]}'?" if near else otherwise


def sort_key(f: Finding) -> tuple[str, int, str]:
    return (f.src.file, f.src.line, f.rule_id)


ERROR = Severity.ERROR
WARNING = Severity.WARNING
INFO = Severity.INFO


class RuleInfo(NamedTuple):
    id: str
    name: str
    severity: Severity
    summary: str
    fix: str
    scope: str  # "syntax" | "profile" | "host" | "system"


REGISTRY: dict[str, RuleInfo] = {}
# Rules that no longer run, and what checks their case now. An ID is never given
# to another rule: a finding's ID means one thing in every version.
RETIRED: dict[str, str] = {
    "GG702": "GG101, now run over every profile of a host together",
    "GG705": "GG505, now run over every profile of a host together",
}


def declare(
    rule_id: str,
    name: str,
    severity: Severity,
    summary: str,
    fix: str,
    scope: str = "syntax",
) -> RuleInfo:
    if rule_id in REGISTRY or rule_id in RETIRED:
        raise ValueError(f"rule ID {rule_id} registered twice or retired")
    info = RuleInfo(rule_id, name, severity, summary, fix, scope)
    REGISTRY[rule_id] = info
    return info


def finding(rule_id: str, src: Location, message: str, hint: str = "") -> Finding:
    """A finding of `rule_id`; without a specific hint, the rule's general fix."""
    info = REGISTRY[rule_id]
    return Finding(rule_id, info.name, info.severity, src, message, hint or info.fix)
