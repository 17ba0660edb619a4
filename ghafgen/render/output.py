"""Write a target's files into DIR/<target>/ atomically, or compare them for drift.

Entry point: `write_target(outdir, target, files, profile=..., profile_sha256=...)`.

A new tree is built beside the old one (unchanged files hard-linked, so their
mtimes stay) and swapped in with one `renameat2(RENAME_EXCHANGE)`: a reader or
a crash sees the old set or the new set, never a mix. A file whose hash differs
from the manifest was edited by hand and is not overwritten without `force`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ghafgen import __version__
from ghafgen.errors import GhafgenError
from ghafgen.fileio import Unreadable, read_regular

MANIFEST = "ghafgen-manifest.json"
# An empty file in the output directory that generate runs flock() in turn;
# not the profile's pinned sources (profile.lockfile.PINS_FILE).
OUTPUT_MUTEX = ".ghafgen.lock"
# A manifest lists a few dozen files (a few KiB); read no more than this of one.
MAX_MANIFEST_BYTES = 4 << 20


class OutputError(GhafgenError):
    """The output directory cannot be written as asked."""


@dataclass(frozen=True)
class Outcome:
    target: str
    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    kept: tuple[str, ...] = ()  # what a person put in the folder, carried over as is

    @property
    def drifted(self) -> tuple[str, ...]:
        return self.written + self.removed


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(
    target: str,
    profile: str,
    profile_sha256: str,
    files: dict[str, bytes],
    host: dict[str, object] | None = None,
    contents: dict[str, object] | None = None,
) -> bytes:
    doc: dict[str, object] = {
        "generator": "ghafgen",
        "version": __version__,
        "target": target,
        "profile": profile,
        "profile_sha256": profile_sha256,
        "files": {path: sha256(data) for path, data in sorted(files.items())},
    }
    if host is not None:
        # Read by flake.nix to build the host around the module (kernel, jetpack).
        doc["host"] = host
    if contents is not None:
        # Read by `ghafgen check` (toolchain.realtools) instead of the generated text.
        doc["contents"] = contents
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def read_manifest_bytes(folder: Path) -> bytes | None:
    """The manifest's bytes, None without one; never through a link, a FIFO or
    a device planted at its name.

    Raises:
        OSError, fileio.Unreadable: it cannot be read as a regular file.
    """
    try:
        return read_regular(folder / MANIFEST, limit=MAX_MANIFEST_BYTES, follow=False)
    except FileNotFoundError:
        return None


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    try:
        data = read_manifest_bytes(folder)
        if data is None:
            return {}
        doc = json.loads(data.decode("utf-8"))
        files = doc["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
        return {str(k): str(v) for k, v in files.items()}
    except (OSError, Unreadable, ValueError, KeyError, TypeError, RecursionError) as e:
        raise OutputError(
            f"{path}: not a ghafgen manifest ({e}); remove the folder or fix it"
        ) from e


def _on_disk(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _foreign(folder: Path, ours: set[str]) -> tuple[str, ...]:
    """Every entry under `folder` ghafgen did not write: files, links, FIFOs, folders."""
    if not folder.is_dir() or folder.is_symlink():
        return ()
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if rel in ours:
            continue
        if p.is_dir() and not p.is_symlink():
            if any(o.startswith(rel + "/") for o in ours):
                continue  # a folder ghafgen writes into
            out.append(rel + "/")
        else:
            out.append(rel)
    return tuple(out)


def preflight(outdir: Path, targets: list[str]) -> None:
    """Refuse, before anything is written, an output tree ghafgen must not follow.

    A symlink at DIR/.ghafgen.lock or DIR/<target> would send the writes (or the
    swap) somewhere else; a file there is the user's, not a target folder.
    """
    lock = outdir / OUTPUT_MUTEX
    if lock.is_symlink() or (lock.exists() and not lock.is_file()):
        raise OutputError(
            f"{lock} is a symlink or not a regular file; ghafgen does not follow it. "
            "Remove it (ghafgen recreates its lock file)"
        )
    for name in targets:
        folder = outdir / name
        if folder.is_symlink():
            raise OutputError(
                f"{folder} is a symlink; ghafgen writes a target folder only in place. "
                f"Give the real folder with -o, or move the link away"
            )
        if folder.exists() and not folder.is_dir():
            raise OutputError(
                f"{folder} is a file, not a target folder; move it away and run again"
            )


def _in_the_way(folder: Path, files: dict[str, bytes]) -> list[str]:
    """Entries a person put where ghafgen writes: a link or FIFO at a file's
    path, a file or link where ghafgen needs a folder."""
    bad = set()
    for rel in files:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            p = folder.joinpath(*parts[:i])
            if p.is_symlink() or (p.exists() and not p.is_dir()):
                bad.add("/".join(parts[:i]))
        p = folder / rel
        if p.is_symlink() or (p.exists() and not p.is_file()):
            bad.add(rel)
    return sorted(bad)


@contextlib.contextmanager
def locked(outdir: Path) -> Iterator[None]:
    """Serialize generate runs on one output directory."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a symlink planted at the lock path is refused, not followed.
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(outdir / OUTPUT_MUTEX, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OutputError(
                f"{outdir / OUTPUT_MUTEX} is a symlink; ghafgen does not follow it. Remove it"
            ) from e
        raise OutputError(f"cannot write to {outdir}: {e.strerror or e}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
# The prefixes of a writer's own folders beside the targets; the rest of each
# name comes from tempfile.mkdtemp, so no other process can guess it.
_TMP, _OLD = "tmp-", "old-"


def _renameat2(a: Path, b: Path, flags: int) -> bool:
    """Linux renameat2 on two paths (never following a link at either); False
    when this kernel or file system lacks it."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _exchange(a: Path, b: Path) -> None:
    """Atomically swap two directories (Linux renameat2)."""
    if _renameat2(a, b, _RENAME_EXCHANGE):
        return
    # No RENAME_EXCHANGE here: two renames; _recover() repairs a crash between
    # them. The old tree moves onto an empty folder of our own, made just now.
    old = Path(tempfile.mkdtemp(prefix=f".{b.name}.{_OLD}", dir=b.parent))
    os.rename(b, old)
    os.rename(a, b)
    os.rename(old, a)


def _place(tmp: Path, folder: Path) -> None:
    """Move a new tree to where no target folder is; never over anything."""
    if not _renameat2(tmp, folder, _RENAME_NOREPLACE):
        if folder.exists() or folder.is_symlink():
            raise FileExistsError(errno.EEXIST, "appeared during the run", str(folder))
        os.rename(tmp, folder)


def _ours(path: Path) -> bool:
    """A real folder (not a link) owned by whoever runs ghafgen: a tree a killed
    run of ours left, not something planted under a look-alike name."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


def _remove_ours(path: Path) -> None:
    """Remove a tree of ours; a link or another user's folder stays where it is."""
    if _ours(path):
        # rmtree works through folder descriptors: it unlinks links, never follows them.
        shutil.rmtree(path, ignore_errors=True)


def _recover(outdir: Path, name: str) -> None:
    """Undo what a killed run left: restore a half-swapped target, drop temp trees."""
    target = outdir / name
    olds = sorted(outdir.glob(f".{name}.{_OLD}*"))
    if not target.exists() and not target.is_symlink():
        # Only the two-rename fallback leaves one, and only one run at a time
        # holds the lock; an empty one is the folder made for the first rename.
        for old in olds:
            if _ours(old) and any(old.iterdir()):
                os.rename(old, target)
                break
    for stale in (*olds, *outdir.glob(f".{name}.{_TMP}*")):
        _remove_ours(stale)


def _write_tree(
    tmp: Path,
    folder: Path,
    files: dict[str, bytes],
    keep: dict[str, bytes],
    foreign: tuple[str, ...] = (),
) -> None:
    for rel, data in sorted(files.items()):
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = folder / rel
        if keep.get(rel) == data:
            os.link(src, dest)  # same inode: the file's mtime is kept
            continue
        with open(dest, "xb") as f:  # O_EXCL: a fresh file in a fresh folder
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if rel.endswith(".sh"):  # bind-vfio.sh, pin-vcpus.sh
            dest.chmod(0o755)
    for rel in keep:
        if rel not in files:
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(folder / rel, dest)
    # What a person added that is not a regular file (a symlink, a FIFO, an
    # empty folder) comes along too: hard links of the entries themselves.
    for rel in foreign:
        dest = tmp / rel.rstrip("/")
        if rel.endswith("/"):
            dest.mkdir(parents=True, exist_ok=True)
        elif not dest.exists() and not dest.is_symlink():
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(folder / rel, dest, follow_symlinks=False)
    dirfd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
    # mkdtemp made it 0700; the target folder gets what mkdir would have given.
    tmp.chmod(0o777 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_target(
    outdir: Path,
    target: str,
    files: dict[str, bytes],
    *,
    profile: str,
    profile_sha256: str,
    host: dict[str, object] | None = None,
    contents: dict[str, object] | None = None,
    compare_only: bool = False,
    force: bool = False,
) -> Outcome:
    """Bring DIR/<target>/ to exactly `files` (plus manifest); with `compare_only`
    (generate --check), only say what would change.

    Raises:
        OutputError: hand-edited files without `force`, or an unwritable directory.
    """
    files = {
        **files,
        MANIFEST: manifest(target, profile, profile_sha256, files, host, contents),
    }
    folder = outdir / target
    preflight(outdir, [target])
    if not compare_only:
        _recover(outdir, target)
    blocking = _in_the_way(folder, files)
    if blocking:
        raise OutputError(
            "not a file or folder ghafgen can write in place: "
            + ", ".join(str(folder / rel) for rel in blocking)
            + "; move them away (ghafgen neither follows nor deletes them)"
        )
    recorded = _read_manifest(folder)
    disk = _on_disk(folder)
    edited = sorted(
        rel
        for rel, data in disk.items()
        if rel != MANIFEST
        and (
            (rel in recorded and sha256(data) != recorded[rel])
            or (rel not in recorded and rel in files and data != files[rel])
        )
    )
    ours = set(recorded) | {MANIFEST}
    written = tuple(rel for rel in files if disk.get(rel) != files[rel])
    unchanged = tuple(rel for rel in files if disk.get(rel) == files[rel])
    removed = tuple(sorted(rel for rel in disk if rel in ours and rel not in files))
    foreign = _foreign(folder, set(files) | set(recorded))
    outcome = Outcome(target, written, unchanged, removed, foreign)
    if compare_only or not outcome.drifted:
        return outcome
    if edited and not force:
        listing = ", ".join(f"{folder / rel}" for rel in edited)
        raise OutputError(
            f"edited by hand since ghafgen wrote them: {listing}; move the change into the "
            "profile, or pass --force to overwrite"
        )
    keep = {rel: data for rel, data in disk.items() if rel not in ours or rel in files}
    try:
        # mkdtemp: a fresh name made with mkdir, so a link or folder planted
        # in advance is never written through or swapped in.
        tmp = Path(tempfile.mkdtemp(prefix=f".{target}.{_TMP}", dir=outdir))
    except OSError as e:
        raise OutputError(f"cannot write to {outdir}: {e.strerror or e}") from e
    try:
        _write_tree(tmp, folder, files, keep, foreign)
        if folder.exists():
            _exchange(tmp, folder)
            # What the swap took out must be the real folder preflight saw; a
            # link put there since is left alone rather than removed.
            if not _ours(tmp):
                raise OutputError(
                    f"{folder} was replaced while ghafgen wrote it; the new tree is "
                    f"in place, what stood there is now at {tmp}, untouched"
                )
            shutil.rmtree(tmp)
        else:
            _place(tmp, folder)
    except OSError as e:
        _remove_ours(tmp)
        raise OutputError(f"cannot write {folder}: {e.strerror or e}") from e
    return outcome
