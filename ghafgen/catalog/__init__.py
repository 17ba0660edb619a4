"""Stage 1, the hardware catalog: SoC resources, devices and boards, loaded from
the data files under data/, an FDT view over compiled trees, and the DTB import
that drafts catalog entries from a board's tree.

Entry point: `board(name)` (and `board_names()`, `resolve(...)`).
"""

from ghafgen.catalog.load import board, board_names, resolve

__all__ = ["board", "board_names", "resolve"]
