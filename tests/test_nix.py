"""The real-Nix tier: `ghafgen build` on a fixture flake, `check` on the reference
outputs, `prefetch` on a git repository made here. Debian's nix-bin, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from ghafgen.toolchain.nixbuild import BuildOptions, build_argv, explain
from ghafgen.toolchain.prefetch import pin
from tests.conftest import ROOT, require, run_ghafgen

FIXTURE = ROOT / "tests" / "data" / "fixture-flake"
# Root without a nix-daemon, no network: what CI and this machine have.
OFFLINE = [
    *("--option", "build-users-group", ""),
    *("--option", "sandbox", "false"),
    *("--option", "substituters", ""),
]


ghafgen = run_ghafgen


@pytest.fixture
def flake(tmp_path: Path) -> Path:
    """A copy outside any git repository, with a fresh stamp so `hello` really builds."""
    require("nix")
    dest = tmp_path / "flake"
    shutil.copytree(FIXTURE, dest)
    (dest / "stamp").write_text(uuid.uuid4().hex)
    return dest


def test_build_streams_progress_and_prints_out_path(flake: Path):
    done = ghafgen("build", f"{flake}#hello", *OFFLINE)
    assert done.returncode == 0, done.stderr
    assert "hello> building hello" in done.stderr
    out = done.stdout.strip()
    assert out.startswith("/nix/store/") and out.endswith("-hello")
    assert Path(out).read_text() == "hello\n"


def test_build_out_link_leaves_a_result_symlink(flake: Path, tmp_path: Path):
    link = tmp_path / "result-hello"
    done = ghafgen("build", f"{flake}#hello", "--out-link", str(link), *OFFLINE)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert str(link.resolve()) == done.stdout.strip()


def test_build_for_another_system_explains_builders(flake: Path):
    done = ghafgen("build", f"{flake}#foreign", *OFFLINE)
    assert done.returncode == 3
    assert "error: no builder for" in done.stderr
    assert "--builders" in done.stderr and "binfmt" in done.stderr


def test_build_evaluation_error_points_at_the_profile(flake: Path):
    done = ghafgen("build", f"{flake}#broken", *OFFLINE)
    assert done.returncode == 3
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: evaluation failed in /nix/store/")
    assert last.endswith(
        "gen/demo/vms/demo-vm.nix, generated from profiles/demo.toml [vms.demo-vm]"
    )


def test_build_missing_attribute(flake: Path):
    done = ghafgen("build", "--flake", str(flake), "nosuch", *OFFLINE)
    assert done.returncode == 3
    assert "the flake has no attribute" in done.stderr.strip().splitlines()[-1]


def test_build_without_nix_is_one_line(tmp_path: Path):
    env = {**os.environ, "PATH": str(tmp_path)}
    done = ghafgen("build", "demo", env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: nix not found; install Nix: apt-get install nix-bin (Debian) or see "
        "nixos.org/download"
    ]


def test_print_command_prints_the_exact_command():
    done = ghafgen(
        "build",
        "--print-command",
        "--builders",
        "ssh://b aarch64-linux",
        "--max-jobs",
        "4",
        "--store",
        "/tmp/s",
        "--option",
        "sandbox",
        "false",
        "nvidia-jetson-orin-agx-uarta",
    )
    assert done.returncode == 0
    assert done.stdout.strip() == (
        "nix --extra-experimental-features 'nix-command flakes' build --json --no-link "
        "--print-build-logs --show-trace --builders 'ssh://b aarch64-linux' --max-jobs 4 "
        "--store /tmp/s --option sandbox false -- "
        "'.#nixosConfigurations.nvidia-jetson-orin-agx-uarta.config.system.build.toplevel'"
    )


def test_argv_keeps_a_given_attribute():
    argv = build_argv("other#packages.x.y", BuildOptions())
    assert argv[-1] == "other#packages.x.y"


def test_explain_ignores_warnings():
    warn = (
        "warning: the group 'nixbld' specified in 'build-users-group' does not exist\n"
    )
    assert explain(warn + "error: flake 'x' does not provide attribute 'a'").startswith(
        "the flake has no attribute 'a'"
    )


def test_check_passes_on_the_reference_outputs(kernel_src: Path):
    require("nix-instantiate")
    done = ghafgen(
        "check",
        "nix/modules",
        "--kernel-src",
        str(kernel_src),
        "--no-schemas",
        "--format",
        "json",
    )
    report = json.loads(done.stdout)
    failed = [r for r in report["results"] if not r["ok"]]
    assert done.returncode == 0 and failed == []
    ran = {r["check"] for r in report["results"] if not r["skipped"]}
    assert ran == {
        "manifest",
        "nix-parse",
        "dtc",
        "overlay",
        "guest-tree",
        "patch",
        "kconfig",
    }
    skipped = [r for r in report["results"] if r["skipped"]]
    # schema: --no-schemas; patch: no --qemu-src; kconfig: symbols of a 6.12 guest.
    assert {r["check"] for r in skipped} == {"schema", "patch", "kconfig"}
    assert all(r["message"] for r in skipped)
    assert report["skipped"] == len(skipped)


def test_check_names_the_label_the_base_tree_lacks(orin_dtb: Path):
    done = ghafgen(
        "check",
        "nix/modules/nvidia-jetson-orin-agx-uarti-net-vm",
        "--base-dtb",
        str(orin_dtb),
        "--no-schemas",
    )
    assert done.returncode == 1
    assert (
        "FAIL overlay    nvidia-jetson-orin-agx-uarti-net-vm/overlays/"
        f"uarti-passthrough.dts: targets label 'uarti', which {orin_dtb.name} lacks"
    ) in done.stdout


def test_check_names_the_nix_file_that_does_not_parse(tmp_path: Path):
    require("nix-instantiate")
    target = tmp_path / "t"
    shutil.copytree(ROOT / "nix/modules/nvidia-jetson-orin-agx-uarta", target)
    (target / "host.nix").write_text("{ config, ... }: { broken = ; }\n")
    done = ghafgen("check", str(target), "--no-schemas", "--format", "json")
    parsed = [
        r for r in json.loads(done.stdout)["results"] if r["check"] == "nix-parse"
    ]
    assert done.returncode == 1
    assert [r["subject"] for r in parsed if not r["ok"]] == ["host.nix"]
    assert len(parsed) > 1 and all(
        r["ok"] for r in parsed if r["subject"] != "host.nix"
    )


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "user.name=t",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def tree_hash(repo: Path, rev: str, tmp: Path) -> str:
    """What fetchgit/fetchFromGitHub would hash: the tree at `rev`, via `nix hash path`."""
    out = tmp / f"tree-{rev[:8]}"
    out.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "x", "-C", str(out)], input=archive, check=True)
    done = subprocess.run(
        [
            "nix",
            "--extra-experimental-features",
            "nix-command",
            "hash",
            "path",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def source_repo(tmp_path: Path) -> Path:
    require("nix")
    require("git")
    repo = tmp_path / "bpmp-src"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README").write_text("first\n")
    git(repo, "add", "README")
    git(repo, "commit", "-qm", "first")
    return repo


def test_prefetch_pins_a_local_repo_and_generation_uses_it(
    source_repo: Path, tmp_path: Path
):
    work = tmp_path / "work"
    work.mkdir()
    profile = work / "p.toml"
    profile.write_text(
        (ROOT / "profiles/orin-agx-uarta.toml").read_text()
        + f'\n[sources.ghaf]\nurl = "file://{source_repo}"\n'
    )
    assert ghafgen("validate", str(profile)).returncode == 1  # GG010: not pinned yet
    done = ghafgen("prefetch", str(profile))
    assert done.returncode == 0, done.stderr
    lock = json.loads((work / "ghafgen.lock").read_text())["sources"]["ghaf"]
    first = git(source_repo, "rev-parse", "HEAD")
    assert lock["rev"] == first
    assert lock["hash"] == tree_hash(source_repo, first, tmp_path)
    assert ghafgen("validate", str(profile)).returncode == 0
    assert ghafgen("generate", str(profile), "-o", str(work / "out")).returncode == 0
    fetch = (work / "out/nvidia-jetson-orin-agx-uarta/bpmp-virt.nix").read_text()
    assert f'url = "file://{source_repo}";' in fetch
    assert f'rev = "{first}";' in fetch and f'hash = "{lock["hash"]}";' in fetch
    # A new upstream commit: kept without --update, re-pinned with it.
    (source_repo / "README").write_text("second\n")
    git(source_repo, "commit", "-qam", "second")
    assert "ghaf: kept" in ghafgen("prefetch", str(profile)).stdout
    assert ghafgen("prefetch", "--update", str(profile)).returncode == 0
    lock = json.loads((work / "ghafgen.lock").read_text())["sources"]["ghaf"]
    assert lock["rev"] == git(source_repo, "rev-parse", "HEAD") != first


def test_prefetch_fallbacks_agree(source_repo: Path, tmp_path: Path):
    rev = git(source_repo, "rev-parse", "HEAD")
    want = tree_hash(source_repo, rev, tmp_path)
    assert pin(str(source_repo), None).hash == want
    folder = tmp_path / f"tree-{rev[:8]}"
    assert pin(str(folder), None).method == "nix hash path"
    assert pin(str(folder), None).hash == want
    tarball = tmp_path / "src.tar.gz"
    subprocess.run(
        ["tar", "czf", str(tarball), "-C", str(tmp_path), folder.name], check=True
    )
    tar_pin = pin(f"file://{tarball}", None)
    assert (tar_pin.method, tar_pin.hash) == ("nix-prefetch-url --unpack", want)


def test_flake_lock_is_accepted_by_nix(tmp_path: Path):
    """Nix reads the lock without fetching; the pins are Ghaf's (see flake.nix)."""
    require("nix")
    for name in ("flake.nix", "flake.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    registry = tmp_path / "registry.json"
    registry.write_text('{"flakes": [], "version": 2}')
    done = subprocess.run(
        [
            "nix",
            "--extra-experimental-features",
            "nix-command flakes",
            "flake",
            "metadata",
            "--json",
            "--option",
            "flake-registry",
            str(registry),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    nodes = json.loads(done.stdout)["locks"]["nodes"]
    assert (
        nodes["microvm"]["locked"]["rev"] == "71beea0076cd46dafcee97a5a2e7d00cbba5bd2f"
    )
    assert (
        nodes["nixpkgs"]["locked"]["rev"] == "ffb3c9b700e759be2ef13237c9d8f953b32a1e46"
    )
    # Ghaf's jetpack-nixos (tiiuae/ghaf 9a37dc8 flake.lock), and Ghaf's tree at
    # the catalog's pin (tests/test_flake.py checks it against sources.toml).
    assert (
        nodes["jetpack-nixos"]["locked"]["rev"]
        == "beecf2d7122359b17aa551d9f0aee3b73bdb891c"
    )
    assert nodes["ghaf"]["locked"]["rev"] == "9a37dc8c2ed13fffb81a77e836bd97d72898acc6"
