"""The BPMP host proxy's allow list for one profile.

The list is the passed platform devices' own clocks, resets and power domains
on the target's device-tree flavour, plus every ancestor clock that preparing
those clocks walks (from the catalog's clock tree), plus the profile's explicit
extras. Entry point: `allow_list(profile, board)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghafgen.catalog.model import Board, PlatformDevice, Resource
from ghafgen.profile.model import Profile

KINDS = ("clock", "reset", "power-domain")


@dataclass(frozen=True)
class Allowed:
    id: int
    name: str
    kind: str
    why: str  # "<device> <resource>" | "parent of <clock>" | "extra"
    protected: bool = False


@dataclass(frozen=True)
class AllowList:
    clocks: tuple[Allowed, ...]
    resets: tuple[Allowed, ...]
    power_domains: tuple[Allowed, ...]

    def of(self, kind: str) -> tuple[Allowed, ...]:
        return {"clock": self.clocks, "reset": self.resets}.get(
            kind, self.power_domains
        )

    def ids(self, kind: str) -> list[int]:
        return [a.id for a in self.of(kind)]

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


def allow_list(profile: Profile, board: Board) -> AllowList:
    """The proxy's allow list, sorted by ID within each kind."""
    found: dict[str, dict[int, Allowed]] = {k: {} for k in KINDS}
    flavor = profile.target.dt_flavor
    for _name, dev in platform_devices(profile, board):
        for kind in KINDS:
            for res_name in dev.resources(flavor, kind):
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
        KINDS,
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
    ordered = [tuple(sorted(found[k].values(), key=lambda a: a.id)) for k in KINDS]
    return AllowList(*ordered)


def _name_of(board: Board, kind: str, rid: int) -> str:
    table = board.soc.table(kind)
    return next((r.name for r in table.values() if r.id == rid), f"#{rid}")
