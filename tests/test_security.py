"""Defence in depth: even a profile that skipped validation cannot inject into outputs.

docs/security.md lists every place a profile value reaches Nix, DTS, systemd
or a shell line, and the guard there; these tests try hostile values at each.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.render.files import render_target
from ghafgen.render.plan import plan
from ghafgen.rules.engine import validate
from tests.conftest import ROOT

HOSTILE = [
    'a"; x = "',
    "${builtins.abort 1}",
    "../../etc",
    "a b",
    "x\ny",
    "''${x}",
    "q'",
]


def reference(name: str):  # type: ignore[no-untyped-def]
    report = validate([ROOT / "profiles" / f"{name}.toml"], catalog.load())
    return report.usable[0]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_vm_name_is_refused_by_the_renderer(bad: str):
    profile, board = reference("orin-agx-uarta")
    vm = profile.vms["uart-vm"]._replace(name=bad)
    pts = tuple(p._replace(vm=bad) for p in profile.passthroughs)
    hostile = profile._replace(vms={bad: vm}, passthroughs=pts)
    with pytest.raises(ValueError):
        render_target(plan(hostile, board, "p.toml"))


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_passthrough_name_is_refused_by_the_renderer(bad: str):
    profile, board = reference("orin-agx-uarta")
    pts = tuple(p._replace(name=bad) for p in profile.passthroughs)
    with pytest.raises(ValueError):
        render_target(plan(profile._replace(passthroughs=pts), board, "p.toml"))


@pytest.mark.parametrize("bad", ["0005:01:00.0 --evil", "0005:01:00.0;reboot", "$(id)"])
def test_hostile_pci_function_cannot_reach_exec_start(bad: str):
    from ghafgen.profile.model import PciAddress

    profile, board = reference("orin-agx-wifi-net-vm")
    pts = tuple(p._replace(functions=(PciAddress(bad),)) for p in profile.passthroughs)
    with pytest.raises(ValueError):
        render_target(plan(profile._replace(passthroughs=pts), board, "p.toml"))


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_kernel_params_stay_nix_strings(bad: str):
    """Printed as nix_str(value) on a line of its own; test_escaping proves with the
    real Nix that nix_str evaluates back to the value."""
    from ghafgen.render.escape import nix_str

    profile, board = reference("orin-agx-uarta")
    vm = profile.vms["uart-vm"]._replace(kernel_params=(bad,))
    files = render_target(plan(profile._replace(vms={"uart-vm": vm}), board, "p"))
    lines = [ln.strip() for ln in files["vms/uart-vm.nix"].decode().split("\n")]
    assert str(nix_str(bad)) in lines


def test_no_shell_and_one_subprocess_module():
    sources = {p: p.read_text() for p in (ROOT / "ghafgen").rglob("*.py")}
    assert not [p for p, s in sources.items() if "shell=True" in s]
    users = sorted(
        p.name
        for p, s in sources.items()
        if re.search(r"^import subprocess", s, re.MULTILINE)
    )
    assert users == ["tools.py"]


def test_security_review_covers_every_template():
    review = (ROOT / "docs" / "security.md").read_text()
    for template in sorted((ROOT / "ghafgen/render/templates").glob("*.j2")):
        if not template.name.startswith("_"):
            assert f"`{template.name}`" in review, template.name


def test_generated_scripts_are_fixed_text():
    """bind-vfio.sh takes devices as arguments; no profile value is spliced into it."""
    texts = {
        p.read_text().split("\n", 4)[4]
        for p in Path(ROOT / "nix" / "modules").glob("*/bind-vfio.sh")
    }
    assert len(texts) == 1


def test_a_file_named_like_an_option_stays_a_file(tmp_path: Path, monkeypatch):
    """`--` before positionals: dtc reads `-o.dts` as the source, not as `-o`."""
    from ghafgen.toolchain.realtools import compile_dts
    from tests.conftest import require

    require("dtc")
    monkeypatch.chdir(tmp_path)
    Path("-o.dts").write_text('/dts-v1/;\n/ { model = "m"; };\n')
    ok, _warnings, err = compile_dts(Path("-o.dts"), Path("out.dtb"))
    assert ok, err
    assert Path("out.dtb").read_bytes()[:4] == b"\xd0\x0d\xfe\xed"


def test_build_target_after_double_dash():
    from ghafgen.toolchain.nixbuild import BuildOptions, build_argv

    argv = build_argv("--impure", BuildOptions())
    assert argv[-2] == "--" and argv[-1].startswith(".#")
    assert "--impure" not in argv[:-1]
    argv = build_argv("-x#y", BuildOptions())
    assert argv[-2:] == ["--", "-x#y"]
