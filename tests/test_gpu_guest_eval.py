"""The GPU guest's NixOS module, evaluated per role with nixpkgs' lib and
microvm.nix's options (tests/test_nixos_eval.py's harness), jetpack-nixos's
overlay replaced by a stand-in that only names its packages
(tests/data/eval/jetpack-nixos-standin.nix): the evaluated config's
hardware.graphics packages, kernel parameters, modules and out-of-tree patches
against Ghaf's literal values (tests/test_gpu_guest.py), and, for the compute
role, each piece a CUDA program needs. Each role's guest is its reference
target's VM: gpu-vm and disp-vm of the split pair, gui-vm of the accelerated
target.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from ghafgen.render.files import render_target
from tests.conftest import require
from tests.test_gpu_guest import (
    KERNEL_PARAMS,
    MODULES,
    OOT_PATCHES,
    ROLE_VM,
    ROLES,
    planned,
)
from tests.test_nixos_eval import evaluate

pytestmark = pytest.mark.usefixtures("nixpkgs_lib", "microvm_src")

# The stand-ins' store paths (stubs.nix `fake`): name after a zero hash.
STORE = "/nix/store/00000000000000000000000000000000-"
# GUEST:64-106, by the names the evaluated derivations carry: a join keeps
# what it joined (the patched egl-gbm is "-patched", with Ghaf's patch).
GRAPHICS = [
    {
        "name": "l4t-3d-core-egl-gbm-1.1.3",
        "paths": [
            {
                "name": "egl-gbm-patched",
                "patches": ["egl-gbm-single-device-fallback.patch"],
            },
            {"name": "egl-wayland", "patches": []},
            {"name": "l4t-3d-core", "patches": []},
        ],
        "removed": ["$out/share/egl/egl_external_platform.d/nvidia_gbm.json"],
    },
    {"name": "l4t-core", "paths": [], "removed": []},
    {"name": "l4t-cuda", "paths": [], "removed": []},
    {"name": "l4t-nvsci", "paths": [], "removed": []},
    {
        "name": "l4t-wayland-sans-egl-wayland",
        "paths": [{"name": "l4t-wayland", "patches": []}],
        "removed": [
            "$out/lib/libnvidia-egl-wayland.so*",
            "$out/share/egl/egl_external_platform.d/nvidia_wayland.json",
        ],
    },
    {
        "name": "l4t-gbm-sans-egl-gbm",
        "paths": [{"name": "l4t-gbm", "patches": []}],
        "removed": [
            "$out/lib/libnvidia-egl-gbm.so*",
            "$out/share/egl/egl_external_platform.d/nvidia_gbm.json",
        ],
    },
]
# GUEST:145-152: the relay's source and hook patches, fetched from the tree.
DCE_LINES = [
    "patch -p1 -d nvidia-oot < ",
    "/common/dce-virt-common/patches/0001-dce-virt-hooks.patch",
    "/common/dce-virt-common/patches/0002-dce-client-ipc-inject.patch",
    "/dce-guest-proxy/dce-guest-proxy.c nvidia-oot/drivers/platform/tegra/dce/"
    "dce-guest-proxy.c",
    'echo "obj-m += dce-guest-proxy.o" >> nvidia-oot/drivers/platform/tegra/dce/'
    "Makefile",
]
NODE_ACCESS = "ghafgen-gpu-node-access"


def evaluated(role: str, tmp_path: Path, layout: str = "default") -> dict[str, Any]:
    target = tmp_path / role
    for rel, data in render_target(planned(role, layout)).items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(data)
    (target / "ghafgen-manifest.json").write_text("{}\n")
    return evaluate(target / "vms" / f"{ROLE_VM[role][1]}.nix", "guest", layout)


def assert_bash_parses(script: str) -> None:
    done = subprocess.run(
        [require("bash"), "-n"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _graphics(got: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for pkg in got["graphics"]["packages"]:
        lines = pkg["postBuild"].split("\n")
        out.append(
            {
                "name": pkg["name"],
                "paths": pkg["paths"],
                "removed": [x.strip()[len("rm -f ") :] for x in lines if x.strip()],
            }
        )
    return out


@pytest.mark.parametrize("role", ROLES)
def test_guest_evaluates_with_ghafs_userspace_params_and_modules(
    role: str, tmp_path: Path
):
    got = evaluated(role, tmp_path)
    assert got["assertions"] == [True] * len(got["assertions"])
    assert got["graphics"]["enable"] is True
    assert _graphics(got) == GRAPHICS
    # GUEST:108-109, through NixOS's driver link.
    assert got["etcSources"]["egl/egl_external_platform.d"] == (
        "/run/opengl-driver/share/egl/egl_external_platform.d/"
    )
    assert got["kernelParams"] == KERNEL_PARAMS
    assert got["kernelModules"] == MODULES[role]
    assert got["extraModulePackages"] == ["nvidia-oot-modules-patched"]
    assert got["firmware"] == ["l4t-firmware"]
    oot = got["oot"]
    assert oot["version"] == "36.5.0"
    assert oot["patches"] == OOT_PATCHES[role]
    dce = all(line in oot["postPatch"] for line in DCE_LINES)
    assert dce == (role != "gpu")
    assert (oot["postPatch"] == "") == (role == "gpu")
    # The build steps as the builder's bash reads them.
    for script in [
        oot["postPatch"],
        *(p["postBuild"] for p in got["graphics"]["packages"]),
    ]:
        assert_bash_parses(script)
    # GUEST:180-192: the chip-ID patch, then the BPMP guest proxy's two.
    assert [p["name"] for p in got["kernelPatches"]][:3] == [
        "ghaf-gpu-tegra-chip-id",
        "bpmp-virt-proxy-drivers",
        "bpmp-virt-hooks",
    ]


def test_compute_role_has_what_a_cuda_program_needs(tmp_path: Path):
    """A CUDA program runs when: nvgpu (patched for passthrough, 0001) is loaded
    and binds the guest's GPU node, which makes /dev/nvgpu/igpu0/*; its
    firmware is there; libcuda and the L4T driver stack it loads (l4t-cuda) are
    where the loader looks; and the user may open the nodes. Each piece is read
    from the evaluated config; running one needs the board (docs/runtime.md)."""
    got = evaluated("gpu", tmp_path)
    # The module, built with the passthrough patch, loaded at boot (GUEST:175-176).
    assert "nvgpu" in got["kernelModules"]
    assert got["extraModulePackages"] == ["nvidia-oot-modules-patched"]
    assert got["oot"]["patches"][0] == "0001-gpu-add-support-for-passthrough.patch"
    # host1x/nvhost/nvmap: CUDA needs physical host1x (Ghaf's display doc).
    assert {"nvmap", "host1x", "nvhost"} <= set(got["kernelModules"])
    assert got["firmware"] == ["l4t-firmware"]
    # libcuda: in /run/opengl-driver (hardware.graphics), and first on the
    # loader path (GPUVM_BASE:207-213).
    names = [p["name"] for p in got["graphics"]["packages"]]
    assert "l4t-cuda" in names
    assert got["variables"]["LD_LIBRARY_PATH"] == f"{STORE}l4t-cuda/lib"
    # The nodes opened to the video group once nvgpu made them (GPUVM_BASE:174-204).
    unit = got["services"][NODE_ACCESS]
    assert unit["wantedBy"] == ["multi-user.target"]
    assert unit["after"] == ["systemd-udev-settle.service"]
    assert unit["Type"] == "oneshot"
    script = unit["script"]
    assert "[ -e /dev/nvgpu/igpu0/ctrl ]" in script
    assert "for d in /dev/nvgpu /dev/nvhost-* /dev/nvmap; do" in script
    assert 'chgrp -R video "$d"' in script and 'chmod -R g+rw "$d"' in script
    # The script as systemd runs it: bash parses it, shellcheck finds nothing.
    assert_bash_parses(script)
    shellcheck = require("shellcheck")
    done = subprocess.run(
        [shellcheck, "--shell=bash", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("role", ["display", "gui"])
def test_display_roles_carry_no_compute_extras(role: str, tmp_path: Path):
    """Ghaf's disp-vm and gui-vm set neither the CUDA loader path nor the
    node-access unit (only gpuvm-base.nix does)."""
    got = evaluated(role, tmp_path)
    assert "LD_LIBRARY_PATH" not in got["variables"]
    assert NODE_ACCESS not in got["services"]


def test_ghaf_layout_leaves_the_cuda_extras_to_ghafs_gpuvm_base(tmp_path: Path):
    """With --layout ghaf the module extends Ghaf's gpu-vm, whose gpuvm-base.nix
    already sets the loader path and the node access (GPUVM_BASE:174-213): the
    module carries what Ghaf's guest module does, no second unit."""
    got = evaluated("gpu", tmp_path, "ghaf")
    # Ghaf's GPU QEMU (payload/guest-module.nix:212), patched to open the VM's
    # own BPMP device: the split profile sets bpmp_per_vm, as gpu-vm and
    # disp-vm both ask the BPMP.
    assert got["qemuPackage"] == "ghaf-qemu-bpmp-gpu-patched"
    assert _graphics(got) == GRAPHICS
    assert got["kernelModules"] == MODULES["gpu"]
    assert got["kernelParams"] == KERNEL_PARAMS
    assert "LD_LIBRARY_PATH" not in got["variables"]
    assert NODE_ACCESS not in got["services"]
