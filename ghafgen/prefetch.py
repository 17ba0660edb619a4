"""`ghafgen prefetch`: pin the external sources profiles name into `ghafgen.lock`.

Entry points: `pin(url, rev)` and `prefetch(profile_paths, update=...)`. Pins
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

from ghafgen.errors import ToolError
from ghafgen.lockfile import Pin, read_lock, write_lock
from ghafgen.tools import NIX_FEATURES, run

_TARBALL = re.compile(r"\.(tar\.gz|tgz|tar\.xz|tar\.bz2|zip)$")


def _flake_url(url: str) -> str:
    if "://" not in url:
        return f"git+file://{Path(url).resolve()}"
    return url if url.startswith("git+") else f"git+{url}"


def _empty_registry() -> str:
    """Nix 2.8 downloads the global flake registry unless told otherwise."""
    fd, path = tempfile.mkstemp(prefix="ghafgen-registry-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write('{"flakes": [], "version": 2}')
    return path


def resolve_rev(url: str, rev: str | None) -> str:
    """A full commit ID: `rev` when it is one, else what it (or HEAD) names upstream."""
    if rev and re.fullmatch(r"[0-9a-f]{40}", rev):
        return rev
    target = str(Path(url).resolve()) if "://" not in url else url.removeprefix("git+")
    done = run(["git", "ls-remote", target, rev or "HEAD"]).check()
    first = done.stdout.split()
    if not first:
        raise ToolError(f"{url}: no ref {rev or 'HEAD'}")
    return first[0]


def prefetch_git_argv(url: str, rev: str) -> list[str]:
    return ["nix-prefetch-git", "--url", url, "--rev", rev, "--quiet"]


def flake_prefetch_argv(url: str, rev: str, registry: str) -> list[str]:
    sep = "&" if "?" in url else "?"
    return [
        "nix",
        *NIX_FEATURES,
        "--option",
        "flake-registry",
        registry,
        "flake",
        "prefetch",
        "--json",
        f"{_flake_url(url)}{sep}rev={rev}",
    ]


def _to_sri(base32: str) -> str:
    done = run(
        ["nix", *NIX_FEATURES, "hash", "to-sri", "--type", "sha256", base32]
    ).check()
    return done.stdout.strip()


def pin(url: str, rev: str | None) -> Pin:
    """Pin one source.

    Raises:
        ToolMissing: no usable Nix tool is installed.
        ToolError: the tool ran and failed.
    """
    local = Path(url.removeprefix("file://"))
    is_local = "://" not in url or url.startswith("file://")
    if is_local and local.is_dir() and not (local / ".git").exists():
        done = run(["nix", *NIX_FEATURES, "hash", "path", str(local)]).check()
        return Pin(url, "", done.stdout.strip(), "nix hash path", rev)
    if _TARBALL.search(url):
        done = run(["nix-prefetch-url", "--unpack", url]).check()
        return Pin(
            url,
            "",
            _to_sri(done.stdout.strip().splitlines()[-1]),
            "nix-prefetch-url --unpack",
        )
    commit = resolve_rev(url, rev)
    if shutil.which("nix-prefetch-git") is None:  # Debian ships no nix-prefetch-git
        registry = _empty_registry()
        try:
            done = run(flake_prefetch_argv(url, commit, registry)).check()
        finally:
            os.unlink(registry)
        return Pin(
            url, commit, json.loads(done.stdout)["hash"], "nix flake prefetch", rev
        )
    done = run(prefetch_git_argv(url, commit)).check()
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
    """Pin `sources` (name -> (url, rev)) into folder/ghafgen.lock; keep what is pinned."""
    old = read_lock(folder)
    pins, pinned, kept = {}, {}, {}
    for name, (url, rev) in sorted(sources.items()):
        have = old.get(name)
        if have is not None and not update and have.same_source(url, rev):
            pins[name] = kept[name] = have
            continue
        pins[name] = pinned[name] = pin(url, rev)
    return Prefetched(write_lock(folder, pins), pinned, kept)
