"""A tree read as if it were `/`: the running system, a captured folder, or a
capture's .tar.gz, every path walked one component at a time inside it.

Entry points: `open_tree(root)` -> `Folder` or `Archive`; `pack(taken)` ->
bytes, a capture of what was read; `save_new(data, out)`.

A captured tree is someone else's files: a link in it
(`proc/device-tree/model -> /home/me/.ssh/id_ed25519`) must not make ghafgen
read, report or copy a file from outside. In a folder each component is
looked up relative to the folder before it (O_NOFOLLOW); a link is read and
resolved here, and refused (`Escapes`) when its target leaves the root. On the
live tree (`--root /`) nothing can leave, and sysfs's own links
(`/sys/bus/pci/devices/*`, `/proc/device-tree`) resolve as the kernel resolves
them. An archive names nothing outside itself, so its links resolve as under
chroot: an absolute target starts at its root and `..` stops there.

Files are read as `fileio.read_regular` reads them: regular files only (a
FIFO or device is refused by its kind, never opened for reading), at most
MAX_FILE bytes each.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

from ghafgen.errors import GhafgenError
from ghafgen.fileio import NotRegular, TooLarge, kind, read_fd, read_regular

# A sysfs attribute is at most a page, /proc/cpuinfo of a 12-core Orin ~3 KiB,
# a device-tree property or a unit file a few KiB: past this is not one of them.
MAX_FILE = 1 << 20
# Linux's own limit on links followed in one lookup (MAXSYMLINKS).
MAX_LINKS = 40
# A capture of one board holds a few thousand entries at most.
MAX_ENTRIES = 100_000
MAX_ARCHIVE = 64 << 20
# O_PATH: a folder on the way needs search permission only, as in a plain lookup.
_PATH = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LIST = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

H = TypeVar("H")


class Escapes(GhafgenError):
    """A path under the root leads outside it, or through too many links."""


class Unopenable(GhafgenError):
    """A capture that cannot be read as one, or a capture file not written."""


class Node(NamedTuple):
    """An entry's kind and owner as `ls -l` shows them (lstat, never followed)."""

    kind: str  # "char", "block", "file", "dir", "link", "fifo", "socket"
    mode: int  # permission bits
    uid: int
    gid: int


_NODE_KINDS = (
    (stat.S_ISCHR, "char"),
    (stat.S_ISBLK, "block"),
    (stat.S_ISDIR, "dir"),
    (stat.S_ISLNK, "link"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
)


def _node(st: os.stat_result) -> Node:
    word = next((w for test, w in _NODE_KINDS if test(st.st_mode)), "file")
    return Node(word, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


class Listed(NamedTuple):
    """One name in a folder: its kind ("dir", "link", "file", ...) and, for a
    link, its target as written."""

    kind: str
    target: str | None


class Tree(Generic[H]):
    """The walk, shared by a folder and an archive; `H` is how each holds a
    folder on the way (a descriptor, a name).

    Every method takes a path relative to the root and returns its key too:
    the same path with no link in it. `passed`, when given, is filled with
    every link the walk went through (key -> target as written), also when
    the walk then fails, so a capture can hold the links that led to a file.
    """

    chroot = False

    def __init__(self, root: Path) -> None:
        self.root = root

    # What each kind of tree provides.
    def _top(self) -> H:
        raise NotImplementedError

    def _enter(self, at: H, name: str) -> H:
        raise NotImplementedError

    def _readlink(self, at: H, name: str) -> str | None:
        """The target of the link `name`; None when it is no link.
        FileNotFoundError when nothing is there."""
        raise NotImplementedError

    def _close(self, at: H) -> None:
        pass

    def _read(self, at: H, name: str, where: str, limit: int) -> bytes:
        raise NotImplementedError

    def _list(self, at: H, name: str, where: str) -> dict[str, Listed]:
        raise NotImplementedError

    def _lstat(self, at: H, name: str) -> Node:
        raise NotImplementedError

    def _absolute(self, link: str, target: str) -> list[str]:
        """The parts under the root of an absolute link target, or Escapes."""
        return target.split("/")

    def _where(self, key: str) -> str:
        return str(self.root / key) if key else str(self.root)

    @contextlib.contextmanager
    def _walk(
        self, rel: str, follow_last: bool, passed: dict[str, str] | None
    ) -> Iterator[tuple[H, str, str]]:
        """(the folder holding `rel`'s last component, its name, `rel`'s key).

        The name is "." for the root itself.

        Raises:
            Escapes: a link leads outside the root, or there are too many.
            FileNotFoundError, NotADirectoryError, OSError: as open(2) says.
        """
        todo = [p for p in rel.split("/") if p not in ("", ".")]
        stack: list[H] = [self._top()]
        done: list[str] = []  # the key so far
        links, via = 0, ""
        try:
            while todo:
                part = todo.pop(0)
                if part == "..":
                    if len(stack) == 1:
                        if self.chroot:
                            continue  # `/..` is `/`
                        raise Escapes(
                            f"{self.root / rel.lstrip('/')}: {via or 'the path'} leads "
                            "above --root; ghafgen reads only files inside the tree "
                            "it is given"
                        )
                    self._close(stack.pop())
                    done.pop()
                    continue
                target = self._readlink(stack[-1], part)
                if target is not None and (todo or follow_last):
                    here = "/".join([*done, part])
                    if passed is not None:
                        passed[here] = target
                    links += 1
                    if links > MAX_LINKS:
                        raise Escapes(
                            f"{self._where(here)}: more than {MAX_LINKS} links"
                        )
                    via = f"a link to {target!r}"
                    if target.startswith("/"):
                        parts = self._absolute(here, target)
                        for h in stack[1:]:
                            self._close(h)
                        del stack[1:]
                        done.clear()
                    else:
                        parts = target.split("/")
                    todo[:0] = [p for p in parts if p not in ("", ".")]
                    continue
                if not todo:
                    yield stack[-1], part, "/".join([*done, part])
                    return
                stack.append(self._enter(stack[-1], part))
                done.append(part)
            yield stack[-1], ".", "/".join(done)
        finally:
            for h in stack:
                self._close(h)

    def read(
        self, rel: str, *, limit: int = MAX_FILE, passed: dict[str, str] | None = None
    ) -> tuple[str, bytes]:
        """(key, bytes) of the regular file at `rel`.

        Raises:
            Escapes; FileNotFoundError; fileio.NotRegular (a FIFO, a device, a
            folder), fileio.TooLarge (past `limit`); OSError.
        """
        with self._walk(rel, True, passed) as (at, name, key):
            return key, self._read(at, name, self._where(rel.lstrip("/")), limit)

    def readlink(
        self, rel: str, *, passed: dict[str, str] | None = None
    ) -> tuple[str, str | None]:
        """(key, target as written) of the link at `rel`, never followed;
        None when `rel` is no link. Raises as `read`."""
        with self._walk(rel, False, passed) as (at, name, key):
            return key, self._readlink(at, name)

    def listdir(
        self, rel: str, *, passed: dict[str, str] | None = None
    ) -> tuple[str, dict[str, Listed]]:
        """(key, {name: its kind and link target}) of the folder at `rel`, sorted.
        Raises as `read`; NotADirectoryError (or OSError) for no folder."""
        with self._walk(rel, True, passed) as (at, name, key):
            return key, self._list(at, name, self._where(rel.lstrip("/")))

    def lstat(
        self, rel: str, *, passed: dict[str, str] | None = None
    ) -> tuple[str, Node]:
        """(key, kind and owner) of what is at `rel`, the last link not followed
        when it is one (a device node is reported, never opened)."""
        with self._walk(rel, True, passed) as (at, name, key):
            return key, self._lstat(at, name)


class Folder(Tree[int]):
    """A folder: `/` on the board, or a capture unpacked."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        # Absolute link targets are compared with the root as the kernel sees it.
        self.real = Path(os.path.realpath(root))

    def _top(self) -> int:
        return os.open(self.root, _PATH & ~os.O_NOFOLLOW)  # the root may be a link

    def _enter(self, at: int, name: str) -> int:
        return os.open(name, _PATH, dir_fd=at)

    def _close(self, at: int) -> None:
        os.close(at)

    def _readlink(self, at: int, name: str) -> str | None:
        if not stat.S_ISLNK(os.stat(name, dir_fd=at, follow_symlinks=False).st_mode):
            return None
        return os.readlink(name, dir_fd=at)

    def _absolute(self, link: str, target: str) -> list[str]:
        try:
            inside = Path(target).relative_to(self.real)
        except ValueError:
            raise Escapes(
                f"{self._where(link)}: a link to {target!r}, outside --root; ghafgen "
                "reads only files inside the tree it is given"
            ) from None
        return list(inside.parts)

    def _read(self, at: int, name: str, where: str, limit: int) -> bytes:
        return read_regular(
            Path(name), limit=limit, follow=False, dir_fd=at, where=where
        )

    def _list(self, at: int, name: str, where: str) -> dict[str, Listed]:
        fd = os.open(name, _LIST, dir_fd=at)
        try:
            found = {}
            for n in sorted(os.listdir(fd)):
                word = _node(os.stat(n, dir_fd=fd, follow_symlinks=False)).kind
                found[n] = Listed(
                    word, os.readlink(n, dir_fd=fd) if word == "link" else None
                )
            return found
        finally:
            os.close(fd)

    def _lstat(self, at: int, name: str) -> Node:
        return _node(os.stat(name, dir_fd=at, follow_symlinks=False))


class Archive(Tree[str]):
    """A capture's .tar.gz, read into memory and never unpacked: device nodes
    keep their owner and mode, and no link can point anywhere outside."""

    chroot = True

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._files: dict[str, bytes] = {}
        self._big: dict[str, int] = {}  # past MAX_FILE: refused when read
        self._links: dict[str, str] = {}
        self._nodes: dict[str, Node] = {}
        self._children: dict[str, set[str]] = {"": set()}
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise Unopenable(f"{path}: cannot read ({e.strerror or e})") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Unopenable(
                    f"{path}: cannot read ({kind(st.st_mode)}, not a capture)"
                )
            if st.st_size > MAX_ARCHIVE:
                raise Unopenable(
                    f"{path}: larger than {MAX_ARCHIVE >> 20} MiB; not a capture"
                )
            self._load(io.BytesIO(read_fd(fd, str(path), MAX_ARCHIVE)))
        except (OSError, tarfile.TarError, EOFError, TooLarge) as e:
            raise Unopenable(f"{path}: not a readable capture ({e})") from None
        finally:
            os.close(fd)

    def _load(self, raw: io.BytesIO) -> None:
        total = 0
        with tarfile.open(fileobj=raw, mode="r:gz") as tar:
            for i, info in enumerate(tar):
                if i >= MAX_ENTRIES:
                    raise Unopenable(f"{self.root}: more than {MAX_ENTRIES} entries")
                name = info.name
                while name.startswith("./"):
                    name = name[2:]
                name = name.strip("/")
                if name in ("", "."):
                    continue
                if ".." in name.split("/"):
                    raise Unopenable(
                        f"{self.root}: entry {info.name!r} leaves the tree"
                    )
                parts = name.split("/")
                for n in range(len(parts)):
                    self._children.setdefault("/".join(parts[:n]), set()).add(parts[n])
                owner = (info.mode & 0o7777, info.uid, info.gid)
                if info.isreg():
                    if info.size > MAX_FILE:
                        self._big[name] = info.size
                        continue
                    total += info.size
                    if total > MAX_ARCHIVE:
                        raise Unopenable(
                            f"{self.root}: unpacks past {MAX_ARCHIVE >> 20} MiB; "
                            "not a capture of one board"
                        )
                    f = tar.extractfile(info)
                    self._files[name] = f.read() if f else b""
                    self._nodes[name] = Node("file", *owner)
                elif info.isdir():
                    self._children.setdefault(name, set())
                    self._nodes[name] = Node("dir", *owner)
                elif info.issym():
                    self._links[name] = info.linkname
                elif info.ischr() or info.isblk() or info.isfifo():
                    word = (
                        "char" if info.ischr() else "block" if info.isblk() else "fifo"
                    )
                    self._nodes[name] = Node(word, *owner)

    @staticmethod
    def _join(at: str, name: str) -> str:
        return f"{at}/{name}" if at else name

    def _exists(self, key: str) -> bool:
        return key in self._children or key in self._nodes or key in self._big

    def _top(self) -> str:
        return ""

    def _enter(self, at: str, name: str) -> str:
        key = self._join(at, name)
        if key in self._children:
            return key
        if self._exists(key):
            raise NotADirectoryError(f"{key}: not a folder")
        raise FileNotFoundError(key)

    def _readlink(self, at: str, name: str) -> str | None:
        key = self._join(at, name)
        if key in self._links:
            return self._links[key]
        if self._exists(key) or name == ".":
            return None
        raise FileNotFoundError(key)

    def _read(self, at: str, name: str, where: str, limit: int) -> bytes:
        key = at if name == "." else self._join(at, name)
        if key in self._files and len(self._files[key]) <= limit:
            return self._files[key]
        if key in self._files or key in self._big:
            raise TooLarge(where, limit)
        if key in self._children:
            raise NotRegular(where, "a folder")
        node = self._nodes.get(key)
        if node is None:
            raise FileNotFoundError(key)
        raise NotRegular(where, _WORDS.get(node.kind, "not a regular file"))

    def _list(self, at: str, name: str, where: str) -> dict[str, Listed]:
        key = at if name == "." else self._join(at, name)
        if key not in self._children:
            self._readlink(at, name)  # FileNotFoundError when absent
            raise NotADirectoryError(f"{where}: not a folder")
        return {
            n: Listed(self._lstat(key, n).kind, self._links.get(self._join(key, n)))
            for n in sorted(self._children[key])
        }

    def _lstat(self, at: str, name: str) -> Node:
        key = at if name == "." else self._join(at, name)
        if key in self._links:
            return Node("link", 0o777, 0, 0)
        if key in self._nodes:
            return self._nodes[key]
        if self._exists(key):
            return Node("dir" if key in self._children else "file", 0o644, 0, 0)
        raise FileNotFoundError(key)


_WORDS = {
    "char": "a character device",
    "block": "a block device",
    "fifo": "a FIFO",
    "socket": "a socket",
}


def open_tree(root: Path) -> Folder | Archive:
    """The tree under `root`: a folder (`/` for the running system) or a .tar.gz.

    Raises:
        Unopenable: neither, or an archive that is not a readable capture.
    """
    if root.is_dir():
        return Folder(root)
    if os.path.lexists(root) and not root.is_dir():
        return Archive(root)
    raise Unopenable(f"{root}: no such folder or capture")


@dataclass
class Taken:
    """What a run read, for a capture: each entry under the name it is saved as."""

    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)  # kept even when empty
    nodes: dict[str, Node] = field(default_factory=dict)  # device nodes

    def count(self) -> int:
        return len(self.files) + len(self.links) + len(self.nodes)


def _entry(name: str, typ: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = typ, mode, 0
    info.uid, info.gid, info.uname, info.gname = 0, 0, "", ""
    return info


def pack(taken: Taken) -> bytes:
    """A deterministic tar.gz of `taken`: the same reads give the same bytes
    (gzip stamps the time into its header unless told mtime=0)."""
    buf = io.BytesIO()
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0)
    with gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(f for f in taken.folders if f):
            tar.addfile(_entry(name, tarfile.DIRTYPE, 0o755))
        for name, data in sorted(taken.files.items()):
            info = _entry(name, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in sorted(taken.links.items()):
            info = _entry(name, tarfile.SYMTYPE, 0o777)
            info.linkname = target
            tar.addfile(info)
        for name, node in sorted(taken.nodes.items()):
            if node.kind not in ("char", "block"):
                continue
            typ = tarfile.CHRTYPE if node.kind == "char" else tarfile.BLKTYPE
            info = _entry(name, typ, node.mode)
            info.uid, info.gid = node.uid, node.gid
            tar.addfile(info)
    return buf.getvalue()


def save_new(data: bytes, out: Path) -> None:
    """Write `data` to `out`, never over an existing file (an earlier capture).

    Raises:
        Unopenable: `out` exists or cannot be written.
    """
    try:
        with open(out, "xb") as f:
            f.write(data)
    except FileExistsError:
        raise Unopenable(
            f"{out} exists; ghafgen does not overwrite a capture"
        ) from None
    except OSError as e:
        raise Unopenable(f"cannot write {out}: {e.strerror or e}") from None
