"""Exceptions that cross module boundaries; only cli.py maps them to exit codes."""

from __future__ import annotations


class GhafgenError(Exception):
    """Base of every error ghafgen reports without a traceback."""


class ProfileError(GhafgenError):
    """A profile or catalog file cannot be read or used."""


class ToolMissing(GhafgenError):
    """An external tool (nix, dtc, qemu) is not installed."""


class ToolError(GhafgenError):
    """An external tool ran and failed."""
