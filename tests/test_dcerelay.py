"""The DCE relay's host and guest pieces (render/dcerelay.py) for the VM a profile
gives the display to.

Expected values are Ghaf's, written here with the file:line they come from
(V = modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization of
the pinned Ghaf), never read back from ghafgen's catalog.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.render.dcerelay import dce_relay, relay_files
from ghafgen.render.dt import Fragment
from ghafgen.render.files import render_target
from ghafgen.render.plan import TargetPlan
from tests.conftest import ROOT
from tests.test_isolation import planned

CAT = catalog.load()

# A profile whose VM has BPMP-backed devices (the relay's host module takes the
# Ghaf tree from bpmp-virt.nix); the relay is asked for by hand, as a profile
# passing the display will ask for it.
GPU_PROFILE = ROOT / "profiles" / "orin-agx-gpu-vm.toml"
DCE = "modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization/common/dce-virt-common"


@pytest.fixture(scope="module")
def gpu_plan() -> TargetPlan:
    return planned(GPU_PROFILE.read_text())


def _fragment(frags: tuple[Fragment, ...], path: str) -> Fragment:
    (f,) = [f for f in frags if f.target_path == path]
    return f


def test_host_overlay_is_ghafs_three_host_changes():
    ov = dce_relay("disp-vm", CAT).host.overlay
    assert (
        ov.compatible == "nvidia,tegra234"
    )  # V/common/dce-virt-common/dce-probe-host.nix:35
    assert len(ov.fragments) == 3
    # dce-probe-host.nix:37-42: at the root, only the compatible (and status).
    (proxy,) = _fragment(ov.fragments, "/").nodes
    assert (proxy.name, proxy.label) == ("dce_host_proxy", "dce_host_proxy")
    assert [(p.name, str(p.value)) for p in proxy.props] == [
        ("compatible", '"nvidia,dce-host-proxy"'),
        ("status", '"okay"'),
    ]
    # V/passthrough/gpu-vm/gpu_passthrough_overlay.dts:293-297
    hda = _fragment(ov.fragments, "/bus@0/hda@3510000")
    assert [(p.name, str(p.value)) for p in hda.props] == [("status", '"disabled"')]
    assert hda.nodes == ()
    # gpu_passthrough_overlay.dts:131-138
    (fb,) = _fragment(ov.fragments, "/chosen").nodes
    assert fb.name == "framebuffer"
    assert [(p.name, str(p.value)) for p in fb.props] == [
        ("compatible", '"dummy"'),
        ("status", '"okay"'),
    ]


def test_the_proxy_device_belongs_to_the_display_owners_qemu_alone():
    r = dce_relay("disp-vm", CAT)
    assert r.host.device == "/dev/dce-host"  # dce-host-proxy.c:22
    assert r.user == "microvm-disp-vm"
    assert r.host.udev_rule == (
        'KERNEL=="dce-host", OWNER:="microvm-disp-vm", GROUP:="microvm-disp-vm", '
        'MODE:="0600"'
    )
    # In Ghaf's layout every VM's QEMU runs as microvm:kvm; the rule is Ghaf's
    # own, dce-probe-host.nix:142.
    ghaf = dce_relay("disp-vm", CAT, "ghaf")
    assert ghaf.user == ""
    assert ghaf.host.udev_rule == 'KERNEL=="dce-host", GROUP="kvm", MODE="0660"'


def test_host_is_kept_headless_as_ghafs():
    h = dce_relay("gui-vm", CAT).host
    # dce-probe-host.nix:118-123, :129-136, :58-61
    assert h.blacklist == ("nvidia", "nvidia_modeset", "nvidia_drm", "tegra_drm")
    assert h.modules == ("tegra-dce", "dce-host-proxy", "dce-iso-anchor")
    assert h.kernel_params == ("clk_ignore_unused", "pd_ignore_unused")
    # dce-probe-host.nix:90-102: what goes into nvidia-oot's dce folder.
    oot = "nvidia-oot/drivers/platform/tegra/dce"
    assert [dest for _src, dest in h.oot_files] == [
        f"{oot}/dce-host-proxy.c",
        f"{oot}/dce-host-proxy.h",
        f"{oot}/dce-iso-anchor.c",
    ]
    assert h.oot_objects == ("dce-host-proxy.o", "dce-iso-anchor.o")
    assert h.iso_anchor_header == f"{oot}/dce-iso-anchor-dtbo.h"


def test_guest_side_sets_the_bridge_in_exactly_that_vm():
    g = dce_relay("disp-vm", CAT).guest
    # V/passthrough/disp-vm/default.nix:144
    assert g.environment == (("GHAF_DCE_GUEST", "1"),)
    # V/passthrough/payload/default.nix:110-111
    assert g.modules == ("tegra-dce", "dce-guest-proxy")
    # V/passthrough/payload/guest-module.nix:147-151
    assert g.oot_patches == (
        f"{DCE}/patches/0001-dce-virt-hooks.patch",
        f"{DCE}/patches/0002-dce-client-ipc-inject.patch",
    )
    assert g.oot_files == (
        (
            f"{DCE}/sources/drivers/platform/tegra/dce-guest-proxy/dce-guest-proxy.c",
            "nvidia-oot/drivers/platform/tegra/dce/dce-guest-proxy.c",
        ),
    )
    # packages/pkgs-by-name/ghaf-qemu-bpmp/package.nix:80-81
    assert g.qemu_patches == (
        "patches/0001-nvidia-bpmp-guest-hooks.patch",
        "patches/0002-nvidia-dce-guest-hooks.patch",
    )


@pytest.mark.parametrize("name", ["Disp-vm", "disp vm", "a" * 33, "x\n", "../x", ""])
def test_a_vm_name_that_is_not_a_profile_vm_name_is_refused(name: str):
    with pytest.raises(ValueError, match="unsafe VM name"):
        dce_relay(name, CAT)


def test_host_module_sets_what_ghaf_sets_for_that_vm(gpu_plan: TargetPlan):
    # The split target gives the display to disp-vm: the plan carries its relay.
    assert gpu_plan.relay is not None and gpu_plan.relay.vm == "disp-vm"
    files = relay_files(gpu_plan, gpu_plan.relay)
    assert set(files) == {"dce-relay.nix", "overlays/dce-relay-host.dts"}
    host = files["dce-relay.nix"].decode()
    for line in (
        '  systemd.services."microvm@disp-vm" = {',
        '    environment.GHAF_DCE_GUEST = "1";',
        "      dtsFile = ./overlays/dce-relay-host.dts;",
        "  boot.extraModulePackages = [ dceModules ];",
        "  ghafSrc = (import ./bpmp-virt.nix { inherit lib pkgs; }).src;",
        # dce-probe-host.nix:94, :102
        "          echo 'obj-m += dce-host-proxy.o' >> "
        "nvidia-oot/drivers/platform/tegra/dce/Makefile",
        "          echo 'obj-m += dce-iso-anchor.o' >> "
        "nvidia-oot/drivers/platform/tegra/dce/Makefile",
    ):
        assert line in host.splitlines(), line
    # Ghaf's files come from the pinned tree, never from the output folder.
    assert (
        "${ghafSrc}/" + DCE + "/sources/drivers/platform/tegra/dce-host-proxy/" in host
    )
    assert "./sources" not in host
    dts = files["overlays/dce-relay-host.dts"].decode()
    assert '\t\ttarget-path = "/bus@0/hda@3510000";' in dts.splitlines()


def test_the_bpmp_virt_file_the_relay_imports_is_in_the_target(gpu_plan: TargetPlan):
    assert "bpmp-virt.nix" in render_target(gpu_plan)


def test_only_a_target_that_passes_the_display_has_the_relay():
    """The relay's files and its device are written only for a display owner,
    and then GHAF_DCE_GUEST is set once, for one VM."""
    for folder in sorted((ROOT / "nix" / "modules").iterdir()):
        texts = [
            f.read_text(errors="replace") for f in folder.rglob("*") if f.is_file()
        ]
        if (folder / "dce-relay.nix").exists():
            assert sum(t.count("GHAF_DCE_GUEST") for t in texts) == 1, folder.name
        else:
            assert not any("dce-host" in t or "GHAF_DCE_GUEST" in t for t in texts)


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


@pytest.mark.usefixtures("nixpkgs_lib", "microvm_src")
def test_host_module_evaluates_with_the_target_and_merges_device_access(
    gpu_plan: TargetPlan, tmp_path: Path
):
    """nix-instantiate over the pinned nixpkgs lib (tests/data/eval): the target's
    own modules plus the relay's; the VM's DeviceAllow= (isolation.nix) holds
    the proxy device, written once, and only that VM's unit gets GHAF_DCE_GUEST."""
    from tests.test_nixos_eval import evaluate

    relay = dce_relay("disp-vm", CAT)
    _write(tmp_path, render_target(gpu_plan) | relay_files(gpu_plan, relay))
    (tmp_path / "both.nix").write_text(
        "{ imports = [ ./default.nix ./dce-relay.nix ]; }\n"
    )
    got = evaluate(tmp_path / "both.nix", "host", host_series="6.6")
    services = got["services"]
    assert isinstance(services, dict)
    unit = services["microvm@disp-vm"]
    assert unit["environment"] == {"GHAF_DCE_GUEST": "1"}
    (access,) = [a for a in gpu_plan.access if a.vm == "disp-vm"]
    assert "/dev/dce-host" in access.devices  # t234-display.toml [host.proxy]
    assert sorted(unit["DeviceAllow"]) == sorted(f"{d} rw" for d in access.devices)
    assert [s for s, u in services.items() if u["environment"]] == ["microvm@disp-vm"]
    blacklist = got["blacklist"]
    assert isinstance(blacklist, list)
    assert {"nvidia", "nvidia_modeset", "nvidia_drm", "tegra_drm"} <= set(blacklist)
    assert got["kernelModules"] == ["tegra-dce", "dce-host-proxy", "dce-iso-anchor"]
    assert got["extraModulePackages"] == ["nvidia-oot-modules-patched"]
    assert "ghafgen-dce-relay-host" in got["overlays"]  # type: ignore[operator]
    udev = str(got["udev"]).splitlines()
    assert relay.host.udev_rule in udev
    assert {"clk_ignore_unused", "pd_ignore_unused"} <= set(got["kernelParams"])  # type: ignore[arg-type]
    assert got["assertions"] == [True] * len(got["assertions"])  # type: ignore[arg-type]


@pytest.mark.usefixtures("nixpkgs_lib", "microvm_src")
def test_a_host_kernel_the_proxy_does_not_build_on_is_an_assertion(
    gpu_plan: TargetPlan, tmp_path: Path
):
    from tests.test_nixos_eval import evaluate

    _write(
        tmp_path,
        render_target(gpu_plan) | relay_files(gpu_plan, dce_relay("disp-vm", CAT)),
    )
    (tmp_path / "relay.nix").write_text("{ imports = [ ./dce-relay.nix ]; }\n")
    # The series check first, then jetpack-nixos's overlay being there.
    assert evaluate(tmp_path / "relay.nix", "host", host_series="6.6")[
        "assertions"
    ] == [True, True]
    assert evaluate(tmp_path / "relay.nix", "host", host_series="6.12")[
        "assertions"
    ] == [False, True]


@pytest.mark.usefixtures("nixpkgs_lib", "microvm_src")
def test_in_ghafs_layout_the_host_side_is_ghafs_own(tmp_path: Path):
    """Ghaf's AGX and NX hosts import dce-probe-host.nix themselves
    (modules/reference/hardware/jetpack/agx/orin-agx.nix:14): ghafgen adds no
    second proxy, overlay or module build, only the VM's GHAF_DCE_GUEST."""
    from tests.test_nixos_eval import evaluate

    plan = planned(GPU_PROFILE.read_text(), "ghaf")
    files = relay_files(plan, dce_relay("disp-vm", CAT, "ghaf"))
    assert set(files) == {"dce-relay.nix"}
    _write(tmp_path, render_target(plan) | files)
    got = evaluate(tmp_path / "dce-relay.nix", "host", layout="ghaf")
    services = got["services"]
    assert isinstance(services, dict)
    assert services["microvm@disp-vm"]["environment"] == {"GHAF_DCE_GUEST": "1"}
    assert (got["overlays"], got["kernelModules"], got["blacklist"]) == ([], [], [])
    assert got["udev"] == ""


# What the stubs' fetchFromGitHub gives for the pinned Ghaf (tests/data/eval/stubs.nix).
FAKE_GHAF = "/nix/store/00000000000000000000000000000000-source"


@pytest.mark.usefixtures("nixpkgs_lib", "microvm_src", "ghaf_src")
def test_the_host_module_build_step_runs_on_ghafs_files(
    gpu_plan: TargetPlan, tmp_path: Path
):
    """The postPatch the host module adds to NVIDIA's out-of-tree modules, as
    Nix evaluates it, run by bash on the pinned Ghaf tree (its real install,
    dtc and xxd): the proxy and anchor land where Ghaf puts them
    (D/dce-probe-host.nix:90-102) and the embedded overlay is the anchor's."""
    import subprocess

    import libfdt

    from tests import pinned
    from tests.conftest import require
    from tests.test_nixos_eval import evaluate

    for tool in ("bash", "install", "dtc", "xxd"):
        require(tool)
    target = tmp_path / "target"
    _write(
        target,
        render_target(gpu_plan) | relay_files(gpu_plan, dce_relay("disp-vm", CAT)),
    )
    got = evaluate(target / "dce-relay.nix", "host", host_series="6.6")
    (script,) = got["extraModulePostPatch"]  # type: ignore[misc]
    assert FAKE_GHAF in script
    work = tmp_path / "oot"
    work.mkdir()
    (work / "step.sh").write_text(script.replace(FAKE_GHAF, str(pinned.tree("ghaf"))))
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "step.sh"],
        check=False,
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    dce = work / "nvidia-oot/drivers/platform/tegra/dce"
    assert sorted(p.name for p in dce.iterdir()) == [
        "Makefile",
        "dce-host-proxy.c",
        "dce-host-proxy.h",
        "dce-iso-anchor-dtbo.h",
        "dce-iso-anchor.c",
    ]
    assert (dce / "Makefile").read_text() == (
        "obj-m += dce-host-proxy.o\nobj-m += dce-iso-anchor.o\n"
    )
    # The C array xxd wrote, back to bytes: the anchor's overlay (its two nodes,
    # dce-iso-anchor.dts:12-41).
    header = (dce / "dce-iso-anchor-dtbo.h").read_text()
    assert header.startswith("unsigned char dce_iso_anchor_dtbo[] = {")
    body = header.split("{", 1)[1].split("}", 1)[0]
    blob = bytes(int(b, 16) for b in body.replace(",", " ").split())
    fdt = libfdt.Fdt(blob)
    overlay = fdt.path_offset("/fragment@0/__overlay__")
    names = []
    node = fdt.first_subnode(overlay, libfdt.QUIET_NOTFOUND)
    while node >= 0:
        names.append(fdt.get_name(node))
        assert fdt.getprop(node, "compatible").as_str() == "nvidia,dce-iso-anchor"
        node = fdt.next_subnode(node, libfdt.QUIET_NOTFOUND)
    assert names == ["dce_iso_anchor", "dce_niso_anchor"]


def test_the_relays_guest_patches_are_the_display_roles_guest_patches():
    """One truth for the guest's side: the hook patches and the guest proxy the
    relay's facts name (t234-display.toml) are those the display roles' guest
    applies inside nvidia-oot (t234-gpu.toml [guest_dce]), in Ghaf's order
    (guest-module.nix:147-151)."""
    relay_side = [p.rsplit("/", 1)[-1] for p in CAT.dce_relay.sources.oot_patches]
    dce = CAT.gpu_guest_role("display").dce
    assert dce is not None
    guest_side = [CAT.sources["ghaf"].paths[k].rsplit("/", 1)[-1] for k in dce.patches]
    assert (
        relay_side
        == guest_side
        == [
            "0001-dce-virt-hooks.patch",
            "0002-dce-client-ipc-inject.patch",
        ]
    )
