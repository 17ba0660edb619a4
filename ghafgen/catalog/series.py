"""How two kernel series' mainline trees differ for one board, as the catalog
keys them. `check` uses it to decide whether an installed series' tree can
stand in for the target's (same node paths and labels: the host overlays
apply alike) and to say which IDs differ. Entry point: `compare(cat, board, a, b)`.
"""

from __future__ import annotations

from typing import NamedTuple

from ghafgen.catalog.catalog import Catalog
from ghafgen.catalog.model import RESOURCE_KINDS, FlavorView, PlatformDevice


class Compared(NamedTuple):
    # Differences an overlay sees: a node present in one tree only, another path or label.
    layout: tuple[str, ...]
    # Differences in the BPMP IDs a node names (the allow list follows them).
    resources: tuple[str, ...]


def _where(view: FlavorView | None) -> tuple[str, str] | None:
    return None if view is None else (view.path, view.label)


def compare(cat: Catalog, board: str, a: str, b: str) -> Compared:
    """Board `board`'s mainline facts in series `a` against series `b`."""
    one, two = cat.board(board, a), cat.board(board, b)
    layout: list[str] = []
    resources: list[str] = []
    views = [
        (k, d.flavors.get("mainline"), two.devices[k].flavors.get("mainline"))
        for k, d in one.devices.items()
    ]
    views += [
        (
            k,
            s.controller.flavors.get("mainline"),
            two.slots[k].controller.flavors.get("mainline"),
        )
        for k, s in one.slots.items()
    ]
    for key, x, y in views:
        if _where(x) != _where(y):
            layout.append(f"{key}: {_where(x)} in {a}, {_where(y)} in {b}")
    for key, dev in one.devices.items():
        other: PlatformDevice = two.devices[key]
        if "mainline" not in dev.flavors or "mainline" not in other.flavors:
            continue
        for kind in RESOURCE_KINDS:
            ids_a = [
                one.soc.resource(kind, r).id for r in dev.resources("mainline", kind)
            ]
            ids_b = [
                two.soc.resource(kind, r).id for r in other.resources("mainline", kind)
            ]
            if ids_a != ids_b:
                resources.append(f"{key} {kind}s {ids_a} in {a}, {ids_b} in {b}")
    return Compared(tuple(layout), tuple(resources))
