"""VM-to-VM isolation at the BPMP host proxy: one VM's guest must not reach
another VM's clocks, resets and power domains."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import RESOURCE_KINDS, Board
from ghafgen.derive.allowlist import (
    BY_HAND,
    bpmp_owners,
    reachable_from,
    vm_allow_lists,
)
from ghafgen.findings import Finding, Location
from ghafgen.profile.model import Profile
from ghafgen.rules.registry import ERROR, WARNING, finding, rule

_PLURAL = {"clock": "clocks", "reset": "resets", "power-domain": "power domains"}


def _where(p: Profile, b: Board, vm: str) -> Location:
    """The first passthrough giving `vm` a BPMP-backed device."""
    return next(
        pt.at()
        for pt in p.enabled
        if (pt.vm or BY_HAND) == vm
        and pt.device in b.devices
        and b.devices[pt.device].uses_bpmp
    )


def _label(vm: str) -> str:
    return "the guest started by hand" if vm == BY_HAND else f"VM '{vm}'"


@rule(
    "GG307",
    "bpmp-shared-between-vms",
    ERROR,
    fix="Set `bpmp_per_vm = true` under [hardware.nvidia.virtualization], or give "
    "every BPMP-backed device to one VM.",
)
def bpmp_shared_between_vms(p: Profile, b: Board) -> Iterator[Finding]:
    """Two VMs with BPMP-backed devices share one proxy device unless per-VM enforcement is on."""
    if p.virtualization.bpmp_per_vm or len(bpmp_owners(p, b)) < 2:
        return
    lists = vm_allow_lists(p, b)
    for vm in lists:
        reach = reachable_from(lists, vm.vm)
        by_vm: dict[str, list[str]] = {}
        for kind in RESOURCE_KINDS:
            ids: dict[str, list[str]] = {}
            for other, a in reach[kind]:
                ids.setdefault(other, []).append(str(a.id))
            for other, got in ids.items():
                by_vm.setdefault(other, []).append(f"{_PLURAL[kind]} {' '.join(got)}")
        parts = [
            f"{'the hand-started guest' if o == BY_HAND else o}'s {', '.join(kinds)}"
            for o, kinds in by_vm.items()
        ]
        shared = [f"{a.kind} {a.id} ({a.name})" for a in vm.shared]
        tail = (
            f"; shared and not protected by the proxy: {', '.join(shared)}"
            if shared
            else ""
        )
        yield finding(
            "GG307",
            _where(p, b, vm.vm),
            f"{_label(vm.vm)} could reach {'; '.join(parts) or 'nothing more'} through the "
            f"one shared /dev/bpmp-host: the proxy checks IDs, never which guest asks{tail}",
            "set bpmp_per_vm = true under [hardware.nvidia.virtualization]: each VM then "
            "gets /dev/bpmp-host-<vm> with only its own IDs",
        )


@rule(
    "GG308",
    "bpmp-shared-resource-protected",
    WARNING,
    fix="Give the devices that share the resource to one VM, or accept that neither "
    "VM may change it.",
)
def bpmp_shared_resource_protected(p: Profile, b: Board) -> Iterator[Finding]:
    """A BPMP resource two VMs need becomes read-and-enable only for both (per-VM enforcement)."""
    if not p.virtualization.bpmp_per_vm or len(bpmp_owners(p, b)) < 2:
        return
    for vm in vm_allow_lists(p, b):
        if not vm.shared:
            continue
        names = ", ".join(f"{a.kind} {a.id} ({a.name})" for a in vm.shared)
        yield finding(
            "GG308",
            _where(p, b, vm.vm),
            f"{_label(vm.vm)} shares {names} with another VM: the proxy lets it only "
            "read and enable clocks, read power domains, and never reset",
            "a guest driver that disables, re-rates or resets one of them will see -EPERM",
        )
