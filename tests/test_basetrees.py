"""The kernel-subset cache and the Kbuild-style DTB build, on a tiny tarball.

The real linux-source tarballs are exercised in test_host_trees.py; this
shows what the cache keys on, with cpp and dtc really run.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from ghafgen.toolchain import basetrees
from tests.conftest import require
from tests.trees import Tree

DTS = b"""/dts-v1/;
#include <dt-bindings/x.h>
#include <arm64/v/common.dtsi>
/ { model = "tiny"; lbl: node { value = <X_VALUE>; }; linux { }; };
"""
# The other board of the tiny tree: built from the same tree, cached apart.
OTHER_DTS = b"""/dts-v1/;
#include "common.dtsi"
/ { model = "other"; };
"""


def tiny_tarball(folder: Path, version: str = "9.9") -> Path:
    top = f"linux-source-{version}"
    members = {
        f"{top}/Makefile": b"VERSION = 9\nPATCHLEVEL = 9\n",
        f"{top}/arch/arm64/boot/dts/v/board.dts": DTS,
        f"{top}/arch/arm64/boot/dts/v/other.dts": OTHER_DTS,
        f"{top}/arch/arm64/boot/dts/v/common.dtsi": b"/ { common = <7>; };\n",
        f"{top}/include/dt-bindings/x.h": b"#define X_VALUE 42\n",
        f"{top}/drivers/other/big.c": b"not wanted\n",
    }
    path = folder / f"{top}.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        # Kbuild's include-prefixes: <arm64/...> is arch/arm64/boot/dts.
        link = tarfile.TarInfo(f"{top}/scripts/dtc/include-prefixes/arm64")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../arch/arm64/boot/dts"
        tar.addfile(link)
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GHAFGEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_subset_is_unpacked_once_and_again_when_the_tarball_changes(
    tmp_path: Path, cache: Path
):
    tar = tiny_tarball(tmp_path)
    tree = basetrees.kernel_subset(tar)
    assert (tree / "Makefile").exists() and not (tree / "drivers/other").exists()
    marker = tree / "marker"
    marker.write_text("kept")
    assert basetrees.kernel_subset(tar) == tree and marker.exists()
    os.utime(tar, ns=(0, 10**9))  # a reinstalled package: another mtime
    again = basetrees.kernel_subset(tar)
    assert again != tree and not (again / "marker").exists()
    assert not [p for p in (cache / "kernel").iterdir() if p.name.startswith(".")]


def test_board_dtb_runs_cpp_over_the_include_dirs_then_dtc(tmp_path: Path, cache: Path):
    require("cpp")
    require("dtc")
    tree = basetrees.kernel_subset(tiny_tarball(tmp_path))
    # Literal expectations from the tiny tree's own text: X_VALUE from
    # include/dt-bindings/x.h (-I include), common from <arm64/...> (-I
    # scripts/dtc/include-prefixes), the label's symbol (dtc -@), and a node
    # named `linux` that GCC's predefined `linux` macro would rename (-undef).
    want = {"model": "tiny", "value": [42], "common": [7], "lbl": "/node"}
    for _ in range(2):  # built, then from the cache
        tree_dtb = Tree(basetrees.board_dtb(tree, "v/board.dts"))
        got = {
            "model": tree_dtb.string("/", "model"),
            "value": tree_dtb.cells("/node", "value"),
            "common": tree_dtb.cells("/", "common"),
            "lbl": tree_dtb.string("/__symbols__", "lbl"),
        }
        assert got == want
        assert tree_dtb.has("/linux")
        other = Tree(basetrees.board_dtb(tree, "v/other.dts"))
        assert other.string("/", "model") == "other"
        assert other.cells("/", "common") == [7] and not other.has("/node")
    with pytest.raises(FileNotFoundError):
        basetrees.board_dtb(tree, "v/missing.dts")
    with pytest.raises(ValueError):
        basetrees.board_dtb(tree, "../../etc/passwd")


def test_tarball_is_looked_for_where_the_env_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    tiny_tarball(tmp_path)
    monkeypatch.setenv("GHAFGEN_KERNEL_SOURCES", str(tmp_path))
    assert basetrees.tarball("9.9") == tmp_path / "linux-source-9.9.tar.xz"
    assert basetrees.tarball("9.8") is None
    with pytest.raises(ValueError):
        basetrees.tarball("9.9; rm")


# What linux-source-6.12 says each board tree holds (arch/arm64/boot/dts/nvidia/):
# the model line of each .dts.
MODELS_612 = {
    "tegra234-p3737-0000+p3701-0000": "NVIDIA Jetson AGX Orin Developer Kit",  # :11
    "tegra234-p3768-0000+p3767-0000": (  # :8
        "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"
    ),
    "tegra234-p3768-0000+p3767-0005": "NVIDIA Jetson Orin Nano Developer Kit",  # :8
    "tegra234-p3740-0002+p3701-0008": "NVIDIA IGX Orin Development Kit",  # :10
}


def test_board_trees_of_6_12_hold_what_their_sources_say(trees_612: dict[str, Path]):
    """Each 6.12 board tree as `check` builds it, against literal values from
    the kernel's sources; UARTA on the AGX devkit: tegra234.dtsi:2760-2765
    (`uarta: serial@3100000`, interrupts <GIC_SPI 112 IRQ_TYPE_LEVEL_HIGH>,
    clocks <&bpmp TEGRA234_CLK_UARTA>), with GIC_SPI 0 (arm-gic.h:13),
    IRQ_TYPE_LEVEL_HIGH 4 (irq.h:17), TEGRA234_CLK_UARTA 155
    (tegra234-clock.h:303)."""
    assert {n: Tree(d).string("/", "model") for n, d in trees_612.items()} == MODELS_612
    agx = Tree(trees_612["tegra234-p3737-0000+p3701-0000"])
    uarta = "/bus@0/serial@3100000"
    assert agx.string("/__symbols__", "uarta") == uarta  # dtc -@
    assert agx.cells(uarta, "interrupts") == [0, 112, 4]
    assert agx.cells(uarta, "clocks")[1] == 155
    assert agx.cells(uarta, "reg") == [0, 0x03100000, 0, 0x10000]


def test_two_builders_of_one_entry_build_it_once(tmp_path: Path):
    """Parallel test workers (or two `check` runs) asking for the same entry:
    one builds, the other waits for it and finds it whole."""
    import threading
    import time

    built: list[int] = []

    def build(into: Path) -> None:
        built.append(1)
        time.sleep(0.3)  # long enough for the other to arrive meanwhile
        (into / "done").write_text("whole")

    dest = tmp_path / "entry"
    got: list[Path] = []
    workers = [
        threading.Thread(target=lambda: got.append(basetrees.publish(build, dest)))
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert built == [1]
    assert got == [dest, dest] and (dest / "done").read_text() == "whole"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]
