"""VM-to-VM isolation at the BPMP host proxy: one VM's guest must not reach
another VM's clocks, resets and power domains."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import RESOURCE_KINDS, Board
from ghafgen.derive.allowlist import (
    BY_HAND,
    bpmp_owners,
    per_vm_form,
    reachable_from,
    vm_allow_lists,
)
from ghafgen.findings import Finding, Location
from ghafgen.profile.model import Passthrough, Profile
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


def _bpmp_entries(p: Profile, b: Board) -> list[Passthrough]:
    return [
        pt
        for pt in p.enabled
        if pt.device in b.devices and b.devices[pt.device].uses_bpmp
    ]


@rule(
    "GG309",
    "bpmp-proxy-in-several-profiles",
    ERROR,
    scope="host",
    fix="Declare every VM with a BPMP-backed device of a host in one profile "
    "(with `bpmp_per_vm = true` for two or more); other profiles of the host may "
    "keep PCIe and other devices.",
)
def bpmp_proxy_in_several_profiles(p: Profile, b: Board) -> Iterator[Finding]:
    """One profile per host passes BPMP-backed devices: the host has one proxy node."""
    by_file: dict[str, list[Passthrough]] = {}
    for pt in _bpmp_entries(p, b):
        by_file.setdefault(pt.at.file, []).append(pt)
    if len(by_file) < 2:
        return
    (first_file, mine), *rest = by_file.items()
    for file, theirs in rest:
        pt = theirs[0]
        yield finding(
            "GG309",
            pt.at(),
            f"'{pt.device}' (to {_label(pt.vm or BY_HAND)}) here and "
            f"'{mine[0].device}' (to {_label(mine[0].vm or BY_HAND)}) in {first_file} "
            f"are BPMP-backed devices of two profiles on host '{p.host}': both "
            "targets' overlays write the one bpmp_host_proxy node, and applied "
            "together each allowed-* property keeps one profile's list",
            f"move the BPMP-backed entries of {file} and {first_file} into one "
            "profile and set bpmp_per_vm = true there, so each VM gets its own "
            "node and lists; a target's files come from its own profile only, so "
            "ghafgen does not merge two targets' proxy nodes",
        )


@rule(
    "GG310",
    "bpmp-allow-all-per-vm",
    ERROR,
    fix="Remove `bpmp_allow_all`: per-VM enforcement means nothing when the proxy "
    "allows every ID.",
)
def bpmp_allow_all_per_vm(p: Profile, b: Board) -> Iterator[Finding]:
    """`bpmp_allow_all` with per-VM enforcement lets every VM reach the others' resources."""
    if p.virtualization.bpmp_allow_all and per_vm_form(p, b):
        vms = ", ".join(f"'{vm}'" for vm in bpmp_owners(p, b))
        yield finding(
            "GG310",
            p.virtualization.at("bpmp_allow_all"),
            f"bpmp_allow_all builds the proxy to forward every ID, so each of {vms} "
            "reaches every clock, reset and power domain through its own node, the "
            "other VMs' included; bpmp_per_vm then separates nothing",
            "remove bpmp_allow_all; list an ID a guest needs in extra_allowed_*",
        )
