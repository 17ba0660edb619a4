"""Start-up stays cheap: guards without timing (benchmarks/startup.py times it).

A command imports what it uses and no more; `main()` builds only the command
a command line runs and prints the same text as the whole app; the parsed
catalog kept between runs is never stale and never trusted when broken.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen import cli
from ghafgen.catalog import read as load

ROOT = Path(__file__).resolve().parents[1]
PROFILE = str(ROOT / "profiles" / "orin-agx-uarta.toml")

# Heavy modules no start-up command needs (render, check, import, discover).
NEVER = {
    "jinja2",
    "markupsafe",
    "tomlkit",
    "libfdt",
    "rich",
    "pydantic",
    "ghafgen.render",
    "ghafgen.views",
    "ghafgen.toolchain",
    "ghafgen.discover",
    "ghafgen.derive.runtime",
    "ghafgen.catalog.dtimport",
}


def after_run(args: list[str], tmp_path: Path, report: str) -> list[str]:
    """Run `ghafgen ARGS` in a fresh interpreter, then evaluate `report` (an
    expression giving a list of strings) in it and return that list."""
    code = (
        "import sys\n"
        "from ghafgen.cli import main\n"
        f"sys.argv = ['ghafgen', *{args!r}]\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        f"sys.stderr.write('\\nREPORT ' + ' '.join({report}))\n"
    )
    env = {"PYTHONPATH": str(ROOT), "GHAFGEN_CACHE_DIR": str(tmp_path), "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stderr.rsplit("REPORT ", 1)[1].split()


def modules_after(args: list[str], tmp_path: Path) -> set[str]:
    """Every module imported by one run of `ghafgen ARGS`."""
    return set(after_run(args, tmp_path, "sorted(sys.modules)"))


def test_help_imports_no_ghafgen_stage(tmp_path: Path) -> None:
    mods = modules_after(["--help"], tmp_path)
    stages = {m for m in mods if m.count(".") and m.split(".")[1] != "cli"}
    assert {m for m in stages if m.startswith("ghafgen.")} <= {
        "ghafgen.errors",
        "ghafgen.cli",
    }
    assert not mods & (NEVER | {"json", "dataclasses", "ghafgen.findings"})


def test_validate_imports_only_what_validation_uses(tmp_path: Path) -> None:
    mods = modules_after(["validate", PROFILE], tmp_path)
    assert "ghafgen.rules.engine" in mods
    # hashlib loads OpenSSL (~4 ms); validate computes no digest.
    assert not mods & (NEVER | {"json", "hashlib"})


def test_validate_defines_its_records_without_compiling_code(tmp_path: Path) -> None:
    """validate defines every record class on each run. A frozen dataclass
    compiles its methods then (~1 ms each), and a NamedTuple compiles each
    annotation written as a string (`from __future__ import annotations`), so
    the records on its path are NamedTuples with evaluated annotations."""
    found = after_run(
        ["validate", PROFILE],
        tmp_path,
        "[f'{m}.{n}:' + ('dataclass' if '__dataclass_fields__' in vars(v) else"
        " 'strings' if any(type(a).__name__ in ('str', 'ForwardRef') for a in"
        " vars(v).get('__annotations__', {}).values()) else 'ok')"
        " for m, mod in list(sys.modules.items()) if m.startswith('ghafgen')"
        " for n, v in vars(mod).items() if isinstance(v, type)"
        " and v.__module__ == m and ('__dataclass_fields__' in vars(v)"
        " or hasattr(v, '_fields'))]",
    )
    records = dict(c.rsplit(":", 1) for c in found)
    assert "ghafgen.profile.model.Vm" in records
    assert "ghafgen.catalog.model.PlatformDevice" in records
    assert {c: how for c, how in records.items() if how != "ok"} == {}
    assert "dataclasses" not in modules_after(["validate", PROFILE], tmp_path)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        [],
        ["--version"],
        ["nosuch"],
        ["valdate"],
        ["validate", "--help"],
        ["catalog", "--help"],
        ["catalog", "import", "--help"],
        ["build", "--help"],
        ["--help", "validate"],
    ],
    ids=lambda a: " ".join(a) or "(none)",
)
def test_main_prints_what_the_whole_app_prints(args: list[str]) -> None:
    runner = CliRunner()
    whole = runner.invoke(cli.app, args, prog_name="ghafgen")
    part = runner.invoke(cli.for_args(args), args, prog_name="ghafgen")
    assert (part.exit_code, part.output) == (whole.exit_code, whole.output)


def test_a_command_line_naming_a_command_builds_that_command_alone() -> None:
    import typer.main

    def listed(app: typer.Typer) -> list[str]:
        return list(typer.main.get_group(app).commands)

    assert listed(cli.for_args(["validate", PROFILE])) == ["validate"]
    assert listed(cli.for_args(["catalog", "import", "--help"])) == ["catalog"]
    assert listed(cli.for_args(["--help"])) == listed(cli.app)
    assert len(listed(cli.app)) > 5
    assert cli.for_args(["--version", "validate"]) is cli.app


@pytest.fixture
def catalog_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped runtime.toml, and a private cache dir."""
    monkeypatch.setenv("GHAFGEN_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "runtime.toml"
    copy.write_text((load.DATA / "runtime.toml").read_text(encoding="utf-8"))
    return copy


def test_the_parsed_catalog_kept_between_runs_equals_a_fresh_parse(
    catalog_copy: Path,
) -> None:
    import tomllib

    fresh = tomllib.loads(catalog_copy.read_text(encoding="utf-8"))
    first = load._parsed(catalog_copy)
    assert list((catalog_copy.parent / "cache" / "catalog").iterdir())
    kept = load._parsed(catalog_copy)
    # Same values, and the same order: devices are listed in file order.
    assert json.dumps(kept) == json.dumps(first) == json.dumps(fresh)


def test_an_edited_catalog_file_is_parsed_again(catalog_copy: Path) -> None:
    load._parsed(catalog_copy)
    catalog_copy.write_text(
        catalog_copy.read_text(encoding="utf-8") + '\n[added]\nkey = "new"\n'
    )
    assert load._parsed(catalog_copy)["added"] == {"key": "new"}


@pytest.mark.parametrize("junk", [b"", b"\x00garbage", b"\xe3\x03\x00\x00\x00"])
def test_a_broken_cache_entry_is_ignored_and_replaced(
    catalog_copy: Path, junk: bytes
) -> None:
    fresh = load._parsed(catalog_copy)
    (entry,) = (catalog_copy.parent / "cache" / "catalog").iterdir()
    entry.write_bytes(junk)
    assert load._parsed(catalog_copy) == fresh
    assert entry.read_bytes() != junk


def test_an_unwritable_cache_dir_only_costs_the_parse(
    catalog_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = catalog_copy.parent / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("GHAFGEN_CACHE_DIR", str(blocker))
    assert load._parsed(catalog_copy)["qemu"]
