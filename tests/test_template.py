"""The flake template: instantiated into a fresh folder with the real
`nix flake init -t` (offline: flake.lock is complete, and a template needs no
input fetched), `ghafgen generate` run there as its `generate` app runs it, and
every Nix file parsed by the real Nix. The template's own flake outputs are
evaluated too, with the pinned nixpkgs lib and microvm.nix (stand-ins as in
test_flake)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, require
from tests.test_flake import NEEDS_TREES, flake_outputs

TEMPLATE = ROOT / "templates" / "default"
# What the template's `generate` app runs, in the flake's folder.
GENERATE = "generate profiles/*.toml -o nix/modules"


def instantiate(dest: Path) -> Path:
    """`nix flake init -t` from a copy of this flake, then generate there."""
    require("nix")
    flake = dest.parent / "ghafgen-flake"
    flake.mkdir()
    for name in ("flake.nix", "flake.lock"):
        shutil.copy(ROOT / name, flake / name)
    shutil.copytree(ROOT / "templates", flake / "templates")
    registry = dest.parent / "registry.json"
    registry.write_text('{"flakes": [], "version": 2}')
    dest.mkdir()
    done = subprocess.run(
        [
            *("nix", "--extra-experimental-features", "nix-command flakes"),
            *("--option", "flake-registry", str(registry)),
            *("flake", "init", "-t", f"path:{flake}#default"),
        ],
        cwd=dest,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    copied = sorted(p.relative_to(dest) for p in dest.rglob("*") if p.is_file())
    assert copied == sorted(
        p.relative_to(TEMPLATE) for p in TEMPLATE.rglob("*") if p.is_file()
    )
    generate_in(dest)
    return dest


def generate_in(flake: Path) -> None:
    """What the template's `generate` app runs, with this checkout's ghafgen."""
    profiles = sorted(
        p.relative_to(flake).as_posix() for p in flake.glob("profiles/*.toml")
    )
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "generate", *profiles, "-o", "nix/modules"],
        cwd=flake,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_template_wires_generate_the_way_the_test_runs_it():
    flake = (TEMPLATE / "flake.nix").read_text()
    assert re.search(rf"\$\{{ghafgenExe system\}} {re.escape(GENERATE)} ", flake)
    assert f"ghafgen {GENERATE}" in (TEMPLATE / "README.md").read_text()


def test_instantiated_template_generates_and_every_nix_file_parses(tmp_path: Path):
    require("nix-instantiate")
    flake = instantiate(tmp_path / "my-orin")
    target = flake / "nix" / "modules" / "orin-uarta"
    assert (target / "default.nix").is_file() and (
        target / "vms" / "uart-vm.nix"
    ).is_file()
    files = sorted(flake.rglob("*.nix"))
    assert {"flake.nix", "host.nix"} <= {f.name for f in files}
    for f in files:
        done = subprocess.run(
            ["nix-instantiate", "--parse", str(f)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{f}: {done.stderr}"


def test_instantiated_template_passes_check_with_what_the_readme_installs(
    tmp_path: Path, kernel_src_612: Path
):
    """The template's profile is mainline on the pinned 6.6 host kernel; the
    README installs linux-source-6.12 only (Debian has no 6.6), so `check`
    applies its host overlays to 6.12's AGX tree, which the catalog keys with
    the same node paths and labels as 6.6's, and says so: nothing is skipped
    for want of a tree."""
    require("fdtoverlay")
    flake = instantiate(tmp_path / "my-orin")
    only_612 = tmp_path / "src"
    only_612.mkdir()
    (only_612 / "linux-source-6.12.tar.xz").symlink_to(
        Path("/usr/src/linux-source-6.12.tar.xz")
    )
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "check", "nix/modules"],
        cwd=flake,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "GHAFGEN_KERNEL_SOURCES": str(only_612),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    overlays = [ln for ln in lines if " overlay " in ln]
    assert [ln.split()[2].rstrip(":") for ln in overlays] == [
        "orin-uarta/overlays/bpmp-host-proxy.dts",
        "orin-uarta/overlays/uarta-passthrough.dts",
    ]
    for ln in overlays:
        assert ln.startswith("ok") and (
            "tegra234-p3737-0000+p3701-0000 (linux-source-6.12, stand-in for "
            "mainline 6.6" in ln
        ), ln
    # Every host tree is checked against the bindings too; only the patches and
    # Kconfig, which need --kernel-src/--qemu-src, are left.
    skipped = {ln.split()[1] for ln in lines if ln.startswith("skip")}
    assert skipped <= {"patch", "kconfig"}, done.stdout


@NEEDS_TREES
def test_instantiated_template_evaluates_to_a_host_per_target(tmp_path: Path):
    flake = instantiate(tmp_path / "my-orin")
    # A user's own host.nix is part of every system.
    host = flake / "host.nix"
    host.write_text(host.read_text().replace('fsType = "ext4"', 'fsType = "btrfs"'))
    out = flake_outputs(template=flake)["template"]
    assert isinstance(out, dict)
    assert out["outputs"] == ["apps", "checks", "nixosConfigurations"]
    assert out["apps"]["aarch64-linux"] == ["default", "generate"]
    assert out["checks"]["x86_64-linux"] == ["generated-up-to-date"]
    system = out["nixosConfigurations"]["orin-uarta"]
    # The template's profile picks the mainline tree: the 6.6 LTS host kernel.
    assert system["jetpack"] is None
    assert system["kernel"].startswith("6.6.")
    assert system["failedAssertions"] == []
    assert system["root"] == "btrfs"
    assert system["vms"] == ["uart-vm"]
    assert list(out["nixosConfigurations"]) == ["orin-uarta"]


def test_readme_nix_path_builds_the_template_target():
    """The README's Nix lines are the template's: its app, its target's toplevel."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sh\n")[2].split("```")[0]
    target = re.search(
        r'^name = "([^"]+)"', (TEMPLATE / "profiles/orin.toml").read_text(), re.M
    )
    assert target is not None
    assert "nix flake init -t FLAKE" in block and "nix run .#generate" in block
    assert f".#nixosConfigurations.{target[1]}.config.system.build.toplevel" in block


def test_readme_opens_with_the_debian_commands_then_the_nix_path():
    """Both paths first: the Debian lines (CI runs the second) and the Nix lines."""
    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("```sh\n")
    debian, nix = (b.split("```")[0] for b in readme.split("```sh\n")[1:3])
    assert len(debian.splitlines()) == 2
    for path in re.findall(r"(?:scripts|profiles)/[\w.-]+", debian):
        assert (ROOT / path).is_file(), path
    assert readme.index(nix) < readme.index("\n# ghafgen\n")
    assert nix.splitlines()[0].startswith("nix run FLAKE -- ")


@NEEDS_TREES
def test_the_host_kernel_follows_the_profile_series(tmp_path: Path):
    """kernel_version picks nixpkgs' kernel for a mainline tree (6.6 here); a BPMP
    host on 6.12 is refused before anything is written (GG303: the pinned host
    proxy does not build there)."""
    flake = tmp_path / "my-orin"
    shutil.copytree(TEMPLATE, flake)
    generate_in(flake)
    system = flake_outputs(template=flake)["template"]["nixosConfigurations"][
        "orin-uarta"
    ]  # type: ignore[index]
    assert system["kernel"].startswith("6.6.") and system["failedAssertions"] == []
    profile = flake / "profiles" / "orin.toml"
    profile.write_text(
        profile.read_text().replace(
            'dt_flavor = "mainline"', 'dt_flavor = "mainline"\nkernel_version = "6.12"'
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "validate", "profiles/orin.toml"],
        cwd=flake,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "error[GG303]" in done.stdout
