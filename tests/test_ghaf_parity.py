"""Ghaf parity: --layout ghaf output, and the facts docs/ghaf-parity.md relies on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, require, run_ghafgen
from tests.facts import GHAF_MGBE0, GHAF_PROFILES
from tests.trees import run

MODULES = ROOT / "nix" / "modules"


def code(path: Path) -> str:
    """A Nix file without its comment lines."""
    return "\n".join(
        ln for ln in path.read_text().split("\n") if not ln.lstrip().startswith("#")
    )


ghafgen = run_ghafgen


@pytest.fixture(scope="module")
def ghaf_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ghaf-layout")
    done = ghafgen(
        "generate",
        "--layout",
        "ghaf",
        *[f"profiles/{p}.toml" for p in GHAF_PROFILES],
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    return out


def test_ghaf_layout_parses_with_real_nix(ghaf_out: Path):
    require("nix-instantiate")
    files = sorted(map(str, ghaf_out.rglob("*.nix")))
    run(["nix-instantiate", "--parse", *files])


def test_ghaf_layout_uses_ghaf_extension_points(ghaf_out: Path):
    host = (
        ghaf_out / "nvidia-jetson-orin-agx-mgbe0-net-vm" / "default.nix"
    ).read_text()
    assert "ghaf.hardware.definition.netvm.extraModules = [ ./vms/net-vm.nix ];" in host
    assert "ghaf.virtualization.vmConfig.sysvms.netvm = {" in host
    assert "microvm.vms" not in host
    guest = code(
        ghaf_out / "nvidia-jetson-orin-agx-mgbe0-net-vm" / "vms" / "net-vm.nix"
    )
    assert "ghaf.virtualization.qemu.package = lib.mkForce qemu;" in guest
    assert "pkgs.ghaf-qemu-bpmp" in guest
    assert '"vfio-platform,host=6800000.ethernet,startup-rearm=on"' in guest
    # Ghaf sets microvm.qemu.package from its own option; the module only reads it.
    assert "\n    qemu.package = " not in guest and "vcpu =" not in guest


def test_ghaf_layout_declares_no_options(ghaf_out: Path):
    for f in ghaf_out.rglob("*.nix"):
        assert not re.search(r"\boptions\s*[.=]", code(f)), f


def test_ghaf_layout_refuses_a_vm_ghaf_does_not_have(tmp_path: Path):
    done = ghafgen(
        "generate",
        "--layout",
        "ghaf",
        "profiles/orin-agx-uarta.toml",
        "-o",
        str(tmp_path / "out"),
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --layout ghaf: VM 'uart-vm' is not a Ghaf system VM; Ghaf extends guests "
        "through ghaf.hardware.definition.<vm> for gui-vm, audio-vm, net-vm, gpu-vm, disp-vm "
        "(rename the VM, or use the default layout)"
    ]
    assert not (tmp_path / "out").exists()


def proxy_ids(dts: str) -> dict[str, set[int]]:
    out = {}
    for kind in ("clocks", "resets", "power-domains"):
        m = re.search(rf"allowed-{kind} = <([0-9 ]+)>;", dts)
        out[kind] = {int(x) for x in m.group(1).split()} if m else set()
    return out


def test_mgbe0_allow_list_drops_nothing_ghaf_allows():
    """Fails if the generated MGBE0 list (L4T tree, as Ghaf boots) drops a clock, reset or
    power domain of the node; the real-tree proof for mainline is in test_real_tools."""
    dts = MODULES / "nvidia-jetson-orin-agx-mgbe0-net-vm/overlays/bpmp-host-proxy.dts"
    got = proxy_ids(dts.read_text())
    for kind, ghaf in GHAF_MGBE0.items():
        assert not ghaf - got[kind], f"{kind} dropped: {sorted(ghaf - got[kind])}"
        assert got[kind] == ghaf, f"{kind} beyond Ghaf's: {sorted(got[kind] - ghaf)}"


def test_uarta_allow_list_is_bpmp_virts_plus_the_protected_roots():
    """bpmp-virt's <155 102>, plus PLLP_OUT0's roots CLK_M (14) and OSC (91) that
    clk_prepare() walks to; both are protected roots of Ghaf's proxy."""
    dts = MODULES / "nvidia-jetson-orin-agx-uarta-host/overlays/bpmp-host-proxy.dts"
    assert proxy_ids(dts.read_text()) == {
        "clocks": {14, 91, 102, 155},
        "resets": {100},
        "power-domains": set(),
    }
