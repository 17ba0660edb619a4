"""CPU and memory partitions: vCPUs and pins fit the board, RAM fits with the host's reserve."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import Board
from ghafgen.findings import Finding
from ghafgen.profile.model import Profile
from ghafgen.rules.registry import ERROR, WARNING, finding, rule
from ghafgen.units import format_size

MIN_GUEST_MEMORY = 256 << 20


@rule(
    "GG501",
    "vcpus-exceed-cores",
    ERROR,
    fix="Give the VM at most as many vCPUs as the board has cores.",
)
def vcpus_exceed_cores(p: Profile, b: Board) -> Iterator[Finding]:
    """A VM has no more vCPUs than the board has CPU cores."""
    for vm in p.vms.values():
        if vm.vcpus > b.cpu_cores:
            yield finding(
                "GG501",
                vm.at("vcpus"),
                f"VM '{vm.name}' has {vm.vcpus} vCPUs, board '{b.name}' has "
                f"{b.cpu_cores} cores",
                f"use vcpus = {b.cpu_cores} or fewer",
            )


@rule("GG502", "pin-out-of-range", ERROR, fix="Pin only to cores 0..N-1 of the board.")
def pin_out_of_range(p: Profile, b: Board) -> Iterator[Finding]:
    """Pinned cores exist on the board."""
    for vm in p.vms.values():
        for i, core in enumerate(vm.pinning):
            if core >= b.cpu_cores:
                yield finding(
                    "GG502",
                    vm.at("pinning", i),
                    f"VM '{vm.name}' is pinned to core {core}, board '{b.name}' has "
                    f"cores 0-{b.cpu_cores - 1}",
                    "pick cores that exist",
                )


@rule(
    "GG503",
    "pin-count-mismatch",
    ERROR,
    fix="Give one core per vCPU in `pinning`, or drop `pinning`.",
)
def pin_count_mismatch(p: Profile, b: Board) -> Iterator[Finding]:
    """Pinning names one physical core per vCPU (PCT: every vCPU has an affinity)."""
    for vm in p.vms.values():
        if vm.pinning and len(vm.pinning) != vm.vcpus:
            yield finding(
                "GG503",
                vm.at("pinning"),
                f"VM '{vm.name}' has {vm.vcpus} vCPUs but {len(vm.pinning)} pinned cores",
                "list exactly one core per vCPU, in vCPU order",
            )
        dup = sorted({c for c in vm.pinning if vm.pinning.count(c) > 1})
        if dup:
            yield finding(
                "GG503",
                vm.at("pinning"),
                f"VM '{vm.name}' pins several vCPUs to core {dup[0]}",
                "two vCPUs on one core time-share it; pin each to its own core",
            )


@rule(
    "GG504",
    "host-keeps-no-core",
    ERROR,
    fix="Leave at least one core unpinned for the host.",
)
def host_keeps_no_core(p: Profile, b: Board) -> Iterator[Finding]:
    """The host keeps at least one core no VM is pinned to."""
    pinned = {c for vm in p.vms.values() for c in vm.pinning if c < b.cpu_cores}
    if b.cpu_cores and len(pinned) >= b.cpu_cores:
        last = max(
            (vm for vm in p.vms.values() if vm.pinning), key=lambda v: v.src.line
        )
        yield finding(
            "GG504",
            last.at("pinning"),
            f"VMs are pinned to all {b.cpu_cores} cores; the host keeps none",
            "unpin one core so the host, QEMU's I/O threads and the BPMP proxy can run",
        )


@rule(
    "GG505",
    "memory-exceeds-ram",
    ERROR,
    fix="Shrink VM memory so that VMs plus the host reserve fit the board's RAM.",
)
def memory_exceeds_ram(p: Profile, b: Board) -> Iterator[Finding]:
    """The VMs' memory plus the host's reserve fits the board's RAM."""
    total = sum(vm.memory for vm in p.vms.values())
    ram = b.ram_mib << 20
    reserve = b.host_reserve_mib << 20
    if total + reserve > ram and p.vms:
        biggest = max(p.vms.values(), key=lambda v: v.memory)
        table = ", ".join(
            f"{vm.name} {format_size(vm.memory)}" for vm in p.vms.values()
        )
        yield finding(
            "GG505",
            biggest.at("memory"),
            f"VMs take {format_size(total)} and the host keeps {format_size(reserve)}: "
            f"{format_size(total + reserve)} is more than the board's {format_size(ram)}",
            f"{table}; free {format_size(total + reserve - ram)}",
        )


@rule("GG506", "vm-memory-small", WARNING, fix="Give a NixOS guest at least 256M.")
def vm_memory_small(p: Profile, b: Board) -> Iterator[Finding]:
    """A NixOS guest with under 256 MiB rarely boots."""
    for vm in p.vms.values():
        if vm.memory < MIN_GUEST_MEMORY:
            yield finding(
                "GG506",
                vm.at("memory"),
                f"VM '{vm.name}' has only {format_size(vm.memory)} of memory",
                "microvm.nix guests need room for the kernel and initrd; use 256M or more",
            )
