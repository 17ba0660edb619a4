"""What runs on the board: each runtime fact of docs/runtime.md, held to the output.

One test (or more) per item of the "It boots" review: the QEMU with
vfio-platform, the bridge's own /bpmp, the SMMU coherency patch, the bypass
parameter, MGBE0's startup-rearm, the pinned kernels, the UARTA allow list and
the BAR window. Facts are also checked against the pinned Ghaf tree itself
(tests/pinned.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.catalog.fdtview import FdtView
from ghafgen.findings import Severity
from ghafgen.profile.parse import load_text
from ghafgen.render.plan import TargetPlan, plan
from ghafgen.rules.engine import apply_rules, validate
from ghafgen.toolchain import basetrees
from ghafgen.toolchain.guestbase import add_bridge_node, name_bridge_node
from tests import pinned
from tests.conftest import AGX, PROFILES, ROOT, require

MODULES = ROOT / "nix" / "modules"
# Ghaf at the pinned revision (tests/pinned.py), found before the test reads it.
needs_ghaf = pytest.mark.usefixtures("ghaf_src")


def plans() -> list[TargetPlan]:
    out = []
    for path in PROFILES:
        profile, board = validate([path], catalog.load()).usable[0]
        out.append(plan(profile, board, path.name))
    return out


PLANS = plans()


def version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def files(p: TargetPlan) -> dict[str, str]:
    root = MODULES / p.name
    return {
        str(f.relative_to(root)): f.read_text()
        for f in sorted(root.rglob("*"))
        if f.is_file()
    }


# 1. A QEMU that still has vfio-platform, brought by the output itself.


def test_pinned_platform_qemu_still_has_vfio_platform():
    build = catalog.load().qemu_build
    assert version(build.version) < version(build.vfio_platform_removed)
    assert build.version in build.url


@pytest.mark.parametrize("p", PLANS, ids=[p.name for p in PLANS])
def test_every_platform_vm_runs_the_pinned_qemu_and_nothing_is_left_to_the_user(
    p: TargetPlan,
):
    out = files(p)
    text = "\n".join(out.values())
    assert "throw" not in text.replace("or (throw", "")  # only hooksFor's backstop
    assert "pkgs.qemu-bpmp" not in text
    for vm in p.vms:
        nix = out[f"vms/{vm.name}.nix"]
        if not vm.platform:
            assert "qemu.package" not in nix, (
                "a VM without platform devices keeps microvm.nix's QEMU"
            )
            continue
        assert "import ../qemu.nix" in nix and "qemu.package = qemu;" in nix
        assert f"bpmpBridge = {'true' if vm.bpmp else 'false'};" in nix
        assert f'"{catalog.load().qemu_build.version}"' in out["qemu.nix"]


def test_qemu_refuses_devices_without_a_binding_so_ghafgen_adds_one():
    """UARTA and UARTI have no FDT binding in QEMU; MGBE0 has Ghaf's."""
    by_name = {p.name: p for p in PLANS}
    uarta = by_name["nvidia-jetson-orin-agx-uarta"].vms[0]
    assert uarta.fdt_bindings is not None
    assert 'VFIO_PLATFORM_BINDING("nvidia,tegra234-uart", no_fdt_node)' in (
        uarta.fdt_bindings.diff
    )
    uarti = by_name["nvidia-jetson-orin-agx-uarti-net-vm"].vms[0]
    assert uarti.fdt_bindings is not None
    # The host overlay renames UARTI's compatible; QEMU matches what the host says.
    assert '"nvidia,dummy"' in uarti.fdt_bindings.diff
    mgbe0 = by_name["nvidia-jetson-orin-agx-mgbe0-net-vm"].vms[0]
    assert mgbe0.fdt_bindings is None and mgbe0.guest_tree is None
    assert "nvidia,tegra234-mgbe" in catalog.load().qemu_virt.emits_node


@needs_ghaf
def test_pinned_qemu_facts_match_ghafs_package_and_patch_text():
    root = pinned.tree("ghaf") / catalog.load().qemu_build.package_dir
    package = (root / "package.nix").read_text()
    assert f'version = "{catalog.load().qemu_build.version}";' in package
    assert catalog.load().qemu_build.hash in package
    for patch in (
        catalog.load().qemu_build.bridge_patches
        + catalog.load().qemu_build.irqfd_patches
    ):
        assert (root / patch).exists(), patch
    bridge = (root / catalog.load().qemu_build.bridge_patches[0]).read_text()
    virt = catalog.load().qemu_virt
    assert f"[VIRT_NVIDIA_BPMP_GUEST] =  {{ {virt.bpmp_bridge_base:#010x}," in bridge
    assert (
        f"[VIRT_ACPI_PCIHP] =         {{ {virt.bpmp_bridge_old_base:#010x}," in bridge
    )
    assert all(f'"compatible", "{c}"' in bridge for c in virt.bpmp_compatible)
    assert 'VFIO_PLATFORM_BINDING("nvidia,tegra234-mgbe"' in bridge
    # The lines ghafgen's binding patch anchors on are the 10.1 file's.
    for line in (
        "     TYPE_BINDING(TYPE_TPM_TIS_SYSBUS, add_tpm_tis_fdt_node),",
        " #ifdef CONFIG_TPM",
    ):
        assert line in bridge.splitlines()


QEMU_CACHE = pinned.QEMU_SOURCE


@pytest.fixture(scope="module")
def qemu_10_0() -> Path:
    """Debian's QEMU 10.0 source (scripts/fetch-qemu-source.sh): the files read here,
    unpacked once per tarball into the user cache as `check` unpacks kernel trees."""
    tarballs = sorted(QEMU_CACHE.glob("qemu_10.0*.orig.tar.xz"))
    if not tarballs:
        pytest.skip(
            f"no QEMU 10.0 source in {QEMU_CACHE} (bash scripts/fetch-qemu-source.sh)"
        )
    wanted = ("hw/arm/virt.c", "hw/core/sysbus-fdt.c")
    into = basetrees.unpacked(
        tarballs[-1],
        "qemu-virt-files",
        lambda name: name.partition("/")[2] in wanted,
    )
    return next(into.iterdir())


def test_with_a_dtb_qemu_writes_no_platform_bus_nodes(qemu_10_0: Path):
    """QEMU 10.0's virt.c builds the platform-bus nodes, where a device with no
    FDT binding exits, only when no -dtb is given. Every ghafgen guest-tree VM
    passes -dtb, so the binding patch is a margin, not a need (docs/runtime.md
    item 1 records the disagreement with Ghaf's orin.nix)."""
    text = (qemu_10_0 / "hw/arm/virt.c").read_text()
    guard = text.index("if (info->dtb_filename == NULL) {")
    assert text.index("platform_bus_add_all_fdt_nodes(ms->fdt", guard) - guard < 80
    guest_trees = sorted((ROOT / "nix/modules").glob("*/vms/*.dts"))
    assert guest_trees
    for tree in guest_trees:
        assert '"-dtb"' in tree.with_suffix(".nix").read_text(), tree


def test_virt_memory_map_of_the_10_x_line(qemu_10_0: Path):
    """The platform bus, its first SPI and the PCIe windows the catalog pins, in
    QEMU 10.0's virt.c (10.1 adds VIRT_ACPI_PCIHP at 0x090c0000, ghaf-0001)."""
    virt, text = catalog.load().qemu_virt, (qemu_10_0 / "hw/arm/virt.c").read_text()
    bus = f"[VIRT_PLATFORM_BUS] =       {{ {virt.platform_bus_base:#010x}, "
    assert bus + f"{virt.platform_bus_size:#010x} }}," in text
    assert (
        f"[VIRT_PCIE_MMIO] =          {{ 0x10000000, {virt.pcie_mmio_size:#010x} }},"
        in text
    )
    assert "#define DEFAULT_HIGH_PCIE_MMIO_SIZE_GB 512" in text
    assert virt.high_pcie_mmio_size == 512 << 30
    assert f"[VIRT_PLATFORM_BUS] = {virt.platform_bus_first_spi}," in text
    assert f"{virt.bpmp_bridge_base:#010x}" not in text  # free before the bridge


@pytest.mark.parametrize("p", PLANS, ids=[p.name for p in PLANS])
def test_qemu_binding_patches_apply_to_qemu_10_0(p: TargetPlan, qemu_10_0: Path):
    import subprocess

    require("git")
    for vm in p.vms:
        if vm.fdt_bindings is None:
            continue
        patch = MODULES / p.name / vm.fdt_bindings.file
        done = subprocess.run(
            ["git", "apply", "--check", "-v", str(patch)],
            cwd=qemu_10_0,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr


# 2. The bridge sits at 0x090d0000 and writes /bpmp itself.


@pytest.mark.parametrize("p", PLANS, ids=[p.name for p in PLANS])
def test_no_guest_tree_overrides_what_the_pinned_qemu_emits(p: TargetPlan):
    for name, text in files(p).items():
        if name.startswith("vms/") and name.endswith(".dts"):
            # /bpmp's own `virtual-pa`; the DCE relay's nodes carry `dce-virtual-pa`,
            # the DCE bridge's window, which is no BPMP node.
            assert not re.search(r"(?m)^\s*virtual-pa\s*=", text)
            assert not re.search(r"\bbpmp\s*\{", text)
            assert "/bpmp" not in text


def test_the_bridge_address_is_free_in_the_stand_in_qemus_map(virt_dtb):
    """Nothing QEMU 10.x puts in the guest tree overlaps the bridge's page."""
    virt = catalog.load().qemu_virt
    view = FdtView(virt_dtb().read_bytes())
    for off, path in view.nodes():
        reg = view.cells(off, "reg")
        if path.count("/") != 1 or len(reg) < 4:
            continue
        for i in range(0, len(reg) - 3, 4):
            base, size = reg[i] << 32 | reg[i + 1], reg[i + 2] << 32 | reg[i + 3]
            assert not base <= virt.bpmp_bridge_base < base + size, path


def test_stand_in_base_gets_the_node_the_pinned_bridge_emits(virt_dtb):
    data = name_bridge_node(
        add_bridge_node(virt_dtb().read_bytes(), catalog.load().qemu_virt),
        catalog.load().qemu_virt,
    )
    view = FdtView(data)
    node = view.offset("/bpmp")
    assert node >= 0
    assert view.strings(node, "compatible") == list(
        catalog.load().qemu_virt.bpmp_compatible
    )
    assert view.cells(node, "virtual-pa") == [0, 0x090D0000]
    assert view.symbols()["bpmp"] == "/bpmp"
    assert view.fdt.get_phandle(node) > 0


# 3. and 4. The SMMU coherency patch where vfio needs it; bypass only for MGBE0.


@pytest.mark.parametrize("p", PLANS, ids=[p.name for p in PLANS])
def test_smmu_patch_wherever_vfio_would_refuse_a_device(p: TargetPlan):
    host = files(p)["host.nix"]
    pcie = any(b.bus == "pci" for b in p.bindings)
    if pcie:
        assert p.smmu_patch_reasons
    assert ("bpmpVirt.smmuCoherencyPatch" in host) == bool(p.smmu_patch_reasons)


@pytest.mark.parametrize("p", PLANS, ids=[p.name for p in PLANS])
def test_disable_bypass_only_for_a_device_that_needs_it(p: TargetPlan):
    host = files(p)["host.nix"]
    needs = [d.key for vm in p.vms for d in vm.platform if d.smmu_bypass_reason]
    assert ('"arm-smmu.disable_bypass=0"' in host) == bool(needs)
    assert not needs or needs == ["mgbe0"]


def test_l4t_mgbe0_needs_no_smmu_patch_but_mainline_does(parse):
    from ghafgen import catalog

    board = catalog.load().board("jetson-agx-orin-devkit")
    text = (
        "[hardware.nvidia.virtualization]\nenable = true\n"
        '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n[vms.a]\nvcpus = 1\nmemory = "1G"\n'
    )
    l4t = plan(parse(AGX + text), board, "p.toml")
    main = plan(parse(AGX + 'dt_flavor = "mainline"\n' + text), board, "p.toml")
    assert l4t.smmu_patch_reasons == ()
    assert main.smmu_patch_reasons == ("mgbe0: its mainline node is not dma-coherent",)


def test_smmu_patch_applies_to_the_6_12_tree(tmp_path: Path):
    """The function the patch replaces is the same in the 6.12 tree Debian ships."""
    require("git")
    ghaf = pinned.need(lambda: pinned.tree("ghaf"))
    tarball = Path("/usr/src/linux-source-6.12.tar.xz")
    if not tarball.exists():
        pytest.skip(f"{tarball} missing (apt-get install linux-source-6.12)")
    import subprocess
    import tarfile

    member = "linux-source-6.12/drivers/iommu/arm/arm-smmu/arm-smmu.c"
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path, members=[tar.getmember(member)], filter="data")
    patch = ghaf / catalog.load().kernel_pins.smmu_patch
    done = subprocess.run(
        ["git", "apply", "--check", "-v", str(patch)],
        cwd=tmp_path / "linux-source-6.12",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_sid_marked_devices_pass_vfios_check_through_their_overlay():
    """UARTA/UARTI: the passthrough overlay adds dma-coherent (as Ghaf's UARTI
    overlay does), so vfio accepts them without the SMMU patch."""
    for p in PLANS:
        marked = [d for vm in p.vms for d in vm.platform if d.needs_sid_marking]
        for b in p.bindings:
            if b.overlay is not None and b.bus == "platform" and marked:
                props = [pr.name for f in b.overlay.fragments for pr in f.props]
                assert "dma-coherent" in props and "iommus" in props
        if marked and not any(b.bus == "pci" for b in p.bindings):
            assert not p.smmu_patch_reasons, p.name


# 5. MGBE0's interrupt re-arm.


# How Ghaf's net-vm gives MGBE0 to the pinned QEMU (tiiuae/ghaf 9a37dc8c,
# modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization/
# passthrough/mgbe0-net-vm/default.nix:210).
GHAF_MGBE0_DEVICE = "vfio-platform,host=6800000.ethernet,startup-rearm=on"
_VMS = '[vms.a]\nvcpus = 1\nmemory = "1G"\n[vms.b]\nvcpus = 1\nmemory = "1G"\n'
_ON = "[hardware.nvidia.virtualization]\nenable = true\n"
# Layouts beyond the reference profiles' (MGBE0 alone in net-vm; beside a
# GPU VM and a real-time VM, with shared-memory channels): MGBE0 after or
# before another platform device in its VM, and in the second of two VMs
# (each then with a BPMP proxy of its own, GG307).
MGBE0_LAYOUTS = {
    "after uarta, one VM": (
        _ON + '[hardware.nvidia.passthroughs.uarta]\nvm = "a"\n'
        '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n' + _VMS
    ),
    "before i2c1, one VM": (
        _ON + '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n'
        '[hardware.nvidia.passthroughs.i2c1]\nvm = "a"\n' + _VMS
    ),
    "the second VM, a BPMP proxy per VM": (
        _ON.replace("true\n", "true\nbpmp_per_vm = true\n")
        + '[hardware.nvidia.passthroughs.uarta]\nvm = "a"\n'
        '[hardware.nvidia.passthroughs.mgbe0]\nvm = "b"\n' + _VMS
    ),
}


def _mgbe0_vms(p: TargetPlan) -> list[str]:
    return [vm.name for vm in p.vms if any(d.key == "mgbe0" for d in vm.platform)]


def test_mgbe0_gets_startup_rearm_in_every_layout(parse):
    """Every VM given MGBE0, in every reference profile that passes it and in
    each layout above, asks QEMU for it as Ghaf does: once, with startup-rearm."""
    from ghafgen import catalog

    board = catalog.load().board("jetson-agx-orin-devkit")
    layouts = [(p.name, p) for p in PLANS if _mgbe0_vms(p)]
    # Which reference profiles pass MGBE0, from their text: none goes unchecked.
    passing = {p.stem for p in PROFILES if "passthroughs.mgbe0]" in p.read_text()}
    assert len(layouts) == len(passing) == 2, (layouts, passing)
    for name, text in MGBE0_LAYOUTS.items():
        _board, found = apply_rules(load_text(AGX + text, "p.toml"), catalog.load())
        assert not [f.render() for f in found if f.severity is Severity.ERROR], name
        layouts.append((name, plan(parse(AGX + text), board, "p.toml")))
    for name, p in layouts:
        (vm_name,) = _mgbe0_vms(p)
        vm = next(vm for vm in p.vms if vm.name == vm_name)
        devices = [a for a in vm.qemu_args if a.startswith("vfio-platform,")]
        assert devices.count(GHAF_MGBE0_DEVICE) == 1, (name, devices)
        assert not [
            d for d in devices if "6800000.ethernet" in d and d != GHAF_MGBE0_DEVICE
        ]
        others = [a for v in p.vms if v.name != vm_name for a in v.qemu_args]
        assert not [a for a in others if "6800000.ethernet" in a], name
    for name, _p in layouts[:2]:
        nix = (MODULES / name / "vms" / "net-vm.nix").read_text()
        assert f'"{GHAF_MGBE0_DEVICE}"' in nix, name
    assert (
        "patches/0006-vfio-platform-rearm-automasked-lines.patch"
        in catalog.load().qemu_build.irqfd_patches
    )


# 6. Kernels by series, checked by assertions, never a patch that fails to apply.


def test_hooks_exist_for_the_pinned_series():
    pins = catalog.load().kernel_pins
    assert pins.host_series in pins.bpmp_hooks and pins.guest_series in pins.bpmp_hooks
    assert set(pins.bpmp_hooks) == {"6.6", "6.12"}
    for path in pins.bpmp_hooks.values():
        assert path.startswith(
            catalog.load().sources["ghaf"].paths["bpmp_sources"].split("/common/")[0]
        )


@pytest.mark.parametrize("p", PLANS, ids=[p.name for p in PLANS])
def test_bpmp_guests_pin_their_kernel_and_assert_it(p: TargetPlan):
    out = files(p)
    for vm in p.vms:
        nix = out[f"vms/{vm.name}.nix"]
        if vm.bpmp:
            assert vm.guest_kernel == catalog.load().kernel_pins.guest_series
            if vm.gpu:
                # NVIDIA's out-of-tree modules on the same series.
                assert "(pkgs.linuxPackages_6_12.extend pkgs.nvidia-jetpack" in nix
            else:
                assert (
                    "boot.kernelPackages = lib.mkDefault pkgs.linuxPackages_6_12;"
                    in nix
                )
            assert 'kernel.version == "6.12";' in nix
    if p.bpmp:
        assertions = out["assertions.nix"]
        assert all(
            f'"{s}"' in assertions for s in catalog.load().kernel_pins.host_bpmp_series
        )
        assert '"6.12"' not in assertions
        hooks = out["bpmp-virt.nix"]
        assert "hooks.${series}" in hooks and "versionAtLeast" not in hooks


@pytest.mark.parametrize("kernel", ["6.1", "6.12", "6.13"])
def test_a_kernel_without_hooks_is_refused_before_any_build(kernel: str):
    text = (
        AGX
        + f'kernel_version = "{kernel}"\n[hardware.nvidia.virtualization]\nenable = true\n'
        '[hardware.nvidia.passthroughs.uarta]\nvm = "a"\n[vms.a]\nvcpus = 1\nmemory = "1G"\n'
    )
    _board, found = apply_rules(load_text(text, "p.toml"), catalog.load())
    assert "GG303" in {f.rule_id for f in found}


def test_show_prints_what_runs_per_vm():
    from typer.testing import CliRunner

    from ghafgen.cli import app

    out = CliRunner().invoke(
        app, ["show", str(ROOT / "profiles/orin-agx-mgbe0-net-vm.toml")]
    )
    assert out.exit_code == 0, out.output
    assert "host   Linux 6.6" in out.output
    assert "arm-smmu.disable_bypass=0 (mgbe0)" in out.output
    assert f"net-vm QEMU {catalog.load().qemu_build.version}" in out.output
    assert "Linux 6.12 (pinned)" in out.output
    got = CliRunner().invoke(
        app,
        ["show", "--format", "json", str(ROOT / "profiles/orin-agx-uarta.toml")],
    )
    import json

    runtime = json.loads(got.output)[0]["runtime"]
    assert runtime["vms"][0]["kernel"] == "6.12"
    assert (
        "qemu-vfio-platform-bindings-uart-vm.patch (ghafgen)"
        in runtime["vms"][0]["qemu_patches"]
    )
