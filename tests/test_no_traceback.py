"""Every command on a set of bad inputs: a clear error and an exit code, never a traceback.

Each case runs `python -m ghafgen` as a user would. The bad inputs are made
here: missing and unreadable paths, a folder for a file, non-UTF-8 bytes, a
BOM, 600-deep arrays, 1000-deep inline tables, a lock file of the wrong shape,
a non-DTB tree, garbage in sysfs, a catalog folder that is not one, a full
stdout. The last test checks the cases reach every command there is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ghafgen.cli import app
from tests.conftest import ROOT, run_ghafgen

GOOD = ROOT / "profiles" / "orin-agx-uarta.toml"
SYSFS = ROOT / "tests" / "data" / "sysfs" / "agx-gpu"


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "notutf8.toml").write_bytes(b'[target]\nname = "\xff\xfe"\n')
    (d / "empty.toml").write_text("")
    (d / "bom.toml").write_bytes(b"\xef\xbb\xbf" + GOOD.read_bytes())
    (d / "deep-array.toml").write_text("x = " + "[" * 600 + "]" * 600 + "\n")
    (d / "deep-table.toml").write_text("x = " + "{a = " * 1000 + "1" + "}" * 1000)
    (d / "binary.toml").write_bytes(bytes(range(256)))
    (d / "adir").mkdir()
    (d / "adir.toml").mkdir()
    (d / "hostile.toml").write_text(
        GOOD.read_text() + '\n[vms."x-vm\\n"]\nvcpus = 1\nmemory = "1G"\n'
        '[sources.ghaf]\nurl = "--upload-pack=touch"\nrev = "-x"\n'
    )
    lockdir = d / "lockdir"
    lockdir.mkdir()
    (lockdir / "p.toml").write_text(
        GOOD.read_text() + '\n[sources.ghaf]\nurl = "https://example.invalid/g.git"\n'
    )
    (lockdir / "ghafgen.lock").write_text('{"sources": [1, 2]}')
    (d / "tarball.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(20))
    # A generated target with a non-UTF-8 overlay, a missing vms/<vm>.nix and
    # a writer's leftover temp tree beside it.
    out = d / "out"
    assert run_ghafgen("generate", str(GOOD), "-o", str(out)).returncode == 0
    target = out / "nvidia-jetson-orin-agx-uarta"
    shutil.copytree(target, out / ".nvidia-jetson-orin-agx-uarta.tmp-4242")
    with (target / "overlays" / "uarta-passthrough.dts").open("ab") as f:
        f.write(b"\xff\xfe /* not UTF-8 */\n")
    (target / "vms" / "uart-vm.nix").unlink()
    root = d / "sysfs"
    shutil.copytree(SYSFS, root, symlinks=True)
    dev = root / "sys/bus/pci/devices/0005:01:00.0"
    (dev / "class").write_text("garbage\n")
    (dev / "resource").write_text("zz yy 0\n")
    (d / "cap").mkdir()
    return d


CASES: list[tuple[str, ...]] = [
    *(
        (cmd, *opts, f"{{bad}}/{name}")
        for cmd, opts in (
            ("validate", ()),
            ("show", ()),
            ("show", ("--format", "json")),
            ("show", ("--format", "mermaid")),
            ("prefetch", ()),
        )
        for name in (
            "missing.toml",
            "adir.toml",
            "notutf8.toml",
            "empty.toml",
            "bom.toml",
            "deep-array.toml",
            "deep-table.toml",
            "binary.toml",
            "hostile.toml",
            "lockdir/p.toml",
        )
    ),
    ("validate", "--format", "xml", str(GOOD)),
    ("show", "--boards", "--format", "yaml"),
    ("generate", "{bad}/deep-array.toml", "-o", "{bad}/o1"),
    ("generate", "{bad}/hostile.toml", "-o", "{bad}/o2"),
    ("generate", str(GOOD), "-o", "{bad}/empty.toml"),
    ("generate", str(GOOD), "-o", "{bad}/o3", "--layout", "nope"),
    ("generate", "{bad}/lockdir/p.toml", "-o", "{bad}/o4"),
    ("check", "{bad}/missing"),
    ("check", "{bad}/empty.toml"),
    ("check", "{bad}/out"),
    ("check", "{bad}/out", "--kernel-src", "{bad}/missing"),
    ("check", "{bad}/out", "--kernel-src", "{bad}/tarball.tar.gz"),
    ("check", "{bad}/out", "--base-dtb", "{bad}/missing.dtb"),
    ("check", "{bad}/out", "--base-dtb", "{bad}/empty.toml"),
    ("check", "{bad}/out", "--base-dtb", "{bad}/adir"),
    ("check", "{bad}/out", "--qemu-dtb", "{bad}/binary.toml"),
    ("check", "{bad}/out", "--format", "xml"),
    ("discover", "--root", "{bad}/missing"),
    ("discover", "--root", "{bad}/empty.toml"),
    ("discover", "--root", "{bad}/adir"),
    ("discover", "--root", "{bad}/sysfs"),
    ("discover", "--root", str(SYSFS), "--capture", "{bad}/cap"),
    ("discover", "--root", str(SYSFS), "--profile", "{bad}/adir"),
    ("discover", "--root", str(SYSFS), "--profile", "{bad}/empty.toml"),
    ("new-target", "x-vm\n", "--board", "jetson-agx-orin-devkit", "--dir", "{bad}/nt"),
    ("new-target", "t", "--board", "nope", "--dir", "{bad}/nt"),
    ("new-target", "t", "--vm", "a:x:1G", "--board", "jetson-agx-orin-devkit"),
    (
        "new-target",
        "t",
        "--dir",
        "{bad}/empty.toml",
        "--board",
        "jetson-agx-orin-devkit",
    ),
    ("new-target", "t", "--from-discover", "{bad}/sysfs", "--dir", "{bad}/nt"),
    ("new-target", "t", "--from-discover", "{bad}/missing"),
    ("catalog", "import", "--dtb", "{bad}/missing.dtb"),
    ("catalog", "import", "--dtb", "{bad}/binary.toml"),
    ("catalog", "import", "--dts", "{bad}/binary.toml"),
    ("catalog", "import", "--dtb", "{bad}/empty.toml", "-o", "{bad}/adir"),
    ("catalog", "import", "--dtb", "{bad}/empty.toml", "--flavor", "x"),
    ("catalog", "import"),
    ("build", "--dry-run", "--option", "novalue", "t"),
    ("build", "--flake", "{bad}/adir", "--", "-x"),
    ("schema", "extra"),
    ("verify", "{bad}/missing"),
    ("verify", "{bad}/binary.toml", "--root", "{bad}/adir"),
    (
        "verify",
        "{bad}/out/nvidia-jetson-orin-agx-uarta",
        "--root",
        "{bad}/tarball.tar.gz",
    ),
    ("verify", "{bad}/out/nvidia-jetson-orin-agx-uarta", "--root", "{bad}/sysfs"),
    (
        "verify",
        "{bad}/out/nvidia-jetson-orin-agx-uarta",
        "--root",
        "{bad}/sysfs",
        "--guest",
    ),
    ("verify", "--root", "{bad}/adir"),
    ("verify", "--root", "{bad}/sysfs", "--capture", "{bad}/cap"),
    ("rules", "--format", "xml"),
    ("--no-such-option",),
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c)[:60] for c in CASES])
def test_no_traceback(bad: Path, args: tuple[str, ...]):
    argv = [a.replace("{bad}", str(bad)) for a in args]
    done = run_ghafgen(*argv, cwd=bad)
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    assert done.returncode in (0, 1, 2, 3), (done.returncode, out)
    if done.returncode == 2:
        assert "error" in out.lower(), out


@pytest.mark.parametrize(
    "env", [{"GHAFGEN_CATALOG": "{bad}/adir"}, {"GHAFGEN_CATALOG": "{bad}/missing"}]
)
@pytest.mark.parametrize("args", [("validate", str(GOOD)), ("show", "--boards")])
def test_wrong_catalog_folder(bad: Path, env: dict[str, str], args: tuple[str, ...]):
    extra = {k: v.replace("{bad}", str(bad)) for k, v in env.items()}
    done = run_ghafgen(*args, env={**os.environ, **extra})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "GHAFGEN_CATALOG=" in done.stderr and "catalog/data" in done.stderr


@pytest.mark.parametrize("args", [("schema",), ("rules", "--format", "json")])
def test_a_full_stdout_is_one_line(args: tuple[str, ...]):
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "ghafgen", *args],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr == "error: cannot write the output: No space left on device\n"


def test_install_completion_into_an_unwritable_rc_file(tmp_path: Path):
    (tmp_path / ".bashrc").mkdir()  # root ignores modes; a folder cannot be appended to
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    done = run_ghafgen("--install-completion", "bash", env=env)
    # It failed once in a loaded serial run and never alone: say what it saw.
    seen = (done.returncode, done.stdout, done.stderr)
    assert done.returncode == 2 and "Traceback" not in done.stderr, seen
    assert f"cannot write {tmp_path}/.bashrc" in done.stderr, seen


def test_the_cases_reach_every_command():
    import typer.main

    group = typer.main.get_command(app)
    names: set[str] = set()
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        names |= {f"{name} {s}" for s in sub} if sub else {name}
    covered = {c[0] if c[0] != "catalog" else f"catalog {c[1]}" for c in CASES}
    assert names <= covered, names - covered


def test_layout_and_flavor_choices_match_the_code():
    from ghafgen.catalog.model import FLAVORS
    from ghafgen.cli._app import Flavor, Layout
    from ghafgen.render.plan import LAYOUTS

    assert tuple(Layout) == LAYOUTS and tuple(Flavor) == FLAVORS
