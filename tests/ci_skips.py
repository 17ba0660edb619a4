"""The one list of tests that may skip under CI although they need a real part.

Under `CI` (set by CI), a `real_tools` test (tests/marks.py: it runs a real
tool, or takes a fixture built from one, such as the pinned trees of
tests/pinned.py) that skips is reported as failed unless its id is here, with
why it cannot run on CI's machine. Keys are test ids as pytest prints them
(`tests/test_x.py::test_name[param]`); a key without `[...]` covers every
parameter of that test. conftest.py applies it; a key naming no collected
test is an error (as for tests/marks.py's lists).
"""

from __future__ import annotations

ALLOWED: dict[str, str] = {}
