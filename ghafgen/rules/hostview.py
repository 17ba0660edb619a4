"""One machine as the rules see it. Entry points: `host_view(group)`, `first_claims(profile)`.

Profiles that share `target.host` run on one machine, so what keeps one VM off
another's hardware must hold across them. Rather than a second, cross-profile
copy of each such rule, the profiles of a host are joined into one `Profile`
and the host-scope rules run on it once. Every record in it keeps the
`Locator` of the file that wrote it, so a finding still points at that
file's line.
"""

from __future__ import annotations

from collections.abc import Sequence

from ghafgen.catalog.model import Board
from ghafgen.findings import Location
from ghafgen.profile.model import Disk, Locator, Profile, Vm
from ghafgen.rules.ownership import owned_units


class FirstOf(Locator):
    """The locator of a table several files write (the host's `[target]`): a key
    is found in the first file that sets it, else the first file's table."""

    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[Locator]) -> None:
        super().__init__(parts[0].file, parts[0].lines, parts[0].path)
        self.parts = tuple(parts)

    def __call__(self, *key: str | int) -> Location:
        for part in self.parts:
            if key and (*part.path, *key) in part.lines:
                return part(*key)
        return self.parts[0](*key)


def _union(values: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(sorted({v for vs in values for v in vs}))


def host_view(group: Sequence[tuple[Profile, Board]]) -> Profile:
    """The profiles of one host (all on one board, GG704) as one profile.

    It holds every profile's passthroughs and VMs (a passthrough's `vm` finds
    the first VM of that name: GG703 reports a second one), the union of
    their host and isolated cores, and their disks: a disk name is one host
    disk (`nvme`, `emmc`), so the profiles' volumes on it share its space,
    and of differing declarations the smallest is the one all agree on.
    Host-scope rules read only these; sources, pins and channels stay with
    each profile (what VMs share through channels is named per target,
    GG706), and `virtualization` is the first profile's, with `enable` on if
    any profile enables it.
    """
    profiles = [p for p, _b in group]
    if len(profiles) == 1:
        return profiles[0]
    first = profiles[0]
    vms: dict[str, Vm] = {}
    disks: dict[str, Disk] = {}
    for p in profiles:
        for name, vm in p.vms.items():
            # A name declared twice (GG703) keeps both VMs in view, the second
            # under a key no VM name can be, so neither escapes the host rules.
            vms[name if name not in vms else f"{name} ({p.file})"] = vm
        for name, disk in p.disks.items():
            if name not in disks or disk.size < disks[name].size:
                disks[name] = disk
    target = first.target._replace(
        at=FirstOf([p.target.at for p in profiles]),
        host_cores=_union([p.target.host_cores for p in profiles]),
        isolated_cores=_union([p.target.isolated_cores for p in profiles]),
    )
    virtualization = first.virtualization._replace(
        enable=any(p.virtualization.enable for p in profiles)
    )
    return first._replace(
        text="",
        target=target,
        virtualization=virtualization,
        passthroughs=tuple(pt for p in profiles for pt in p.passthroughs),
        vms=vms,
        sources={},
        pins={},
        disks=disks,
        channels={},
    )


def first_claims(profile: Profile) -> Profile:
    """The profile with every enabled entry that claims a device or PCI function
    an earlier entry claims left out (GG101 reports those entries)."""
    seen: set[str] = set()
    keep = []
    for pt in profile.passthroughs:
        if pt.enable:
            units = owned_units(pt)
            if seen.intersection(units):
                continue
            seen.update(units)
        keep.append(pt)
    if len(keep) == len(profile.passthroughs):
        return profile
    return profile._replace(passthroughs=tuple(keep))


def files_of(profile: Profile) -> list[str]:
    """The files a (host) profile was read from, in order."""
    at = profile.target.at
    parts = at.parts if isinstance(at, FirstOf) else (at,)
    return [part.file for part in parts]
