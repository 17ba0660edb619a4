"""Findings: what a rule reports, with where it points and how to fix it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class Source:
    """A position in a profile: the file as the user named it, and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Finding:
    rule_id: str
    name: str
    severity: Severity
    src: Source
    message: str
    hint: str = ""

    def render(self) -> str:
        text = f"{self.src}: {self.severity.value}[{self.rule_id}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
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


def sort_key(f: Finding) -> tuple[str, int, str]:
    return (f.src.file, f.src.line, f.rule_id)
