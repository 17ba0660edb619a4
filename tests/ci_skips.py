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

NVOOT = (
    "needs NVIDIA's linux-nv-oot tree (GHAFGEN_NVOOT_SRC): it is in neither "
    "../shared/third_party nor Debian nor PyPI, and CI's network reaches only "
    "those registries"
)

ALLOWED: dict[str, str] = {
    "tests/test_dcerelay_tools.py::"
    "test_the_proxies_build_for_arm64_on_6_12_with_nvidias_patched_tree": NVOOT,
}
