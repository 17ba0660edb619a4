"""Reading a file ghafgen finds by itself (a lock file, a manifest, a capture):
regular files only, never blocking on a FIFO, never more than a cap. And the
user cache dir (`cache_root`), where the catalog keeps its parsed files and
toolchain its unpacked trees.

Entry point: `read_regular(path, limit=...)` -> bytes. A FIFO, a device or a
socket at such a path is refused by its kind before it is opened, so a planted
`mkfifo ghafgen.lock` or `/dev/zero` cannot hang or flood a run.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ghafgen.errors import GhafgenError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symlink"),
)


class Unreadable(GhafgenError):
    """A file that is not a regular file, or larger than its cap."""


class NotRegular(Unreadable):
    """A FIFO, a device, a socket or a folder where a file was to be read."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: cannot read ({what}, not a regular file)")


class TooLarge(Unreadable):
    """A regular file past its cap."""

    def __init__(self, where: str, limit: int) -> None:
        super().__init__(
            f"{where}: larger than {size_text(limit)}; ghafgen reads no file "
            "of this kind that large"
        )


def kind(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO")."""
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def size_text(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def read_fd(fd: int, where: str, limit: int) -> bytes:
    """At most `limit` bytes of an open regular file; more is an error."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(where, kind(st.st_mode))
    chunks, total = [], 0
    while True:
        # procfs and sysfs report size 0, so read until EOF, one past the cap.
        chunk = os.read(fd, min(1 << 16, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise TooLarge(where, limit)
    return b"".join(chunks)


def read_regular(
    path: Path,
    *,
    limit: int,
    follow: bool = True,
    dir_fd: int | None = None,
    where: str = "",
) -> bytes:
    """The bytes of the regular file at `path`.

    `follow=False` refuses a symlink at the last component; `dir_fd` opens
    `path` relative to an open folder; `where` names the file in messages
    (default: `path`). Raises FileNotFoundError when nothing is there,
    NotRegular for any other kind of file, TooLarge for one larger than
    `limit`, and
    OSError when it cannot be opened.
    """
    where = where or str(path)
    st = os.stat(path, dir_fd=dir_fd, follow_symlinks=follow)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(where, kind(st.st_mode))
    # O_NONBLOCK: should the file become a FIFO between the stat and the open,
    # the open still returns at once and the fstat below refuses it.
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    fd = os.open(path, flags | (0 if follow else os.O_NOFOLLOW), dir_fd=dir_fd)
    try:
        return read_fd(fd, where, limit)
    finally:
        os.close(fd)


def cache_root() -> Path:
    """The user cache dir: GHAFGEN_CACHE_DIR, else $XDG_CACHE_HOME/ghafgen, else
    ~/.cache/ghafgen. Relative (an unexpanded `~`) when there is no home to
    expand it in (a build sandbox). The catalog keeps its parsed files below
    it; toolchain.basetrees its unpacked trees."""
    if env := os.environ.get("GHAFGEN_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "ghafgen"
