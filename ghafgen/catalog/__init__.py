"""Hardware catalog: SoC resources, devices and boards, loaded from data files."""

from ghafgen.catalog.load import board, board_names, resolve

__all__ = ["board", "board_names", "resolve"]
