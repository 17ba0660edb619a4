"""One `ghafgen verify` run: find what the target expects, read the tree, check.

Entry point: `verify(target, root, guest=False, vm=None)` -> `Verified`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from ghafgen.verify.expect import Expected, installed_manifest, load_expected
from ghafgen.verify.guest import guest_checks, pick_vm
from ghafgen.verify.host import host_checks
from ghafgen.verify.report import Check
from ghafgen.verify.source import Source, open_source


class Verified(NamedTuple):
    expected: Expected
    source: Source  # what was read, for --capture
    checks: list[Check]
    name: str  # the target, and the VM with --guest


def verify(
    target: Path | None, root: Path, *, guest: bool = False, vm: str | None = None
) -> Verified:
    """Check the tree under `root` against `target` (its folder or manifest; None:
    the manifest the running system installed under /etc/ghafgen).

    Raises:
        VerifyError: no target, an unreadable manifest, root or capture.
    """
    source = open_source(root)
    exp = load_expected(target) if target is not None else installed_manifest(source)
    if guest:
        chosen = pick_vm(exp, vm, source)
        return Verified(
            exp,
            source,
            guest_checks(exp, source, chosen),
            f"{exp.target}/{chosen.name}",
        )
    return Verified(exp, source, host_checks(exp, source), exp.target)
