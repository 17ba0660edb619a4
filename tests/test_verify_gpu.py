"""`ghafgen verify --guest` in the GPU VM: the role's modules in /proc/modules
and CUDA's node there, a character device open to its group. Fed a capture as
a board gives it (a .tar.gz: device nodes keep their owner and mode), built
here with one link broken at a time; the expected modules and node are Ghaf's
(tests/test_gpu_guest.py MODULES, GPUVM_BASE:188-201)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen.cli import app
from tests.conftest import ROOT
from tests.test_gpu_guest import MODULES

TARGET = ROOT / "nix" / "modules" / "nvidia-jetson-orin-agx-gpu-vm"
NODE = "dev/nvgpu/igpu0/ctrl"
VIDEO_GID = 26  # any number: /etc/group below names it
SUBJECT = "/dev/nvgpu/igpu0/ctrl group video, group read-write"


def capture(
    tmp_path: Path,
    *,
    modules: list[str],
    node: tuple[int, int] | None,
) -> Path:
    """A guest capture: /proc/modules as the kernel writes it, /etc/group, and
    the GPU's control node with (gid, mode), or none."""
    files = {
        "proc/modules": "".join(
            f"{m} 16384 0 - Live 0x0000000000000000\n" for m in modules
        ),
        "etc/group": f"root:x:0:\nvideo:x:{VIDEO_GID}:\n",
    }
    out = tmp_path / "guest.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if node is not None:
            info = tarfile.TarInfo(NODE)
            info.type, info.gid, info.mode = tarfile.CHRTYPE, node[0], node[1]
            info.devmajor, info.devminor = 492, 0
            tar.addfile(info)
    out.write_bytes(buf.getvalue())
    return out


def gpu_checks(root: Path) -> dict[str, bool]:
    res = CliRunner().invoke(
        app,
        ["verify", str(TARGET), "--guest", "--vm", "gpu-vm", "--root", str(root)]
        + ["--format", "json"],
    )
    assert res.exit_code in (0, 1), res.output
    doc = json.loads(res.stdout)
    return {
        c["subject"]: c["ok"]
        for c in doc["checks"]
        if c["subject"].startswith(("guest module ", "/dev/nvgpu"))
    }


# /proc/modules spells a module's `-` as `_` (the kernel's KBUILD_MODNAME).
LOADED = [m.replace("-", "_") for m in MODULES["gpu"]]


def test_a_guest_with_its_modules_and_an_open_node_passes(tmp_path: Path):
    got = gpu_checks(capture(tmp_path, modules=LOADED, node=(VIDEO_GID, 0o660)))
    assert got == {
        **{f"guest module {m} loaded": True for m in MODULES["gpu"]},
        SUBJECT: True,
    }


def test_a_module_that_did_not_load_fails_alone(tmp_path: Path):
    loaded = [m for m in LOADED if m != "nvgpu"]
    got = gpu_checks(capture(tmp_path, modules=loaded, node=(VIDEO_GID, 0o660)))
    assert [s for s, ok in got.items() if not ok] == ["guest module nvgpu loaded"]


@pytest.mark.parametrize(
    "node",
    [None, (0, 0o660), (VIDEO_GID, 0o600)],
    ids=["absent", "root-group", "group-cannot-write"],
)
def test_the_node_absent_or_not_open_to_video_fails(
    tmp_path: Path, node: tuple[int, int] | None
):
    got = gpu_checks(capture(tmp_path, modules=LOADED, node=node))
    assert [s for s, ok in got.items() if not ok] == [SUBJECT]


def test_other_vms_records_name_no_gpu_checks(tmp_path: Path):
    """The UARTA target's manifest has no modules or GPU node for its VM."""
    target = ROOT / "nix" / "modules" / "nvidia-jetson-orin-agx-uarta"
    res = CliRunner().invoke(
        app,
        [
            "verify",
            str(target),
            "--guest",
            "--root",
            str(capture(tmp_path, modules=[], node=None)),
            "--format",
            "json",
        ],
    )
    subjects = [c["subject"] for c in json.loads(res.stdout)["checks"]]
    assert not [s for s in subjects if s.startswith(("guest module", "/dev/nvgpu"))]
