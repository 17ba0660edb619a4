"""What `ghafgen verify` reads: the running system under `/`, a captured tree in a
folder, or a capture's .tar.gz itself; and `--capture`, which saves exactly that.

Entry points: `open_source(root)` -> `Source`, `write_capture(source, out)`.
Every read is bounded, never follows a link out of the root, and opens no FIFO
or device (a file is checked to be a regular file before it is read).
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import NamedTuple

from ghafgen.discover.sysfs import SysfsReader
from ghafgen.errors import GhafgenError

# Device-tree properties, command lines and unit files are small; a file
# larger than this is not one of them.
MAX_FILE = 1 << 20
# A capture of one board holds a few thousand entries at most.
MAX_ENTRIES = 100_000
MAX_CAPTURE = 64 << 20


class VerifyError(GhafgenError):
    """verify cannot run: no target, an unreadable root or capture."""


class NodeStat(NamedTuple):
    """A device node as `ls -l` shows it."""

    kind: str  # "char", "block", or "other"
    mode: int  # permission bits
    uid: int
    gid: int


class Source:
    """Reads a tree as if it were `/`; remembers every entry it read.

    Links are resolved here, one component at a time and inside the tree (an
    absolute or `..` link stays in it, as under chroot), so every entry is
    remembered under its own path and a capture holds the links that lead to it.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.files: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        self.dirs: dict[str, tuple[str, ...]] = {}
        self.nodes: dict[str, NodeStat] = {}

    def _resolve(self, rel: str, *, follow_last: bool) -> str | None:
        """The path of `rel` with no link in it (but the last part, unless
        `follow_last`); None after too many links (a loop)."""
        parts = [p for p in rel.split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            here = "/".join([*done, part])
            target = self._readlink(here) if (parts or follow_last) else None
            if target is None:
                done.append(part)
                continue
            hops += 1
            if hops > 40:
                return None
            self.links[here] = target
            parts = [*(p for p in target.split("/") if p), *parts]
            if target.startswith("/"):
                done = []
        return "/".join(done)

    def raw(self, rel: str) -> bytes | None:
        """A regular file's bytes; None when it is absent or not a regular file."""
        key = self._resolve(rel, follow_last=True)
        if key is None:
            return None
        if key not in self.files:
            data = self._read(key)
            if data is None:
                return None
            self.files[key] = data
        return self.files[key]

    def text(self, rel: str) -> str | None:
        data = self.raw(rel)
        return None if data is None else data.decode("utf-8", errors="replace")

    def link(self, rel: str) -> str | None:
        """A symlink's target as written (never followed); None: not a link."""
        key = self._resolve(rel, follow_last=False)
        if key is None:
            return None
        target = self._readlink(key)
        if target is not None:
            self.links[key] = target
        return target

    def listdir(self, rel: str) -> tuple[str, ...]:
        key = self._resolve(rel, follow_last=True)
        if key is None:
            return ()
        if key not in self.dirs:
            self.dirs[key] = self._list(key)
        return self.dirs[key]

    def node(self, rel: str) -> NodeStat | None:
        key = self._resolve(rel, follow_last=True)
        if key is None:
            return None
        found = self._stat(key)
        if found is not None:
            self.nodes[key] = found
        return found

    def kind(self, key: str) -> str | None:
        """The kind of an entry, by its own path: "dir", "link", "file" or None."""
        raise NotImplementedError

    def _readlink(self, key: str) -> str | None:
        raise NotImplementedError

    def _read(self, key: str) -> bytes | None:
        raise NotImplementedError

    def _list(self, key: str) -> tuple[str, ...]:
        raise NotImplementedError

    def _stat(self, key: str) -> NodeStat | None:
        raise NotImplementedError


class TreeSource(Source):
    """A live system (`/`) or a capture unpacked into a folder."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.root = root
        self._lister = SysfsReader(root)

    def _path(self, key: str) -> str:
        # `_resolve` gives keys without an empty or `..` part: never absolute.
        return os.path.join(self.root, key.lstrip("/"))

    def kind(self, key: str) -> str | None:
        try:
            mode = os.lstat(self._path(key)).st_mode
        except OSError:
            return None
        return "link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode) else "file"

    def _readlink(self, key: str) -> str | None:
        try:
            return os.readlink(self._path(key))
        except OSError:
            return None

    def _read(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise VerifyError(f"{path}: cannot read ({e.strerror or e})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = b""
            # sysfs and procfs answer one read with the whole file; a regular
            # file on disk may need more.
            while len(data) <= MAX_FILE:
                more = os.read(fd, MAX_FILE + 1 - len(data))
                if not more:
                    break
                data += more
        except OSError as e:
            raise VerifyError(f"{path}: cannot read ({e.strerror or e})") from None
        finally:
            os.close(fd)
        if len(data) > MAX_FILE:
            raise VerifyError(f"{path}: larger than {MAX_FILE} bytes; not a sysfs file")
        return data

    def _list(self, key: str) -> tuple[str, ...]:
        if self.kind(key) != "dir":
            return ()
        try:
            return tuple(self._lister.listdir(key))
        except GhafgenError as e:
            raise VerifyError(str(e)) from None

    def _stat(self, key: str) -> NodeStat | None:
        try:
            st = os.lstat(self._path(key))
        except OSError:
            return None
        kind = (
            "char"
            if stat.S_ISCHR(st.st_mode)
            else "block"
            if stat.S_ISBLK(st.st_mode)
            else "other"
        )
        return NodeStat(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


class TarSource(Source):
    """A capture's .tar.gz, read in memory: nothing is unpacked, so device
    nodes keep their owner and mode and no link can point anywhere."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self._files: dict[str, bytes] = {}
        self._links: dict[str, str] = {}
        self._nodes: dict[str, NodeStat] = {}
        self._children: dict[str, set[str]] = {}
        try:
            with tarfile.open(path, "r:gz") as tar:
                total = 0
                for i, info in enumerate(tar):
                    if i >= MAX_ENTRIES:
                        raise VerifyError(f"{path}: more than {MAX_ENTRIES} entries")
                    name = info.name
                    while name.startswith("./"):
                        name = name[2:]
                    name = name.strip("/")
                    if name in ("", "."):
                        continue
                    if ".." in name.split("/"):
                        raise VerifyError(
                            f"{path}: entry {info.name!r} leaves the tree"
                        )
                    self._add_parents(name)
                    if info.isreg():
                        total += info.size
                        if info.size > MAX_FILE or total > MAX_CAPTURE:
                            raise VerifyError(f"{path}: {name} is too large")
                        f = tar.extractfile(info)
                        self._files[name] = f.read() if f else b""
                    elif info.isdir():
                        self._children.setdefault(name, set())
                    elif info.issym():
                        self._links[name] = info.linkname
                    elif info.ischr() or info.isblk():
                        kind = "char" if info.ischr() else "block"
                        self._nodes[name] = NodeStat(
                            kind, info.mode & 0o7777, info.uid, info.gid
                        )
        except (OSError, tarfile.TarError, EOFError) as e:
            raise VerifyError(f"{path}: not a readable capture ({e})") from None

    def _add_parents(self, name: str) -> None:
        parts = name.split("/")
        for i in range(len(parts)):
            parent = "/".join(parts[:i])
            self._children.setdefault(parent, set()).add(parts[i])

    def kind(self, key: str) -> str | None:
        if key in self._links:
            return "link"
        if key in self._children:
            return "dir"
        return "file" if key in self._files or key in self._nodes else None

    def _readlink(self, key: str) -> str | None:
        return self._links.get(key)

    def _read(self, key: str) -> bytes | None:
        return self._files.get(key)

    def _list(self, key: str) -> tuple[str, ...]:
        return tuple(sorted(self._children.get(key, ())))

    def _stat(self, key: str) -> NodeStat | None:
        return self._nodes.get(key)


def open_source(root: Path) -> Source:
    """The tree under `root`: a folder (`/` for the running system) or a .tar.gz."""
    if root.is_dir():
        return TreeSource(root)
    if root.is_file():
        return TarSource(root)
    raise VerifyError(
        f"{root}: no such folder or capture; give --root a captured tree "
        "(ghafgen verify --capture) or leave it out on the board"
    )


def _entry(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mtime, info.mode = kind, 0, 0o644
    return info


def capture_bytes(source: Source) -> bytes:
    """A deterministic tar.gz of exactly what `source` read. A listing keeps the
    folders and links it named; files it named that were not read are left out."""
    buf = io.BytesIO()
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0)
    read = {*source.files, *source.links, *source.nodes}
    with gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders = set(source.dirs)
        links = dict(source.links)
        for name, children in source.dirs.items():
            for child in children:
                path = f"{name}/{child}" if name else child
                if path in read:
                    continue
                kind = source.kind(path)
                if kind == "dir":
                    folders.add(path)
                elif kind == "link":
                    target = source._readlink(path)
                    if target is not None:
                        links[path] = target
        for name in sorted(f for f in folders if f):
            tar.addfile(_entry(name, tarfile.DIRTYPE))
        for name, data in sorted(source.files.items()):
            info = _entry(name, tarfile.REGTYPE)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in sorted(links.items()):
            info = _entry(name, tarfile.SYMTYPE)
            info.linkname = target
            tar.addfile(info)
        for name, node in sorted(source.nodes.items()):
            typ = tarfile.CHRTYPE if node.kind == "char" else tarfile.BLKTYPE
            info = _entry(name, typ)
            info.mode, info.uid, info.gid = node.mode, node.uid, node.gid
            tar.addfile(info)
    return buf.getvalue()


def write_capture(source: Source, out: Path) -> int:
    """Save what `source` read to `out` (never over an existing file); the entry count."""
    data = capture_bytes(source)
    try:
        with open(out, "xb") as f:
            f.write(data)
    except FileExistsError:
        raise VerifyError(
            f"{out} exists; ghafgen does not overwrite a capture"
        ) from None
    except OSError as e:
        raise VerifyError(f"cannot write {out}: {e.strerror or e}") from None
    return len(source.files) + len(source.links) + len(source.nodes)
