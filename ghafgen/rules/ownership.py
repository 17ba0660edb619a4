"""Who owns what: one owner per device, VMs that exist, one display owner, VM names."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import DISPLAY_GROUP, Board
from ghafgen.derive.allowlist import BY_HAND
from ghafgen.derive.resources import binding_unit, ghaf_vm_name
from ghafgen.findings import Finding, did_you_mean
from ghafgen.profile.model import Passthrough, Profile, Vm
from ghafgen.rules.registry import ERROR, INFO, WARNING, finding, rule


def owned_units(p: Passthrough) -> list[str]:
    """What a passthrough claims: PCI functions for slots, else the device itself."""
    return [f.bdf for f in p.functions] or [p.device]


def claimant(p: Passthrough) -> tuple[str, str]:
    """Who receives a passthrough: its VM, or the guest started by hand for the
    profile that declares it (two profiles' hand-started guests are two QEMUs)."""
    return (p.vm, "") if p.vm else ("", p.at.file)


@rule(
    "GG101",
    "device-owned-twice",
    ERROR,
    scope="host",
    every_claim=True,
    fix="Keep one [hardware.nvidia.passthroughs.*] entry per device or PCI function "
    "on the host, whichever profile it is in.",
)
def device_owned_twice(p: Profile, b: Board) -> Iterator[Finding]:
    """Each device or PCI function of a host is passed by exactly one entry, to one VM."""
    first: dict[str, Passthrough] = {}
    for pt in p.enabled:
        for unit in owned_units(pt):
            if unit in first:
                other = first[unit]
                yield finding(
                    "GG101",
                    pt.at(),
                    f"'{unit}' is passed by '{other.name}' "
                    f"({other.at().seen_from(pt.at())}, to "
                    f"{other.vm or 'the host'}) and again by '{pt.name}' "
                    f"(to {pt.vm or 'the host'})",
                    "remove one of the two entries; a device has one owner per host",
                )
            else:
                first[unit] = pt


@rule(
    "GG102",
    "vm-owns-nothing",
    WARNING,
    fix="Give the VM a device, or drop it if it needs no passthrough.",
)
def vm_owns_nothing(p: Profile, b: Board) -> Iterator[Finding]:
    """A VM with no device, core, channel, volume or shared device is probably a leftover."""
    owners = {pt.vm for pt in p.enabled}
    in_channels = {vm for ch in p.channels.values() for vm in ch.vms}
    for vm in p.vms.values():
        if (
            vm.name in owners
            or vm.name in in_channels
            or vm.pinning
            or vm.volumes
            or vm.shared
        ):
            continue
        yield finding(
            "GG102",
            vm.at(),
            f"VM '{vm.name}' receives no passed device and owns no partition resource",
            'set `vm = "'
            + vm.name
            + '"` on a passthrough, or remove [vms.'
            + vm.name
            + "]",
        )


@rule(
    "GG103",
    "unknown-vm",
    ERROR,
    fix="Declare the VM under [vms.<name>] or fix the name in `vm = ...`.",
)
def unknown_vm(p: Profile, b: Board) -> Iterator[Finding]:
    """A passthrough names a VM the profile does not declare."""
    for pt in p.enabled:
        if pt.vm is not None and pt.vm not in p.vms:
            hint = did_you_mean(
                pt.vm, p.vms, f"add [vms.{pt.vm}] with vcpus and memory"
            )
            yield finding("GG103", pt.at("vm"), f"VM '{pt.vm}' is not declared", hint)


@rule(
    "GG104",
    "display-owned-twice",
    ERROR,
    scope="host",
    fix="Let one VM drive the display: set `display = false` on the other GPU, or "
    "pass the integrated display to one VM only.",
)
def display_owned_twice(p: Profile, b: Board) -> Iterator[Finding]:
    """At most one VM of a host drives a display (a PCIe GPU's, or the SoC's
    through the DCE relay: exactly one VM sets GHAF_DCE_GUEST)."""
    owners: dict[str, Passthrough] = {}
    for pt in p.enabled:
        dev = b.devices.get(pt.device)
        relayed = dev is not None and dev.group == DISPLAY_GROUP
        if pt.vm and ((pt.kind == "gpu" and pt.display) or relayed):
            owners.setdefault(pt.vm, pt)
    if len(owners) > 1:
        names = sorted(owners)
        second = owners[names[1]]
        yield finding(
            "GG104",
            second.at("display") if second.display else second.at(),
            "VMs " + " and ".join(f"'{n}'" for n in names) + " both drive a display",
            "one display owner per host (Ghaf ownership-assertions.nix:35-38: "
            "'exactly one VM may hold DCE/scanout'): set `display = false` on all "
            "but one GPU, or give the integrated display to one VM",
        )


@rule(
    "GG105",
    "host-only-binding",
    INFO,
    fix='Add `vm = "<name>"` to hand the device to a microvm.nix guest.',
)
def host_only_binding(p: Profile, b: Board) -> Iterator[Finding]:
    """A passthrough without a VM is bound to VFIO for a VM started by hand."""
    for pt in p.enabled:
        if pt.vm is None:
            yield finding(
                "GG105",
                pt.at(),
                f"'{pt.device}' is bound to VFIO on the host but no VM receives it",
                "this matches Ghaf's host-only demos; add `vm = ...` for a microvm guest",
            )


@rule(
    "GG106",
    "vm-name-reserved",
    ERROR,
    fix=f"Rename the VM: '{BY_HAND}' names the guest started by hand.",
)
def vm_name_reserved(p: Profile, b: Board) -> Iterator[Finding]:
    """No VM is called `by-hand`: that name stands for the guest started by hand."""
    vm = p.vms.get(BY_HAND)
    if vm is not None:
        yield finding(
            "GG106",
            vm.at(),
            f"VM '{BY_HAND}' has the name ghafgen gives the guest started by hand "
            "(an entry without `vm`)",
            "rename it: its BPMP-backed devices and a hand-started guest's would be "
            f"taken for one VM's (one /dev/bpmp-host-{BY_HAND}, no GG307)",
        )


@rule(
    "GG107",
    "ghaf-name-twice",
    ERROR,
    scope="host",
    fix="Rename one of the VMs so that they differ in more than dashes.",
)
def ghaf_name_twice(p: Profile, b: Board) -> Iterator[Finding]:
    """VM names on one host stay distinct without dashes (Ghaf's names for them)."""
    seen: dict[str, Vm] = {}
    for vm in p.vms.values():
        first = seen.setdefault(ghaf_vm_name(vm.name), vm)
        if first.name != vm.name:  # the same name twice is GG703's
            yield finding(
                "GG107",
                vm.at(),
                f"VMs '{first.name}' ({first.at()}) and '{vm.name}' both become "
                f"Ghaf's '{ghaf_vm_name(vm.name)}' in --layout ghaf",
                "Ghaf would give one VM both VMs' modules and devices; rename one "
                "of them",
            )


@rule(
    "GG108",
    "passthrough-name-twice",
    ERROR,
    scope="host",
    fix="Rename the entry in one profile: its binding unit is named after it.",
)
def passthrough_name_twice(p: Profile, b: Board) -> Iterator[Finding]:
    """Passthrough names are unique on a host (they become ghafgen-vfio-<name>.service)."""
    seen: dict[str, Passthrough] = {}
    for pt in p.enabled:
        first = seen.setdefault(pt.name, pt)
        if first is not pt:
            yield finding(
                "GG108",
                pt.at(),
                f"entry '{pt.name}' is also at {first.at()}; both profiles run on "
                f"host '{p.host}' and would define the unit {binding_unit(pt.name)}",
                "rename one entry: the two targets would write one "
                f"systemd.services.{binding_unit(pt.name)} for two devices",
            )
