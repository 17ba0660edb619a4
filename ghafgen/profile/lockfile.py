"""ghafgen.lock: the pinned revision and hash of every external source a profile names.

`prefetch` writes it; validation and generation read it. Kept apart from
prefetch so that reading a lock never imports the subprocess layer.
"""

import contextlib
import os
import re
from pathlib import Path
from typing import NamedTuple

from ghafgen.errors import ProfileError
from ghafgen.fileio import Unreadable, read_regular

# The profile's pinned sources (url, rev, hash), kept beside the profile.
PINS_FILE = "ghafgen.lock"
# A lock holds a few sources of ~300 bytes each; anything near this is not one.
MAX_LOCK_BYTES = 1 << 20


class Pin(NamedTuple):
    url: str
    rev: str
    hash: str  # SRI, sha256-...
    method: str = ""  # which tool produced it
    ref: str | None = None  # the rev the profile asked for (a branch, tag or commit)

    def same_source(self, url: str, ref: str | None) -> bool:
        return self.url == url and self.ref == ref


# What a pin's fields may hold: they are printed into bpmp-virt.nix and passed
# to Nix and git, so a lock edited by hand is held to the profile's patterns.
_HASH = r"sha256-[A-Za-z0-9+/]{43}="
_COMMIT = r"[0-9a-f]{40}"
_FIELDS = {"url", "rev", "hash", "method", "ref"}


def is_tarball(url: str) -> bool:
    """A URL prefetch pins by its unpacked hash (nix-prefetch-url --unpack)."""
    return url.endswith((".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".zip"))


def _pin(name: object, raw: object) -> Pin:
    from ghafgen.profile.spec import SOURCE_NAME, SOURCE_REV, SOURCE_URL

    if not isinstance(name, str) or not re.fullmatch(SOURCE_NAME, name):
        raise ValueError(f"source name {name!r}")
    if not isinstance(raw, dict) or not {"url", "rev", "hash"} <= set(raw) <= _FIELDS:
        raise ValueError(f"'{name}' is not an object with url, rev and hash")
    if not all(
        isinstance(v, str) or (k == "ref" and v is None) for k, v in raw.items()
    ):
        raise ValueError(f"'{name}' has a value that is not a string")
    pin = Pin(**raw)
    checks = (
        ("url", pin.url, SOURCE_URL),
        ("rev", pin.rev, f"|{_COMMIT}"),
        ("hash", pin.hash, _HASH),
        ("method", pin.method, r"[a-z -]{0,40}"),
        ("ref", pin.ref or "", f"|{SOURCE_REV}"),
    )
    for key, value, pattern in checks:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"'{name}'.{key} is {value[:80]!r}")
    return pin


def read_lock(folder: Path) -> dict[str, Pin]:
    """The pins in `folder`'s lock file ({} without one).

    Raises:
        ProfileError: the file is not a lock ghafgen wrote: not a regular file
            (a FIFO would block the read), over MAX_LOCK_BYTES, nested deeper
            than the JSON reader follows, or of the wrong shape.
    """
    import json

    path = folder / PINS_FILE
    try:
        data = read_regular(path, limit=MAX_LOCK_BYTES)
    except FileNotFoundError:
        return {}
    except Unreadable as e:
        raise ProfileError(f"{e}; delete it and run ghafgen prefetch") from None
    except OSError as e:
        raise ProfileError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("sources"), dict):
            raise ValueError("no 'sources' object")
        return {name: _pin(name, p) for name, p in doc["sources"].items()}
    except RecursionError:
        # json's scanner recurses once per level; ghafgen's own lock is 3 deep.
        raise ProfileError(
            f"{path}: not a ghafgen lock file (nested too deep to read); delete it "
            "and run ghafgen prefetch"
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ProfileError(
            f"{path}: not a ghafgen lock file ({e}); delete it and run ghafgen prefetch"
        ) from e


def write_lock(folder: Path, pins: dict[str, Pin]) -> Path:
    import json

    path = folder / PINS_FILE
    doc = {"version": 1, "sources": {k: v._asdict() for k, v in sorted(pins.items())}}
    tmp = path.with_name(f".{PINS_FILE}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a killed run's leftover, or a planted link: never followed
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
