"""The GPU guest per role (compute `gpu`, `display`, both `gui`): what it loads,
patches and carries, against Ghaf's guest module.

The expected values are Ghaf's, written here literally with the line they come
from (tiiuae/ghaf 9a37dc8c, modules/reference/hardware/jetpack/nvidia-jetson-
orin/virtualization/passthrough/payload/guest-module.nix = GUEST, payload/
default.nix = PAYLOAD, modules/microvm/sysvms/gpuvm-base.nix = GPUVM_BASE);
the opt-in tests read the same facts out of the pinned Ghaf tree.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.render.files import render_target
from ghafgen.render.plan import TargetPlan, VmPlan, plan
from ghafgen.rules.engine import validate
from tests.conftest import ROOT
from tests.facts import GHAF_GUEST_MODULES, GPU_GUEST_PARAMS

CAT = catalog.load()

PROFILE = ROOT / "profiles" / "orin-agx-gpu-vm.toml"
# Each role's reference target and VM (README's reference table): the split
# pair gives gpu and display, the accelerated target gui.
ROLE_VM = {
    "gpu": (PROFILE, "gpu-vm"),
    "display": (PROFILE, "disp-vm"),
    "gui": (ROOT / "profiles" / "orin-agx-gpu-gui-accel.toml", "gui-vm"),
}
PASSTHROUGH = (
    "modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization/passthrough"
)
ROLES = ("gpu", "display", "gui")

# GUEST:157-163, the same for every role (one guest module).
KERNEL_PARAMS = list(GPU_GUEST_PARAMS)
# PAYLOAD:101-114 guestKernelModules (tests/facts.py), each loaded once (gui
# has both; Ghaf's list names nvmap twice, loading it once is the same).
MODULES = {k: list(dict.fromkeys(v)) for k, v in GHAF_GUEST_MODULES.items()}
# GUEST:116-144, in Ghaf's order; 0021 only where noSyncpointDisplay
# (PAYLOAD:22, disp-vm). The compute role keeps the three that touch code it
# loads (docs/ghaf-parity.md says why).
DISPLAY_SET = [
    "0001-gpu-add-support-for-passthrough.patch",
    "0002-add-support-for-gpu-display-passthrough.patch",
    "0003-add-support-for-display-passthrough.patch",
    "0005-force-niso-display-surfaces-contiguous.patch",
    "0006-dce-addresses-cpu-phys-high-iova.patch",
    "0008-fix-dual-mode-honor-rm-connect-state.patch",
    "0009-core-notifier-plain-write-no-awaken.patch",
    "0020-synthesize-boot-hotplug-long-pulse.patch",
    "0011-window-notifier-plain-write.patch",
    "0024-nvkms-keep-flip-completion-binding.patch",
    "0025-tegra-fbdev-use-core-allocated-fb-info.patch",
]
OOT_PATCHES = {
    "gpu": [
        "0001-gpu-add-support-for-passthrough.patch",
        "0002-add-support-for-gpu-display-passthrough.patch",
        "0025-tegra-fbdev-use-core-allocated-fb-info.patch",
    ],
    "display": [*DISPLAY_SET, "0021-nvkms-force-no-syncpt-support.patch"],
    "gui": DISPLAY_SET,
}
# GUEST:64-106 hardware.graphics.extraPackages: three symlinkJoins by name and
# three jetpack-nixos packages, in Ghaf's order, for every role.
GRAPHICS = [
    (
        "l4t-3d-core-egl-gbm-1.1.3",
        ["egl-gbm", "egl-wayland", "nvidia-jetpack.l4t-3d-core"],
        ["share/egl/egl_external_platform.d/nvidia_gbm.json"],
    ),
    ("", ["nvidia-jetpack.l4t-core"], []),
    ("", ["nvidia-jetpack.l4t-cuda"], []),
    ("", ["nvidia-jetpack.l4t-nvsci"], []),
    (
        "l4t-wayland-sans-egl-wayland",
        ["nvidia-jetpack.l4t-wayland"],
        [
            "lib/libnvidia-egl-wayland.so*",
            "share/egl/egl_external_platform.d/nvidia_wayland.json",
        ],
    ),
    (
        "l4t-gbm-sans-egl-gbm",
        ["nvidia-jetpack.l4t-gbm"],
        [
            "lib/libnvidia-egl-gbm.so*",
            "share/egl/egl_external_platform.d/nvidia_gbm.json",
        ],
    ),
]
# GUEST:145-152: the DCE relay in nvidia-oot, for the roles with display.
DCE = {"gpu": False, "display": True, "gui": True}


def _file(key: str) -> str:
    return CAT.sources["ghaf"].paths[key].rsplit("/", 1)[-1]


def planned(role: str, layout: str = "default") -> TargetPlan:
    """The plan of the reference target that has a VM in `role`."""
    path = ROLE_VM[role][0]
    report = validate([path], CAT)
    profile, board = report.usable[0]
    return plan(profile, board, path.name, layout)


def gpu_vm(p: TargetPlan, role: str = "gpu") -> VmPlan:
    (vm,) = [vm for vm in p.vms if vm.name == ROLE_VM[role][1]]
    return vm


@pytest.mark.parametrize("role", ROLES)
def test_each_reference_vm_gets_the_guest_of_its_derived_role(role: str):
    vm = gpu_vm(planned(role), role)
    assert vm.gpu is not None and vm.gpu.guest.key == role == vm.gpu.role


def test_the_catalog_has_exactly_ghafs_three_roles():
    # PAYLOAD:9-32 capabilities: gpuvm, dispvm, guivm.
    assert sorted(CAT.gpu_guests) == sorted(ROLES)
    with pytest.raises(ValueError, match="no GPU guest role 'compute'"):
        CAT.gpu_guest_role("compute")


@pytest.mark.parametrize("role", ROLES)
def test_role_kernel_params_modules_and_patches_are_ghafs(role: str):
    vm = gpu_vm(planned(role), role)
    assert vm.gpu is not None
    g = vm.gpu.guest
    assert list(g.kernel_params) == KERNEL_PARAMS
    # The BPMP guest's own two come first; the role adds the display two.
    assert list(vm.kernel_params) == KERNEL_PARAMS
    assert list(g.modules) == MODULES[role]
    assert [_file(k) for k in g.oot_patches] == OOT_PATCHES[role]
    assert (g.dce is not None) == DCE[role]
    # GUEST:180-184: the in-tree chip-ID patch, every role.
    assert [_file(k) for k in vm.gpu.kernel.patches] == [
        "0004-tegra-fixed-chip-id.patch"
    ]


@pytest.mark.parametrize("role", ROLES)
def test_role_graphics_packages_are_ghafs(role: str):
    g = CAT.gpu_guest_role(role)
    got = [(p.name, [r.attr for r in p.paths], list(p.remove)) for p in g.graphics]
    assert got == GRAPHICS
    (egl_gbm,) = [r for p in g.graphics for r in p.paths if r.patches]
    assert egl_gbm.attr == "egl-gbm"
    assert [_file(k) for k in egl_gbm.patches] == [
        "egl-gbm-single-device-fallback.patch"
    ]


@pytest.mark.parametrize("role", ROLES)
def test_rendered_guest_fetches_every_file_its_role_names(role: str):
    """Each Ghaf file the VM's module uses is in bpmp-virt.nix's ghafPatches."""
    p = planned(role)
    files = render_target(p)
    virt = files["bpmp-virt.nix"].decode()
    vm_nix = files[f"vms/{ROLE_VM[role][1]}.nix"].decode()
    vm = gpu_vm(p, role)
    assert vm.gpu is not None
    for key in vm.gpu.ghaf_keys:
        assert f"    {key} = " in virt, key
    used = set(re.findall(r"bpmpVirt\.ghafPatches\.(\w+)", vm_nix))
    assert used == set(vm.gpu.ghaf_keys)
    assert ("dce-guest-proxy" in vm_nix) == DCE[role]
    assert ("gpu_oot_no_syncpt" in vm_nix) == (role == "display")


def test_only_the_compute_role_gets_the_cuda_loader_path_and_node_access():
    # GPUVM_BASE:174-213 (gpu-vm only; Ghaf's disp-vm and gui-vm set neither).
    for role in ROLES:
        g = CAT.gpu_guest_role(role)
        assert (g.library_path == ("nvidia-jetpack.l4t-cuda",)) == (role == "gpu")
        assert bool(g.nodes) == (role == "gpu")
    g = CAT.gpu_guest_role("gpu")
    assert g.node_group == "video"
    assert g.node_wait == "/dev/nvgpu/igpu0/ctrl"
    assert list(g.nodes) == ["/dev/nvgpu", "/dev/nvhost-*", "/dev/nvmap"]


def _ordered_patches(text: str) -> list[str]:
    return re.findall(r'/patches/(00\d\d-[\w.-]+\.patch)"', text)


def test_patch_sets_follow_the_pinned_ghaf_guest_module(ghaf_src: Path):
    """GUEST's nvidia-oot patch list, read from the tree: the display roles
    apply it whole, disp-vm with the optional no-syncpoint patch last."""
    text = (ghaf_src / PASSTHROUGH / "payload" / "guest-module.nix").read_text()
    oot = text.split("nvidia-oot-modules = prev", 1)[1].split("postPatch", 1)[0]
    listed = _ordered_patches(oot)
    assert listed[-1] == "0021-nvkms-force-no-syncpt-support.patch"
    assert "lib.optional payload.noSyncpointPatch" in text
    assert [_file(k) for k in CAT.gpu_guest_role("gui").oot_patches] == listed[:-1]
    assert [_file(k) for k in CAT.gpu_guest_role("display").oot_patches] == listed
    assert set(OOT_PATCHES["gpu"]) < set(listed)
    # Every param Ghaf's guest passes, in its order.
    block = text.split("boot.kernelParams = [", 1)[1].split("];", 1)[0]
    assert re.findall(r'"([^"]+)"', block) == list(
        CAT.gpu_guest_role("gpu").kernel_params
    )


def test_modules_follow_the_pinned_ghaf_payload(ghaf_src: Path):
    text = (ghaf_src / PASSTHROUGH / "payload" / "default.nix").read_text()
    block = text.split("guestKernelModules =", 1)[1].split(";", 1)[0]
    # `lib.optionals cap.host1x [ ... ] ++ lib.optionals cap.display [ ... ]`
    first, second = block.split("cap.display", 1)
    host1x = re.findall(r'"([^"]+)"', first)
    display = re.findall(r'"([^"]+)"', second)
    assert host1x == MODULES["gpu"]
    assert display == MODULES["display"]
    assert list(CAT.gpu_guest_role("gui").modules) == list(
        dict.fromkeys(host1x + display)
    )


def test_a_catalog_value_that_would_need_quoting_stops_generation(tmp_path: Path):
    """Catalog text lands in shell lines of the guest's unit and build step:
    one that is not a plain word is a malformed catalog, and nothing is written."""
    import os
    import shutil
    import subprocess
    import sys

    data = tmp_path / "data"
    shutil.copytree(ROOT / "ghafgen" / "catalog" / "data", data)
    gpu = data / "t234-gpu.toml"
    text = gpu.read_text()
    assert text.count('"/dev/nvmap"]') == 1
    gpu.write_text(text.replace('"/dev/nvmap"]', '"/dev/nvmap; reboot"]'))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "generate", str(PROFILE), "-o", str(out)],
        env=os.environ | {"GHAFGEN_CATALOG": str(data)},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "'/dev/nvmap; reboot' does not match" in done.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("word", ["a b", "$(reboot)", "x'y", "${x}", 'a"b', ""])
def test_shell_word_refuses_what_a_shell_or_nix_would_read(word: str):
    from ghafgen.render.escape import shell_word

    with pytest.raises(ValueError, match="not a plain shell word"):
        shell_word(word)
    assert shell_word("/dev/nvhost-*") == "/dev/nvhost-*"


@pytest.mark.parametrize("role", ROLES)
def test_show_s_stack_lists_the_role_s_out_of_tree_patches(role: str):
    from ghafgen.derive.runtime import runtime_stack

    path, name = ROLE_VM[role]
    report = validate([path], CAT)
    profile, board = report.usable[0]
    _host, vms = runtime_stack(profile, board)
    (vm,) = [vm for vm in vms if vm.vm == name]
    oot = [
        _file(p.split(": ", 1)[1])
        for p in vm.kernel_patches
        if p.startswith("nvidia-oot-modules: ")
    ]
    assert oot == OOT_PATCHES[role]


# The modules NVIDIA's nvdisplay tree builds (its kernel-open folders, as the
# +++ paths of Ghaf's nvdisplay patches name them: nvdisplay/kernel-open/nvidia,
# nvdisplay/kernel-open/nvidia-modeset; nvidia-drm is built beside them).
NVDISPLAY_MODULES = {"nvidia", "nvidia-modeset", "nvidia-drm"}


def test_the_patches_the_compute_role_leaves_out_touch_only_nvdisplay(ghaf_src: Path):
    """Ghaf applies its whole nvidia-oot series to gpu-vm too
    (payload/guest-module.nix:116-140); ghafgen's compute role leaves out
    every patch whose files all lie in nvdisplay/, whose modules it never
    loads. Read from the pinned patches' own +++ lines."""
    cat = catalog.load()
    paths = cat.sources["ghaf"].paths
    guests = cat.gpu_guests
    left_out = [
        k for k in guests["display"].oot_patches if k not in guests["gpu"].oot_patches
    ]
    assert len(left_out) == 9  # 0003 0005 0006 0008 0009 0011 0020 0021 0024
    for key in left_out:
        text = (ghaf_src / paths[key]).read_text()
        files = re.findall(r"^\+\+\+ b/(\S+)", text, re.M)
        assert files, key
        assert all(f.startswith("nvdisplay/") for f in files), (key, files)
    for key in guests["gpu"].oot_patches:
        text = (ghaf_src / paths[key]).read_text()
        files = re.findall(r"^\+\+\+ b/(\S+)", text, re.M)
        assert not any(f.startswith("nvdisplay/") for f in files), key
    assert not NVDISPLAY_MODULES & set(guests["gpu"].modules)
    assert {"nvidia-modeset", "nvidia-drm"} <= set(guests["display"].modules)
