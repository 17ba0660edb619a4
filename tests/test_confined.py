"""confined: one walk for a captured folder and a capture's .tar.gz.

The same tree, written by tarfile and unpacked by it, reads alike both ways;
each way keeps its own refusals (a folder refuses a link out of the root and
names it, an archive resolves it inside itself as under chroot). FIFOs,
devices and files past the cap are refused by their kind or size, never read.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ghafgen.confined import (
    MAX_FILE,
    Archive,
    Escapes,
    Folder,
    Node,
    Taken,
    Unopenable,
    open_tree,
    pack,
)
from ghafgen.fileio import NotRegular, TooLarge
from tests.conftest import ROOT

# A sysfs platform device and its links, as /sys lays them out (Linux
# Documentation/ABI/testing/sysfs-bus-platform: devices/* are links into
# /sys/devices; driver and iommu_group are links from the device).
TREE: list[tuple[str, bytes | str]] = [
    (
        "sys/devices/platform/3100000.serial/of_node/compatible",
        b"nvidia,tegra20-uart\0",
    ),
    (
        "sys/bus/platform/devices/3100000.serial",
        "../../../devices/platform/3100000.serial",
    ),
    ("sys/bus/platform/drivers/serial-tegra/bind", b""),
    (
        "sys/devices/platform/3100000.serial/driver",
        "../../../bus/platform/drivers/serial-tegra",
    ),
]


def _tar(
    entries: list[tuple[str, bytes | str]], nodes: dict[str, Node] | None = None
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, value in entries:
            info = tarfile.TarInfo(name)
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
        for name, node in (nodes or {}).items():
            info = tarfile.TarInfo(name)
            info.type = {"char": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[node.kind]
            info.mode, info.uid, info.gid = node.mode, node.uid, node.gid
            tar.addfile(info)
    return buf.getvalue()


@pytest.fixture
def both(tmp_path: Path) -> tuple[Archive, Folder]:
    archive = tmp_path / "cap.tar.gz"
    archive.write_bytes(_tar(TREE))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    return Archive(archive), Folder(tmp_path / "unpacked")


def test_an_archive_and_its_unpacked_folder_read_alike(both: tuple[Archive, Folder]):
    rel = "sys/bus/platform/devices/3100000.serial/of_node/compatible"
    for tree in both:
        passed: dict[str, str] = {}
        key, data = tree.read(rel, passed=passed)
        assert key == "sys/devices/platform/3100000.serial/of_node/compatible"
        assert data == b"nvidia,tegra20-uart\0"
        assert passed == {
            "sys/bus/platform/devices/3100000.serial": "../../../devices/platform/3100000.serial"
        }
        assert tree.readlink("sys/bus/platform/devices/3100000.serial/driver") == (
            "sys/devices/platform/3100000.serial/driver",
            "../../../bus/platform/drivers/serial-tegra",
        )
        key, listed = tree.listdir("sys/bus/platform/devices/3100000.serial")
        assert key == "sys/devices/platform/3100000.serial"
        assert {n: (e.kind, e.target) for n, e in listed.items()} == {
            "driver": ("link", "../../../bus/platform/drivers/serial-tegra"),
            "of_node": ("dir", None),
        }
        with pytest.raises(FileNotFoundError):
            tree.read("sys/bus/platform/devices/3100000.serial/modalias")


def test_a_link_out_of_the_root_is_refused_in_a_folder_and_stays_inside_an_archive(
    tmp_path: Path,
):
    secret = tmp_path / "secret"
    secret.write_text("outside\n")
    archive = tmp_path / "cap.tar.gz"
    archive.write_bytes(
        _tar([("proc/cmdline", str(secret)), (str(secret).lstrip("/"), b"inside\n")])
    )
    folder = tmp_path / "root"
    (folder / "proc").mkdir(parents=True)
    (folder / "proc/cmdline").symlink_to(secret)
    with pytest.raises(Escapes) as refused:
        Folder(folder).read("proc/cmdline")
    assert str(refused.value) == (
        f"{folder}/proc/cmdline: a link to {str(secret)!r}, outside --root; ghafgen "
        "reads only files inside the tree it is given"
    )
    # In an archive the same absolute target names the archive's own entry.
    assert Archive(archive).read("proc/cmdline")[1] == b"inside\n"


def test_an_archive_entry_past_the_cap_is_refused_when_it_is_read(tmp_path: Path):
    archive = tmp_path / "cap.tar.gz"
    archive.write_bytes(
        _tar([("proc/cmdline", b"x" * (2 << 20)), ("etc/group", b"kvm:x:36:\n")])
    )
    tree = Archive(archive)
    assert tree.read("etc/group")[1] == b"kvm:x:36:\n"  # the rest of the capture reads
    with pytest.raises(TooLarge) as big:
        tree.read("proc/cmdline")
    assert str(big.value) == (
        f"{archive}/proc/cmdline: larger than 1 MiB; ghafgen reads no file of this "
        "kind that large"
    )
    assert MAX_FILE == 1 << 20


def test_nodes_are_stated_not_read(tmp_path: Path):
    # /dev/vfio/vfio is character device 10:196, and host.nix gives it group kvm
    # mode 0660 (Linux Documentation/admin-guide/devices.txt; the committed target).
    vfio = Node("char", 0o660, 0, 36)
    archive = tmp_path / "cap.tar.gz"
    archive.write_bytes(
        _tar([], {"dev/vfio/vfio": vfio, "proc/cmdline": Node("fifo", 0o644, 0, 0)})
    )
    tree = Archive(archive)
    assert tree.lstat("dev/vfio/vfio") == ("dev/vfio/vfio", vfio)
    with pytest.raises(NotRegular, match="a character device, not a regular file"):
        tree.read("dev/vfio/vfio")
    with pytest.raises(NotRegular, match="a FIFO, not a regular file"):
        tree.read("proc/cmdline")
    # The node survives a capture: owner and mode as read.
    with tarfile.open(
        fileobj=io.BytesIO(pack(Taken(nodes={"dev/vfio/vfio": vfio})))
    ) as tar:
        (m,) = tar.getmembers()
        assert (m.name, m.ischr(), m.mode, m.gid) == ("dev/vfio/vfio", True, 0o660, 36)
    # On this machine, /dev/null is a character device (devices.txt: 1:3).
    live = Folder(Path("/"))
    assert live.lstat("dev/null")[1].kind == "char"
    with pytest.raises(NotRegular, match="a character device"):
        live.read("dev/null")


def test_a_fifo_in_a_folder_is_refused_without_blocking(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    os.mkfifo(tmp_path / "proc/cmdline")
    with pytest.raises(NotRegular) as refused:
        Folder(tmp_path).read("proc/cmdline")
    assert str(refused.value) == (
        f"{tmp_path}/proc/cmdline: cannot read (a FIFO, not a regular file)"
    )
    assert stat.S_ISFIFO(os.lstat(tmp_path / "proc/cmdline").st_mode)


def test_a_fifo_given_as_the_capture_does_not_hang_verify(tmp_path: Path):
    fifo = tmp_path / "cap.tar.gz"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "verify", "--root", str(fifo)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == f"error: {fifo}: cannot read (a FIFO, not a capture)\n"
    with pytest.raises(Unopenable, match="a FIFO, not a capture"):
        open_tree(fifo)


def test_the_same_reads_pack_to_the_same_bytes():
    taken = Taken(
        files={"proc/cmdline": b"console=ttyTCU0\n"}, links={"a": "b"}, folders={"sys"}
    )
    assert pack(taken) == pack(Taken(**vars(taken)))
    with tarfile.open(fileobj=io.BytesIO(pack(taken))) as tar:
        assert [(m.name, m.mtime) for m in tar.getmembers()] == [
            ("sys", 0),
            ("proc/cmdline", 0),
            ("a", 0),
        ]
