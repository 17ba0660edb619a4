"""`show`: JSON is data (numbers, lists), one document per stream, one diagram node per name."""

from __future__ import annotations

import json
from pathlib import Path

from ghafgen.views import diagram
from tests.conftest import ROOT, run_ghafgen

GPU = ROOT / "profiles" / "orin-agx-gpu-gui-vm.toml"
UARTA = ROOT / "profiles" / "orin-agx-uarta.toml"


def test_json_rows_are_structured():
    done = run_ghafgen("show", "--format", "json", str(GPU))
    assert done.returncode == 0, done.stderr
    rows = {r["device"]: r for r in json.loads(done.stdout)[0]["devices"]}
    x8 = rows["pcie-x8"]
    assert x8["owner"] == "gui-vm" and x8["functions"] == [
        "0005:01:00.0",
        "0005:01:00.1",
    ]
    assert x8["slot"]["power_w"] == 30 and x8["slot"]["power_max_w"] == 40
    assert isinstance(x8["iommu"]["sid"], int)
    assert x8["iommu"]["root_port_iommus_emptied"] == "/bus@0/pcie@141a0000"
    uarta = rows["uarta"]
    assert uarta["owner"] is None and uarta["vfio"] is False
    assert uarta["bpmp"] == {"clock": [], "reset": [], "power-domain": []}


def test_json_rows_hold_bpmp_ids_as_numbers():
    rows = json.loads(run_ghafgen("show", "--format", "json", str(UARTA)).stdout)
    uarta = next(r for r in rows[0]["devices"] if r["device"] == "uarta")
    assert uarta["owner"] == "uart-vm"
    assert all(isinstance(i, int) for ids in uarta["bpmp"].values() for i in ids)
    assert uarta["bpmp"]["clock"]


def test_boards_as_json():
    done = run_ghafgen("show", "--boards", "--format", "json")
    assert done.returncode == 0
    boards = {b["board"]: b for b in json.loads(done.stdout)}
    assert boards["jetson-agx-orin-devkit"]["devices"]["uarta"] == "3100000.serial"


def test_a_diagram_is_one_document(tmp_path: Path):
    done = run_ghafgen("show", "--format", "mermaid", str(GPU), str(UARTA))
    assert done.returncode == 2 and done.stdout == ""
    assert "run show once per profile" in done.stderr
    assert run_ghafgen("show", "--format", "json", str(GPU), str(UARTA)).returncode == 0


def test_names_that_differ_get_different_ids():
    names = ["ser-a", "ser_a", "ser__a", "ser-_a", "sera", "ser_da"]
    ids = [diagram._id(n) for n in names]
    assert len(set(ids)) == len(names), ids
    assert all(i.replace("_", "").isalnum() for i in ids)
