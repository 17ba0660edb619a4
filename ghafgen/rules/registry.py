"""The checks over loaded profiles, by scope; `ghafgen rules` prints them.

`@rule` declares a rule's ID (in ghafgen.findings.REGISTRY, beside the syntax
rules the profile parser declares) and registers its check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ghafgen.findings import (
    ERROR,
    INFO,
    REGISTRY,
    WARNING,
    Finding,
    RuleInfo,
    Severity,
    declare,
    finding,
)

__all__ = ["ERROR", "INFO", "REGISTRY", "WARNING", "RuleInfo", "finding", "rule"]

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
