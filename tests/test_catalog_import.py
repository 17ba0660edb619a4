"""`ghafgen catalog import` on the real AGX Orin tree built from linux-source-6.1
(the catalog's mainline facts for 6.1: `--series 6.1`; every series in
test_kernel_series.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.catalog.dtimport import read_tree
from tests.conftest import ROOT, require, run_ghafgen
from tests.trees import Tree

DATA = ROOT / "ghafgen" / "catalog" / "data"


ghafgen = run_ghafgen


def test_committed_catalog_agrees_with_the_mainline_tree(orin_dtb: Path):
    done = ghafgen(
        "catalog", "import", "--dtb", str(orin_dtb), "--diff", "--series", "6.1"
    )
    assert done.returncode == 0, done.stdout
    assert "0 disagreement(s)" in done.stderr


def test_a_wrong_clock_id_is_named_with_its_device(orin_dtb: Path, tmp_path: Path):
    bad = tmp_path / "data"
    shutil.copytree(DATA, bad)
    t234 = bad / "t234.toml"
    text = t234.read_text()
    marker = "[clocks.MGBE0_TX]\nid = 374"
    assert marker in text
    t234.write_text(text.replace(marker, "[clocks.MGBE0_TX]\nid = 375"))
    done = ghafgen(
        "catalog",
        "import",
        "--dtb",
        str(orin_dtb),
        "--diff",
        "--series",
        "6.1",
        env={**os.environ, "GHAFGEN_CATALOG": str(bad)},
    )
    assert done.returncode == 1
    assert done.stdout.strip() == (
        "mgbe0 (6800000.ethernet): clock 'tx' (#6): catalog 375 (MGBE0_TX), tree 374"
    )


def test_import_writes_catalog_facts(orin_dtb: Path, tmp_path: Path):
    out = tmp_path / "imported.toml"
    assert (
        ghafgen("catalog", "import", "--dtb", str(orin_dtb), "-o", str(out)).returncode
        == 0
    )
    doc = tomllib.loads(out.read_text())["imported"]
    uarta = doc["3100000-serial"]
    assert (uarta["label"], uarta["interrupts"], uarta["clocks"], uarta["resets"]) == (
        "uarta",
        [112],
        [["serial", 155]],
        [["serial", 100]],
    )
    x8 = doc["141a0000-pcie"]
    assert (x8["pci_domain"], x8["num_lanes"], x8["iommu_sid"]) == (5, 8, 0x14)
    assert doc["6800000-ethernet"]["power_domains"] == [17]


def test_import_never_replaces_a_file_unless_forced(orin_dtb: Path, tmp_path: Path):
    out = tmp_path / "imported.toml"
    out.write_text("# kept by hand\n")
    args = ("catalog", "import", "--dtb", str(orin_dtb), "-o", str(out))
    done = ghafgen(*args)
    assert done.returncode == 2 and "--force replaces it" in done.stderr
    assert out.read_text() == "# kept by hand\n"
    assert ghafgen(*args, "--force").returncode == 0
    assert "3100000-serial" in tomllib.loads(out.read_text())["imported"]
    assert [p.name for p in tmp_path.iterdir()] == ["imported.toml"]


def test_import_from_dts_matches_dtb(orin_dtb: Path, tmp_path: Path):
    require("dtc")
    dts = tmp_path / "orin.dts"
    subprocess.run(
        ["dtc", "-q", "-I", "dtb", "-O", "dts", "-o", str(dts), str(orin_dtb)],
        check=True,
    )
    from_dts = ghafgen("catalog", "import", "--dts", str(dts)).stdout
    from_dtb = ghafgen("catalog", "import", "--dtb", str(orin_dtb)).stdout
    assert from_dts.splitlines()[1:] == from_dtb.splitlines()[1:]


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_mainline_pcie_controllers_need_no_overlay(series: str, orin_dtb, orin_dtb_612):
    """The catalog's reason for no mainline PCIe overlay, checked on the real trees."""
    tree = Tree(orin_dtb if series == "6.1" else orin_dtb_612)
    board = catalog.load().board("jetson-agx-orin-devkit", series)
    for slot in board.slots.values():
        path = slot.controller.flavors["mainline"].path
        assert tree.maybe(path, "iommus") is None, path
        assert tree.maybe(path, "iommu-map") is not None, path


def test_every_node_of_the_tree_is_read(orin_dtb: Path):
    nodes = read_tree(orin_dtb.read_bytes())
    kinds = {n.kind for n in nodes}
    assert {"serial", "ethernet", "pcie"} <= kinds
    assert len([n for n in nodes if n.kind == "ethernet"]) == 4
