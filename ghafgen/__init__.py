"""ghafgen: profiles in, checked Ghaf/microvm.nix passthrough configuration out."""

__version__ = "0.1.0"
