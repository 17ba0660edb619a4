"""`ghafgen check`'s first step: the target folder holds every file its manifest lists,
each with the recorded hash.

Entry point: `differences(target)` -> list of (file, what is wrong). The other
checks only look at the files that are there, so without this a deleted
`vms/<vm>.nix` passed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path

from ghafgen.fileio import Unreadable, kind, read_regular
from ghafgen.render.output import MANIFEST, read_manifest_bytes

# Generated files are a few KiB; a listed file this large is not ghafgen's.
MAX_FILE_BYTES = 16 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REGENERATE = "regenerate with ghafgen generate"


def _listed(target: Path) -> dict[str, str] | str:
    """The manifest's file -> sha256, or why it cannot be used."""
    try:
        data = read_manifest_bytes(target)
        if data is None:
            return "missing"
        doc = json.loads(data.decode("utf-8"))
    except (OSError, Unreadable, ValueError, RecursionError) as e:
        return f"not a ghafgen manifest ({e})"
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(v, str) and _SHA256.fullmatch(v) for v in files.values()
    ):
        return "not a ghafgen manifest (no 'files' object of sha256 hashes)"
    return {str(k): v for k, v in files.items()}


def _inside(rel: str) -> bool:
    parts = rel.split("/")
    return (
        bool(rel) and not rel.startswith("/") and ".." not in parts and "" not in parts
    )


def _state(target: Path, rel: str, digest: str) -> str:
    """'' when the file is as recorded, else what is wrong with it."""
    parts = rel.split("/")
    # A folder on the way that is a link would show a file from elsewhere.
    for i in range(1, len(parts)):
        folder = target.joinpath(*parts[:i])
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            return f"missing (no folder {'/'.join(parts[:i])}); {_REGENERATE}"
        if not stat.S_ISDIR(st.st_mode):
            return f"{'/'.join(parts[:i])} is {kind(st.st_mode)}, not a folder"
    try:
        data = read_regular(target / rel, limit=MAX_FILE_BYTES, follow=False)
    except FileNotFoundError:
        return f"missing; the manifest lists it; {_REGENERATE}"
    except Unreadable as e:
        return str(e).removeprefix(f"{target / rel}: ")
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    if hashlib.sha256(data).hexdigest() != digest:
        return f"differs from what ghafgen wrote (sha256 not as in {MANIFEST})"
    return ""


def differences(target: Path) -> list[tuple[str, str]]:
    """(file, what is wrong) for every listed file that is missing or changed;
    [] when the folder holds them all as recorded."""
    listed = _listed(target)
    if isinstance(listed, str):
        return [(MANIFEST, listed)]
    out = []
    for rel, digest in sorted(listed.items()):
        if not _inside(rel):
            out.append((rel, "the manifest names a path outside the target folder"))
            continue
        problem = _state(target, rel, digest)
        if problem:
            out.append((rel, problem))
    return out


def listed_count(target: Path) -> int:
    listed = _listed(target)
    return 0 if isinstance(listed, str) else len(listed)
