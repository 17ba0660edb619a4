"""What `ghafgen verify` reads: the running system under `/`, a captured tree in a
folder, or a capture's .tar.gz itself; and `--capture`, which saves exactly that.

Entry points: `open_source(root)` -> `Source`, `write_capture(source, out)`.
The reading is confined.Tree's: bounded, never through a link out of the
root, no FIFO or device opened. Here is what verify makes of it: an entry it
cannot use is absent (a check then fails on it), one past the cap stops the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ghafgen.confined import (
    Archive,
    Escapes,
    Folder,
    Node,
    Taken,
    Unopenable,
    open_tree,
    pack,
    save_new,
)
from ghafgen.errors import GhafgenError
from ghafgen.fileio import NotRegular, TooLarge

_T = TypeVar("_T")

# What a missing or non-regular entry raises: verify reports it absent.
_ABSENT = (FileNotFoundError, NotADirectoryError, NotRegular)


class VerifyError(GhafgenError):
    """verify cannot run: no target, an unreadable root or capture."""


class Source:
    """Reads a tree as if it were `/`; remembers every entry it read.

    Each entry is remembered under its own path (no link in it), and every link
    on the way to it too, so a capture holds the links that lead to it.
    """

    def __init__(self, tree: Folder | Archive) -> None:
        self.tree = tree
        self.name = str(tree.root)
        self.files: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        self.dirs: dict[str, tuple[str, ...]] = {}
        self.nodes: dict[str, Node] = {}
        # Names a listing showed: folders and links, kept in a capture.
        self._listed: Taken = Taken()
        # Links out of the root, each named once: the entry reads as absent.
        self.refused: list[str] = []

    def _refuse(self, e: Escapes) -> None:
        if str(e) not in self.refused:
            self.refused.append(str(e))

    def _failed(self, rel: str, e: OSError) -> VerifyError:
        where = self.tree.root / rel.lstrip("/")
        return VerifyError(f"{where}: cannot read ({e.strerror or e})")

    def _look(
        self, walk: Callable[..., tuple[str, _T]], rel: str
    ) -> tuple[str, _T] | None:
        """`walk(rel)` on the tree, links recorded; None: absent, or a link out
        of the root (named once in `refused`).

        Raises:
            VerifyError: larger than confined.MAX_FILE, or unreadable (EACCES).
        """
        try:
            return walk(rel, passed=self.links)
        except _ABSENT:
            return None
        except Escapes as e:
            self._refuse(e)
            return None
        except TooLarge as e:
            raise VerifyError(str(e)) from None
        except OSError as e:
            raise self._failed(rel, e) from None

    def raw(self, rel: str) -> bytes | None:
        """A regular file's bytes; None when it is absent or not a regular file."""
        found = self._look(self.tree.read, rel)
        if found is None:
            return None
        key, data = found
        # The first read is what the checks saw and what a capture keeps.
        return self.files.setdefault(key, data)

    def text(self, rel: str) -> str | None:
        data = self.raw(rel)
        return None if data is None else data.decode("utf-8", errors="replace")

    def link(self, rel: str) -> str | None:
        """A symlink's target as written (never followed); None: not a link."""
        found = self._look(self.tree.readlink, rel)
        if found is None:
            return None
        key, target = found
        if target is not None:
            self.links[key] = target
        return target

    def listdir(self, rel: str) -> tuple[str, ...]:
        found = self._look(self.tree.listdir, rel)
        if found is None:
            return ()
        key, entries = found
        for name, entry in entries.items():
            path = f"{key}/{name}" if key else name
            if entry.kind == "dir":
                self._listed.folders.add(path)
            elif entry.target is not None:
                self._listed.links[path] = entry.target
        self.dirs[key] = tuple(entries)
        return self.dirs[key]

    def node(self, rel: str) -> Node | None:
        """A device node's kind, owner and mode (lstat: it is never opened)."""
        looked = self._look(self.tree.lstat, rel)
        if looked is None:
            return None
        key, found = looked
        self.nodes[key] = found
        return found

    def group_name(self, gid: int) -> str:
        """The name /etc/group gives `gid`, else the number."""
        for line in (self.text("etc/group") or "").splitlines():
            parts = line.split(":")
            if len(parts) >= 3 and parts[2] == str(gid):
                return parts[0]
        return str(gid)

    def taken(self) -> Taken:
        """What was read. A listing keeps the folders and links it named;
        files it named that were not read are left out."""
        read = {*self.files, *self.links, *self.nodes}
        return Taken(
            files=dict(self.files),
            links={
                **{k: t for k, t in self._listed.links.items() if k not in read},
                **self.links,
            },
            folders={*self.dirs, *(f for f in self._listed.folders if f not in read)},
            nodes=dict(self.nodes),
        )


def open_source(root: Path) -> Source:
    """The tree under `root`: a folder (`/` for the running system) or a .tar.gz."""
    if not os.path.lexists(root):
        raise VerifyError(
            f"{root}: no such folder or capture; give --root a captured tree "
            "(ghafgen verify --capture) or leave it out on the board"
        )
    try:
        return Source(open_tree(root))
    except Unopenable as e:
        raise VerifyError(str(e)) from None


def capture_bytes(source: Source) -> bytes:
    """A deterministic tar.gz of exactly what `source` read."""
    return pack(source.taken())


def write_capture(source: Source, out: Path) -> int:
    """Save what `source` read to `out` (never over an existing file); the entry count."""
    try:
        save_new(capture_bytes(source), out)
    except Unopenable as e:
        raise VerifyError(str(e)) from None
    return len(source.files) + len(source.links) + len(source.nodes)
