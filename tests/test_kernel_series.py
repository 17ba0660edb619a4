"""Mainline facts keyed by kernel series, against the real trees of each series
available here (Debian's linux-source-6.1 and -6.12).

Expected values are typed from the kernel sources, not read from the catalog:
include/dt-bindings/power/tegra234-powergate.h defines
TEGRA234_POWER_DOMAIN_MGBEA 17U and TEGRA234_POWER_DOMAIN_MGBEB 18U in both
6.1 and 6.12; arch/arm64/boot/dts/nvidia/tegra234.dtsi gives ethernet@6800000
(MGBE0) `power-domains = <&bpmp TEGRA234_POWER_DOMAIN_MGBEA>` in 6.1 and
`<&bpmp TEGRA234_POWER_DOMAIN_MGBEB>` in 6.12. 6.6 cannot be built here (Debian
has no linux-source-6.6): its values were read from a 6.6-based tree
(deepin-community/kernel 6f431c1, MGBEA) and are marked uncertain.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.catalog.dtimport import read_tree
from ghafgen.derive.allowlist import allow_list
from ghafgen.profile.parse import load_text
from ghafgen.rules.engine import validate
from tests.conftest import ROOT, require, run_ghafgen
from tests.trees import BOARD_DTS_612

DATA = ROOT / "ghafgen" / "catalog" / "data"
AGX = "tegra234-p3737-0000+p3701-0000"
# The 6.12 board trees of the catalog's boards: AGX Orin, Orin NX, Orin Nano.
BOARDS_612 = {
    AGX: "jetson-agx-orin-devkit",
    "tegra234-p3768-0000+p3767-0000": "jetson-orin-nx-devkit",
    "tegra234-p3768-0000+p3767-0005": "jetson-orin-nx-devkit+p3767-0005",
}
# MGBE0's power domain per series: (pg.h name, its value), see the docstring.
MGBE0_DOMAIN = {"6.1": ("MGBEA", 17), "6.6": ("MGBEA", 17), "6.12": ("MGBEB", 18)}


def _diff(dtb: Path, board: str, series: str) -> tuple[int, str, str]:
    done = run_ghafgen(
        *("catalog", "import", "--dtb", str(dtb), "--diff"),
        *("--board", board, "--series", series),
    )
    return done.returncode, done.stdout, done.stderr


def test_the_6_1_agx_tree_has_no_unkeyed_disagreement(orin_dtb: Path):
    code, out, err = _diff(orin_dtb, "jetson-agx-orin-devkit", "6.1")
    assert (code, out) == (0, ""), out
    assert (
        "0 disagreement(s) with the jetson-agx-orin-devkit catalog (mainline 6.1)"
        in err
    )


def test_6_1_has_no_orin_nx_or_nano_board_tree(kernel_src: Path):
    """Why 6.1 is checked on the AGX tree alone: the P3768 trees came later."""
    nvidia = kernel_src / "arch/arm64/boot/dts/nvidia"
    assert (nvidia / f"{AGX}.dts").is_file()
    assert not list(nvidia.glob("tegra234-p3768-*.dts"))


@pytest.mark.parametrize("dts", sorted(BOARDS_612))
def test_each_6_12_board_tree_has_no_unkeyed_disagreement(dts: str, trees_612):
    assert set(BOARDS_612) <= set(BOARD_DTS_612)
    code, out, err = _diff(trees_612[dts], BOARDS_612[dts], "6.12")
    assert (code, out) == (0, ""), out
    assert "(mainline 6.12)" in err


def test_the_6_12_tree_read_as_6_1_shows_what_the_series_keys(trees_612):
    """The seven facts 6.1 and 6.12 disagree on, each read from the trees."""
    code, out, _ = _diff(trees_612[AGX], "jetson-agx-orin-devkit", "6.1")
    assert code == 1
    assert sorted(out.splitlines()) == sorted(
        [
            "uarti: presence: catalog absent from mainline 6.1, tree /bus@0/serial@31d0000",
            "mgbe0 (6800000.ethernet): power domains: catalog [17], tree [18]",
            "pcie-m2e (14100000.pcie): path: catalog /pcie@14100000, tree /bus@0/pcie@14100000",
            "pcie-nvme (14160000.pcie): path: catalog /pcie@14160000, tree /bus@0/pcie@14160000",
            "pcie-x8 (141a0000.pcie): path: catalog /pcie@141a0000, tree /bus@0/pcie@141a0000",
            "mgbe1 (6900000.ethernet): power domains: catalog [18], tree [19]",
            "mgbe2 (6a00000.ethernet): power domains: catalog [19], tree [20]",
        ]
    )


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_mgbe0_power_domain_is_the_trees_for_each_series(
    series: str, orin_dtb: Path, trees_612
):
    name, expected = MGBE0_DOMAIN[series]
    board = catalog.load().board("jetson-agx-orin-devkit", series)
    dev = board.devices["mgbe0"]
    assert dev.resources("mainline", "power-domain") == (name,)
    assert board.soc.resource("power-domain", name).id == expected
    dtb = orin_dtb if series == "6.1" else trees_612[AGX]
    node = next(n for n in read_tree(dtb.read_bytes()) if n.dt_name == dev.dt_name)
    assert node.power_domains == (expected,)


@pytest.mark.parametrize("series", sorted(MGBE0_DOMAIN))
def test_a_mainline_mgbe0_profile_allows_its_series_domain_only(series: str):
    _name, expected = MGBE0_DOMAIN[series]
    other = 35 - expected  # the other of 17 and 18
    text = (
        '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\n'
        f'dt_flavor = "mainline"\nkernel_version = "{series}"\n'
        "[hardware.nvidia.virtualization]\nenable = true\n"
        '[hardware.nvidia.passthroughs.mgbe0]\nvm = "net-vm"\n'
        '[vms.net-vm]\nvcpus = 1\nmemory = "1G"\n'
    )
    profile = load_text(text, "t.toml").profile
    assert profile is not None
    domains = allow_list(
        profile, catalog.load().board("jetson-agx-orin-devkit", series)
    ).ids("power-domain")
    assert expected in domains and other not in domains


def test_the_6_6_facts_say_where_they_come_from_and_that_they_are_uncertain():
    series = catalog.load().mainline_series
    assert list(series) == ["6.1", "6.6", "6.12"]
    assert series["6.6"].fact.uncertain
    assert "linux-source-6.6" in series["6.6"].fact.note
    board = catalog.load().board("jetson-agx-orin-devkit", "6.6")
    for view in (
        board.devices["mgbe0"].flavors["mainline"],
        board.devices["uarti"].flavors["mainline"],
        board.slots["pcie-x8"].controller.flavors["mainline"],
    ):
        assert view.fact.uncertain and "deepin-6.6" in view.fact.source, view
    assert board.soc.siblings["mgbe1"].fact.uncertain


def test_a_target_picks_the_facts_of_its_host_kernel(tmp_path: Path):
    profile = tmp_path / "t.toml"
    head = '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\ndt_flavor = "mainline"\n'
    rest = '[hardware.nvidia.passthroughs.pcie-x8]\nfunctions = ["0005:01:00.0"]\n'
    profile.write_text(head + rest)
    (_p, board), *_ = validate([profile], catalog.load()).usable
    assert board.series == "6.6"  # the pinned host kernel (runtime.toml)
    assert board.slots["pcie-x8"].controller.flavors["mainline"].path == (
        "/bus@0/pcie@141a0000"
    )
    profile.write_text(head + 'kernel_version = "6.1"\n' + rest)
    (_p, board), *_ = validate([profile], catalog.load()).usable
    assert board.slots["pcie-x8"].controller.flavors["mainline"].path == (
        "/pcie@141a0000"
    )


def test_a_mainline_target_on_a_series_without_facts_is_refused(tmp_path: Path):
    profile = tmp_path / "t.toml"
    profile.write_text(
        '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\n'
        'dt_flavor = "mainline"\nkernel_version = "6.8"\n'
    )
    report = validate([profile], catalog.load())
    assert [(f.rule_id, f.src.line) for f in report.findings] == [("GG007", 5)]
    assert "(it has 6.1, 6.6, 6.12)" in report.findings[0].message


def test_a_series_table_must_key_every_series(tmp_path: Path, orin_dtb: Path):
    bad = tmp_path / "data"
    shutil.copytree(DATA, bad)
    t234 = bad / "t234.toml"
    text = t234.read_text()
    marker = '[devices.mgbe0.dt.mainline.series."6.6"]\npower_domains = ["MGBEA"]\n'
    assert marker in text
    t234.write_text(text.replace(marker, '[devices.mgbe0.dt.mainline.series."6.6"]\n'))
    done = run_ghafgen(
        *("catalog", "import", "--dtb", str(orin_dtb), "--diff", "--series", "6.1"),
        env={**os.environ, "GHAFGEN_CATALOG": str(bad)},
    )
    assert done.returncode == 2
    assert "series \"6.6\" does not state ['power_domains']" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_refuses_a_base_tree_of_another_series_for_the_passed_nodes(
    tmp_path: Path, orin_dtb: Path, trees_612
):
    """The issue's case: a mainline MGBE0 target on the 6.6 host allow-lists
    MGBEA (17); 6.12's tree gives MGBE0 MGBEB (18), so `check --base-dtb` with
    it fails and says which series the tree matches. 6.1's tree gives 17, as
    6.6's does (t234.toml, uncertain for 6.6): it passes."""
    require("fdtoverlay")
    profile = tmp_path / "p.toml"
    profile.write_text(
        '[target]\nname = "mg"\nboard = "jetson-agx-orin-devkit"\n'
        'dt_flavor = "mainline"\n'
        "[hardware.nvidia.virtualization]\nenable = true\n"
        '[hardware.nvidia.passthroughs.mgbe0]\nvm = "net-vm"\n'
        '[vms.net-vm]\nvcpus = 1\nmemory = "1G"\n'
    )
    out = tmp_path / "out"
    assert run_ghafgen("generate", str(profile), "-o", str(out)).returncode == 0
    proxy = (out / "mg" / "overlays" / "bpmp-host-proxy.dts").read_text()
    assert "allowed-power-domains = <17>;" in proxy
    done = run_ghafgen(
        "check", str(out), "--no-schemas", "--base-dtb", str(trees_612[AGX])
    )
    assert done.returncode == 1
    line = next(ln for ln in done.stdout.splitlines() if " base-series " in ln)
    assert line.startswith("FAIL base-series mg/")
    assert (
        "the catalog's mainline 6.6 facts disagree with this tree on the passed "
        "nodes (mgbe0 (6800000.ethernet): power domains: catalog [17], tree [18]); "
        "it matches mainline 6.12's" in line
    )
    ok = run_ghafgen("check", str(out), "--no-schemas", "--base-dtb", str(orin_dtb))
    assert ok.returncode == 0, ok.stdout
    assert " base-series " not in ok.stdout
