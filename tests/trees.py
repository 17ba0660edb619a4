"""Real base trees for the tests: the AGX Orin devkit tree built from Debian's
linux-source-6.1 and QEMU's own `virt` tree. Nothing here is committed; each
test session builds them once (the tarball extraction takes ~10 s)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import libfdt

from ghafgen.fdtview import FdtView
from ghafgen.guestbase import dump_qemu_virt

KERNEL_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
# 6.12 has the P3768 (Orin NX/Nano) and P3740 trees and the guest bindings.
KERNEL_612_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
BOARD_DTS_612 = (
    "tegra234-p3737-0000+p3701-0000",
    "tegra234-p3768-0000+p3767-0000",
    "tegra234-p3768-0000+p3767-0005",
    "tegra234-p3740-0002+p3701-0008",
)
MEMBERS_612 = (
    "Documentation/devicetree/bindings/",
    "include/dt-bindings/",
    "include/uapi/linux/input-event-codes.h",
    "arch/arm64/boot/dts/nvidia/",
    "scripts/dtc/include-prefixes/",
)
ORIN_DTS = "arch/arm64/boot/dts/nvidia/tegra234-p3737-0000+p3701-0000.dts"
MEMBERS = (
    "include/dt-bindings/",
    "include/uapi/linux/input-event-codes.h",
    "arch/arm64/boot/dts/nvidia/",
    "scripts/dtc/include-prefixes/",
    "drivers/vfio/platform/",
    "Makefile",
)


def extract_kernel_subset(dest: Path) -> Path:
    """Unpack what device trees, ghafgen's kernel patch and Kconfig checks need; return the root."""
    with tarfile.open(KERNEL_TARBALL) as tar:
        wanted = [
            m
            for m in tar.getmembers()
            if any(m.name.partition("/")[2].startswith(p) for p in MEMBERS)
            or "/Kconfig" in m.name
        ]
        tar.extractall(dest, members=wanted, filter="fully_trusted")
    return dest / "linux-source-6.1"


def extract_612_subset(dest: Path) -> Path:
    """Unpack 6.12's Tegra device trees and the headers they include; return the root."""
    with tarfile.open(KERNEL_612_TARBALL) as tar:
        wanted = [
            m
            for m in tar.getmembers()
            if any(m.name.partition("/")[2].startswith(p) for p in MEMBERS_612)
        ]
        tar.extractall(dest, members=wanted, filter="fully_trusted")
    return dest / "linux-source-6.12"


def build_board_dtb(src: Path, out: Path, name: str) -> Path:
    """cpp then dtc -@ for arch/arm64/boot/dts/nvidia/<name>.dts."""
    pre = out / f"{name}.pp.dts"
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
            f"arch/arm64/boot/dts/nvidia/{name}.dts",
            "-o",
            str(pre),
        ],
        cwd=src,
    )
    dtb = out / f"{name}.dtb"
    run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), str(pre)])
    return dtb


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}"
    return done


def build_orin_dtb(src: Path, out: Path) -> Path:
    """The recipe in DESIGN.md: cpp over the kernel's include dirs, then dtc -@."""
    pre = out / "orin.pp.dts"
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
            ORIN_DTS,
            "-o",
            str(pre),
        ],
        cwd=src,
    )
    dtb = out / "orin.dtb"
    run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), str(pre)])
    return dtb


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
