"""The DCE relay's catalog facts (catalog/data/t234-display.toml), each held to
the pinned Ghaf tree or Debian's linux-source-6.12 where it was read.

Expected values are written here literally, with the file and line they come
from; the catalog is then compared with them and with the source text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ghafgen import catalog

CAT = catalog.load()


V = "modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization"
DCE = f"{V}/common/dce-virt-common"


def test_the_catalog_holds_ghafs_values():
    f = CAT.dce_relay
    # dce-probe-host.nix:39-40: dce_host_proxy: dce_host_proxy { compatible = ... }
    assert (f.proxy.node, f.proxy.compatible) == (
        "dce_host_proxy",
        "nvidia,dce-host-proxy",
    )
    assert f.proxy.references == ()
    # dce-host-proxy.c:22 DEVICE_NAME "dce-host"
    assert f.proxy.device == "/dev/dce-host"
    # dce-probe-host.nix:142 GROUP="kvm", MODE="0660"
    assert (f.proxy.ghaf_group, f.proxy.ghaf_mode) == ("kvm", "0660")
    # dce-probe-host.nix:118-123
    assert f.headless.blacklist == (
        "nvidia",
        "nvidia_modeset",
        "nvidia_drm",
        "tegra_drm",
    )
    # dce-probe-host.nix:129-136
    assert f.headless.modules == ("tegra-dce", "dce-host-proxy", "dce-iso-anchor")
    # dce-probe-host.nix:58-61
    assert f.headless.kernel_params == ("clk_ignore_unused", "pd_ignore_unused")
    # gpu_passthrough_overlay.dts:294-296
    assert (f.hda.path, f.hda.status) == ("/bus@0/hda@3510000", "disabled")
    assert f.hda.fact.uncertain
    # gpu_passthrough_overlay.dts:132-136
    assert (f.framebuffer.path, f.framebuffer.compatible) == (
        "/chosen/framebuffer",
        "dummy",
    )
    # gpu_passthrough_overlay.dts:158-160 and tegra234-mc.h:436-437: the GPU
    # group's host node carries them (t234-gpu.toml [engines.gpu]).
    gpu = CAT.gpu_group.engines["gpu"]
    assert gpu.interconnects == (("NVL1R", 0xB8), ("NVL1W", 0xB9))
    assert gpu.interconnect_names == ("dma-mem", "write")
    assert gpu.interconnect_labels == ("mc", "emc")
    # 0002-nvidia-dce-guest-hooks.patch:31 and :39
    assert (f.guest.bridge_base, f.guest.bridge_size, f.guest.bridge_spi) == (
        0x090E0000,
        0x10000,
        15,
    )
    assert (f.guest.env, f.guest.env_value) == ("GHAF_DCE_GUEST", "1")
    # payload/default.nix:108-113 (the display's; nvmap and NVKMS are the GPU guest's)
    assert f.guest.modules == ("tegra-dce", "dce-guest-proxy")
    # The display role's keyholes and RAM (t234-gpu-roles.toml), which the
    # display's host overlay wraps: payload/default.nix:73-86,
    # gpu_passthrough_overlay.dts:311,330,348 (keyholes), :49, 60, 65 (RAM),
    # :21 (GHAF_SID_DISPVM 0x7d).
    disp = CAT.gpu_roles.roles["display"]
    assert [(h.wrapper, h.base, h.size, h.mmio_base) for h in disp.keyholes] == [
        ("disp_caps_pt", 0x13830000, 0x1000, 0x66230000),
        ("disp_chan_pt", 0x13870000, 0x20000, 0x66270000),
        ("disp_cursor_pt", 0x138C8000, 0x2000, 0x662C8000),
    ]
    assert [(c.key, c.base, c.size) for c in disp.carveouts] == [
        ("scanout", 0xB0000000, 0x08000000),
        ("dispram_lo", 0xB8000000, 0x2E000000),
        ("dispram_hi", 0x200000000, 0x1A000000),
    ]
    assert {h.sid for h in disp.keyholes} | {c.sid for c in disp.carveouts} == {0x7D}


def test_every_fact_names_its_source():
    f = CAT.dce_relay
    facts = [
        f.sources.fact,
        f.proxy.fact,
        f.proxy.access_fact,
        f.headless.fact,
        f.iso_anchor,
        f.hda.fact,
        f.framebuffer.fact,
        f.guest.fact,
        f.qemu.fact,
    ]
    for fact in facts:
        # Every source cites at least one file:line.
        assert re.search(r"[\w.-]+:\d+", fact.source), fact
        if fact.uncertain:
            assert fact.note, fact


def _list(text: str, start: int, end: int) -> list[int]:
    """The integers of lines start..end (1-based) of a Nix list, comments dropped."""
    lines = text.splitlines()[start - 1 : end]
    return [int(w) for line in lines for w in re.findall(r"^\s*(\d+)", line)]


def test_display_bpmp_ids_are_ghafs_allowlist(ghaf_src: Path):
    text = (ghaf_src / V / "passthrough/payload/bpmp-allowlist.nix").read_text()
    lines = text.splitlines()
    # bpmp-allowlist.nix:23 '# display@13800000 clocks' opens the display part,
    # :91 closes it; :98-103 and :110 are the display resets and domain.
    assert lines[22].strip() == "# display@13800000 clocks"
    assert lines[90].strip() == "];"
    clocks = _list(text, 24, 91)
    # The display device's own IDs are that list but the two "SOR root
    # parents" (:25-27), which the allow list reaches through the clock tree.
    board = CAT.board("jetson-agx-orin-devkit")
    disp = board.devices["display"]
    own = [board.soc.resource("clock", c).id for c in disp.clocks]
    assert sorted(set(clocks) - set(own)) == [14, 102]
    assert set(own) <= set(clocks)
    resets = [board.soc.resource("reset", r).id for r in disp.resets]
    assert sorted(resets) == _list(text, 98, 103)
    # Written out from the file: 14 102 19 40 71 72 84-88 91 125-130 132 162
    # 178-184 435-471.
    assert clocks == [
        14, 102, 19, 40, 71, 72, 84, 85, 86, 87, 88, 91,
        125, 126, 127, 128, 129, 130, 132, 162,
        178, 179, 180, 181, 182, 183, 184, *range(435, 472),
    ]  # fmt: skip
    assert _list(text, 98, 103) == [3, 8, 16, 37]
    assert lines[109].strip() == "++ [ 3 ];"


def test_host_facts_are_in_ghafs_host_module(ghaf_src: Path):
    text = (ghaf_src / DCE / "dce-probe-host.nix").read_text().splitlines()
    assert text[39].strip() == 'compatible = "nvidia,dce-host-proxy";'  # :40
    assert [s.strip() for s in text[118:122]] == [
        '"nvidia"',
        '"nvidia_modeset"',
        '"nvidia_drm"',
        '"tegra_drm"',
    ]  # :119-122
    assert text[141].strip() == 'KERNEL=="dce-host", GROUP="kvm", MODE="0660"'  # :142
    proxy = ghaf_src / DCE / CAT.dce_relay.sources.host_proxy / "dce-host-proxy.c"
    lines = proxy.read_text().splitlines()
    assert lines[21] == '#define DEVICE_NAME "dce-host"'  # :22
    assert (
        lines[283] == "static int dce_host_proxy_remove(struct platform_device *pdev)"
    )


def test_guest_and_qemu_facts_are_in_ghafs_vm_modules(ghaf_src: Path):
    for vm, line in (("disp-vm", 144), ("gui-vm", 101)):
        text = (ghaf_src / V / "passthrough" / vm / "default.nix").read_text()
        assert "GHAF_DCE_GUEST" in text.splitlines()[line - 1], vm
    gpu = (ghaf_src / V / "passthrough/gpu-vm/default.nix").read_text().splitlines()
    # gpu-vm sets it only when its payload needs the bridge (display = false).
    assert "lib.mkIf payload.needsDceBridge" in gpu[118]
    patch = ghaf_src / CAT.qemu_build.package_dir / CAT.dce_relay.qemu.patch
    lines = patch.read_text().splitlines()
    assert lines[30] == "+    [VIRT_NVIDIA_DCE_GUEST] =   { 0x090e0000, 0x00010000 },"
    assert lines[38] == "+    [VIRT_NVIDIA_DCE_GUEST] = 15,"
    assert 'getenv("GHAF_DCE_GUEST"), "1"' in lines[74]
    # Ghaf's package applies the DCE bridge right after the BPMP one, as
    # ghafgen's platform QEMU does (runtime.toml bridge_patches).
    assert CAT.qemu_build.bridge_patches == (
        "patches/0001-nvidia-bpmp-guest-hooks.patch",
        "patches/0002-nvidia-dce-guest-hooks.patch",
    )


def test_hda_is_in_the_display_power_domain_of_6_12(kernel_src_612: Path):
    dtsi = kernel_src_612 / "arch/arm64/boot/dts/nvidia/tegra234.dtsi"
    lines = dtsi.read_text().splitlines()
    start = lines.index("\t\thda@3510000 {")  # tegra234.dtsi:3101
    node = lines[start : start + 17]
    assert "\t\t\tpower-domains = <&bpmp TEGRA234_POWER_DOMAIN_DISP>;" in node
    pg = kernel_src_612 / "include/dt-bindings/power/tegra234-powergate.h"
    assert "#define TEGRA234_POWER_DOMAIN_DISP\t3U" in pg.read_text()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TEGRA234_MEMORY_CLIENT_NVL1R", "0xb8"),
        ("TEGRA234_MEMORY_CLIENT_NVL1W", "0xb9"),
    ],
)
def test_gpu_memory_clients_of_6_12(kernel_src_612: Path, name: str, value: str):
    mc = kernel_src_612 / "include/dt-bindings/memory/tegra234-mc.h"
    assert f"#define {name} {value}" in mc.read_text()
