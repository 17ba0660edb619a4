"""Shared paths and helpers for the test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ghafgen.profile.parse import load_text

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "profiles").glob("*.toml"))
BAD = sorted((ROOT / "tests" / "bad-profiles").glob("*.toml"))
# Hosts of several profiles (one folder each): the profiles share target.host and
# are validated together; a file's first line names what it must produce.
BAD_HOSTS = sorted(p for p in (ROOT / "tests" / "bad-profiles").iterdir() if p.is_dir())

AGX = '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\n'


@pytest.fixture
def parse():
    """Parse TOML text into a profile, failing the test on any finding."""

    def _parse(text: str):
        result = load_text(text, "p.toml")
        assert result.profile is not None, [f.render() for f in result.findings]
        return result.profile

    return _parse


def _cache_cli_commands() -> None:
    """Build the Click command of a Typer app once per session for CliRunner.

    typer.testing.CliRunner.invoke rebuilds it from the app on every call (a tenth
    of a second each: signatures and type hints of every command); `python -m
    ghafgen` builds it once per process. Each invoke still gets a fresh context.
    """
    import functools

    import typer.testing

    build = getattr(typer.testing, "_get_command", None)
    if build is not None and not hasattr(build, "cache_info"):
        typer.testing._get_command = functools.cache(build)  # type: ignore[attr-defined]


_cache_cli_commands()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` and `real_tools` by what each test does (tests/marks.py), before
    `-m` chooses; the full suite runs every test whatever the marks."""
    from tests import ci_skips, marks

    marks.mark(items)
    collected = {item.nodeid for item in items} | {
        item.nodeid.partition("[")[0] for item in items
    }
    files = {item.nodeid.partition("::")[0] for item in items}
    for listed in ci_skips.ALLOWED:
        if listed.partition("::")[0] in files and listed not in collected:
            raise pytest.UsageError(f"tests/ci_skips.py names {listed}: no such test")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under CI, a skipped `real_tools` test fails unless tests/ci_skips.py
    lists it with why: CI's machine has every real part the suite names."""
    import os

    from tests import ci_skips

    report: pytest.TestReport = yield
    if (
        report.skipped
        and os.environ.get("CI")
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("real_tools") is not None
        and item.nodeid not in ci_skips.ALLOWED
        and item.nodeid.partition("[")[0] not in ci_skips.ALLOWED
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI: {reason}\n(a test that needs a real part may skip "
            "in CI only when tests/ci_skips.py lists it, with why)"
        )
    return report


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Regenerate nix/modules from profiles/ instead of comparing (review the diff).",
    )


def require(tool: str) -> str:
    """Path of `tool`, else a skip (a failure under CI: see pytest_runtest_makereport)."""
    import shutil

    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (bash scripts/install.sh installs it)")
    return path


def require_dtschema():
    """dtschema as `check` finds it (ghafgen.toolchain.bindings.dtschema): the
    product and the tests give one answer to whether dt-validate can run."""
    import os

    from ghafgen.toolchain import bindings

    tool = bindings.dtschema()
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail(bindings.NOT_INSTALLED)
        pytest.skip(bindings.NOT_INSTALLED)
    return tool


def kernel_tree(version: str) -> Path:
    """Debian's linux-source-`version` (the subset ghafgen's checks read)."""
    from tests import trees

    if not trees.tarball(version).exists():
        pytest.skip(
            f"{trees.tarball(version)} missing (apt-get install linux-source-{version})"
        )
    return trees.extract_kernel_subset(version)


@pytest.fixture(scope="session")
def ghaf_src() -> Path:
    """tiiuae/ghaf at the pinned revision (tests/pinned.py says where from)."""
    from tests import pinned

    return pinned.need(lambda: pinned.tree("ghaf"))


@pytest.fixture(scope="session")
def microvm_src() -> Path:
    """microvm.nix at the pinned revision."""
    from tests import pinned

    return pinned.need(lambda: pinned.tree("microvm.nix"))


@pytest.fixture(scope="session")
def nixpkgs_lib() -> Path:
    """nixpkgs' `lib` folder (nix-community/nixpkgs.lib at the pinned revision)."""
    from tests import pinned

    return pinned.need(lambda: pinned.tree("nixpkgs.lib"))


@pytest.fixture(scope="session")
def qemu_build() -> Path:
    """A configured QEMU 10.0 build folder (tests/pinned.py `qemu_build`)."""
    from tests import pinned

    return pinned.need(pinned.qemu_build)


@pytest.fixture(scope="session")
def kernel_src() -> Path:
    return kernel_tree("6.1")


@pytest.fixture(scope="session")
def kernel_src_612() -> Path:
    return kernel_tree("6.12")


@pytest.fixture(scope="session")
def orin_dtb(kernel_src: Path) -> Path:
    """The AGX Orin devkit tree of mainline 6.1 (PCIe at the root, no uarti)."""
    from tests import trees

    require("cpp")
    require("dtc")
    return trees.build_orin_dtb(kernel_src)


@pytest.fixture(scope="session")
def orin_dtb_612(kernel_src_612: Path) -> Path:
    """The AGX Orin devkit tree of 6.12: JetPack 6's layout, the L4T stand-in."""
    from tests import trees

    require("cpp")
    require("dtc")
    return trees.build_orin_dtb(kernel_src_612)


@pytest.fixture(scope="session")
def trees_612(kernel_src_612: Path) -> dict[str, Path]:
    """The 6.12 board trees (AGX, Orin NX, Orin Nano, IGX), built once: name -> DTB."""
    from tests import trees

    require("cpp")
    require("dtc")
    return {
        name: trees.build_board_dtb(kernel_src_612, name)
        for name in trees.BOARD_DTS_612
    }


@pytest.fixture(scope="session")
def virt_dtb(tmp_path_factory: pytest.TempPathFactory):
    """A function: QEMU's virt tree for (vcpus, memory MiB), dumped once per shape."""
    from tests import trees

    require("qemu-system-aarch64")
    out = tmp_path_factory.mktemp("virt")
    cache: dict[tuple[int, int], Path] = {}

    def dump(vcpus: int = 1, mem_mib: int = 1024) -> Path:
        if (vcpus, mem_mib) not in cache:
            cache[(vcpus, mem_mib)] = trees.dump_virt_dtb(out, vcpus, mem_mib)
        return cache[(vcpus, mem_mib)]

    return dump


def run_ghafgen(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """ghafgen as a user runs it: a separate process (exit codes, stderr, no traceback).

    PYTHONPATH names this tree, so a run from another folder tests this code,
    not whichever ghafgen is installed.
    """
    import os

    base = os.environ if env is None else env
    py_path = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "ghafgen", *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": py_path},
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
