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
CHECKS: dict[str, list[tuple[RuleInfo, F]]] = {"profile": [], "host": [], "system": []}
# Rules that see every claim on a device; the others see each device once, with
# its first claimant, so one device given twice is one finding (GG101), not a
# trail of follow-on findings about two owners that are really one mistake.
EVERY_CLAIM: set[str] = set()


def rule(
    rule_id: str,
    name: str,
    severity: Severity,
    *,
    fix: str,
    scope: str = "profile",
    every_claim: bool = False,
) -> Callable[[F], F]:
    """Register a check; its docstring's first line is the rule's summary.

    `scope="profile"` checks get `(profile, board)` for each profile alone.
    `scope="host"` checks get `(host, board)`: `host` is the profile when it is
    alone on its machine, else every profile sharing its `target.host` joined
    into one view (rules.hostview), so one check protects VMs from each other
    whichever profile declares them. `scope="system"` checks get the list of
    `(profile, board)` of one host, for what only holds between files.
    """

    def wrap(fn: F) -> F:
        summary = (fn.__doc__ or "").strip().splitlines()[0]
        info = declare(rule_id, name, severity, summary, fix, scope)
        CHECKS[scope].append((info, fn))
        if every_claim:
            EVERY_CLAIM.add(rule_id)
        return fn

    return wrap
