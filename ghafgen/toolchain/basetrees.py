"""Base trees `check` builds itself from an installed kernel source tarball.

Debian's linux-source-X.Y packages put /usr/src/linux-source-X.Y.tar.xz on the
machine. From it `check` unpacks only what device trees, binding schemas,
ghafgen's kernel patch and the Kconfig check read, then builds a board's DTB
the way Kbuild does (cpp over the include dirs, then `dtc -@`).

Everything is cached in the user cache dir (GHAFGEN_CACHE_DIR, else
$XDG_CACHE_HOME/ghafgen, else ~/.cache/ghafgen), keyed by the tarball's
name, size and mtime: a reinstalled package unpacks again, an unchanged one
never does. Each entry is written beside its final name and renamed into
place, so two runs at once never see half a tree, and built by one process
at a time (a lock named after it), so the second waits instead of building
the same entry again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ghafgen.errors import ToolError
from ghafgen.fileio import cache_root
from ghafgen.toolchain import schemaset
from ghafgen.tools import run

if TYPE_CHECKING:
    from ghafgen.toolchain.bindings import DtSchema

DEFAULT_SOURCES = Path("/usr/src")
# What the checks read from a kernel tree (paths below linux-source-X.Y/).
MEMBERS = (
    "include/dt-bindings/",
    "include/uapi/linux/input-event-codes.h",
    "arch/arm64/boot/dts/",
    "scripts/dtc/include-prefixes/",
    "drivers/vfio/platform/",
    "Documentation/devicetree/bindings/",
    "Makefile",
)
_VERSION = re.compile(r"^\d+\.\d+$")


def sources_dir(given: Path | None = None) -> Path:
    """Where linux-source-X.Y.tar.xz are looked for: the option, the env, /usr/src."""
    if given is not None:
        return given
    env = os.environ.get("GHAFGEN_KERNEL_SOURCES")
    return Path(env) if env else DEFAULT_SOURCES


def tarball(version: str, where: Path | None = None) -> Path | None:
    """The linux-source tarball of `version` ("6.12"), or None if not installed."""
    if not _VERSION.match(version):
        raise ValueError(f"kernel version {version!r} is not MAJOR.MINOR")
    path = sources_dir(where) / f"linux-source-{version}.tar.xz"
    return path if path.is_file() else None


def _wanted(name: str) -> bool:
    rel = name.partition("/")[2]
    return any(rel.startswith(p) for p in MEMBERS) or "/Kconfig" in name


def publish(build: Callable[[Path], None], dest: Path) -> Path:
    """Build into a sibling temp path, then rename to `dest`.

    One builder at a time per `dest`: a second process (another `check`, a
    parallel test worker) waits for the first and finds its result, rather
    than unpacking or processing the same thing beside it. The rename alone
    would keep either from seeing half an entry."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _lock(dest):
        if dest.exists():
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            build(tmp)
            try:
                os.rename(tmp, dest)
            except OSError:
                if not dest.exists():  # not a lost race: a real failure
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


@contextlib.contextmanager
def _lock(dest: Path) -> Iterator[None]:
    """An exclusive lock named after `dest`, outside the cache (lock files
    there would be entries no one reads), released when the process ends."""
    folder = Path(tempfile.gettempdir()) / f"ghafgen-locks-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.is_symlink() or folder.stat().st_uid != os.getuid():
        yield  # not ours to trust: build unlocked, the rename still holds
        return
    name = hashlib.sha256(str(dest.resolve()).encode()).hexdigest()[:32]
    with open(folder / name, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def unpacked(tar: Path, kind: str, wanted: Callable[[str], bool]) -> Path:
    """The members of `tar` that `wanted` keeps, unpacked once into the cache dir
    `kind`/ under a key of the tarball's name, size and mtime; returns that dir.
    A caller that changes what it wants names a new `kind`."""
    st = tar.stat()
    top = tar.name.removesuffix(".tar.xz")
    key = f"{top}-{st.st_size}-{st.st_mtime_ns}"

    def unpack(into: Path) -> None:
        with tarfile.open(tar) as archive:
            members = [m for m in archive.getmembers() if wanted(m.name)]
            archive.extractall(into, members=members, filter="fully_trusted")

    return publish(unpack, cache_root() / kind / key)


def kernel_subset(tar: Path) -> Path:
    """The unpacked subset of a linux-source tarball (cached); returns the tree root."""
    return unpacked(tar, "kernel", _wanted) / tar.name.removesuffix(".tar.xz")


def board_dtb(tree: Path, dts: str) -> Path:
    """`arch/arm64/boot/dts/<dts>` built as Kbuild does; cached beside the tree.

    Raises:
        FileNotFoundError: the tree has no such DTS.
        ToolError: cpp or dtc failed.
    """
    if dts.startswith(("-", "/")) or ".." in Path(dts).parts:
        raise ValueError(f"{dts!r} is not a path below arch/arm64/boot/dts")
    src = tree / "arch/arm64/boot/dts" / dts
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist")
    name = Path(dts).name.removesuffix(".dts")
    dest = tree.parent / "dtbs" / name

    def build(into: Path) -> None:
        pre = into / f"{name}.pp.dts"
        # Kbuild's dtc_cpp_flags: no system headers, no predefined macros.
        run(
            [
                "cpp",
                "-nostdinc",
                "-undef",
                "-D__DTS__",
                "-x",
                "assembler-with-cpp",
                "-I",
                "include",
                "-I",
                "arch/arm64/boot/dts",
                "-I",
                "scripts/dtc/include-prefixes",
                "-o",
                str(pre),
                # cpp takes no `--`; the path is the catalog's and starts "arch/".
                str(src.relative_to(tree)),
            ],
            cwd=tree,
        ).or_raise()
        run(
            ["dtc", "-@", "-q", "-I", "dts", "-O", "dtb"]
            + ["-o", str(into / f"{name}.dtb"), "--", str(pre)]
        ).or_raise()

    return publish(build, dest) / f"{name}.dtb"


def processed_schemas(
    tree: Path, tool: DtSchema, schemas: list[Path] | None = None
) -> Path:
    """`dt-mk-schema -j` over the tree's bindings, or only over `schemas` among
    them (ghafgen.toolchain.schemaset), cached per tree, dtschema version and
    selection.

    Raises:
        FileNotFoundError: the tree has no bindings.
        ToolError: dt-mk-schema failed.
    """
    bindings = tree / "Documentation/devicetree/bindings"
    if not bindings.is_dir():
        raise FileNotFoundError(f"{bindings} does not exist")
    name = f"dtschema-{tool.version}"
    if schemas is not None:
        name += f"-{schemaset.key(bindings, schemas)}"
        given = [str(p.resolve().relative_to(bindings.resolve())) for p in schemas]
    else:
        given = ["."]
    dest = tree.parent / "schemas" / name

    def build(into: Path) -> None:
        # Paths relative to the bindings keep the argv short.
        done = run(tool.argv("dt-mk-schema") + ["-j", "--", *given], cwd=bindings)
        if done.returncode != 0 or not done.stdout.startswith("{"):
            raise ToolError(
                f"dt-mk-schema failed on {bindings}:\n{done.stderr[-2000:]}"
            )
        (into / "processed-schema.json").write_text(done.stdout)

    return publish(build, dest) / "processed-schema.json"
