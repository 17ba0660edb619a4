"""ghafgen.lock: the pinned revision and hash of every external source a profile names.

`prefetch` writes it; validation and generation read it. Kept apart from
prefetch so that reading a lock never imports the subprocess layer.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ghafgen.errors import ProfileError

LOCK = "ghafgen.lock"


@dataclass(frozen=True)
class Pin:
    url: str
    rev: str
    hash: str  # SRI, sha256-...
    method: str = ""  # which tool produced it
    ref: str | None = None  # the rev the profile asked for (a branch, tag or commit)

    def same_source(self, url: str, ref: str | None) -> bool:
        return self.url == url and self.ref == ref


def read_lock(folder: Path) -> dict[str, Pin]:
    path = folder / LOCK
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {name: Pin(**p) for name, p in doc["sources"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ProfileError(
            f"{path}: not a ghafgen lock file ({e}); delete it and run ghafgen prefetch"
        ) from e


def write_lock(folder: Path, pins: dict[str, Pin]) -> Path:
    path = folder / LOCK
    doc = {"version": 1, "sources": {k: asdict(v) for k, v in sorted(pins.items())}}
    tmp = path.with_name(f".{LOCK}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
