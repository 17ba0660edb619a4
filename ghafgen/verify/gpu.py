"""`ghafgen verify --guest` in the GPU VM: are its role's modules loaded, and is
the node CUDA opens there and open to its group?

Entry point: `gpu_checks(src, vm)` -> `Check`s on the `guest` link. These are
the pieces of a CUDA run the board can show without running CUDA
(docs/runtime.md item 10); other VMs' records name none.
"""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.verify.expect import Vm
from ghafgen.verify.report import Check, failed, passed
from ghafgen.verify.source import Source

# Read and write for the group (chmod g+rw).
GROUP_RW = 0o060


def _loaded(src: Source) -> set[str]:
    """Module names /proc/modules lists (the kernel spells `-` as `_`)."""
    lines = (src.text("proc/modules") or "").splitlines()
    return {line.split()[0] for line in lines if line.strip()}


def gpu_checks(src: Source, vm: Vm) -> Iterator[Check]:
    g = vm.guest
    loaded = _loaded(src) if g.modules else set()
    for m in g.modules:
        subject = f"guest module {m} loaded"
        if m.replace("-", "_") in loaded:
            yield passed("guest", subject)
        else:
            yield failed(
                "guest",
                subject,
                expected=m,
                source=vm.file,
                found="not in /proc/modules",
                hint=(
                    "boot.kernelModules loads it from nvidia-oot-modules; "
                    "journalctl -k shows why it failed (or it is built in)"
                ),
            )
    if g.gpu_node is None:
        return
    want = g.gpu_node
    node = src.node(want.path)
    subject = f"{want.path} group {want.group}, group read-write"
    if node is None or node.kind != "char":
        yield failed(
            "guest",
            subject,
            expected="a character device",
            source=vm.file,
            found="(absent)" if node is None else "not a character device",
            hint=(
                "nvgpu did not bind the guest's GPU node (journalctl -k, and "
                "ghafgen verify on the host); a capture unpacked without root "
                "loses device nodes: give --root the .tar.gz"
            ),
        )
        return
    group = src.group_name(node.gid)
    if group == want.group and node.mode & GROUP_RW == GROUP_RW:
        yield passed("guest", subject)
    else:
        yield failed(
            "guest",
            subject,
            expected=f"group {want.group}, mode g+rw",
            source=vm.file,
            found=f"group {group}, mode {node.mode:04o}",
            hint=(
                "the node-access unit opens it once nvgpu made it: systemctl status "
                "ghafgen-gpu-node-access (gpu-vm-node-access in Ghaf's gpu-vm)"
            ),
        )
