"""`ghafgen prefetch`: pin the external sources profiles name into `ghafgen.lock`.

Entry points: `pin(url, rev)` and `prefetch(sources, folder, update=...)`. Pins
come from nix-prefetch-git when it is installed, else `nix flake prefetch`
(git), `nix-prefetch-url --unpack` (tarballs) or `nix hash path` (folders).
The lock lives beside the profiles; generation reads it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ghafgen.errors import ProfileError, ToolError
from ghafgen.profile.lockfile import Pin, is_tarball, read_lock, write_lock
from ghafgen.profile.spec import SOURCE_REV, SOURCE_URL
from ghafgen.tools import NIX_FEATURES, run


def check_source(url: str, rev: str | None) -> None:
    """Refuse a URL or rev the profile format refuses, whoever built the Pin.

    They become arguments of git and Nix: a leading '-' would be an option
    (`--upload-pack=...` runs a program), so this is checked here again, not
    only when a profile is parsed.
    """
    if not re.fullmatch(SOURCE_URL, url):
        raise ProfileError(f"refusing source URL {url!r}: not a URL or local path")
    if rev is not None and not re.fullmatch(SOURCE_REV, rev):
        raise ProfileError(f"refusing source rev {rev!r}: not a branch, tag or commit")


def _flake_url(url: str) -> str:
    if "://" not in url:
        return f"git+file://{Path(url).resolve()}"
    return url if url.startswith("git+") else f"git+{url}"


def _is_git_repo(folder: Path) -> bool:
    """A work tree, or a bare repository (HEAD and objects/ at its top)."""
    bare = (folder / "HEAD").is_file() and (folder / "objects").is_dir()
    return bare or (folder / ".git").exists()


def _empty_registry() -> str:
    """Nix 2.8 downloads the global flake registry unless told otherwise."""
    fd, path = tempfile.mkstemp(prefix="ghafgen-registry-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write('{"flakes": [], "version": 2}')
    return path


def resolve(url: str, rev: str | None) -> tuple[str, str]:
    """(full commit ID, the ref that holds it) for `rev`, or for HEAD without one."""
    pattern = "HEAD" if rev is None or re.fullmatch(r"[0-9a-f]{40}", rev) else rev
    found = _ls_remote_ref(url, pattern)
    if not found:
        raise ToolError(f"{url}: no ref {pattern}")
    commit, ref = found
    if rev is not None and pattern == "HEAD":
        commit = rev
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise ToolError(f"{url}: git ls-remote printed {commit[:80]!r}, not a commit")
    return commit, ref


def _ls_remote_ref(url: str, pattern: str) -> tuple[str, str] | None:
    """(commit, ref) of `pattern`; for HEAD, the branch HEAD points at (--symref)."""
    target = str(Path(url).resolve()) if "://" not in url else url.removeprefix("git+")
    # GIT_ALLOW_PROTOCOL: git itself refuses transports that run programs (ext::).
    env = {**os.environ, "GIT_ALLOW_PROTOCOL": "https:http:ssh:git:file"}
    done = run(
        ["git", "ls-remote", "--symref", "--", target, pattern], env=env
    ).or_raise()
    rows = [ln.split() for ln in done.stdout.splitlines() if ln.strip()]
    symref = next((r[1] for r in rows if r[0] == "ref:" and len(r) == 3), "")
    commit = next((r for r in rows if r[0] != "ref:" and len(r) == 2), None)
    if commit is None:
        return None
    ref = symref or commit[1]
    # The ref goes into a flake URL's query: only plain ref names, else none.
    return commit[0], ref if re.fullmatch(r"refs/[A-Za-z0-9._/-]+", ref) else ""


def resolve_rev(url: str, rev: str | None) -> str:
    """A full commit ID: `rev` when it is one, else what it (or HEAD) names upstream."""
    return resolve(url, rev)[0]


def prefetch_git_argv(url: str, rev: str) -> list[str]:
    # Values follow their flags, so they are never read as options themselves.
    return ["nix-prefetch-git", "--quiet", "--url", url, "--rev", rev]


def flake_prefetch_argv(url: str, rev: str, registry: str, ref: str = "") -> list[str]:
    sep = "&" if "?" in url else "?"
    # Nix 2.8 looks for the commit on `master` unless told the ref, which a
    # repository whose branch is `main` (a bare one, say) does not have.
    query = f"ref={ref}&" if ref else ""
    return [
        "nix",
        *NIX_FEATURES,
        "--option",
        "flake-registry",
        registry,
        "flake",
        "prefetch",
        "--json",
        "--",
        f"{_flake_url(url)}{sep}{query}rev={rev}",
    ]


def _to_sri(base32: str) -> str:
    done = run(
        ["nix", *NIX_FEATURES, "hash", "to-sri", "--type", "sha256", "--", base32]
    ).or_raise()
    return done.stdout.strip()


def pin(url: str, rev: str | None) -> Pin:
    """Pin one source.

    Raises:
        ToolMissing: no usable Nix tool is installed.
        ToolError: the tool ran and failed.
        ProfileError: `url` or `rev` is not one the profile format allows.
    """
    check_source(url, rev)
    local = Path(url.removeprefix("file://"))
    is_local = "://" not in url or url.startswith("file://")
    if is_local and local.is_dir() and not _is_git_repo(local):
        done = run(
            ["nix", *NIX_FEATURES, "hash", "path", "--", str(local.resolve())]
        ).or_raise()
        return Pin(url, "", done.stdout.strip(), "nix hash path", rev)
    if is_tarball(url):
        done = run(["nix-prefetch-url", "--unpack", "--", url]).or_raise()
        return Pin(
            url,
            "",
            _to_sri(done.stdout.strip().splitlines()[-1]),
            "nix-prefetch-url --unpack",
        )
    commit, ref = resolve(url, rev)
    if shutil.which("nix-prefetch-git") is None:  # Debian ships no nix-prefetch-git
        registry = _empty_registry()
        try:
            done = run(flake_prefetch_argv(url, commit, registry, ref)).or_raise()
        finally:
            os.unlink(registry)
        return Pin(
            url, commit, json.loads(done.stdout)["hash"], "nix flake prefetch", rev
        )
    done = run(prefetch_git_argv(url, commit)).or_raise()
    data = json.loads(done.stdout)
    sri = data.get("hash") or _to_sri(data["sha256"])
    return Pin(url, data.get("rev", commit), sri, "nix-prefetch-git", rev)


@dataclass(frozen=True)
class Prefetched:
    lock: Path
    pinned: dict[str, Pin]
    kept: dict[str, Pin]


def prefetch(
    sources: dict[str, tuple[str, str | None]], folder: Path, *, update: bool = False
) -> Prefetched:
    """Pin `sources` (name -> (url, rev)) into folder/ghafgen.lock; keep what is pinned.

    Pins of sources not named here stay: another profile in the folder may use them.
    """
    old = read_lock(folder)
    pins = {name: pin for name, pin in old.items() if name not in sources}
    pinned, kept = {}, {}
    for name, (url, rev) in sorted(sources.items()):
        have = old.get(name)
        if have is not None and not update and have.same_source(url, rev):
            pins[name] = kept[name] = have
            continue
        pins[name] = pinned[name] = pin(url, rev)
    return Prefetched(write_lock(folder, pins), pinned, kept)
