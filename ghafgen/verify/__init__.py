"""Verification on the board: after deployment, does the running host (or a guest)
do what the generated target asked? Reads a live system or a capture of one.

Entry point: `verify(target, root, guest=..., vm=...)`, giving a `Verified`.
"""

from ghafgen.verify.run import Verified, verify

__all__ = ["Verified", "verify"]
