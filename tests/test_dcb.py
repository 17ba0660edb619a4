"""The display guests' DCB image (issue #27): the board's display configuration
block NVIDIA's nvdisplay builds its routing from. ghafgen carries no blob: the
VM's guest-tree build (render/static/guest-tree.nix) includes the file of the
pinned Ghaf tree into the display node and refuses it unless it has the length
and hash Ghaf pins.

Here the build script guest-tree.nix writes is taken from its evaluation (with
the pinned nixpkgs lib and the test stubs' `runCommand`, which keep the
script) and run with the real dtc on the pinned Ghaf file; the overlay it
builds is applied after the VM's own to QEMU's dumped tree.

Oracles: Ghaf 9a37dc8c
`modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization/passthrough/`
`payload/default.nix:128-131` (agxBoard: dcbSha256, dcbBytes 8407) and
`gpu-vm/tegra234-gpuvm-display.dtsi:172-173` (the image inside
display@13800000).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import libfdt
import pytest

from tests.conftest import ROOT, require

GHAF_DCB_BYTES = 8407  # payload/default.nix:131
GHAF_DCB_SHA256 = (
    "e0d92e6dbf1ffef266cfd2e192847e76f8d88c19c55430f2f5d4aaf69494a2fc"  # :130
)
GHAF_DCB_FILE = (
    "modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization/"
    "passthrough/gpu-vm/generated/agx-p3737-p3701-dcb.dtsi"  # payload/default.nix:129
)
MODULES = ROOT / "nix" / "modules"
CASES = [
    ("orin-agx-gpu-vm", "disp-vm"),
    ("orin-agx-gpu-gui-accel", "gui-vm"),
]

_EXPR = """
{ libPath, stubs, guestTree, file, name, dts, bytes, sha256 }:
let
  lib = import libPath;
  s = import stubs { inherit lib; };
  tree = import guestTree { config = { }; inherit lib; pkgs = s.pkgs; } {
    qemu = s.fake "qemu";
    dts = "/unused.dts";
    overlayName = "vm";
    dcb = { inherit file name dts sha256; bytes = lib.toInt bytes; };
  };
in
(builtins.elemAt tree.overlays 1).script
"""


def _dcb_plan(profile: str, vm: str):  # type: ignore[no-untyped-def]
    from tests.test_nixos_eval import planned

    p = planned(ROOT / "profiles" / f"{profile}.toml")
    got = next(v for v in p.vms if v.name == vm).gpu
    assert got is not None and got.dcb is not None
    return p.name, got.dcb


def _build_script(folder: Path, file: Path, dcb) -> str:  # type: ignore[no-untyped-def]
    from tests import pinned

    require("nix-instantiate")
    expr = folder / "dcb-script.nix"
    expr.write_text(_EXPR)
    dts = folder / "dcb.dts"
    dts.write_text(dcb.dts)
    args = {
        "libPath": str(pinned.tree("nixpkgs.lib")),
        "stubs": str(ROOT / "tests" / "data" / "eval" / "stubs.nix"),
        "guestTree": str(ROOT / "ghafgen" / "render" / "static" / "guest-tree.nix"),
        "file": str(file),
        "name": dcb.file_name,
        "dts": str(dts),
        "bytes": str(dcb.bytes),
        "sha256": dcb.sha256,
    }
    argv = ["nix-instantiate", "--eval", "--strict", "--json", str(expr)]
    for k, v in args.items():
        argv += ["--argstr", k, v]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    script: str = json.loads(done.stdout)
    return script


def _run(script: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """The derivation's build: its script in an empty folder, $out beside it."""
    for tool in ("dtc", "fdtget", "sha256sum", "bash"):
        require(tool)
    work = folder / "build"
    work.mkdir()
    env = os.environ | {"out": str(folder / "dcb.dtbo")}
    return subprocess.run(
        ["bash", "-eu", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_catalog_pins_ghafs_dcb():
    from ghafgen import catalog

    cat = catalog.load()
    dcb = cat.gpu_roles.guest.dcb
    assert (dcb.bytes, dcb.sha256) == (GHAF_DCB_BYTES, GHAF_DCB_SHA256)
    assert cat.sources["ghaf"].paths[dcb.ghaf] == GHAF_DCB_FILE


@pytest.mark.usefixtures("nixpkgs_lib")
@pytest.mark.parametrize(("profile", "vm"), CASES)
def test_the_display_node_gets_ghafs_dcb_image(
    profile: str, vm: str, tmp_path: Path, ghaf_src: Path, virt_dtb
):
    from tests.guestboot import gpu_guest_tree

    target, dcb = _dcb_plan(profile, vm)
    script = _build_script(tmp_path, ghaf_src / GHAF_DCB_FILE, dcb)
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stderr
    # The VM's own overlay, then the DCB's, as its preStart applies them.
    require("fdtoverlay")
    merged = gpu_guest_tree(
        MODULES / target / "vms" / f"{vm}.dts", virt_dtb(4, 6144), tmp_path
    )
    final = tmp_path / "guest.dtb"
    subprocess.run(
        ["fdtoverlay", "-i", str(merged), "-o", str(final), str(tmp_path / "dcb.dtbo")],
        check=True,
        capture_output=True,
    )
    fdt = libfdt.Fdt(final.read_bytes())
    node = fdt.path_offset(dcb.node_path)
    assert fdt.get_name(node) == "display@13800000"
    assert fdt.getprop(node, "compatible").as_str() == "nvidia,tegra234-display"
    image = bytes(fdt.getprop(node, "nvidia,dcb-image"))
    assert len(image) == GHAF_DCB_BYTES
    assert hashlib.sha256(image).hexdigest() == GHAF_DCB_SHA256


@pytest.mark.usefixtures("nixpkgs_lib")
def test_a_dcb_that_is_not_ghafs_pin_fails_the_build(tmp_path: Path, ghaf_src: Path):
    """One byte of the image changed: the build stops and says what it found."""
    _target, dcb = _dcb_plan(*CASES[0])
    text = (ghaf_src / GHAF_DCB_FILE).read_text()
    first = "55 aa 16 00"  # agx-p3737-p3701-dcb.dtsi:16, the image's first bytes
    assert text.count(first) == 1
    planted = tmp_path / "planted" / dcb.file_name
    planted.parent.mkdir()
    planted.write_text(text.replace(first, "55 aa 17 00"))
    done = _run(_build_script(tmp_path, planted, dcb), tmp_path)
    assert done.returncode != 0
    assert f"want {GHAF_DCB_BYTES}, {GHAF_DCB_SHA256}" in done.stderr
    assert f"DCB image: {GHAF_DCB_BYTES} bytes, sha256 " in done.stderr
