"""Stage 5, the real tools: checking generated output with dtc, fdtoverlay,
dt-validate, QEMU and Nix; building with nix; pinning sources with
nix-prefetch; and the base trees (the board's DTB from kernel sources, QEMU's
own virt tree) those checks apply the output to.

Entry points: `check_with_real_tools(folder, inputs)`, `build(...)`, `prefetch(...)`.
"""
