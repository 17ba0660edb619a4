"""Which tests are `slow` and which run `real_tools`, decided from what a test does.

The rule (tests/README.md says the same):

- `real_tools`: the test, or a helper of the tests package it calls, gates on an
  external tool with `require(...)`, or takes a fixture built with one (the kernel
  and QEMU trees below). In CI a missing tool fails such a test.
- `slow`: the test starts a process — `run_ghafgen` (ghafgen as a user runs it),
  `subprocess`, `pexpect` — or runs a real tool, or is a Hypothesis property test
  (hundreds of cases), or is in SLOW_TESTS (in-process but seconds long).
- INNER_LOOP names the few process-starting tests that stay in `-m "not slow"`, so
  the quick run still starts a real `python -m ghafgen` and sees its exit codes and
  that no traceback escapes.

A mark written on a test (`@pytest.mark.slow`, `pytestmark`) is kept as it is.
The full suite (no `-m`) runs every test either way; the marks only choose what
`pytest -m "not slow"` leaves out.
"""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest

# Names that start a process when a test (or its helper) calls them.
PROCESS_NAMES = frozenset({"run_ghafgen", "subprocess", "pexpect"})
# The gate on an external tool (tests.conftest.require), and on dtschema as
# `check` finds it (tests.conftest.require_dtschema).
TOOL_GATE = "require"
DTSCHEMA_GATE = "require_dtschema"
# Fixtures built with external tools (cpp, dtc, qemu-system-aarch64, tar of a
# source tarball): a test taking one is `real_tools` and `slow`.
TOOL_FIXTURES = frozenset(
    {
        "kernel_src",
        "kernel_src_612",
        "orin_dtb",
        "orin_dtb_612",
        "trees_612",
        "virt_dtb",
        "qemu_10_0",
        # tests/pinned.py: the pinned third-party trees and the QEMU build.
        "ghaf_src",
        "microvm_src",
        "nixpkgs_lib",
        "qemu_build",
    }
)

# Module-scoped fixtures too costly to build on each parallel worker (name:
# what it costs): the tests taking one share a worker (shared_fixture_group).
# Cheap ones (the guest boot's initramfs, a folder of bad files) are not
# listed, so their tests spread over the workers.
SHARED_FIXTURES = {
    "reference_results": "`check` over every reference tree, dt-validate included",
    "linux_612": "Ghaf's drivers laid into 6.12 and cross-compiled",
    "linux_612_prepared": "6.12 unpacked and prepared for arm64 out-of-tree modules",
    "ghaf_out": "`generate --layout ghaf` of every Ghaf-parity profile",
}

# In-process tests that take seconds (test id without parameters: why).
SLOW_TESTS = {
    "tests/test_generate.py::test_generate_then_check_then_idempotent": (
        "generates every reference profile three times (test_golden does it once)"
    ),
}

# Process-starting tests kept in the quick run (full node id: what it shows).
INNER_LOOP = {
    "tests/test_cli.py::test_python_dash_m_runs": "`python -m ghafgen` starts",
    "tests/test_messages.py::test_a_missing_file_is_not_a_syntax_error": (
        "a real process's usage error: exit 2, a rule ID, no traceback"
    ),
    "tests/test_messages.py::test_profiles_that_clash_on_a_host_are_not_counted_valid": (
        "a real process's invalid profiles: exit 1 and the rule"
    ),
}


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _names(func: object, seen: set[int]) -> set[str]:
    """Global and attribute names `func` uses, and those of the tests' own helpers
    it calls (functions defined in the tests package), transitively."""
    func = getattr(func, "__wrapped__", func)
    code = getattr(func, "__code__", None)
    if code is None or id(code) in seen:
        return set()
    seen.add(id(code))
    names: set[str] = set()
    for c in _code_objects(code):
        names.update(c.co_names)
    module_globals = getattr(func, "__globals__", {})
    for name in list(names):
        helper = module_globals.get(name)
        if isinstance(helper, types.ModuleType | types.FunctionType):
            names.add(helper.__name__)  # an alias (`ghafgen = run_ghafgen`)
        if (
            isinstance(helper, types.FunctionType)
            and helper.__module__.startswith("tests")
            and helper.__name__ not in ("run_ghafgen", TOOL_GATE, DTSCHEMA_GATE)
        ):
            names |= _names(helper, seen)
    return names


def _fixture_functions(item: pytest.Function) -> Iterator[object]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    for defs in info.name2fixturedefs.values():
        for fixture in defs:
            if getattr(fixture.func, "__module__", "").startswith("tests"):
                yield fixture.func


# What each function uses (_names), found once: a parametrized test's cases
# and the tests sharing a fixture use the same functions.
_USES: dict[object, frozenset[str]] = {}


def _uses(func: object) -> frozenset[str]:
    if func not in _USES:
        _USES[func] = frozenset(_names(func, set()))
    return _USES[func]


def classify(item: pytest.Function) -> tuple[bool, bool]:
    """(slow, real_tools) for one collected test."""
    names = set(_uses(item.function))
    for func in _fixture_functions(item):
        names |= _uses(func)
    tools = bool({TOOL_GATE, DTSCHEMA_GATE} & names) or bool(
        TOOL_FIXTURES & set(item.fixturenames)
    )
    process = bool(PROCESS_NAMES & names)
    hypothesis = hasattr(item.function, "hypothesis")
    listed = f"{item.path.parent.name}/{item.path.name}::{item.originalname}"
    slow = tools or process or hypothesis or listed in SLOW_TESTS
    nodeid = f"{item.path.parent.name}/{item.path.name}::{item.name}"
    if nodeid in INNER_LOOP:
        slow = False
    return slow, tools


def mark(items: list[pytest.Item]) -> None:
    """Add `slow` and `real_tools` by the rule above; fail on a stale list entry."""
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        for listed in (*SLOW_TESTS, *INNER_LOOP):
            path, _, name = listed.partition("::")
            if item.path.name == path.partition("/")[2] and not hasattr(
                item.module, name.partition("[")[0]
            ):
                raise pytest.UsageError(f"tests/marks.py names {listed}: no such test")
        slow, tools = classify(item)
        if slow and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
        if tools and item.get_closest_marker("real_tools") is None:
            item.add_marker(pytest.mark.real_tools)
        group = shared_fixture_group(item)
        if group and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


def shared_fixture_group(item: pytest.Function) -> str:
    """Tests that take one of SHARED_FIXTURES run on one pytest-xdist worker
    under `--dist loadgroup` (scripts/test.sh), which builds it once; every
    other test goes wherever a worker is free. "" for a test that takes none."""
    names = sorted(SHARED_FIXTURES.keys() & set(item.fixturenames))
    return f"{item.module.__name__}:{names[0]}" if names else ""
