"""Every device of a board and how (or why not) a guest can get it.

`ghafgen show --devices [--board B]` prints this, and docs/devices.md is its
markdown form, from the same data: the whole-SoC catalog generated from the
board's mainline tree (`data/soc/`), the L4T-only devices of `t234.toml`, and
the board's own passable devices. Entry point: `render(board, fmt)`.
"""

from __future__ import annotations

import json
import textwrap

from ghafgen.catalog import Catalog, soc
from ghafgen.catalog.model import Board
from ghafgen.errors import ProfileError
from ghafgen.table import render as table

CLASS_NAMES = {
    soc.BPMP: "BPMP platform device (allow list)",
    soc.PLAIN: "plain platform device",
    soc.PCIE: "PCIe function",
    soc.NOT: "not passable",
}


def l4t_only(cat: Catalog) -> list[dict[str, object]]:
    """Devices only L4T trees describe, with their class and reason (t234.toml)."""
    return [{"key": k, **v} for k, v in cat.l4t_devices().items()]


def _rows(board: Board) -> list[dict[str, str]]:
    by_name = {d.dt_name: k for k, d in board.devices.items()}
    rows = []
    for d in board.catalog.soc_devices(board.mainline_dts):
        rows.append(
            {
                "device": d.dt_name,
                "label": d.label,
                "kind": d.kind,
                "enabled": "yes" if d.enabled else "no",
                "class": CLASS_NAMES[d.passthrough],
                "profile key": by_name.get(d.dt_name, ""),
                "why": d.reason,
            }
        )
    return rows


def _extra_rows(board: Board) -> list[dict[str, str]]:
    """The board's devices the whole-SoC rows leave out (only L4T trees have
    them, or their node names no resource), and the L4T-only catalog entries."""
    scanned = {d.dt_name for d in board.catalog.soc_devices(board.mainline_dts)}
    rows = [
        {
            "device": dev.dt_name,
            "label": (dev.flavors.get("mainline") or dev.flavors["l4t"]).label,
            "kind": dev.instance_of,
            "enabled": "L4T" if "mainline" not in dev.flavors else "not scanned",
            "class": CLASS_NAMES[soc.BPMP if dev.uses_bpmp else soc.PLAIN],
            "profile key": key,
            "why": dev.fact.source
            + (
                ""
                if "mainline" not in dev.flavors
                else "; its mainline node names no clock, reset, power domain or "
                "iommus, so the whole-SoC scan leaves it out"
            ),
        }
        for key, dev in board.devices.items()
        if ("mainline" not in dev.flavors and "l4t" in dev.flavors)
        # A group's renderer re-creates its members' nodes under other names.
        or ("mainline" in dev.flavors and dev.dt_name not in scanned and not dev.group)
    ]
    for d in l4t_only(board.catalog):
        rows.append(
            {
                "device": str(d["dt_name"]),
                "label": str(d.get("label", "")),
                "kind": str(d["kind"]),
                "enabled": "L4T",
                "class": CLASS_NAMES[str(d["passthrough"])],
                "profile key": "",
                "why": f"{d['reason']} (source: {d['source']})",
            }
        )
    return rows


COLUMNS = ("device", "label", "kind", "enabled", "class", "profile key", "why")


def _boards(cat: Catalog, name: str | None) -> list[Board]:
    if name is not None:
        resolved = cat.resolve(name)
        if resolved is None:
            raise ProfileError(f"no board {name!r} in the catalog")
        return [cat.board(resolved, soc.SERIES)]
    # One section per mainline tree, under the board of the SKU the tree is for
    # (tegra234-p3768-0000+p3767-0005 is the Orin Nano kit's), else its first.
    by_tree: dict[str, Board] = {}
    for n in cat.board_names():
        b = cat.board(n, soc.SERIES)
        if b.mainline_dts:
            by_tree.setdefault(b.mainline_dts, b)
            if n.endswith("+" + b.mainline_dts.rsplit("+", 1)[-1]):
                by_tree[b.mainline_dts] = b
    return [by_tree[k] for k in sorted(by_tree)]


def _markdown_table(rows: list[dict[str, str]]) -> list[str]:
    def cell(v: str) -> str:
        return v.replace("|", "\\|")

    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return out


# The text form: these columns, then the class and why under each row.
TEXT_COLUMNS = ("device", "label", "kind", "enabled", "profile key")


def render(cat: Catalog, board: str | None, fmt: str, width: int = 100) -> str:
    """`board`'s devices (every board's without one) as text, json or markdown;
    text wraps to `width` columns."""
    boards = _boards(cat, board)
    if fmt == "json":
        return json.dumps({b.name: _rows(b) + _extra_rows(b) for b in boards}, indent=2)
    if fmt == "markdown":
        lines = [
            "# Devices of each board, and how a guest can get them",
            "",
            "Generated by `ghafgen show --devices --format markdown`; do not edit.",
            "Each row is a node of the board's mainline tree (linux 6.12) with `reg`",
            "and clocks, resets, power domains or `iommus`, as `ghafgen catalog",
            "import --soc` reads it (`ghafgen/catalog/data/soc/`); the class and the",
            "reason are derived from the tree (`ghafgen/catalog/soc.py`). `profile",
            "key` names the devices a profile can pass on that board today. Rows",
            "marked L4T come from `t234.toml` (devices only L4T trees describe);",
            "rows marked `not scanned` are catalog devices whose node has none of those.",
            "",
        ]
        for b in boards:
            lines += [
                f"## {b.name} ({b.mainline_dts})",
                "",
                f"{b.description}. Module SKUs on this carrier: "
                + ", ".join(m.upper() for m in b.modules)
                + "."
                + (
                    f" Fused off on this SKU: {', '.join(b.module.fused_off)}."
                    if b.module is not None and b.module.fused_off
                    else ""
                ),
                "",
                *_markdown_table(_rows(b) + _extra_rows(b)),
                "",
            ]
        return "\n".join(lines)
    parts = []
    for b in boards:
        rows = _rows(b) + _extra_rows(b)
        parts.append(
            "\n".join(textwrap.wrap(f"{b.name} ({b.mainline_dts}):", width))
            + "\n"
            + table(
                list(TEXT_COLUMNS),
                [[r[c] for c in TEXT_COLUMNS] for r in rows],
                width=width,
                notes=[f"{r['class']}: {r['why']}" for r in rows],
            )
        )
    return "\n\n".join(parts)
