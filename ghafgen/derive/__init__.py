"""Stage 3, derived facts: what follows from one profile and its board, and
both the rules and the renderers need, so that they cannot disagree: the
platform devices and PCIe slots passed, BPMP allow lists, names of shared
resources on a host, and the runtime stack (QEMU, kernels, patches) each VM runs.

Entry points: `allow_list(profile, board)`, `runtime_stack(profile, board)`,
`slots_in_use(profile, board)`. Each is imported on first use, so that a rule
importing `derive.allowlist` does not load the runtime stack too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ghafgen.derive.allowlist import allow_list
    from ghafgen.derive.runtime import runtime_stack

__all__ = ["allow_list", "runtime_stack"]


def __getattr__(name: str) -> Any:
    if name == "allow_list":
        from ghafgen.derive.allowlist import allow_list

        return allow_list
    if name == "runtime_stack":
        from ghafgen.derive.runtime import runtime_stack

        return runtime_stack
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
