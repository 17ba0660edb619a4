"""Every committed host overlay on the tree it is written for.

All committed targets are L4T-flavoured. JetPack 6's own tree is not
installable here; Debian's linux-source-6.12 tree has its layout (PCIe under
/bus@0, the `uarti` label, SMMU labels) and stands in for it. Mainline 6.1
does not: four of the overlays target nodes it lacks, which the last test
shows. Only committed files are applied here, never a re-render.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.catalog.fdtview import FdtView
from ghafgen.toolchain.realtools import read_meta
from tests.conftest import ROOT, require, run_ghafgen
from tests.trees import Tree, run

MODULES = ROOT / "nix" / "modules"
OVERLAYS = sorted(MODULES.glob("*/overlays/*.dts"))
TARGETS = sorted({p.parent.parent for p in OVERLAYS})

pytestmark = pytest.mark.real_tools


def compile_overlay(src: Path, tmp: Path) -> Path:
    dtbo = tmp / (src.parent.parent.name + "--" + src.stem + ".dtbo")
    run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(src)])
    return dtbo


def fragments(dtbo: Path, base: Tree) -> list[tuple[str, int, FdtView]]:
    """(target path in the base tree, __overlay__ offset, view) of each fragment."""
    view = FdtView(dtbo.read_bytes())
    symbols = FdtView(base.blob).symbols()
    fixups = view.offset("/__fixups__")
    by_fragment: dict[str, str] = {}
    if fixups >= 0:
        for label, where in view.props(fixups).items():
            for ref in where.rstrip(b"\0").split(b"\0"):
                node, prop, _ = ref.decode().split(":")
                if prop == "target":
                    by_fragment[node] = symbols[label]
    out = []
    for off in view.children(0):
        name = view.fdt.get_name(off)
        if not name.startswith("fragment@"):
            continue
        path = view.strings(off, "target-path")
        target = path[0] if path else by_fragment[f"/{name}"]
        out.append((target, view.fdt.subnode_offset(off, "__overlay__"), view))
    return out


def plain_props(view: FdtView, off: int, path: str) -> dict[str, bytes]:
    """An overlay node's properties that hold no phandle to fix up."""
    fixed = set()
    for root in ("/__fixups__", "/__local_fixups__"):
        r = view.offset(root)
        if r < 0:
            continue
        for value in view.props(r).values():
            for ref in value.rstrip(b"\0").split(b"\0"):
                node, _, rest = ref.decode().partition(":")
                fixed.add((node, rest.partition(":")[0]))
        # __local_fixups__ mirrors the overlay's tree; its property names are
        # the ones holding a local phandle.
    local = view.offset("/__local_fixups__" + path)
    if local >= 0:
        fixed |= {(path, name) for name in view.props(local)}
    renumbered = {"phandle", "linux,phandle"}  # fdtoverlay renumbers phandles
    return {
        k: v
        for k, v in view.props(off).items()
        if (path, k) not in fixed and k not in renumbered
    }


@pytest.mark.parametrize(
    "dts", OVERLAYS, ids=[str(p.relative_to(MODULES)) for p in OVERLAYS]
)
def test_committed_overlay_applies_to_the_6_12_tree(
    dts: Path, orin_dtb_612: Path, tmp_path: Path
):
    """Applied with fdtoverlay; every property it sets is in the result, at its target."""
    require("fdtoverlay")
    base = Tree(orin_dtb_612)
    dtbo = compile_overlay(dts, tmp_path)
    out = tmp_path / "host.dtb"
    run(["fdtoverlay", "-i", str(orin_dtb_612), "-o", str(out), str(dtbo)])
    applied = FdtView(out.read_bytes())
    checked = 0
    for target, ov, view in fragments(dtbo, base):
        ov_path = view.fdt.get_path(ov)
        stack = [(ov, ov_path, target)]
        while stack:
            off, src_path, dest = stack.pop()
            node = applied.offset(dest)
            assert node >= 0, f"{dest} missing after applying {dts.name}"
            got = applied.props(node)
            for name, value in plain_props(view, off, src_path).items():
                assert got.get(name) == value, f"{dest}:{name}"
                checked += 1
            for child in view.children(off):
                name = view.fdt.get_name(child)
                stack.append(
                    (child, f"{src_path}/{name}", f"{dest.rstrip('/')}/{name}")
                )
    assert checked, f"{dts.name} set nothing the test could see"


def _ids(tree: Tree, node: str, prop: str) -> set[int]:
    """IDs of a `<&provider ID>, ...` list."""
    return set(tree.cells(node, prop)[1::2]) if tree.maybe(node, prop) else set()


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_target_overlays_together_on_the_6_12_tree(
    target: Path, orin_dtb_612: Path, tmp_path: Path
):
    """The tree the board boots: each passed device marked, the allow list covering it."""
    require("fdtoverlay")
    dtbos = [
        str(compile_overlay(f, tmp_path)) for f in sorted(target.glob("overlays/*.dts"))
    ]
    out = tmp_path / "host.dtb"
    run(["fdtoverlay", "-i", str(orin_dtb_612), "-o", str(out), *dtbos])
    tree = Tree(out)
    board = catalog.load().board(read_meta(target)["board"])
    symbols = FdtView(tree.blob).symbols()
    proxy = "/bpmp_host_proxy"
    manifest = (target / "ghafgen-manifest.json").read_text()
    vm_files = {p.stem: p.read_text() for p in sorted(target.glob("vms/*.nix"))}
    checked = 0
    for dev in board.devices.values():
        if dev.group == "display" and "display-passthrough.dts" in manifest:
            checked += _check_display(tree, board, vm_files, proxy)
            continue
        arg = re.compile(rf'"vfio-platform,host={re.escape(dev.dt_name)}[",]')
        owners = [vm for vm, text in vm_files.items() if arg.search(text)]
        if not owners and f"{dev.key}-passthrough.dts" not in manifest:
            continue
        # In the per-VM form the owner's own child node holds its list.
        lists = (
            f"{proxy}/{owners[0]}"
            if owners and tree.has(f"{proxy}/{owners[0]}")
            else proxy
        )
        checked += 1
        label = dev.flavors["l4t"].label
        withheld: set[int] = set()
        if dev.group:
            # The group's overlay re-creates the node vfio binds (and the tree
            # may lack the original: 6.12 has no GPU or NVJPG node).
            eng = catalog.load().gpu_group.engines[dev.key]
            node = f"{eng.host_parent}/{dev.node}"
            assert tree.cells(node, "iommus")[1] == dev.iommu_sid, node
            assert tree.maybe(node, "dma-coherent") is not None, node
            assert tree.string(node, "compatible") == "nvidia,dummy", node
            withheld = {board.soc.clocks[c].id for c in dev.withheld}
        else:
            # 6.12 has no `mgbe0` label (JetPack's tree has one): the node by path.
            node = symbols.get(label) or dev.flavors["mainline"].path
        assert tree.string(node, "status") == "okay", node
        if dev.needs_sid_marking:
            assert tree.cells(node, "iommus")[1] == board.soc.passthrough_sid
        if tree.has(proxy):
            for kind in ("clocks", "resets", "power-domains"):
                real = _ids(tree, node, kind) - (
                    withheld if kind == "clocks" else set()
                )
                raw = tree.maybe(lists, f"allowed-{kind}")
                allowed = set(tree.cells(lists, f"allowed-{kind}")) if raw else set()
                assert real <= allowed, f"{dev.key}: {kind} {sorted(real - allowed)}"
    for slot in board.slots.values():
        ctl = slot.controller.flavors["l4t"].path
        if f"{slot.key}-iommu-group.dts" in manifest:
            checked += 1
            assert tree.maybe(ctl, "iommus") == b"", ctl
    assert checked, f"{target.name}: no passed device or slot found to check"


def _check_display(tree: Tree, board, vm_files: dict[str, str], proxy: str) -> int:  # type: ignore[no-untyped-def]
    """The display stays the host's; its VM's carve-out and keyhole wrappers are
    in the tree for vfio, each on its stream ID, and the display's BPMP IDs are
    in that VM's own list."""
    roles = catalog.load().gpu_roles.roles
    wrappers = [(c.wrapper, c.base, c.sid) for c in roles["display"].carveouts] + [
        (h.wrapper, h.base, h.sid) for h in roles["display"].keyholes
    ]
    owner = ""
    for name, base, sid in wrappers:
        dt_name = f"{base:x}.{name}"
        vms = [vm for vm, text in vm_files.items() if f"host={dt_name}," in text]
        if not vms:
            continue  # gui-vm takes scanout only
        owner = vms[0]
        node = f"/{name}@{base:x}"
        assert tree.string(node, "compatible") == "nvidia,dummy", node
        assert tree.string(node, "status") == "okay", node
        assert tree.cells(node, "iommus")[1] == sid, node
        assert tree.maybe(node, "dma-coherent") is not None, node
    assert owner, "no VM passes the display's wrappers"
    dev = board.devices["display"]
    lists = f"{proxy}/{owner}" if tree.has(f"{proxy}/{owner}") else proxy
    for kind, names in (
        ("clock", dev.clocks),
        ("reset", dev.resets),
        ("power-domain", dev.power_domains),
    ):
        real = {board.soc.resource(kind, n).id for n in names}
        assert real <= set(tree.cells(lists, f"allowed-{kind}s")), kind
    return 1


def test_where_6_12_differs_from_the_l4t_view_the_targets_rely_on(orin_dtb_612: Path):
    """Facts of the stand-in that docs/runtime.md lists as unproven for L4T.

    The catalog's L4T view gives the PCIe root ports `iommus` (Ghaf's overlay
    empties it); 6.12 maps their endpoints with `iommu-map` only, so
    `iommus = <>` applies there but has nothing to take away. The L4T view
    names MGBE0 by a `mgbe0` label, which 6.12 lacks (no committed overlay
    targets it).
    """
    tree = Tree(orin_dtb_612)
    board = catalog.load().board("jetson-agx-orin-devkit")
    for key in ("pcie-m2e", "pcie-x8"):
        ctl = board.slots[key].controller.flavors["l4t"]
        assert ctl.controller_iommus
        assert tree.maybe(ctl.path, "iommus") is None
        assert tree.maybe(ctl.path, "iommu-map") is not None
    assert "mgbe0" not in FdtView(tree.blob).symbols()
    assert tree.has(board.devices["mgbe0"].flavors["mainline"].path)


def test_l4t_overlays_do_not_fit_mainline_6_1(orin_dtb: Path):
    """Why 6.1 is no stand-in: it lacks nodes four committed overlays of the AGX
    devkit's L4T targets target (the tree is that board's)."""
    done = run_ghafgen(
        "check", "nix/modules", "--base-dtb", str(orin_dtb), "--no-schemas"
    )
    l4t = {
        t.name
        for t in TARGETS
        if read_meta(t).get("dt_flavor") == "l4t"
        and read_meta(t).get("board") == "jetson-agx-orin-devkit"
    }
    lacking = [
        ln
        for ln in done.stdout.splitlines()
        if ln.startswith("FAIL overlay") and ln.split()[2].split("/")[0] in l4t
    ]
    assert len(lacking) == 4, done.stdout
    assert all("lacks" in ln for ln in lacking)


@pytest.mark.parametrize("name", catalog.load().board_names())
def test_catalog_board_dts_builds_from_6_12(name: str, kernel_src_612: Path):
    """The DTS file name `check` builds is the board the catalog describes."""
    from ghafgen.toolchain import basetrees

    require("cpp")
    board = catalog.load().board(name)
    tree = Tree(basetrees.board_dtb(kernel_src_612, board.dts))
    assert tree.string("/", "model") == board.dt_model or board.fact.uncertain
    compatible = tree.maybe("/", "compatible").decode().split("\0")
    if board.dt_compatible not in compatible:
        # A module SKU without a mainline tree of its own: its carrier's stands in.
        assert board.module is not None and "+" in name, name
        assert f"nvidia,{board.carrier}+{board.module.sku}" == board.dt_compatible
        assert any(c.startswith(f"nvidia,{board.carrier}+") for c in compatible)


def test_check_applies_host_overlays_without_base_dtb(kernel_src_612: Path):
    """As the README sets a machine up: the base tree comes from linux-source-6.12."""
    require("fdtoverlay")
    done = run_ghafgen("check", "nix/modules", "--no-schemas")
    assert done.returncode == 0, done.stdout + done.stderr
    applied = [ln for ln in done.stdout.splitlines() if ln.startswith("ok   overlay")]
    assert len(applied) == len(OVERLAYS)
    # L4T targets get 6.12 as the L4T stand-in; mainline 6.12 targets get their own.
    flavor = {t.name: read_meta(t).get("dt_flavor") for t in TARGETS}
    for ln in applied:
        target = ln.split()[2].split("/")[0]
        wanted = (
            "linux-source-6.12, stand-in for the L4T tree"
            if flavor[target] == "l4t"
            else "(linux-source-6.12)"
        )
        assert wanted in ln, ln


def test_check_says_what_it_skipped_without_sources(tmp_path: Path):
    env = {**os.environ, "GHAFGEN_KERNEL_SOURCES": str(tmp_path)}
    done = run_ghafgen("check", "nix/modules/nvidia-jetson-orin-agx-uarta", env=env)
    lines = done.stdout.splitlines()
    overlays = [ln for ln in lines if " overlay " in ln]
    assert overlays and all(
        ln.startswith("skip")
        and "host overlays not applied: no base tree; pass "
        "--base-dtb or install linux-source-6.12"
        in ln
        for ln in overlays
    ), done.stdout
    assert any(ln.startswith("skip schema") for ln in lines)
    summary = done.stderr.strip().splitlines()[-1]
    skipped = sum(ln.startswith("skip") for ln in lines)
    assert summary.endswith(f"; {skipped} not run (listed as skip, with why)")
    assert not [ln for ln in lines if ln.startswith("ok   overlay")]


@pytest.mark.parametrize("version", ["6.12", "6.6", "6.1"])
def test_a_mainline_profile_is_checked_on_the_tree_of_the_kernel_it_pins(
    version: str, tmp_path: Path, kernel_src_612: Path
):
    """Mainline-flavoured output is checked on its own kernel's tree; a series
    whose source is not installed (6.6: Debian has none) gets an installed
    series' tree only where the catalog keys the same node paths and labels for
    both, and says so with the IDs that differ; otherwise a skip names the
    linux-source package to install. Only 6.12 is installed here. (A BPMP host
    must run 6.6, GG303; the other cases relabel the manifest's series.)"""
    only_612 = tmp_path / "src"
    only_612.mkdir()
    (only_612 / "linux-source-6.12.tar.xz").symlink_to(
        Path("/usr/src/linux-source-6.12.tar.xz")
    )
    text = (ROOT / "profiles" / "orin-agx-uarta.toml").read_text()
    text = text.replace("[target]\n", '[target]\ndt_flavor = "mainline"\n', 1)
    profile = tmp_path / "p.toml"
    profile.write_text(text)
    out = tmp_path / "out"
    assert run_ghafgen("generate", str(profile), "-o", str(out)).returncode == 0
    manifest = next(out.glob("*/ghafgen-manifest.json"))
    doc = json.loads(manifest.read_text())
    doc["host"]["kernel_series"] = version
    manifest.write_text(json.dumps(doc))
    env = {**os.environ, "GHAFGEN_KERNEL_SOURCES": str(only_612)}
    done = run_ghafgen("check", str(out), "--no-schemas", env=env)
    lines = [ln for ln in done.stdout.splitlines() if " overlay " in ln]
    assert len(lines) == 2, done.stdout
    if version == "6.12":
        assert all(
            ln.startswith("ok") and ln.endswith("(linux-source-6.12)") for ln in lines
        ), lines
    elif version == "6.6":
        # t234.toml: MGBE0 names MGBEA (17) in 6.6's dtsi, MGBEB (18) in 6.12's.
        assert all(
            ln.startswith("ok")
            and "(linux-source-6.12, stand-in for mainline 6.6, whose tree is not "
            "installed"
            in ln
            and "mgbe0 power-domains [17] in 6.6, [18] in 6.12" in ln
            for ln in lines
        ), lines
    else:
        # 6.1 keeps the PCIe controllers at the root and has no UARTI: no stand-in.
        assert all(
            ln.startswith("skip") and "install linux-source-6.1 " in ln for ln in lines
        ), lines
