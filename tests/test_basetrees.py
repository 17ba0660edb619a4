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
/ { model = "tiny"; node { value = <X_VALUE>; }; };
"""


def tiny_tarball(folder: Path, version: str = "9.9") -> Path:
    top = f"linux-source-{version}"
    members = {
        f"{top}/Makefile": b"VERSION = 9\nPATCHLEVEL = 9\n",
        f"{top}/arch/arm64/boot/dts/v/board.dts": DTS,
        f"{top}/include/dt-bindings/x.h": b"#define X_VALUE 42\n",
        f"{top}/drivers/other/big.c": b"not wanted\n",
    }
    path = folder / f"{top}.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
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
    dtb = basetrees.board_dtb(tree, "v/board.dts")
    assert Tree(dtb).cells("/node", "value") == [42]
    assert basetrees.board_dtb(tree, "v/board.dts").read_bytes() == dtb.read_bytes()
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
