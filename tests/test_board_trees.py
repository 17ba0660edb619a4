"""Reference profiles on their own board's real tree (linux 6.12).

The Orin NX and Orin Nano profiles, and every other mainline profile, get
their host overlays applied with fdtoverlay to the tree of the board they
name (tegra234-p3768-0000+p3767-0000.dts, -0005.dts, the P3737 tree). On the
result: each passed node is enabled and marked, the proxy's allow list covers
the node's real clocks and resets, and it holds nothing of any other node of
the tree (protected roots aside) and never EMC.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.render.files import render_target
from ghafgen.render.plan import plan
from ghafgen.rules.engine import validate
from tests.conftest import ROOT, require
from tests.test_real_tools import apply_host_overlays, phandle_ids
from tests.trees import Tree

T234 = catalog.load().soc("t234")
PROTECTED = {r.id for r in T234.clocks.values() if r.protected}


def _profiles_on_612() -> list[str]:
    """Reference profiles whose board has a 6.12 tree and whose passed platform
    devices all have a node there and a VM (the 6.12 tree stands in for JetPack
    6's for the L4T-flavoured ones; UARTI has no mainline node, and a device
    started by hand has no QEMU binding to check)."""
    out = []
    for p in sorted((ROOT / "profiles").glob("*.toml")):
        profile, board = validate([p], catalog.load()).usable[0]
        devices = [pt for pt in profile.enabled if pt.device in board.devices]
        if (
            board.mainline_dts
            and devices
            and all(pt.vm for pt in devices)
            and all("mainline" in board.devices[pt.device].flavors for pt in devices)
        ):
            out.append(p.stem)
    return out


PROFILES = _profiles_on_612()


def test_the_new_boards_have_reference_profiles():
    boards = {
        validate([ROOT / "profiles" / f"{n}.toml"], catalog.load()).usable[0][1].name
        for n in PROFILES
    }
    assert {
        "jetson-orin-nx-devkit",
        "jetson-orin-nx-devkit+p3767-0001",
        "jetson-orin-nx-devkit+p3767-0005",
        "jetson-agx-orin-devkit+p3701-0008",
    } <= boards


def _bpmp_ids(tree: Tree, path: str, prop: str) -> set[int]:
    return set(phandle_ids(tree, path, prop)) if tree.maybe(path, prop) else set()


@pytest.mark.parametrize("name", PROFILES)
def test_profile_on_its_boards_612_tree(name: str, trees_612, tmp_path: Path):
    require("fdtoverlay")
    path = ROOT / "profiles" / f"{name}.toml"
    profile, board = validate([path], catalog.load()).usable[0]
    files = render_target(plan(profile, board, path.name))
    tree = apply_host_overlays(files, trees_612[board.mainline_dts], tmp_path)
    proxy = "/bpmp_host_proxy"
    allowed = {
        k: set(tree.cells(proxy, f"allowed-{k}"))
        if tree.has(proxy) and tree.maybe(proxy, f"allowed-{k}")
        else set()
        for k in ("clocks", "resets", "power-domains")
    }
    assert T234.clocks["EMC"].id not in allowed["clocks"]
    passed = set()
    for pt in profile.enabled:
        dev = board.devices.get(pt.device)
        if dev is None:
            continue
        node = dev.flavors["mainline"].path
        passed.add(node)
        assert tree.string(node, "status") == "okay", node
        if dev.needs_sid_marking:
            assert tree.cells(node, "iommus")[1] == board.soc.passthrough_sid
            assert tree.maybe(node, "dma-coherent") is not None
        # The host node's compatible is one QEMU's binding patch names.
        compat = tree.string(node, "compatible")
        patch = next(
            (v for k, v in files.items() if k.startswith("patches/qemu-vfio-platform")),
            b"",
        ).decode()
        if not dev.guest.qemu_emits_node:
            assert f'VFIO_PLATFORM_BINDING("{compat}", no_fdt_node)' in patch, compat
        for prop in ("clocks", "resets", "power-domains"):
            real = _bpmp_ids(tree, node, prop)
            assert real <= allowed[prop], (dev.key, prop, sorted(real - allowed[prop]))
    for other in tree.walk():
        if other in passed or any(other.startswith(p + "/") for p in passed):
            continue
        if other.startswith("/bpmp_host_proxy") or not tree.maybe(other, "clocks"):
            continue
        # Only <&bpmp ID> lists: nodes outside /bus@0 may use other providers.
        if not other.startswith("/bus@0/"):
            continue
        assert not (_bpmp_ids(tree, other, "clocks") - PROTECTED) & allowed["clocks"], (
            other
        )
        assert not _bpmp_ids(tree, other, "resets") & allowed["resets"], other
        assert not _bpmp_ids(tree, other, "power-domains") & allowed["power-domains"], (
            other
        )
