"""The rule registry: every check ghafgen makes has a stable ID here.

`@rule` registers a check over a loaded profile; `declare` registers a check
the profile parser makes itself. `ghafgen rules` prints this registry. Retired
IDs are never reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ghafgen.findings import Finding, Severity, Source

ERROR = Severity.ERROR
WARNING = Severity.WARNING
INFO = Severity.INFO


@dataclass(frozen=True)
class RuleInfo:
    id: str
    name: str
    severity: Severity
    summary: str
    fix: str
    scope: str  # "syntax" | "profile" | "system"


REGISTRY: dict[str, RuleInfo] = {}


def declare(
    rule_id: str,
    name: str,
    severity: Severity,
    summary: str,
    fix: str,
    scope: str = "syntax",
) -> RuleInfo:
    if rule_id in REGISTRY:
        raise ValueError(f"rule ID {rule_id} registered twice")
    info = RuleInfo(rule_id, name, severity, summary, fix, scope)
    REGISTRY[rule_id] = info
    return info


def finding(rule_id: str, src: Source, message: str, hint: str = "") -> Finding:
    """A finding of `rule_id`; without a specific hint, the rule's general fix."""
    info = REGISTRY[rule_id]
    return Finding(rule_id, info.name, info.severity, src, message, hint or info.fix)


F = Callable[..., Iterator[Finding]]
CHECKS: dict[str, list[tuple[RuleInfo, F]]] = {"profile": [], "system": []}


def rule(
    rule_id: str, name: str, severity: Severity, *, fix: str, scope: str = "profile"
) -> Callable[[F], F]:
    """Register a check; its docstring's first line is the rule's summary.

    `scope="profile"` checks get `(profile, board)`; `scope="system"` checks get
    every profile that shares one physical host.
    """

    def wrap(fn: F) -> F:
        summary = (fn.__doc__ or "").strip().splitlines()[0]
        info = declare(rule_id, name, severity, summary, fix, scope)
        CHECKS[scope].append((info, fn))
        return fn

    return wrap
