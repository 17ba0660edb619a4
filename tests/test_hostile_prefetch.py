"""`ghafgen prefetch` with option-looking URLs and revs runs nothing they name.

A local bare repository made here stands for the upstream; a marker file that
git's `--upload-pack=touch` would create shows whether anything ran.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ghafgen.errors import ProfileError, ToolError
from ghafgen.toolchain.prefetch import pin, resolve_rev
from tests.conftest import ROOT, require, run_ghafgen


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """A bare repository with one commit on `main`."""
    require("git")
    repo = tmp_path / "upstream.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    work = tmp_path / "clone"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / "README").write_text("x\n")
    _git(work, "add", "README")
    _git(
        work,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "commit",
        "-qm",
        "one",
    )
    _git(work, "push", "-q", str(repo), "HEAD:refs/heads/main")
    return repo


def _hostile(marker: Path, bare: Path) -> list[tuple[str, str | None]]:
    """(url, rev) pairs; each would create `marker` if it reached git as an option."""
    return [
        ("--upload-pack=touch", str(marker)),  # the rev is the 'repository'
        (str(marker), "--upload-pack=touch"),  # git permutes options after positionals
        (f"file://{bare}", "--upload-pack=touch"),
        ("-u", "touch"),
        ("ext::touch", None),  # git's program-running transport
        ("ssh://-oProxyCommand=touch/x", None),
        (f"git+file://{bare}", "-c"),
    ]


def test_the_vector_is_live_in_git_itself(tmp_path: Path, bare: Path):
    """The marker is a fair witness: git really runs `--upload-pack` programs."""
    marker = tmp_path / "canary"
    subprocess.run(
        ["git", "ls-remote", "--upload-pack=touch", str(marker)],
        capture_output=True,
        check=False,
    )
    assert marker.exists()


def test_prefetch_refuses_option_looking_sources_and_runs_nothing(
    tmp_path: Path, bare: Path
):
    marker = tmp_path / "marker"
    base = (ROOT / "profiles/orin-agx-uarta.toml").read_text()
    for i, (url, rev) in enumerate(_hostile(marker, bare)):
        work = tmp_path / f"w{i}"
        work.mkdir()
        profile = work / "p.toml"
        source = f"\n[sources.ghaf]\nurl = {json.dumps(url)}\n"
        if rev is not None:
            source += f"rev = {json.dumps(rev)}\n"
        profile.write_text(base + source)
        done = run_ghafgen("prefetch", str(profile))
        out = done.stdout + done.stderr
        assert done.returncode == 2, out
        assert "error[GG007]" in out and "sources.ghaf." in out, out
        assert "Traceback" not in out
        assert not (work / "ghafgen.lock").exists()
        assert not marker.exists(), (url, rev)


def test_pin_refuses_them_even_when_the_profile_check_is_skipped(
    tmp_path: Path, bare: Path
):
    marker = tmp_path / "marker"
    for url, rev in _hostile(marker, bare):
        with pytest.raises(ProfileError, match="refusing source"):
            pin(url, rev)
    assert not marker.exists()


def test_git_gets_the_rev_after_double_dash(tmp_path: Path, bare: Path):
    """Below validation too: `--` makes git read an option-like rev as a ref pattern."""
    marker = tmp_path / "marker"
    with pytest.raises(ToolError, match="no ref"):
        resolve_rev(str(bare), f"--upload-pack=touch {marker}")
    with pytest.raises(ToolError):
        resolve_rev(f"--upload-pack=touch {marker}", "main")
    assert not marker.exists()


def test_a_plain_local_bare_repository_still_pins(tmp_path: Path, bare: Path):
    require("nix")
    work = tmp_path / "ok"
    work.mkdir()
    profile = work / "p.toml"
    profile.write_text(
        (ROOT / "profiles/orin-agx-uarta.toml").read_text()
        + f'\n[sources.ghaf]\nurl = "file://{bare}"\nrev = "main"\n'
    )
    done = run_ghafgen("prefetch", str(profile))
    assert done.returncode == 0, done.stderr
    lock = json.loads((work / "ghafgen.lock").read_text())["sources"]["ghaf"]
    assert lock["rev"] == _git(bare, "rev-parse", "main")


def _profile(folder: Path, name: str, sources: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text((ROOT / "profiles/orin-agx-uarta.toml").read_text() + sources)
    return path


def test_profiles_in_one_folder_share_one_lock_and_lose_no_pin(
    tmp_path: Path, bare: Path
):
    require("nix")
    work = tmp_path / "w"
    work.mkdir()
    a = _profile(work, "a", f'\n[sources.one]\nurl = "file://{bare}"\n')
    _profile(work, "b", f'\n[sources.two]\nurl = "file://{bare}"\nrev = "main"\n')
    assert run_ghafgen("prefetch", str(a)).returncode == 0
    # The same folder spelled another way, and only the other profile.
    done = run_ghafgen("prefetch", "b.toml", cwd=work)
    assert done.returncode == 0, done.stderr
    lock = json.loads((work / "ghafgen.lock").read_text())["sources"]
    assert sorted(lock) == ["one", "two"]
    assert lock["two"]["ref"] == "main" and lock["one"]["ref"] is None


def test_one_name_two_sources_in_one_folder_is_refused(tmp_path: Path, bare: Path):
    a = _profile(tmp_path, "a", f'\n[sources.ghaf]\nurl = "file://{bare}"\n')
    b = _profile(tmp_path, "b", '\n[sources.ghaf]\nurl = "https://example.org/g.git"\n')
    done = run_ghafgen("prefetch", str(a), str(b))
    assert done.returncode == 2
    assert "error: source 'ghaf' is file://" in done.stderr
    assert "holds one pin per name" in done.stderr
    assert not (tmp_path / "ghafgen.lock").exists()


def test_no_sources_writes_no_lock(tmp_path: Path):
    plain = _profile(tmp_path, "p", "")
    done = run_ghafgen("prefetch", str(plain))
    assert done.returncode == 0
    assert "nothing to pin" in done.stderr
    assert not (tmp_path / "ghafgen.lock").exists()


def test_a_folder_pinned_by_hash_is_refused_before_generation(tmp_path: Path):
    require("nix")
    folder = tmp_path / "ghaf-tree"
    folder.mkdir()
    (folder / "README").write_text("x\n")
    profile = _profile(tmp_path, "p", f'\n[sources.ghaf]\nurl = "{folder}"\n')
    assert run_ghafgen("prefetch", str(profile)).returncode == 0
    done = run_ghafgen("validate", str(profile))
    assert done.returncode == 1
    assert (
        "error[GG013]: source 'ghaf' is a folder pinned by its hash only" in done.stdout
    )


def test_a_tarball_pin_is_fetched_by_its_unpacked_hash(tmp_path: Path):
    require("nix")
    tree = tmp_path / "ghaf-src"
    tree.mkdir()
    (tree / "README").write_text("x\n")
    tarball = tmp_path / "ghaf.tar.gz"
    subprocess.run(
        ["tar", "czf", str(tarball), "-C", str(tmp_path), tree.name], check=True
    )
    profile = _profile(tmp_path, "p", f'\n[sources.ghaf]\nurl = "file://{tarball}"\n')
    assert run_ghafgen("prefetch", str(profile)).returncode == 0
    pin = json.loads((tmp_path / "ghafgen.lock").read_text())["sources"]["ghaf"]
    assert pin["rev"] == ""
    out = tmp_path / "out"
    done = run_ghafgen("generate", str(profile), "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    text = (out / "nvidia-jetson-orin-agx-uarta" / "bpmp-virt.nix").read_text()
    assert "pkgs.fetchzip {" in text and 'rev = ""' not in text
    assert f'url = "file://{tarball}";' in text and f'hash = "{pin["hash"]}";' in text
    assert "pinned by hash only" in text
    # The pinned hash is the unpacked tree's, as fetchzip checks it: Nix's own
    # fetchTarball, given that hash, accepts the tarball.
    expr = f'builtins.fetchTarball {{ url = "file://{tarball}"; sha256 = "{pin["hash"]}"; }}'
    got = subprocess.run(
        ["nix-instantiate", "--eval", "--expr", expr],
        capture_output=True,
        text=True,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip().strip('"').startswith("/nix/store/")
