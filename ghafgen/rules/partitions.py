"""CPU and memory partitions: vCPUs and pins fit the board, RAM fits with the host's reserve."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import Board
from ghafgen.findings import Finding
from ghafgen.profile.model import Profile, Vm
from ghafgen.rules.registry import ERROR, WARNING, finding, rule
from ghafgen.table import render
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
    scope="host",
    fix="Leave at least one core unpinned for the host.",
)
def host_keeps_no_core(p: Profile, b: Board) -> Iterator[Finding]:
    """The host keeps a core no VM of any of its profiles is pinned to and none isolates."""
    pinned = {c for vm in p.vms.values() for c in vm.pinning if c < b.cpu_cores}
    taken = pinned | {c for c in p.target.isolated_cores if c < b.cpu_cores}
    if b.cpu_cores and len(taken) >= b.cpu_cores:
        pinners = [vm for vm in p.vms.values() if vm.pinning]
        src = (
            max(pinners, key=lambda v: v.at().line).at("pinning")
            if pinners
            else p.target.at("isolated_cores")
        )
        yield finding(
            "GG504",
            src,
            f"VMs and isolated cores take all {b.cpu_cores} cores; the host keeps none",
            "unpin one core so the host, QEMU's I/O threads and the BPMP proxy can run",
        )


@rule(
    "GG505",
    "memory-exceeds-ram",
    ERROR,
    scope="host",
    fix="Shrink VM memory so that VMs plus the host reserve fit the board's RAM.",
)
def memory_exceeds_ram(p: Profile, b: Board) -> Iterator[Finding]:
    """The memory of every VM on the host plus the host's reserve fits the board's RAM."""
    total = sum(vm.memory for vm in p.vms.values())
    ram = b.ram_mib << 20
    reserve = b.host_reserve_mib << 20
    if total + reserve > ram and p.vms:
        biggest = max(p.vms.values(), key=lambda v: v.memory)
        yield finding(
            "GG505",
            biggest.at("memory"),
            f"VMs take {format_size(total)} and the host keeps {format_size(reserve)}: "
            f"{format_size(total + reserve)} is more than the board's {format_size(ram)}",
            f"free {format_size(total + reserve - ram)}:\n" + memory_table(p, b),
        )


def _line(p: Profile, vm: Vm) -> str:
    """Where `vm`'s memory is set: its line, with the file on a host of several."""
    at = vm.at("memory")
    one_file = len({v.at.file for v in p.vms.values()}) == 1
    return f"line {at.line}" if one_file else str(at)


def memory_table(p: Profile, b: Board) -> str:
    """Who takes how much RAM, as an indented table for the hint."""
    rows = [[vm.name, format_size(vm.memory), _line(p, vm)] for vm in p.vms.values()]
    total = sum(vm.memory for vm in p.vms.values()) + (b.host_reserve_mib << 20)
    rows += [
        ["host reserve", format_size(b.host_reserve_mib << 20), "catalog"],
        ["total", format_size(total), f"board has {format_size(b.ram_mib << 20)}"],
    ]
    return "\n".join(
        "        " + line for line in render(["", "memory", ""], rows).splitlines()
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


def _cores_desc(cores: set[int]) -> str:
    return ", ".join(str(c) for c in sorted(cores))


@rule(
    "GG507",
    "core-owned-twice",
    ERROR,
    scope="host",
    fix="Give each isolated core to one VM; time-shared cores are not isolated.",
)
def core_owned_twice(p: Profile, b: Board) -> Iterator[Finding]:
    """An isolated (real-time) core belongs to one VM of the host, whichever profile isolates it."""
    owner: dict[int, Vm] = {}
    isolated = set(p.target.isolated_cores)
    for vm in p.vms.values():
        for i, core in enumerate(vm.pinning):
            first = owner.setdefault(core, vm)
            if core in isolated and first is not vm:
                here = vm.at("pinning", i)
                yield finding(
                    "GG507",
                    here,
                    f"isolated core {core} is pinned by '{first.name}' "
                    f"({first.at('pinning').seen_from(here)}) and '{vm.name}'",
                    "Jailhouse-style exclusive cores serve one VM; pick another core",
                )


@rule(
    "GG508",
    "host-core-pinned",
    ERROR,
    scope="host",
    fix="Pin VMs only to cores outside target.host_cores.",
)
def host_core_pinned(p: Profile, b: Board) -> Iterator[Finding]:
    """No VM on the host is pinned to a core the host keeps (any profile's target.host_cores)."""
    host = set(p.target.host_cores)
    for vm in p.vms.values():
        for i, core in enumerate(vm.pinning):
            if core in host:
                yield finding(
                    "GG508",
                    vm.at("pinning", i),
                    f"VM '{vm.name}' is pinned to core {core}, which the host keeps",
                    f"host cores: {_cores_desc(host)}",
                )
    both = host & set(p.target.isolated_cores)
    if both:
        yield finding(
            "GG508",
            p.target.at("isolated_cores"),
            f"cores {_cores_desc(both)} are both host cores and isolated",
            "a core is the host's or a real-time VM's, not both",
        )


@rule(
    "GG509",
    "realtime-needs-isolation",
    ERROR,
    fix="Pin a VM with rt_priority to isolated cores only (target.isolated_cores).",
)
def realtime_needs_isolation(p: Profile, b: Board) -> Iterator[Finding]:
    """A real-time VM runs only on isolated cores, so nothing else preempts it."""
    isolated = set(p.target.isolated_cores)
    for vm in p.vms.values():
        if vm.rt_priority is None:
            continue
        outside = set(vm.pinning) - isolated
        if not vm.pinning or outside:
            yield finding(
                "GG509",
                vm.at("rt_priority"),
                f"VM '{vm.name}' has rt_priority but "
                + (
                    f"runs on non-isolated cores {_cores_desc(outside)}"
                    if vm.pinning
                    else "no pinning"
                ),
                "pin all its vCPUs to target.isolated_cores",
            )


@rule(
    "GG510",
    "isolated-core-unused",
    WARNING,
    fix="Pin a VM to the isolated core, or stop isolating it.",
)
def isolated_core_unused(p: Profile, b: Board) -> Iterator[Finding]:
    """An isolated core no VM is pinned to is a core nobody uses."""
    pinned = {c for vm in p.vms.values() for c in vm.pinning}
    unused = set(p.target.isolated_cores) - pinned
    for core in sorted(unused):
        if core < b.cpu_cores:
            yield finding(
                "GG510",
                p.target.at("isolated_cores"),
                f"isolated core {core} runs no VM",
                "isolcpus keeps the scheduler off it: it stays idle",
            )


@rule(
    "GG511",
    "core-missing-on-board",
    ERROR,
    fix="List only cores 0..N-1 of the board in host_cores and isolated_cores.",
)
def core_missing_on_board(p: Profile, b: Board) -> Iterator[Finding]:
    """Host and isolated cores exist on the board."""
    for key in ("host_cores", "isolated_cores"):
        for i, core in enumerate(getattr(p.target, key)):
            if core >= b.cpu_cores:
                yield finding(
                    "GG511",
                    p.target.at(key, i),
                    f"core {core} in {key} does not exist on '{b.name}' "
                    f"(cores 0-{b.cpu_cores - 1})",
                )


# arm64 with 4 KiB pages: a PMD maps 2 MiB, the default huge page size
# (Linux Documentation/arch/arm64/hugetlbpage.rst), which the host reserves
# at boot for these guests (hugepagesz=2M, render/plan.py).
HUGE_PAGE = 2 << 20


@rule(
    "GG512",
    "hugepage-memory-unaligned",
    ERROR,
    fix='Give a hugepage-backed VM memory in whole 2 MiB pages, e.g. "1024M".',
)
def hugepage_memory_unaligned(p: Profile, b: Board) -> Iterator[Finding]:
    """A VM backed by 2 MiB huge pages has memory in whole huge pages."""
    for vm in p.vms.values():
        if vm.hugepages and vm.memory % HUGE_PAGE:
            down = vm.memory - vm.memory % HUGE_PAGE
            up = down + HUGE_PAGE
            pages = f'"{format_size(up)}"' + (
                f' or "{format_size(down)}"' if down else ""
            )
            yield finding(
                "GG512",
                vm.at("memory"),
                f"VM '{vm.name}' has {format_size(vm.memory)} of memory, not a whole "
                "number of the 2 MiB huge pages that back it",
                f"use a multiple of 2M: {pages}",
            )
