"""The flake: its outputs as `nix flake show` lists them, its pins, its package.

The outputs tests evaluate flake.nix's `outputs` function with stand-in
inputs built from the pinned nixpkgs lib and microvm.nix (tests/pinned.py, as
tests/test_nixos_eval.py); tests/data/eval/flake-outputs.nix says what is
stubbed. CI runs them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ghafgen import __version__, catalog
from ghafgen.profile.parse import load
from tests import pinned
from tests.conftest import PROFILES, ROOT, require

FLAKE_EVAL = ROOT / "tests" / "data" / "eval" / "flake-outputs.nix"
# The pinned trees flake_outputs reads, found (or the test skipped with why) first.
NEEDS_TREES = pytest.mark.usefixtures("nixpkgs_lib", "microvm_src")
SYSTEMS = ["aarch64-linux", "x86_64-linux"]
# pyproject (PyPI) names whose nixpkgs python3Packages attribute differs.
NIXPKGS_NAME = {"pylibfdt": "libfdt"}


def nix_eval(*args: str) -> object:
    require("nix-instantiate")
    done = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def flake_outputs(template: Path | None = None) -> dict[str, object]:
    lib, microvm = pinned.tree("nixpkgs.lib"), pinned.tree("microvm.nix")
    args = [str(FLAKE_EVAL), "--argstr", "libPath", str(lib)]
    args += ["--argstr", "microvmSrc", str(microvm), "--arg", "root", str(ROOT)]
    if template is not None:
        args += ["--arg", "template", str(template)]
    out = nix_eval(*args)
    assert isinstance(out, str)
    result: dict[str, object] = json.loads(out)
    return result


def reference_targets() -> dict[str, str]:
    """Target name -> dt_flavor of every reference profile."""
    targets = {}
    for path in PROFILES:
        profile = load(path).profile
        assert profile is not None
        targets[profile.target.name] = profile.target.dt_flavor
    return targets


@NEEDS_TREES
def test_flake_show_lists_what_a_nix_user_expects():
    out = flake_outputs()
    assert out["outputs"] == sorted(
        [
            "apps",
            "checks",
            "devShells",
            "formatter",
            "lib",
            "nixosConfigurations",
            "nixosModules",
            "overlays",
            "packages",
            "templates",
        ]
    )
    assert out["overlays"] == ["default"]
    assert set(out["overlayAdds"]) == {
        "ghafgen",
        "ghafgen-qemu-platform",
        "ghafgenSources",
    }  # type: ignore[arg-type]
    targets = reference_targets()
    assert set(out["nixosModules"]) == {"default", "microvm-host", *targets}  # type: ignore[arg-type]
    assert set(out["nixosConfigurations"]) == set(targets)  # type: ignore[arg-type]
    template = out["templates"]["default"]  # type: ignore[index]
    assert Path(template["path"]) == ROOT / "templates" / "default"
    assert (Path(template["path"]) / "flake.nix").is_file()
    for key in ("packages", "apps", "checks", "devShells"):
        assert sorted(out[key]) == SYSTEMS, key  # type: ignore[arg-type]
    assert out["packages"]["aarch64-linux"] == ["default", "ghafgen", "qemu-platform"]  # type: ignore[index]
    assert set(out["checks"]["x86_64-linux"]) == {  # type: ignore[index]
        "generated-up-to-date",
        "ghafgen",
        "tests",
    }
    assert out["formatter"] == SYSTEMS
    # What the README tells a flake user to call.
    assert {"targetModule", "nixosConfigurations", "targets"} <= set(out["lib"])  # type: ignore[arg-type]


@NEEDS_TREES
def test_each_reference_host_gets_the_kernel_of_its_tree_and_ghaf_from_the_input():
    out = flake_outputs()
    systems = out["nixosConfigurations"]
    assert isinstance(systems, dict)
    series = {}
    for path in PROFILES:
        profile = load(path).profile
        assert profile is not None
        series[profile.target.name] = profile.target.kernel_version
    for name, flavor in reference_targets().items():
        host = systems[name]
        assert host["platform"] == "aarch64-linux"
        assert host["hostName"] == name
        if flavor == "l4t":
            # jetpack-nixos for the board's BSP (SoM and carrier from the catalog,
            # as the manifest records them), asked for the upstream 6.6 kernel.
            manifest = ROOT / "nix" / "modules" / name / "ghafgen-manifest.json"
            jetpack = json.loads(manifest.read_text())["host"]["jetpack"]
            assert host["jetpack"] == {**jetpack, "kernel": "upstream-6-6"}
            assert host["allowUnfree"] is True
        else:
            assert host["jetpack"] is None
        # The series the generated modules assert for (the target's kernel_version,
        # by default the runtime catalog's kernel.host).
        assert host["kernel"].startswith(series[name] + ".")
        assert host["failedAssertions"] == []
        # Ghaf's tree comes from the flake's `ghaf` input through the overlay.
        for patch in host["patches"]:
            if patch["name"] == "bpmp-virt-hooks":
                assert patch["patch"].startswith(out["ghafgenSourcesGhaf"] + "/")
    # The overlay's platform QEMU: the runtime catalog's pin, Ghaf's patches
    # from the same input.
    qemu = out["qemuPlatform"]
    pin = tomllib.loads((ROOT / "ghafgen/catalog/data/runtime.toml").read_text())
    assert qemu["version"] == pin["qemu"]["platform"]["version"]  # type: ignore[index]
    assert qemu["patches"] and all(  # type: ignore[index]
        p.startswith(out["ghafgenSourcesGhaf"] + "/packages/")
        for p in qemu["patches"]  # type: ignore[index]
    )
    manifest = json.loads(
        (
            ROOT / "nix/modules/nvidia-jetson-orin-agx-uarta/ghafgen-manifest.json"
        ).read_text()
    )
    assert systems["nvidia-jetson-orin-agx-uarta"]["vms"] == ["uart-vm"]
    assert manifest["host"]["dt_flavor"] == "l4t"


@NEEDS_TREES
def test_package_wraps_the_tools_and_installs_completions():
    package = flake_outputs()["package"]
    assert isinstance(package, dict)
    assert package["pname"] == "ghafgen" and package["version"] == __version__
    prefix, path_var, sep, bin_path = package["makeWrapperArgs"]
    assert (prefix, path_var, sep) == ("--prefix", "PATH", ":")
    wrapped = {Path(p).parent.name.split("-", 1)[1] for p in bin_path.split(":")}
    assert wrapped == {"dtc", "graphviz", "git", "nix"}
    import re
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~ ]", d)[0] for d in declared["dependencies"]]
    assert sorted(package["dependencies"]) == sorted(
        NIXPKGS_NAME.get(n, n) for n in names
    )
    for shell in ("bash", "zsh", "fish"):
        assert (
            f"--{shell} <(_GHAFGEN_COMPLETE=source_{shell} $out/bin/ghafgen)"
            in (package["postFixup"])
        )


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_command_prints_the_completion_the_package_installs(shell: str):
    """What nix/package.nix runs at build time: `_GHAFGEN_COMPLETE=source_SHELL ghafgen`."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv[0] = 'ghafgen'; from ghafgen.cli import main; main()",
        ],
        env={
            **os.environ,
            "_GHAFGEN_COMPLETE": f"source_{shell}",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"_GHAFGEN_COMPLETE=complete_{shell}" in done.stdout


def test_python_dependencies_match_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = nix_eval(str(ROOT / "nix" / "python-deps.nix"))
    assert isinstance(deps, dict)

    def names(reqs: list[str]) -> list[str]:
        bare = [r.split(">")[0].split("<")[0].split("=")[0].strip() for r in reqs]
        return sorted(NIXPKGS_NAME.get(n, n) for n in bare)

    assert sorted(deps["runtime"]) == names(pyproject["project"]["dependencies"])
    test_extra = pyproject["project"]["optional-dependencies"]["test"]
    assert sorted(deps["test"]) == names(test_extra)


def test_ghaf_input_is_locked_to_the_catalog_pin():
    lock = json.loads((ROOT / "flake.lock").read_text())
    ghaf = lock["nodes"][lock["nodes"]["root"]["inputs"]["ghaf"]]
    pin = catalog.load().sources["ghaf"]
    assert ghaf["flake"] is False
    assert ghaf["locked"]["rev"] == pin.rev
    assert ghaf["locked"]["narHash"] == pin.hash
    assert (
        f"https://github.com/{ghaf['locked']['owner']}/{ghaf['locked']['repo']}"
        == pin.url
    )


def test_the_nix_package_reads_the_one_version():
    """nix/package.nix takes `version` from ghafgen/__init__.py, as pyproject.toml does."""
    import re

    nix = (ROOT / "nix" / "package.nix").read_text()
    pattern = re.search(r"builtins\.match ''(.*?)''", nix)
    assert pattern is not None and "__init__.py" in nix
    init = (ROOT / "ghafgen" / "__init__.py").read_text()
    found = re.fullmatch(pattern.group(1), init, re.S)
    assert found is not None and found.group(1) == __version__
    assert '"0.1' not in nix and 'version = "' not in (ROOT / "flake.nix").read_text()
