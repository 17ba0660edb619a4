"""Messages a new user reads: what they name, and that they do not mislead."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ghafgen.profile.parse import load_text
from ghafgen.toolchain.realtools import dtc_error, nix_error
from tests.conftest import AGX, PROFILES, ROOT, require, run_ghafgen

UARTA = ROOT / "profiles" / "orin-agx-uarta.toml"


def test_a_missing_file_is_not_a_syntax_error(tmp_path: Path):
    done = run_ghafgen("validate", str(tmp_path / "nope.toml"))
    assert done.returncode == 2
    assert "error[GG012]: cannot read profile: No such file or directory" in done.stdout
    assert "GG001" not in done.stdout


def test_a_bom_is_named(tmp_path: Path):
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + UARTA.read_bytes())
    done = run_ghafgen("validate", str(bom))
    assert f"{bom}:1: error[GG001]: the file starts with a UTF-8 byte-order mark" in (
        done.stdout
    )
    assert "save it as UTF-8 without BOM" in done.stdout


def test_a_profile_given_twice_is_checked_once():
    done = run_ghafgen("validate", str(UARTA), "profiles/./orin-agx-uarta.toml")
    assert done.returncode == 0, done.stdout
    assert "GG70" not in done.stdout
    assert done.stderr.strip() == "1 profile(s), 1 valid, 0 error(s)"


def test_profiles_that_clash_on_a_host_are_not_counted_valid(tmp_path: Path):
    a = tmp_path / "a.toml"
    a.write_text(UARTA.read_text().replace('name = "', 'host = "box"\nname = "', 1))
    b = tmp_path / "b.toml"
    b.write_text(a.read_text().replace("nvidia-jetson-orin-agx-uarta", "other"))
    done = run_ghafgen("validate", str(a), str(b))
    assert done.returncode == 1 and "GG70" in done.stdout
    assert done.stderr.strip().startswith("2 profile(s), 0 valid, ")


def test_wrong_type_hints_show_the_right_spelling():
    result = load_text(
        AGX + '[vms.a]\nvcpus = "2"\nmemory = 1\nshared = "network"\n', "p"
    )
    hints = {f.message.split("'")[1]: f.hint for f in result.findings}
    assert hints["vms.a.vcpus"] == "write a number without quotes: `vcpus = 1`"
    assert hints["vms.a.memory"] == 'write a size in quotes: `memory = "1G"`'
    assert hints["vms.a.shared"] == 'write it in brackets: `shared = ["network"]`'


def test_unknown_device_hint_names_a_flag_that_exists():
    done = run_ghafgen("show", "--boards")
    assert done.returncode == 0
    from ghafgen.rules import REGISTRY

    assert "`ghafgen show --boards`" in REGISTRY["GG009"].fix


def test_nix_and_dtc_errors_keep_file_line_and_column():
    nix = "warning: x\nerror: syntax error, unexpected '}'\n\n       at /o/t/host.nix:7:3:\n"
    assert (
        nix_error(nix) == "error: syntax error, unexpected '}' (at /o/t/host.nix:7:3)"
    )
    dtc = (
        "Error: /o/t/overlays/a.dts:12.5-6 syntax error\n"
        "FATAL ERROR: Unable to parse input tree\n"
    )
    assert dtc_error(dtc) == "Error: /o/t/overlays/a.dts:12.5-6 syntax error"


def test_check_reports_where_a_broken_file_breaks(tmp_path: Path):
    require("nix-instantiate")
    require("dtc")
    out = tmp_path / "out"
    assert run_ghafgen("generate", str(UARTA), "-o", str(out)).returncode == 0
    target = out / "nvidia-jetson-orin-agx-uarta"
    (target / "host.nix").write_text("{\n  a = ;\n}\n")
    dts = target / "overlays" / "uarta-passthrough.dts"
    dts.write_text(dts.read_text() + "\n/ { broken\n")
    done = run_ghafgen("check", str(target))
    assert done.returncode == 1
    assert f"(at {target}/host.nix:2:7)" in done.stdout
    assert f"Error: {dts}:" in done.stdout
    # Applied to the board tree built from linux-source (the broken file fails),
    # or, without the sources, listed as not applied with why.
    assert "FAIL overlay" in done.stdout or "host overlays not applied" in done.stdout


def test_bpmp_virt_names_its_rev():
    text = (ROOT / "nix/modules/nvidia-jetson-orin-agx-uarta/bpmp-virt.nix").read_text()
    header = text.split("{ lib, pkgs }")[0]
    assert "at rev," not in header
    assert "rev 9a37dc8c2ed13fffb81a77e836bd97d72898acc6" in header


def test_discover_without_root_does_not_blame_root(tmp_path: Path):
    root = tmp_path / "root"
    shutil.copytree(ROOT / "tests/data/sysfs/orin-nx", root, symlinks=True)
    (root / "proc/device-tree/compatible").unlink()
    given = run_ghafgen("discover", "--root", str(root))
    assert "is --root a captured" in given.stderr
    if not Path("/proc/device-tree").exists():  # not a Jetson: the live default
        live = run_ghafgen("discover")
        assert live.returncode == 2
        assert "--root" not in live.stderr.split(";")[0]
        assert "is this a Jetson's live /sys and /proc?" in live.stderr


def test_reference_profiles_still_all_valid():
    done = run_ghafgen("validate", *map(str, PROFILES))
    assert (
        done.stderr.strip()
        == f"{len(PROFILES)} profile(s), {len(PROFILES)} valid, 0 error(s)"
    )


def test_check_says_when_the_base_tree_is_of_the_other_flavour(
    orin_dtb: Path, tmp_path: Path
):
    require("fdtoverlay")
    l4t = ROOT / "nix/modules/nvidia-jetson-orin-agx-uarta"  # dt_flavor = "l4t"
    done = run_ghafgen("check", str(l4t), "--base-dtb", str(orin_dtb))
    line = next(ln for ln in done.stdout.splitlines() if "base-tree" in ln)
    assert line.startswith("FAIL base-tree")
    assert "looks like a mainline tree" in line and 'dt_flavor = "l4t"' in line
    assert done.returncode == 1
    # The same profile for mainline: the tree matches, nothing to say.
    profile = tmp_path / "p.toml"
    text = UARTA.read_text()
    assert "dt_flavor" not in text  # the default, l4t
    profile.write_text(
        text.replace("[target]\n", '[target]\ndt_flavor = "mainline"\n', 1)
    )
    gen = run_ghafgen("generate", str(profile), "-o", str(tmp_path / "out"))
    assert gen.returncode == 0, gen.stdout + gen.stderr
    target = tmp_path / "out" / "nvidia-jetson-orin-agx-uarta"
    ok = run_ghafgen(
        "check", str(target), "--base-dtb", str(orin_dtb), "--format", "json"
    )
    rows = [r for r in json.loads(ok.stdout)["results"] if r["check"] == "base-tree"]
    assert [r["ok"] for r in rows] == [True]
