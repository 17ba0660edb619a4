"""The BPMP host proxy's allow list for one profile.

The list is the passed platform devices' own clocks, resets and power domains
on the target's device-tree flavour, plus every ancestor clock that preparing
those clocks walks (from the catalog's clock tree), plus the profile's explicit
extras. Entry point: `allow_list(profile, board)`.
"""

from typing import NamedTuple

from ghafgen.catalog.model import (
    RESOURCE_KINDS,
    Board,
    PlatformDevice,
    Resource,
    by_kind,
)
from ghafgen.profile.model import Profile


class Allowed(NamedTuple):
    id: int
    name: str
    kind: str
    why: str  # "<device> <resource>" | "parent of <clock>" | "extra"
    protected: bool = False


class AllowList(NamedTuple):
    clocks: tuple[Allowed, ...]
    resets: tuple[Allowed, ...]
    power_domains: tuple[Allowed, ...]

    def of(self, kind: str) -> tuple[Allowed, ...]:
        return by_kind(kind, self.clocks, self.resets, self.power_domains)

    def ids(self, kind: str) -> list[int]:
        return [a.id for a in self.of(kind)]

    def protected_ids(self, kind: str) -> list[int]:
        """Those the host also runs from: the proxy refuses every command that
        changes them (the node's allowed-protected-* property)."""
        return [a.id for a in self.of(kind) if a.protected]

    @property
    def empty(self) -> bool:
        return not (self.clocks or self.resets or self.power_domains)


def platform_devices(
    profile: Profile, board: Board
) -> list[tuple[str, PlatformDevice]]:
    """(passthrough name, device) for every enabled platform passthrough."""
    return [
        (p.name, board.devices[p.device])
        for p in profile.enabled
        if p.device in board.devices
    ]


def ancestors(board: Board, clock: str) -> list[Resource]:
    """Every clock `clock`'s preparation may walk to, nearest first, no repeats."""
    seen: list[Resource] = []
    queue = list(board.soc.clocks[clock].parents)
    while queue:
        name = queue.pop(0)
        res = board.soc.clocks[name]
        if res not in seen:
            seen.append(res)
            queue.extend(res.parents)
    return seen


def _collect(
    profile: Profile, board: Board, devices: list[PlatformDevice]
) -> AllowList:
    found: dict[str, dict[int, Allowed]] = {k: {} for k in RESOURCE_KINDS}
    flavor = profile.target.dt_flavor
    for dev in devices:
        for kind in RESOURCE_KINDS:
            for res_name in dev.resources(flavor, kind):
                if res_name in dev.withheld:
                    continue
                res = board.soc.resource(kind, res_name)
                found[kind].setdefault(
                    res.id,
                    Allowed(res.id, res.name, kind, f"{dev.key} {kind}", res.protected),
                )
                if kind != "clock":
                    continue
                for anc in ancestors(board, res_name):
                    found["clock"].setdefault(
                        anc.id,
                        Allowed(
                            anc.id,
                            anc.name,
                            "clock",
                            f"parent of {res.name}",
                            anc.protected,
                        ),
                    )
    virt = profile.virtualization
    extras = zip(
        RESOURCE_KINDS,
        (
            virt.extra_allowed_clocks,
            virt.extra_allowed_resets,
            virt.extra_allowed_power_domains,
        ),
        strict=True,
    )
    for kind, ids in extras:
        for i in ids:
            found[kind].setdefault(
                i, Allowed(i, _name_of(board, kind, i), kind, "extra")
            )
    ordered = [
        tuple(sorted(found[k].values(), key=lambda a: a.id)) for k in RESOURCE_KINDS
    ]
    return AllowList(*ordered)


def allow_list(profile: Profile, board: Board) -> AllowList:
    """The proxy's allow list, sorted by ID within each kind."""
    return _collect(profile, board, [d for _n, d in platform_devices(profile, board)])


# A device passed to "a VM started by hand" (no `vm`) gets this device name in
# the per-VM form, and this owner in `bpmp_owners`. A VM may not be called
# `by-hand` (GG106): its devices and the hand-started guest's would be one owner.
BY_HAND = "by-hand"


def bpmp_owners(profile: Profile, board: Board) -> dict[str, list[PlatformDevice]]:
    """The VMs (BY_HAND for none) given BPMP-backed devices, and those devices."""
    owners: dict[str, list[PlatformDevice]] = {}
    for pt in profile.enabled:
        dev = board.devices.get(pt.device)
        if dev is not None and dev.uses_bpmp:
            owners.setdefault(pt.vm or BY_HAND, []).append(dev)
    return owners


class VmAllowList(NamedTuple):
    """One VM's node under the proxy: its own IDs, and those it shares with another VM."""

    vm: str
    allowed: AllowList
    # In another VM's list too and not one of the proxy's hard-coded roots: the
    # proxy refuses every command that changes them (allowed-protected-* properties).
    shared: tuple[Allowed, ...]

    @property
    def device(self) -> str:
        return f"bpmp-host-{self.vm}"

    def shared_ids(self, kind: str) -> list[int]:
        return [a.id for a in self.shared if a.kind == kind]

    def protected_ids(self, kind: str) -> list[int]:
        """Shared with the host or another VM: enable and read only."""
        return sorted({*self.allowed.protected_ids(kind), *self.shared_ids(kind)})


def per_vm_form(profile: Profile, board: Board) -> bool:
    """One proxy node per VM: enforcement asked for and more than one BPMP VM.
    With a single BPMP VM the node stays in Ghaf's single-node form."""
    return profile.virtualization.bpmp_per_vm and len(bpmp_owners(profile, board)) > 1


def vm_allow_lists(profile: Profile, board: Board) -> tuple[VmAllowList, ...]:
    """Each BPMP VM's own list (in profile order); extras go to every VM."""
    lists = {
        vm: _collect(profile, board, devs)
        for vm, devs in bpmp_owners(profile, board).items()
    }
    out = []
    for vm, mine in lists.items():
        others = {
            (a.kind, a.id)
            for other, theirs in lists.items()
            if other != vm
            for kind in RESOURCE_KINDS
            for a in theirs.of(kind)
        }
        shared = tuple(
            a
            for kind in RESOURCE_KINDS
            for a in mine.of(kind)
            if (kind, a.id) in others and not (kind == "clock" and a.protected)
        )
        out.append(VmAllowList(vm, mine, shared))
    return tuple(out)


def reachable_from(
    lists: tuple[VmAllowList, ...], vm: str
) -> dict[str, list[tuple[str, Allowed]]]:
    """What `vm` could reach through one shared device: the other VMs' IDs it does
    not hold itself, by kind, with the VM each belongs to."""
    mine = next(v for v in lists if v.vm == vm).allowed
    out: dict[str, list[tuple[str, Allowed]]] = {k: [] for k in RESOURCE_KINDS}
    for other in lists:
        if other.vm == vm:
            continue
        for kind in RESOURCE_KINDS:
            own = set(mine.ids(kind))
            out[kind] += [
                (other.vm, a) for a in other.allowed.of(kind) if a.id not in own
            ]
    return out


def _name_of(board: Board, kind: str, rid: int) -> str:
    table = board.soc.table(kind)
    return next((r.name for r in table.values() if r.id == rid), f"#{rid}")
