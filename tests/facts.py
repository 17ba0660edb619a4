"""Facts read from Ghaf that several tests check ghafgen against (tiiuae/ghaf 9a37dc8c)."""

from __future__ import annotations

# passthrough/mgbe0-net-vm/default.nix: the allow list Ghaf reads from the live
# L4T tree, plus the clock chains it found on hardware.
GHAF_MGBE0 = {
    "clocks": {
        357,
        361,
        369,
        373,
        374,
        375,
        376,
        377,
        378,
        379,
        380,
        381,
        248,
        319,
        320,
        366,
        367,
        368,
        103,
        292,
        91,
        14,
        288,
        327,
    },
    "resets": {45, 46, 47},
    "power-domains": {18},
}

# Reference profiles with a Ghaf counterpart (docs/ghaf-parity.md) or a Ghaf VM name.
GHAF_PROFILES = [
    "orin-agx-uarta-host",
    "orin-agx-uarti-net-vm",
    "orin-agx-mgbe0-net-vm",
    "orin-agx-wifi-net-vm",
    "orin-agx-gpu-gui-vm",
]
