"""Inter-VM channels, vsock, volumes on host disks: what partitions share, checked whole."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from ghafgen.catalog.model import Board
from ghafgen.findings import Finding
from ghafgen.profile.model import Profile, Vm
from ghafgen.rules.registry import ERROR, finding, rule
from ghafgen.units import format_size

MIN_CHANNEL = 4096  # one page: ivshmem maps the region into each guest


@rule(
    "GG601",
    "channel-size-invalid",
    ERROR,
    fix='Give the channel a power-of-two size of at least 4K, e.g. "2M".',
)
def channel_size_invalid(p: Profile, b: Board) -> Iterator[Finding]:
    """A shared-memory region is a power of two, at least one page (ivshmem BAR)."""
    for ch in p.channels.values():
        if ch.size < MIN_CHANNEL or ch.size & (ch.size - 1):
            yield finding(
                "GG601",
                ch.at("size"),
                f"channel '{ch.name}' has size {format_size(ch.size)}",
                "ivshmem exposes the region as a PCI BAR: a power of two, 4K or more",
            )


@rule(
    "GG602",
    "channel-members",
    ERROR,
    fix="List two or more declared VMs, each once, in the channel's `vms`.",
)
def channel_members(p: Profile, b: Board) -> Iterator[Finding]:
    """A channel joins two or more VMs the profile declares, each once."""
    for ch in p.channels.values():
        for i, vm in enumerate(ch.vms):
            if vm not in p.vms:
                yield finding(
                    "GG602",
                    ch.at("vms", i),
                    f"channel '{ch.name}' names VM '{vm}', which is not declared",
                    f"declare [vms.{vm}] or fix the name",
                )
        if len(set(ch.vms)) < 2:
            yield finding(
                "GG602",
                ch.at("vms"),
                f"channel '{ch.name}' joins {len(set(ch.vms))} VM(s)",
                "a channel connects two or more VMs; a VM gets only its own channels",
            )
        elif len(set(ch.vms)) != len(ch.vms):
            yield finding(
                "GG602", ch.at("vms"), f"channel '{ch.name}' names a VM twice"
            )


@rule(
    "GG603",
    "vsock-cid-twice",
    ERROR,
    scope="host",
    fix="Give each VM its own vsock_cid (3 or more; 0-2 are reserved).",
)
def vsock_cid_twice(p: Profile, b: Board) -> Iterator[Finding]:
    """vsock context IDs are unique on the host."""
    seen: dict[int, Vm] = {}
    for vm in p.vms.values():
        if vm.vsock_cid is None:
            continue
        first = seen.setdefault(vm.vsock_cid, vm)
        if first is not vm:
            here = vm.at("vsock_cid")
            yield finding(
                "GG603",
                here,
                f"vsock_cid {vm.vsock_cid} is used by '{first.name}' "
                f"({first.at('vsock_cid').seen_from(here)}) and '{vm.name}'",
                "pick a vsock_cid no other VM on this host uses",
            )


@rule(
    "GG604",
    "volumes-exceed-disk",
    ERROR,
    scope="host",
    fix="Shrink the volumes, or put some on another disk ([disks.<name>]).",
)
def volumes_exceed_disk(p: Profile, b: Board) -> Iterator[Finding]:
    """Volumes of every profile on the host fit the host disk they live on."""
    used: dict[str, int] = defaultdict(int)
    last = {}
    files: dict[str, set[str]] = defaultdict(set)
    for vm in p.vms.values():
        for vol in vm.volumes:
            # Declared in the volume's own profile: generation reads the path there.
            if vol.disk not in p.disks or not vol.at.sets("disks", vol.disk):
                elsewhere = p.disks.get(vol.disk)
                yield finding(
                    "GG604",
                    vol.at("disk"),
                    f"volume '{vol.name}' of '{vm.name}' is on disk '{vol.disk}', "
                    "which is not declared"
                    + (
                        f" in its profile (only at {elsewhere.at()})"
                        if elsewhere
                        else ""
                    ),
                    f"add [disks.{vol.disk}] with its size",
                )
                continue
            used[vol.disk] += vol.size
            last[vol.disk] = vol
            files[vol.disk].add(vol.at.file)
    for name, total in used.items():
        disk = p.disks[name]
        if total > disk.size:
            here = last[name].at("size")
            n = len(files[name])
            across = f" across {n} profiles of host '{p.host}'" if n > 1 else ""
            yield finding(
                "GG604",
                here,
                f"volumes on disk '{name}' take {format_size(total)}{across}, the "
                f"disk has {format_size(disk.size)} ({disk.at().seen_from(here)})",
                f"free {format_size(total - disk.size)}",
            )
