"""The integrated GPU group: catalog against the real trees, QEMU's placement
against what Ghaf measured, the allow list against Ghaf's, and the rules."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ghafgen import catalog
from ghafgen.derive.allowlist import AllowList, allow_list, vm_allow_lists
from ghafgen.derive.gpu import gpu_pass, placement
from ghafgen.profile.parse import load, load_text
from ghafgen.rules.engine import apply_rules
from tests.conftest import ROOT

AGX = catalog.load().board("jetson-agx-orin-devkit")
GROUP = catalog.load().gpu_group
PROFILE = ROOT / "profiles" / "orin-agx-gpu-vm.toml"
GPU_DIR = (
    "modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization/passthrough"
)


def _profile():
    loaded = load(PROFILE)
    assert loaded.profile is not None, loaded.findings
    return loaded.profile


def test_reference_profile_passes_the_whole_group_to_one_vm():
    gp = gpu_pass(_profile(), AGX)
    assert gp is not None and gp.vm == "gpu-vm"
    assert [d.key for d in gp.members] == list(GROUP.members)
    assert gp.host_devices == (
        "60000000.vm_hs_p",
        "80000000.vm_cma_p",
        "17000000.gpu",
        "13e00000.host1x_pt",
        "15340000.vic",
        "15480000.nvdec",
        "15540000.nvjpg",
    )


# The guest addresses and SPIs Ghaf measured on the board with QEMU's
# `info mtree -f` and wrote into tegra234-gpuvm-base.dtsi / -engines.dtsi.
GHAF_MEASURED = {
    0x17000000: 0x64000000,
    0x18000000: 0x65000000,
    0x03B41000: 0x66000000,
    0x13E00000: 0x66010000,
    0x13E10000: 0x66020000,
    0x13E40000: 0x66030000,
    0x13EF0000: 0x66080000,
    0x15340000: 0x66040000,
    0x15480000: 0x66100000,
    0x15540000: 0x66140000,
}
GHAF_SPIS = {"17000000.gpu": (112, 113, 114, 115), "15340000.vic": (125,)}


def test_placement_is_the_one_ghaf_measured_on_the_board():
    placed = placement(GROUP, tuple(AGX.devices[k] for k in GROUP.members))
    got = {r.host: r.guest for p in placed if p.mmio_base is None for r in p.regions}
    assert got == GHAF_MEASURED
    spis = {p.dt_name: p.spis for p in placed}
    assert spis["13e00000.host1x_pt"] == tuple(range(116, 125))
    for name, want in GHAF_SPIS.items():
        assert spis[name] == want
    # Carve-outs land 1:1 (mmio-base), before anything else.
    for p in placed[:2]:
        assert p.regions[0].host == p.regions[0].guest == p.mmio_base


def test_placement_matches_ghafs_hand_kept_ranges_line_by_line(ghaf_src: Path):
    text = (ghaf_src / GPU_DIR / "gpu-vm/tegra234-gpuvm-base.dtsi").read_text()
    pairs = re.findall(
        r"<0x00 (0x[0-9a-fA-F]+) 0x00 (0x[0-9a-fA-F]+) 0x00 0x[0-9a-fA-F]+>,?\s*// "
        r"0x[0-9a-f]+-[0-9a-f]+ \(prio 0, ramd\): VFIO",
        text,
    )
    assert len(pairs) == len(GHAF_MEASURED)
    assert {int(a, 16): int(b, 16) for a, b in pairs} == GHAF_MEASURED


def _vm_lists(profile=None) -> dict[str, AllowList]:
    return {v.vm: v.allowed for v in vm_allow_lists(profile or _profile(), AGX)}


def test_allow_list_is_the_group_s_own_ids_without_the_host_s_fuse_clock():
    allowed = _vm_lists()["gpu-vm"]
    assert allowed.ids("clock") == [1, 20, 41, 46, 83, 154, 167, 236, 304]
    assert allowed.ids("reset") == [10, 19, 44, 113]
    assert allowed.ids("power-domain") == [23, 29, 35, 36]
    # Every ID traces to a node the guest owns.
    owned = {
        (k, AGX.soc.resource(k, n).id)
        for key in GROUP.members
        for k in ("clock", "reset", "power-domain")
        for n in AGX.devices[key].resources("l4t", k)
    }
    for kind in ("clock", "reset", "power-domain"):
        assert {(kind, i) for i in allowed.ids(kind)} <= owned
    # EMC (the guest icc node's clock) never.
    assert 31 not in allowed.ids("clock")


def _nix_ids(block: str) -> list[int]:
    return [int(x) for x in re.findall(r"^\s*(\d+)", block, re.M)]


def test_allow_list_against_ghafs_id_by_id(ghaf_src: Path):
    """Ghaf's list is one union: the compute IDs, then `++` the display IDs.
    ghafgen's gpu-vm list is the compute part less FUSE (40), disp-vm's the
    display part, and the accelerated gui-vm's (both halves in one VM) the
    whole union; FUSE comes back with the display, protected."""
    text = (ghaf_src / GPU_DIR / "payload/bpmp-allowlist.nix").read_text()
    body = text.split("{", 1)[1]
    lists = {}
    for name in ("clocks", "resets", "powerDomains"):
        tail = r"\]\s*(?:#[^\n]*\n\s*)*\+\+\s*\[([^\]]*)\];"
        m = re.search(rf"{name} = \[([^\]]*){tail}", body, re.S)
        assert m, name
        lists[name] = (_nix_ids(m.group(1)), _nix_ids(m.group(2)))
    lists_by_vm = _vm_lists()
    allowed = lists_by_vm["gpu-vm"]
    ours = {
        "clocks": allowed.ids("clock"),
        "resets": allowed.ids("reset"),
        "powerDomains": allowed.ids("power-domain"),
    }
    # Compute part: equal but for FUSE, which the host's fuse node uses too.
    compute_clocks = lists["clocks"][0]
    assert sorted(set(compute_clocks) - set(ours["clocks"])) == [40]
    assert set(ours["clocks"]) <= set(compute_clocks)
    assert sorted(lists["resets"][0]) == ours["resets"]
    assert sorted(lists["powerDomains"][0]) == ours["powerDomains"]
    # Display part: disp-vm's whole list; a gpu-vm needs none of it.
    disp = lists_by_vm["disp-vm"]
    kinds = {"clocks": "clock", "resets": "reset", "powerDomains": "power-domain"}
    for name, kind in kinds.items():
        assert not set(lists[name][1]) & set(ours[name]), name
        assert disp.ids(kind) == sorted(lists[name][1]), name
    assert lists["powerDomains"][1] == [3]  # DISP
    # The accelerated gui-vm: both halves in one VM, Ghaf's union exactly.
    loaded = load(ROOT / "profiles" / "orin-agx-gpu-gui-accel.toml")
    assert loaded.profile is not None, loaded.findings
    gui = allow_list(loaded.profile, AGX)
    for name, kind in kinds.items():
        assert gui.ids(kind) == sorted({*lists[name][0], *lists[name][1]}), name


def test_catalog_engines_agree_with_the_612_tree():
    nodes = {
        d.path: d for d in catalog.load().soc_devices("tegra234-p3737-0000+p3701-0000")
    }
    for key in ("host1x", "vic", "nvdec"):
        dev = AGX.devices[key]
        node = nodes[dev.flavors["mainline"].path]
        soc = AGX.soc
        assert [soc.clocks[c].id for c in dev.resources("mainline", "clock")] == list(
            node.clocks
        ), key
        assert [soc.resets[r].id for r in dev.resets] == list(node.resets), key
        pds = [soc.power_domains[p].id for p in dev.power_domains]
        assert pds == list(node.power_domains), key
        assert node.iommu_sid == dev.iommu_sid, key
    # ga10b and NVJPG are L4T-only nodes: the host overlay writes them whole.
    assert not any(p.endswith(("/gpu@17000000", "/nvjpg@15540000")) for p in nodes)
    assert "mainline" not in AGX.devices["gpu"].flavors
    assert "mainline" not in AGX.devices["nvjpg"].flavors


def _ids(text: str) -> set[str]:
    result = load_text(text, "p.toml")
    _board, found = apply_rules(result, catalog.load())
    return {f.rule_id for f in found}


def test_carveout_overlap_fires_on_a_catalog_whose_carveouts_overlap(tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(ROOT / "ghafgen" / "catalog" / "data", data)
    gpu = data / "t234-gpu.toml"
    gpu.write_text(gpu.read_text().replace("base = 0x60000000", "base = 0x90000000"))
    env = os.environ.copy()
    env["GHAFGEN_CATALOG"] = str(data)
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "ghafgen", "validate", str(PROFILE)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error[GG805]: host carve-outs 'vm_hs' and 'vm_cma' overlap" in done.stdout


def test_uarta_elsewhere_shares_the_gpus_stream_id():
    text = PROFILE.read_text() + (
        '\n[hardware.nvidia.passthroughs.uarta]\nvm = "uart-vm"\n'
        '[vms.uart-vm]\nvcpus = 1\nmemory = "512M"\n'
    )
    assert "GG205" in _ids(text)


def _translate(tree, path: str, addr: int) -> int:
    """A node's bus address, through every `ranges` above it, to the CPU's."""
    parts = path.strip("/").split("/")
    for depth in range(len(parts) - 1, 0, -1):
        bus = "/" + "/".join(parts[:depth])
        raw = tree.cells(bus, "ranges") if tree.maybe(bus, "ranges") else []
        if not raw:
            continue
        ca = tree.cells(bus, "#address-cells")[0]
        sc = tree.cells(bus, "#size-cells")[0]
        up = "/" + "/".join(parts[: depth - 1]) if depth > 1 else "/"
        pa = tree.cells(up, "#address-cells")[0]
        step = ca + pa + sc
        for i in range(0, len(raw), step):
            child = int("".join(f"{c:08x}" for c in raw[i : i + ca]), 16)
            parent = int("".join(f"{c:08x}" for c in raw[i + ca : i + ca + pa]), 16)
            size = int("".join(f"{c:08x}" for c in raw[i + ca + pa : i + step]), 16)
            if child <= addr < child + size:
                addr = parent + (addr - child)
                break
        else:
            raise AssertionError(f"{addr:#x} of {path} not in {bus}'s ranges")
    return addr


def test_guest_tree_on_qemus_own_tree_lands_where_qemu_maps(tmp_path: Path, virt_dtb):
    """The committed guest tree on the stand-in QEMU's dumped virt tree, moved to
    the variant's platform bus as its patch writes it, with the bridge's /bpmp:
    every region of every member translates to the address QEMU maps it at."""
    from tests.conftest import require
    from tests.guestboot import gpu_guest_tree
    from tests.trees import Tree

    require("fdtoverlay")
    target = ROOT / "nix" / "modules" / "nvidia-jetson-orin-agx-gpu-vm"
    out = gpu_guest_tree(target / "vms/gpu-vm.dts", virt_dtb(4, 6144), tmp_path)
    tree = Tree(out)
    placed = {
        p.dt_name: p
        for p in placement(GROUP, tuple(AGX.devices[k] for k in GROUP.members))
    }
    found = 0
    for path in tree.walk():
        name = path.rsplit("/", 1)[-1]
        key = next(
            (
                k
                for k in GROUP.members
                if AGX.devices[k].node.split("@")[1] == name.split("@")[-1]
                and "@" in name
            ),
            None,
        )
        if key is None or "gpu-bus" not in path:
            continue
        found += 1
        reg = tree.cells(path, "reg")
        p = placed[AGX.devices[key].dt_name]
        for i, region in enumerate(p.regions):
            addr = (reg[4 * i] << 32) | reg[4 * i + 1]
            assert _translate(tree, path, addr) == region.guest, (path, hex(addr))
        spis = (
            tree.cells(path, "interrupts")[1::3]
            if tree.maybe(path, "interrupts")
            else []
        )
        assert tuple(spis) == p.spis, path
    assert found == len(GROUP.members)
    # The guest bank, where the carve-out is mapped 1:1; QEMU's own RAM node gone.
    assert tree.cells("/memory@80000000", "reg") == [0, 0x80000000, 0, 0x30000000]
    assert not any(
        p.startswith("/memory@") and p != "/memory@80000000" for p in tree.walk()
    )
    # Every &bpmp resolved to the bridge's node.
    bpmp = tree.cells("/bpmp", "phandle")[0]
    gpu = next(p for p in tree.walk() if p.endswith("/gpu@17000000"))
    assert tree.cells(gpu, "clocks")[0::2] == [bpmp] * 3
    assert tree.maybe("/", "compatible").startswith(b"nvidia,tegra234\0")
    # The catalog's register-less providers (the icc node) at the root, on the bridge.
    for x in GROUP.extras:
        ids = [AGX.soc.resource("clock", c).id for c in x.clocks]
        assert tree.cells(f"/{x.node}", "clocks") == [c for i in ids for c in (bpmp, i)]


def test_the_group_gets_no_qemu_binding_because_the_catalog_says_it_needs_none():
    """t234-gpu.toml [qemu.dtb] needs_fdt_binding decides, not a special case."""
    from ghafgen.derive import runtime

    members = [AGX.devices[k] for k in GROUP.members]
    assert runtime.unbound_devices(members, AGX.catalog) == []
    needs = GROUP._replace(qemu=GROUP.qemu._replace(needs_fdt_binding=True))
    changed = AGX.catalog.with_gpu_facts(gpu_group=needs)
    assert [d.key for d in runtime.unbound_devices(members, changed)] == list(
        GROUP.members
    )
