"""Discovery: read a running board's sysfs (or a capture of it), and draft a
profile, a board entry or a whole new target from what it finds.

Entry point: `discover(root, cat)`, giving a Discovery.
"""

from ghafgen.discover.sysfs import discover

__all__ = ["discover"]
