"""Real base trees for the tests: the AGX Orin devkit tree built from Debian's
linux-source-6.1 and linux-source-6.12, and QEMU's own `virt` tree. Nothing
here is committed. The kernel subset is unpacked once per tarball (keyed by its
size and mtime) into the user cache, as `ghafgen check` does, so a test
session after the first pays nothing for it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import libfdt

from ghafgen.catalog.fdtview import FdtView
from ghafgen.toolchain import basetrees
from ghafgen.toolchain.guestbase import dump_qemu_virt

SOURCES = Path("/usr/src")
ORIN_DTS = "nvidia/tegra234-p3737-0000+p3701-0000.dts"
# 6.12's board trees of the catalog's boards (P3737, P3768 for Orin NX and
# Orin Nano) and the P3740 tree of the Industrial module.
BOARD_DTS_612 = (
    "tegra234-p3737-0000+p3701-0000",
    "tegra234-p3768-0000+p3767-0000",
    "tegra234-p3768-0000+p3767-0005",
    "tegra234-p3740-0002+p3701-0008",
)


def tarball(version: str) -> Path:
    return SOURCES / f"linux-source-{version}.tar.xz"


def extract_kernel_subset(version: str) -> Path:
    """What device trees, bindings, ghafgen's kernel patch and Kconfig checks need."""
    return basetrees.kernel_subset(tarball(version))


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}"
    return done


def build_orin_dtb(src: Path) -> Path:
    """The recipe in DESIGN.md: cpp over the kernel's include dirs, then dtc -@."""
    return basetrees.board_dtb(src, ORIN_DTS)


def build_board_dtb(src: Path, name: str) -> Path:
    """arch/arm64/boot/dts/nvidia/<name>.dts of the tree, built as check builds it."""
    return basetrees.board_dtb(src, f"nvidia/{name}.dts")


def dump_virt_dtb(out: Path, vcpus: int = 1, mem_mib: int = 1024) -> Path:
    dtb = dump_qemu_virt(out, vcpus, mem_mib)
    assert dtb is not None, "qemu-system-aarch64 is missing"
    return dtb


class Tree:
    """A read-only view of a DTB through pylibfdt."""

    def __init__(self, path: Path) -> None:
        self.blob = path.read_bytes()
        self.fdt = libfdt.Fdt(self.blob)

    def has(self, path: str) -> bool:
        return self.fdt.path_offset(path, [libfdt.NOTFOUND]) >= 0

    def cells(self, path: str, prop: str) -> list[int]:
        raw = self.fdt.getprop(self.fdt.path_offset(path), prop)
        return [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), 4)]

    def string(self, path: str, prop: str) -> str:
        return str(self.fdt.getprop(self.fdt.path_offset(path), prop).as_str())

    def maybe(self, path: str, prop: str) -> bytes | None:
        off = self.fdt.path_offset(path, [libfdt.NOTFOUND])
        if off < 0:
            return None
        got = self.fdt.getprop(off, prop, [libfdt.NOTFOUND])
        return None if isinstance(got, int) else bytes(got)

    def walk(self) -> list[str]:
        """Paths of every node."""
        return [path for _, path in FdtView(self.blob).nodes()]
