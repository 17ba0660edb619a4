"""GPU and display roles: the catalog's roles against Ghaf's payload, the topology
derive gives each profile and host, QEMU's -device lists and the guest trees
against Ghaf's files. Expected values are Ghaf's, written here literally with
where they come from (tiiuae/ghaf 9a37dc8c, under
modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.derive.allowlist import VmAllowList, vm_allow_lists
from ghafgen.derive.gpu import passes, roles
from ghafgen.findings import Severity
from ghafgen.profile.parse import load, load_text
from ghafgen.rules.engine import validate
from tests.conftest import ROOT
from tests.facts import GHAF_GUEST_MODULES

AGX = catalog.load().board("jetson-agx-orin-devkit")
SPLIT = ROOT / "profiles" / "orin-agx-gpu-vm.toml"
ACCEL = ROOT / "profiles" / "orin-agx-gpu-gui-accel.toml"
MODULES = ROOT / "nix" / "modules"

# passthrough/payload/default.nix:9-31, capabilities.{gpuvm,dispvm,guivm}.
GHAF_CAPABILITIES = {
    "gpu": dict(gpu=True, host1x=True, media=True, display=False, no_sync=False),
    "display": dict(gpu=False, host1x=False, media=False, display=True, no_sync=True),
    "gui": dict(gpu=True, host1x=True, media=True, display=True, no_sync=False),
}
# payload/guest-module.nix:116-144: the nvidia-oot patches in Ghaf's order,
# 0021 only with noSyncpointPatch (the display-only role).
GHAF_OOT = ["0001", "0002", "0003", "0005", "0006", "0008", "0009", "0020"]
GHAF_OOT += ["0011", "0024", "0025"]


def _profile(path: Path):
    loaded = load(path)
    assert loaded.profile is not None, loaded.findings
    return loaded.profile


def _text(vms: dict[str, list[str]], host: str = "", name: str = "t") -> str:
    out = f'[target]\nname = "{name}"\nboard = "jetson-agx-orin-devkit"\n'
    out += 'dt_flavor = "l4t"\n' + (f'host = "{host}"\n' if host else "")
    out += "[hardware.nvidia.virtualization]\nenable = true\n"
    for vm, devices in vms.items():
        for d in devices:
            out += f'[hardware.nvidia.passthroughs.{d}]\nvm = "{vm}"\n'
    for i, vm in enumerate(vms):
        out += f'[vms.{vm}]\nvcpus = 1\nmemory = "1G"\nvsock_cid = {3 + i}\n'
    return out


GROUP = ["gpu", "host1x", "vic", "nvdec", "nvjpg"]


def test_each_role_is_ghafs_capability_set():
    got = catalog.load().gpu_roles.roles
    assert set(got) == set(GHAF_CAPABILITIES)
    for key, caps in GHAF_CAPABILITIES.items():
        role = got[key]
        for cap in ("gpu", "host1x", "media", "display"):
            assert (cap in role.capabilities) == caps[cap], (key, cap)
        assert role.no_syncpoint_display == caps["no_sync"]
        # Ghaf's concatenation names nvmap twice for gui-vm; loading it once is the same.
        assert list(role.guest_modules) == list(dict.fromkeys(GHAF_GUEST_MODULES[key]))
    assert [r.ghaf_vm for r in got.values()] == ["gpu-vm", "disp-vm", "gui-vm"]


def test_no_syncpoint_nvkms_only_in_the_display_only_role_by_construction():
    """derive decides no-syncpoint from the capabilities (display without
    host1x), never from the flag; patch 0021 follows it."""
    for key, role in catalog.load().gpu_roles.roles.items():
        assert role.no_syncpoint == GHAF_CAPABILITIES[key]["no_sync"], key
        assert ("0021" in role.oot_patches) == (key == "display")
    assert list(catalog.load().gpu_roles.roles["gui"].oot_patches) == GHAF_OOT
    assert list(catalog.load().gpu_roles.roles["display"].oot_patches) == [
        *GHAF_OOT,
        "0021",
    ]


def test_a_catalog_role_that_breaks_ghafs_assertions_is_refused(tmp_path: Path):
    """ownership-assertions.nix:47-52: no-syncpoint NVKMS outside the display-only
    role is a malformed catalog, one error line, no traceback."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "ghafgen" / "catalog" / "data", data)
    roles_file = data / "t234-gpu-roles.toml"
    text = roles_file.read_text()
    gui = text.index("[roles.gui]")
    roles_file.write_text(
        text[:gui]
        + text[gui:].replace(
            "no_syncpoint_display = false", "no_syncpoint_display = true", 1
        )
    )
    env = os.environ | {"GHAFGEN_CATALOG": str(data)}
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "validate", str(ACCEL)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert "no-syncpoint NVKMS is for the display-only role only" in done.stderr
    assert "Traceback" not in done.stderr


def test_reference_targets_are_the_split_pair_and_the_accelerated_vm():
    split = roles(_profile(SPLIT), AGX)
    assert {vm: r.name for vm, r in split.vms.items()} == {
        "gpu-vm": "gpu",
        "disp-vm": "display",
    }
    assert split.name == "split" and split.topology and split.topology.allowed
    accel = roles(_profile(ACCEL), AGX)
    assert {vm: r.name for vm, r in accel.vms.items()} == {"gui-vm": "gui"}
    assert accel.name == "accelerated" and accel.topology and accel.topology.allowed


@pytest.mark.parametrize(
    ("vms", "topology"),
    [
        ({"gpu-vm": GROUP}, "compute-only"),
        ({"disp-vm": ["display"]}, "display-only"),
        ({"gpu-vm": GROUP, "disp-vm": ["display"]}, "split"),
        ({"gui-vm": [*GROUP, "display"]}, "accelerated"),
    ],
)
def test_topology_follows_from_the_per_device_keys(vms, topology):
    loaded = load_text(_text(vms), "t.toml")
    assert loaded.profile is not None
    assert roles(loaded.profile, AGX).name == topology


def test_compute_only_is_refused_with_ghafs_reason(tmp_path: Path):
    """ownership-assertions.nix:67-68: 'A standalone gpu-vm leaves scanout unowned'."""
    path = tmp_path / "p.toml"
    path.write_text(_text({"gpu-vm": GROUP}))
    found = [
        f for f in validate([path], catalog.load()).findings if f.rule_id == "GG809"
    ]
    assert len(found) == 1
    assert "standalone gpu-vm leaves scanout unowned" in found[0].hint
    assert "ownership-assertions.nix" in found[0].hint


def test_the_split_pair_is_judged_per_host_across_profiles(tmp_path: Path):
    """gpu-vm in one file, disp-vm in another. On one host the topology is
    whole (no GG809/GG810), but both halves ask the BPMP, whose proxy node one
    profile's overlay writes: GG309 alone refuses it. On two hosts each half is
    refused as a topology (GG809, GG810)."""
    for host_b, want in (("h1", {"GG309"}), ("h2", {"GG809", "GG810"})):
        a = tmp_path / f"a-{host_b}.toml"
        b = tmp_path / f"b-{host_b}.toml"
        a.write_text(_text({"gpu-vm": GROUP}, host="h1", name="a"))
        text = _text({"disp-vm": ["display"]}, host=host_b, name="b")
        b.write_text(text.replace("vsock_cid = 3", "vsock_cid = 9"))
        got = {
            f.rule_id
            for f in validate([a, b], catalog.load()).findings
            if f.severity is Severity.ERROR
        }
        assert got == want, host_b


# disp-vm/default.nix:15-48: its own carve-outs, then the keyholes, each with
# mmio-base, in this order.
GHAF_DISP_VM_ARGS = [
    "vfio-platform,host=b0000000.scanout_p,mmio-base=0xb0000000",
    "vfio-platform,host=b8000000.dispram_lo_p,mmio-base=0xb8000000",
    "vfio-platform,host=200000000.dispram_hi_p,mmio-base=0x200000000",
    "vfio-platform,host=13830000.disp_caps_pt,mmio-base=0x66230000",
    "vfio-platform,host=13870000.disp_chan_pt,mmio-base=0x66270000",
    "vfio-platform,host=138c8000.disp_cursor_pt,mmio-base=0x662c8000",
]
# payload/default.nix:48-99 for capabilities.guivm: reservedMem (vm_hs, vm_cma,
# scanout) and the keyholes with mmio-base, then the engines without.
GHAF_GUI_VM_ARGS = [
    "vfio-platform,host=60000000.vm_hs_p,mmio-base=0x60000000",
    "vfio-platform,host=80000000.vm_cma_p,mmio-base=0x80000000",
    "vfio-platform,host=b0000000.scanout_p,mmio-base=0xb0000000",
    "vfio-platform,host=13830000.disp_caps_pt,mmio-base=0x66230000",
    "vfio-platform,host=13870000.disp_chan_pt,mmio-base=0x66270000",
    "vfio-platform,host=138c8000.disp_cursor_pt,mmio-base=0x662c8000",
    "vfio-platform,host=17000000.gpu",
    "vfio-platform,host=13e00000.host1x_pt",
    "vfio-platform,host=15340000.vic",
    "vfio-platform,host=15480000.nvdec",
    "vfio-platform,host=15540000.nvjpg",
]


def test_qemu_devices_are_ghafs_in_ghafs_order():
    split = passes(_profile(SPLIT), AGX)
    assert list(split["disp-vm"].qemu_args[1::2]) == GHAF_DISP_VM_ARGS
    accel = passes(_profile(ACCEL), AGX)
    assert list(accel["gui-vm"].qemu_args[1::2]) == GHAF_GUI_VM_ARGS
    # And the generated VM modules pass them so.
    for target, vm, want in (
        ("nvidia-jetson-orin-agx-gpu-vm", "disp-vm", GHAF_DISP_VM_ARGS),
        ("nvidia-jetson-orin-agx-gpu-gui-accel", "gui-vm", GHAF_GUI_VM_ARGS),
    ):
        text = (MODULES / target / "vms" / f"{vm}.nix").read_text()
        at = [text.index(f'"{arg}"') for arg in want]
        assert at == sorted(at), vm


def test_the_display_binding_holds_keyholes_and_scanout_never_the_engine():
    text = (
        MODULES / "nvidia-jetson-orin-agx-gpu-vm" / "devices" / "display.nix"
    ).read_text()
    # ownership-assertions.nix:17-24 (dispDevs), the devices disp-vm holds.
    assert (
        '"platform b0000000.scanout_p b8000000.dispram_lo_p 200000000.dispram_hi_p '
        '13830000.disp_caps_pt 13870000.disp_chan_pt 138c8000.disp_cursor_pt"' in text
    )
    assert "13800000.display" not in text.split("ExecStart", 1)[1]


# passthrough/gpu-vm/tegra234-gpuvm-base.dtsi:27 and :37-40: where the guest
# sees the GPU's first window and each display window.
GHAF_DISPLAY_WINDOWS = {
    0x13800000: 0x66200000,  # nvdisplay
    0x155C0000: 0x660E0000,  # dpaux0
    0x0242C000: 0x66001000,  # hdacodec
    0x03990000: 0x660F0000,  # mipical
}
# payload/default.nix:75-86: the keyholes' mmio-bases, inside the nvdisplay window.
GHAF_KEYHOLES = {0x13830000: 0x66230000, 0x13870000: 0x66270000, 0x138C8000: 0x662C8000}
# disp-vm/tegra234-dispvm-memory.dtsi:19-23 (memory@b8000000, two banks).
GHAF_DISP_BANKS = [0, 0xB8000000, 0, 0x2E000000, 0x2, 0, 0, 0x1A000000]


def _merged(vm_dts: Path, virt_dtb, tmp_path: Path):
    from tests.conftest import require
    from tests.guestboot import gpu_guest_tree
    from tests.trees import Tree

    require("fdtoverlay")
    return Tree(gpu_guest_tree(vm_dts, virt_dtb(4, 6144), tmp_path))


def _display_path(tree) -> str:
    return next(p for p in tree.walk() if p.endswith("/display@13800000"))


@pytest.mark.parametrize(
    ("target", "vm"),
    [
        ("nvidia-jetson-orin-agx-gpu-vm", "disp-vm"),
        ("nvidia-jetson-orin-agx-gpu-gui-accel", "gui-vm"),
    ],
)
def test_display_guest_tree_on_qemus_tree_lands_at_ghafs_addresses(
    target: str, vm: str, tmp_path: Path, virt_dtb
):
    from tests.test_gpu import _translate

    tree = _merged(MODULES / target / "vms" / f"{vm}.dts", virt_dtb, tmp_path)
    path = _display_path(tree)
    reg = tree.cells(path, "reg")
    hosts = [(reg[i] << 32) | reg[i + 1] for i in range(0, len(reg), 4)]
    assert hosts == list(GHAF_DISPLAY_WINDOWS)
    for host, guest in (GHAF_DISPLAY_WINDOWS | GHAF_KEYHOLES).items():
        assert _translate(tree, path, host) == guest, hex(host)
    # The scanout pool its memory-region names: 16 MiB at 0xb0000000
    # (tegra234-gpuvm-memory.dtsi:104-109, tegra234-dispvm-memory.dtsi:69-78).
    pool = tree.cells("/reserved-memory/dce_scanout@b0000000", "reg")
    assert pool == [0, 0xB0000000, 0, 0x01000000]
    scan = tree.cells("/reserved-memory/dce_scanout@b0000000", "phandle")
    assert tree.cells(path, "memory-region") == scan
    # The DCE relay's nodes: tegra234-gpuvm-proxies.dtsi:33 and :42 (0x090e0000),
    # :46 (GIC_SPI 15, level high).
    assert tree.cells("/dce", "dce-virtual-pa") == [0, 0x090E0000]
    assert tree.cells("/dce-guest-proxy", "dce-virtual-pa") == [0, 0x090E0000]
    assert tree.cells("/dce-guest-proxy", "interrupts") == [0, 15, 4]
    # Every display clock through the bridge's /bpmp.
    bpmp = tree.cells("/bpmp", "phandle")[0]
    assert set(tree.cells(path, "clocks")[0::2]) == {bpmp}
    if vm == "disp-vm":
        assert tree.cells("/memory@b8000000", "reg") == GHAF_DISP_BANKS
        assert not [p for p in tree.walk() if p.endswith("/gpu@17000000")]
    else:
        gpu = next(p for p in tree.walk() if p.endswith("/gpu@17000000"))
        assert _translate(tree, gpu, 0x17000000) == 0x64000000


# payload/bpmp-allowlist.nix: the compute half (:11-22, :92-97, :104-109) and
# the display half (:23-91, :98-103, :110), ID by ID.
GHAF_COMPUTE = {
    "clock": [1, 20, 40, 41, 46, 83, 154, 167, 236, 304],
    "reset": [10, 19, 44, 113],
    "power-domain": [23, 29, 35, 36],
}
GHAF_DISPLAY = {
    "clock": [14, 102, 19, 40, 71, 72, 84, 85, 86, 87, 88, 91]
    + [125, 126, 127, 128, 129, 130, 132, 162]
    + [178, 179, 180, 181, 182, 183, 184]
    + list(range(435, 472)),
    "reset": [3, 8, 16, 37],
    "power-domain": [3],
}


def test_each_role_s_vm_is_allowed_ghafs_half_id_by_id():
    """gpu-vm: the compute half less FUSE (40: the host's fuse clock, and the
    guest's NVDEC node is disabled); disp-vm: the display half; gui-vm: both
    halves, Ghaf's union exactly (FUSE back with the display, protected)."""
    split = _allow_lists(SPLIT)
    gui = _allow_lists(ACCEL)["gui-vm"].allowed
    for kind in ("clock", "reset", "power-domain"):
        compute = [i for i in GHAF_COMPUTE[kind] if (kind, i) != ("clock", 40)]
        assert split["gpu-vm"].allowed.ids(kind) == compute
        assert split["disp-vm"].allowed.ids(kind) == sorted(GHAF_DISPLAY[kind])
        union = sorted({*GHAF_COMPUTE[kind], *GHAF_DISPLAY[kind]})
        assert gui.ids(kind) == union


def test_the_display_node_asks_ghafs_display_ids_but_the_sor_parents():
    """The guest's display node names every display clock of Ghaf's list but
    the two SOR root parents (bpmp-allowlist.nix:25-27: CLK_M 14, PLLP_OUT0
    102), which preparing its clocks walks to."""
    g = catalog.load().gpu_roles.guest
    clocks = sorted(i for i, _n in g.clocks)
    assert sorted(set(GHAF_DISPLAY["clock"]) - set(clocks)) == [14, 102]
    assert set(clocks) <= set(GHAF_DISPLAY["clock"])
    assert sorted(i for i, _n in g.resets) == sorted(GHAF_DISPLAY["reset"])
    assert [g.power_domain] == GHAF_DISPLAY["power-domain"]
    # The allow list reads the display device's resources: the same IDs, in
    # the node's order, so the guest node and the proxy's list cannot drift.
    board = catalog.load().board("jetson-agx-orin-devkit")
    dev = board.devices["display"]
    ids = [board.soc.resource("clock", c).id for c in dev.clocks]
    assert ids == [i for i, _n in g.clocks]
    assert [board.soc.resource("reset", r).id for r in dev.resets] == [
        i for i, _n in g.resets
    ]


# Clocks of the display half the host also runs from, so the display VM may
# enable and read them, never disable, re-rate or re-parent them:
#   14 CLK_M, 91 OSC, 102 PLLP_OUT0: protected_clk_roots[] in Ghaf's
#     bpmp-host-proxy.c (bpmp-virt-common);
#   40 FUSE: linux 6.12 tegra234.dtsi:3290, the host's fuse@3810000
#     (clocks = <&bpmp TEGRA234_CLK_FUSE>);
#   471 PLLHUB: tegra234-clock.h:888 "EMC PLLHUB output", a memory clock,
#     which bpmp-allowlist.nix:53 says to keep denied.
DISPLAY_PROTECTED = [14, 40, 91, 102, 471]
# 457/458 AZA_2XBIT/AZA_BIT clock the host's hda@3510000 (tegra234.dtsi:3105-
# 3106), which the DCE relay disables on the host: unprotected.
HDA_CLOCKS = [457, 458]


def _allow_lists(path: Path) -> dict[str, VmAllowList]:
    loaded = load(path)
    assert loaded.profile is not None, loaded.findings
    board = catalog.load().board("jetson-agx-orin-devkit")
    return {v.vm: v for v in vm_allow_lists(loaded.profile, board)}


@pytest.mark.parametrize(("path", "vm"), [(SPLIT, "disp-vm"), (ACCEL, "gui-vm")])
def test_the_display_half_is_allowed_with_the_hosts_clocks_protected(
    path: Path, vm: str
):
    """The display VM's node under the proxy: Ghaf's display half, ID by ID,
    with only the clocks the host shares protected."""
    mine = _allow_lists(path)[vm]
    assert mine.protected_ids("clock") == DISPLAY_PROTECTED
    assert mine.protected_ids("reset") == mine.protected_ids("power-domain") == []
    ids = set(mine.allowed.ids("clock"))
    assert set(GHAF_DISPLAY["clock"]) <= ids
    assert set(HDA_CLOCKS) <= ids
    for kind in ("reset", "power-domain"):
        assert set(GHAF_DISPLAY[kind]) <= set(mine.allowed.ids(kind))
    # The committed host overlay (held to the generator by test_golden) says so.
    loaded = load(path)
    assert loaded.profile is not None
    target = ROOT / "nix" / "modules" / loaded.profile.target.name
    dts = (target / "overlays" / "bpmp-host-proxy.dts").read_text()
    protected = " ".join(map(str, DISPLAY_PROTECTED))
    assert f"allowed-protected-clocks = <{protected}>;" in dts


def test_the_split_pair_s_vms_reach_none_of_each_other_s_ids():
    """gpu-vm and disp-vm each get their own proxy device (bpmp_per_vm): neither
    list holds an ID of the other, and nothing is shared between them."""
    lists = _allow_lists(SPLIT)
    assert sorted(lists) == ["disp-vm", "gpu-vm"]
    for kind in ("clock", "reset", "power-domain"):
        a = set(lists["gpu-vm"].allowed.ids(kind))
        b = set(lists["disp-vm"].allowed.ids(kind))
        assert not a & b, kind
    assert all(not v.shared for v in lists.values())


def test_rules_and_output_read_the_roles_from_the_catalog(tmp_path: Path):
    """The display role's keyholes come from t234-gpu-roles.toml, not from a list
    in the code: a catalog without the cursor keyhole generates a disp-vm and a
    binding without it."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "ghafgen" / "catalog" / "data", data)
    roles_file = data / "t234-gpu-roles.toml"
    text = roles_file.read_text()
    full = 'keyholes = ["disp_caps", "disp_chan", "disp_cursor"]'
    assert text.count(full) == 2
    roles_file.write_text(text.replace(full, 'keyholes = ["disp_caps", "disp_chan"]'))
    env = os.environ | {"GHAFGEN_CATALOG": str(data)}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "generate", str(SPLIT), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    target = out / "nvidia-jetson-orin-agx-gpu-vm"
    vm = (target / "vms" / "disp-vm.nix").read_text()
    binding = (target / "devices" / "display.nix").read_text()
    for text in (vm, binding):
        assert "13870000.disp_chan_pt" in text
        assert "138c8000.disp_cursor_pt" not in text
