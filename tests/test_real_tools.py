"""Generated files checked with the real tools: Nix, dtc, fdtoverlay, QEMU's tree, git apply.

CI installs every tool (scripts/install.sh), so there these tests run; a
developer machine without one skips with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.render.files import render_target
from ghafgen.render.plan import plan
from ghafgen.rules.engine import validate
from ghafgen.toolchain.guestbase import (
    add_bridge_node,
    name_bridge_node,
    refers_to_bridge,
)
from tests.conftest import ROOT, require
from tests.trees import Tree, run

MODULES = ROOT / "nix" / "modules"
NIX_FILES = sorted(MODULES.rglob("*.nix"))
DTS_FILES = sorted(MODULES.rglob("*.dts"))
# A guest overlay's target is QEMU's tree, which dtc does not see when it
# compiles the overlay alone: it cannot know the bus's interrupt-parent or
# that an alias path will exist. Both are checked after applying, below.
GUEST_OVERLAY_WARNINGS = (
    "interrupts_property",
    "alias_paths",
    "avoid_unnecessary_addr_size",
)


def test_every_generated_nix_file_parses():
    require("nix-instantiate")
    run(["nix-instantiate", "--parse", *map(str, NIX_FILES), str(ROOT / "flake.nix")])


@pytest.mark.parametrize(
    "dts", DTS_FILES, ids=[str(p.relative_to(MODULES)) for p in DTS_FILES]
)
def test_every_generated_dts_compiles_with_dtc(dts: Path, tmp_path: Path):
    require("dtc")
    done = run(
        [
            "dtc",
            "-@",
            "-I",
            "dts",
            "-O",
            "dtb",
            "-o",
            str(tmp_path / "out.dtbo"),
            str(dts),
        ]
    )
    warnings = re.findall(r"Warning \((\w+)\)", done.stderr)
    allowed = GUEST_OVERLAY_WARNINGS if dts.parent.name == "vms" else ()
    assert [w for w in warnings if w not in allowed] == [], done.stderr


def guest_trees() -> list[Path]:
    return [p for p in DTS_FILES if p.parent.name == "vms"]


def stock_virt_guest_trees() -> list[Path]:
    """Guest trees that go on QEMU's own virt tree: not the GPU VM's, whose
    QEMU variant moves the platform bus (its `mmio-base=`; tests/test_gpu.py)."""
    return [
        p
        for p in guest_trees()
        if "mmio-base=" not in p.with_suffix(".nix").read_text()
    ]


def spis(tree: Tree) -> list[int]:
    """Every SPI number a node of the tree claims (GIC three-cell interrupts)."""
    found = []
    for path in tree.walk():
        raw = tree.maybe(path, "interrupts")
        if raw is None or len(raw) % 12:
            continue
        cells = [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), 4)]
        found += [cells[i + 1] for i in range(0, len(cells), 3) if cells[i] == 0]
    return found


def test_catalog_platform_bus_is_where_qemu_puts_it(virt_dtb):
    """Guest trees are placed by the catalog's platform-bus facts; QEMU's own tree decides."""
    virt, tree = catalog.load().qemu_virt, Tree(virt_dtb())
    assert tree.has(virt.platform_bus_path)
    ranges = tree.cells(virt.platform_bus_path, "ranges")
    assert ranges == [0, 0, virt.platform_bus_base, virt.platform_bus_size]


@pytest.mark.parametrize(
    "dts", stock_virt_guest_trees(), ids=[p.stem for p in stock_virt_guest_trees()]
)
def test_guest_tree_on_real_qemu_base(dts: Path, tmp_path: Path, virt_dtb):
    require("fdtoverlay")
    target_dir = dts.parent.parent
    vm_nix = (dts.parent / f"{dts.stem}.nix").read_text()
    vcpus = int(re.search(r"vcpu = (\d+);", vm_nix).group(1))
    mem = int(re.search(r"mem = (\d+);", vm_nix).group(1))
    dtbo = tmp_path / "guest.dtbo"
    run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(dts)])
    base = virt_dtb(vcpus, mem)
    if refers_to_bridge(dtbo.read_bytes()):
        # Debian's QEMU has no BPMP bridge: add the /bpmp the pinned QEMU emits.
        base = tmp_path / "base.dtb"
        base.write_bytes(
            name_bridge_node(
                add_bridge_node(
                    virt_dtb(vcpus, mem).read_bytes(), catalog.load().qemu_virt
                ),
                catalog.load().qemu_virt,
            )
        )
    out = tmp_path / "guest.dtb"
    run(["fdtoverlay", "-i", str(base), "-o", str(out), str(dtbo)])
    tree, virt = Tree(out), catalog.load().qemu_virt
    bus = virt.platform_bus_path
    devices = re.findall(r'"vfio-platform,host=([^"]+)"', vm_nix)
    assert devices, f"{target_dir.name}: guest tree without a passed platform device"
    nodes = [p for p in tree.walk() if p.startswith(bus + "/")]
    assert len(nodes) == len(devices)
    for node in nodes:
        reg = tree.cells(node, "reg")
        for off, size in zip(reg[::2], reg[1::2], strict=True):
            assert off + size <= virt.platform_bus_size, (
                f"{node} reg outside the bus window"
            )
    claimed = spis(tree)
    assert len(claimed) == len(set(claimed)), (
        f"interrupt collision in {sorted(claimed)}"
    )
    first = virt.platform_bus_first_spi
    for node in nodes:
        assert tree.maybe(node, "interrupts"), f"{node} has no interrupts"
        for spi in tree.cells(node, "interrupts")[1::3]:
            assert first <= spi < first + virt.platform_bus_spis
    for alias in ("serial0",):
        target = tree.maybe("/aliases", alias)
        if target is not None:
            assert tree.has(target.rstrip(b"\0").decode())


def test_vfio_reset_patch_applies_to_linux_6_1(kernel_src: Path):
    require("git")
    patch = (
        MODULES
        / "nvidia-jetson-orin-agx-uarta/patches/vfio-platform-reset-not-required.patch"
    )
    run(["git", "apply", "--check", "-v", str(patch)], cwd=kernel_src)


def mainline_profile(name: str, series: str = "6.1"):  # type: ignore[no-untyped-def]
    """A reference profile re-targeted at the mainline tree: (profile, board), the
    board's mainline facts those of `series` (the tree these tests build: 6.1).
    The rules run for the pinned host kernel, which BPMP virtualization needs."""
    text = (ROOT / "profiles" / f"{name}.toml").read_text()
    text = (
        text.replace('dt_flavor = "l4t"\n', "")
        .replace('dt_flavor = "mainline"\n', "")
        .replace("[target]\n", '[target]\ndt_flavor = "mainline"\n', 1)
    )
    path = Path("/nonexistent") / f"{name}.toml"
    from ghafgen.profile.parse import load_text
    from ghafgen.rules.engine import apply_rules

    result = load_text(text, str(path))
    board, found = apply_rules(result, catalog.load())
    assert result.profile is not None and board is not None
    assert not [f for f in found if f.severity.value == "error"], found
    return result.profile, catalog.load().board(board.name, series)


def mainline_variant(name: str) -> dict[str, bytes]:
    """The files of a reference profile re-targeted at the mainline tree, in memory."""
    profile, board = mainline_profile(name)
    return render_target(plan(profile, board, f"{name}.toml"))


def apply_host_overlays(files: dict[str, bytes], orin_dtb: Path, tmp: Path) -> Tree:
    overlays = []
    for rel, data in files.items():
        if rel.startswith("overlays/"):
            src = tmp / Path(rel).name
            src.write_bytes(data)
            dtbo = src.with_suffix(".dtbo")
            run(
                ["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(src)]
            )
            overlays.append(str(dtbo))
    if not overlays:
        return Tree(orin_dtb)
    out = tmp / "host.dtb"
    run(["fdtoverlay", "-i", str(orin_dtb), "-o", str(out), *overlays])
    return Tree(out)


def phandle_ids(tree: Tree, node: str, prop: str) -> list[int]:
    """IDs of a `<&bpmp ID>, ...` list in the real tree."""
    cells = tree.cells(node, prop)
    return cells[1::2]


def test_uarta_overlays_on_the_real_orin_tree(orin_dtb: Path, tmp_path: Path):
    require("fdtoverlay")
    tree = apply_host_overlays(mainline_variant("orin-agx-uarta"), orin_dtb, tmp_path)
    node = "/bus@0/serial@3100000"
    assert tree.string(node, "status") == "okay"
    assert tree.cells(node, "iommus")[1] == 0x7F
    allowed = set(tree.cells("/bpmp_host_proxy", "allowed-clocks"))
    assert set(phandle_ids(tree, node, "clocks")) <= allowed
    assert set(phandle_ids(tree, node, "resets")) <= set(
        tree.cells("/bpmp_host_proxy", "allowed-resets")
    )
    for sibling in ("serial@3110000", "serial@3130000", "serial@3140000"):
        path = f"/bus@0/{sibling}"
        if tree.has(path) and tree.maybe(path, "clocks"):
            assert not set(phandle_ids(tree, path, "clocks")) & allowed, sibling


def test_mgbe0_allow_list_covers_the_real_node_and_no_sibling(
    orin_dtb: Path, tmp_path: Path
):
    require("fdtoverlay")
    tree = apply_host_overlays(
        mainline_variant("orin-agx-mgbe0-net-vm"), orin_dtb, tmp_path
    )
    proxy = "/bpmp_host_proxy"
    clocks = set(tree.cells(proxy, "allowed-clocks"))
    resets = set(tree.cells(proxy, "allowed-resets"))
    pds = set(tree.cells(proxy, "allowed-power-domains"))
    node = "/bus@0/ethernet@6800000"
    missing = set(phandle_ids(tree, node, "clocks")) - clocks
    assert not missing, f"MGBE0 clocks missing from the allow list: {sorted(missing)}"
    assert set(phandle_ids(tree, node, "resets")) <= resets
    assert set(phandle_ids(tree, node, "power-domains")) <= pds
    for sibling in ("ethernet@6900000", "ethernet@6a00000", "ethernet@6b00000"):
        path = f"/bus@0/{sibling}"
        assert not set(phandle_ids(tree, path, "clocks")) & clocks, sibling
        assert not set(phandle_ids(tree, path, "resets")) & resets, sibling
        assert not set(phandle_ids(tree, path, "power-domains")) & pds, sibling


def test_reference_profiles_target_boards_in_the_catalog():
    for path in sorted((ROOT / "profiles").glob("*.toml")):
        report = validate([path], catalog.load())
        _p, board = report.usable[0]
        assert board.name in catalog.load().board_names()


def test_generated_bind_script_passes_bash_syntax_check():
    script = MODULES / "nvidia-jetson-orin-agx-uarta/bind-vfio.sh"
    run(["bash", "-n", str(script)])


def _in_mainline(name: str) -> bool:
    """Every device the profile passes has a node in mainline 6.1's tree."""
    report = validate([ROOT / "profiles" / f"{name}.toml"], catalog.load())
    profile, board = report.usable[0]
    board = catalog.load().board(board.name, "6.1")
    for pt in profile.enabled:
        dev = board.devices.get(pt.device)
        if dev is not None and "mainline" not in dev.flavors:
            return False
    return True


def _on_p3737(name: str) -> bool:
    """The 6.1 tree below is the P3737 carrier's; other carriers' profiles are
    checked on their own 6.12 trees (tests/test_board_trees.py)."""
    report = validate([ROOT / "profiles" / f"{name}.toml"], catalog.load())
    return report.usable[0][1].carrier == "p3737-0000"


MAINLINE = [
    p.stem
    for p in sorted((ROOT / "profiles").glob("*.toml"))
    if _in_mainline(p.stem) and _on_p3737(p.stem)
]


@pytest.mark.parametrize("name", MAINLINE)
def test_every_reference_profile_on_the_real_orin_tree(
    name: str, orin_dtb: Path, tmp_path: Path
):
    """The mainline renderer: each profile re-rendered mainline-flavoured, its host
    overlays applied to the tree built from linux-source-6.1. The committed
    (L4T-flavoured) files are proven on 6.12 in test_host_trees.py."""
    require("fdtoverlay")
    profile, board = mainline_profile(name)
    files = render_target(plan(profile, board, f"{name}.toml"))
    tree = apply_host_overlays(files, orin_dtb, tmp_path)
    allowed = {
        k: set(tree.cells("/bpmp_host_proxy", f"allowed-{k}"))
        if tree.has("/bpmp_host_proxy")
        and tree.maybe("/bpmp_host_proxy", f"allowed-{k}")
        else set()
        for k in ("clocks", "resets", "power-domains")
    }
    for pt in profile.enabled:
        dev = board.devices.get(pt.device)
        if (
            dev is None
        ):  # a PCIe slot: mainline needs no overlay, the controller has no iommus
            ctl = board.slots[pt.device].controller
            assert tree.maybe(ctl.flavors["mainline"].path, "iommus") is None
            assert not [f for f in files if f.startswith("overlays/pcie")]
            continue
        node = dev.flavors["mainline"].path
        assert tree.string(node, "status") == "okay", node
        if dev.needs_sid_marking:
            assert tree.cells(node, "iommus")[1] == board.soc.passthrough_sid
        for kind in ("clocks", "resets", "power-domains"):
            if tree.maybe(node, kind):
                real = set(phandle_ids(tree, node, kind))
                assert real <= allowed[kind], (
                    f"{dev.key}: {kind} {sorted(real - allowed[kind])}"
                )
    for sib in board.soc.siblings.values():
        assert not allowed["clocks"] & sib.clocks, sib.key
        assert not allowed["resets"] & sib.resets, sib.key
        assert not allowed["power-domains"] & sib.power_domains, sib.key
