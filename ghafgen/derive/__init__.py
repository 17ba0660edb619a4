"""Stage 3, derived facts: what follows from one profile and its board, and
both the rules and the renderers need, so that they cannot disagree: the
platform devices and PCIe slots passed, BPMP allow lists, names of shared
resources on a host, and the runtime stack (QEMU, kernels, patches) each VM runs.

Entry points: `allow_list(profile, board)`, `runtime_stack(profile, board)`,
`slots_in_use(profile, board)`.
"""

from ghafgen.derive.allowlist import allow_list
from ghafgen.derive.runtime import runtime_stack

__all__ = ["allow_list", "runtime_stack"]
