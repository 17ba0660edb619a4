"""Guest nodes of the devices issue 16 adds, against the guest kernel's bindings.

The guest tree of every reference profile that passes UARTE, I2C1 or I2C2 is
applied to QEMU's own virt tree (with the /bpmp node the pinned QEMU emits) and
checked with dt-validate against the linux 6.12 binding schemas of the
directories those nodes use: serial/8250.yaml takes one clock, one reset and
no names; i2c/nvidia,tegra20-i2c.yaml takes div-clk/parent and reset-names
"i2c", with dmas optional.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ghafgen.guestbase import add_bridge_node, name_bridge_node
from tests.conftest import ROOT, linux_612, require
from tests.trees import run

NEW = ("uarte", "i2c1", "i2c2")
BINDING_DIRS = ("serial", "i2c", "memory-controllers", "firmware")
MODULES = ROOT / "nix" / "modules"


def _guest_trees() -> list[Path]:
    out = []
    for dts in sorted(MODULES.glob("*/vms/*.dts")):
        text = dts.read_text()
        if any(re.search(rf"\b{k}: ", text) for k in NEW):
            out.append(dts)
    return out


GUESTS = _guest_trees()


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("dt-mk-schema")
    src = linux_612(tmp_path_factory) / "Documentation" / "devicetree" / "bindings"
    out = tmp_path_factory.mktemp("schema") / "schema.json"
    done = run(["dt-mk-schema", "-j", *(str(src / d) for d in BINDING_DIRS)])
    out.write_text(done.stdout)
    return out


def test_the_new_devices_have_guest_trees():
    assert len(GUESTS) >= 4


def _validate(dts_text: str, schema: Path, base: Path, tmp: Path) -> str:
    src = tmp / "guest.dts"
    src.write_text(dts_text)
    dtbo = tmp / "guest.dtbo"
    run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(src)])
    out = tmp / "guest.dtb"
    run(["fdtoverlay", "-i", str(base), "-o", str(out), str(dtbo)])
    done = subprocess.run(
        ["dt-validate", "-s", str(schema), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout + done.stderr


def _base(dts: Path, virt_dtb, tmp: Path) -> Path:  # type: ignore[no-untyped-def]
    vm_nix = (dts.parent / f"{dts.stem}.nix").read_text()
    vcpus = int(re.search(r"vcpu = (\d+);", vm_nix).group(1))  # type: ignore[union-attr]
    mem = int(re.search(r"mem = (\d+);", vm_nix).group(1))  # type: ignore[union-attr]
    base = tmp / "base.dtb"
    base.write_bytes(
        name_bridge_node(add_bridge_node(virt_dtb(vcpus, mem).read_bytes()))
    )
    return base


@pytest.mark.parametrize("dts", GUESTS, ids=[p.parent.parent.name for p in GUESTS])
def test_new_guest_nodes_pass_the_612_bindings(
    dts: Path, schema: Path, virt_dtb, tmp_path: Path
):
    require("dt-validate")
    text = dts.read_text()
    nodes = re.findall(r"\b(?:uarte|i2c1|i2c2): (\S+@[0-9a-f]+) \{", text)
    assert nodes
    report = _validate(text, schema, _base(dts, virt_dtb, tmp_path), tmp_path)
    for node in nodes:
        bad = [ln for ln in report.splitlines() if f": {node} " in ln]
        assert not bad, "\n".join(bad)


def test_the_schema_check_refuses_a_node_the_binding_does_not_allow(
    schema: Path, virt_dtb, tmp_path: Path
):
    """Same schema, same tree, one wrong property: dt-validate must say so."""
    require("dt-validate")
    dts = MODULES / "nvidia-jetson-orin-nano-uarte-i2c" / "vms" / "io-vm.dts"
    text = dts.read_text()
    wrong = text.replace('reset-names = "i2c";', 'reset-names = "bus";')
    assert wrong != text
    report = _validate(wrong, schema, _base(dts, virt_dtb, tmp_path), tmp_path)
    assert any(
        ": i2c@10000 " in ln and "reset-names" in ln for ln in report.splitlines()
    ), report
