"""Which PCIe slots a profile passes.

Entry point: `slots_in_use(profile, board)`.
"""

from __future__ import annotations

from ghafgen.catalog.model import Board
from ghafgen.profile.model import Passthrough, Profile


def slots_in_use(profile: Profile, board: Board) -> list[Passthrough]:
    """The enabled passthroughs that name a PCIe slot of `board`, in profile order."""
    return [pt for pt in profile.enabled if pt.device in board.slots]
