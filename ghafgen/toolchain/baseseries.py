"""A given base tree against the kernel series a mainline target is generated for.

The catalog keys mainline facts by series (MGBE0's power domain is 17 in 6.6's
tree, 18 in 6.12's), so an allow list generated for one series is wrong on
another's tree. `ghafgen catalog import --diff`'s comparison, limited to the
target's nodes (the platform devices its VMs get, and those its host overlays
name), says whether `--base-dtb` is of the target's series. Entry point:
`disagreements(cat, board, series, passed, overlays, blob)`.
"""

from __future__ import annotations

from typing import NamedTuple

from ghafgen.catalog import Catalog, dtimport
from ghafgen.catalog.model import Board


class Found(NamedTuple):
    # The target's series' disagreements with the tree, on the overlays' nodes.
    wrong: tuple[str, ...]
    # Series whose facts the tree agrees with on those nodes.
    matching: tuple[str, ...]


def _named(board: Board, device: str) -> tuple[str, str, str]:
    """The dt_name ("6800000.ethernet"), node name ("ethernet@6800000") and
    mainline label of a disagreement's device; empty for a sibling."""
    key = device.split(" ", maxsplit=1)[0]
    if key in board.devices:
        dev = board.devices[key]
        view = dev.flavors.get("mainline")
        return dev.dt_name, dev.node, view.label if view else ""
    if key in board.slots:
        ctl = board.slots[key].controller
        view = ctl.flavors.get("mainline")
        return ctl.dt_name, ctl.node, view.label if view else ""
    return "", "", ""


def _about(
    board: Board, nodes: list[dtimport.Imported], passed: set[str], overlays: str
) -> list[str]:
    out = []
    for d in dtimport.diff(nodes, board, "mainline"):
        dt_name, node, label = _named(board, d.device)
        if (
            dt_name in passed
            or (node and node in overlays)
            or (label and f"&{label}" in overlays)
        ):
            out.append(d.render())
    return out


def disagreements(
    cat: Catalog, board: str, series: str, passed: set[str], overlays: str, blob: bytes
) -> Found:
    """Facts of `series` the tree contradicts on the target's nodes: `passed`
    dt_names, and nodes the overlay text names."""
    nodes = dtimport.read_tree(blob)
    wrong = _about(cat.board(board, series), nodes, passed, overlays)
    matching = tuple(
        s
        for s in cat.mainline_series
        if not _about(cat.board(board, s), nodes, passed, overlays)
    )
    return Found(tuple(wrong), matching)
