"""Base trees `check` builds itself from an installed kernel source tarball.

Debian's linux-source-X.Y packages put /usr/src/linux-source-X.Y.tar.xz on the
machine. From it `check` unpacks only what device trees, binding schemas,
ghafgen's kernel patch and the Kconfig check read, then builds a board's DTB
the way Kbuild does (cpp over the include dirs, then `dtc -@`).

Everything is cached in the user cache dir (GHAFGEN_CACHE_DIR, else
$XDG_CACHE_HOME/ghafgen, else ~/.cache/ghafgen), keyed by the tarball's
name, size and mtime: a reinstalled package unpacks again, an unchanged one
never does. Each entry is written beside its final name and renamed into
place, so two runs at once never see half a tree.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from ghafgen.catalog.load import cache_root
from ghafgen.errors import ToolError
from ghafgen.tools import run

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


def _publish(build: Callable[[Path], None], dest: Path) -> Path:
    """Build into a sibling temp path, then rename to `dest` (first writer wins)."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
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

    return _publish(unpack, cache_root() / kind / key)


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

    return _publish(build, dest) / f"{name}.dtb"


def processed_schemas(tree: Path, dtschema_version: str) -> Path:
    """`dt-mk-schema -j` over the tree's bindings, cached per tree and dtschema version."""
    bindings = tree / "Documentation/devicetree/bindings"
    if not bindings.is_dir():
        raise FileNotFoundError(f"{bindings} does not exist")
    dest = tree.parent / "schemas" / f"dtschema-{dtschema_version}"

    def build(into: Path) -> None:
        done = run(["dt-mk-schema", "-j", "--", str(bindings)])
        if done.returncode != 0 or not done.stdout.startswith("{"):
            raise ToolError(
                f"dt-mk-schema failed on {bindings}:\n{done.stderr[-2000:]}"
            )
        (into / "processed-schema.json").write_text(done.stdout)

    return _publish(build, dest) / "processed-schema.json"
