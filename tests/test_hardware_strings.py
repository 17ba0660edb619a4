"""Strings read from hardware (DT `model`, labels, status, sysfs driver names) stay data.

Draft profiles and `catalog import` output are written by a TOML writer, so a
newline in a device-tree string cannot open a table or set a key.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

from ghafgen.catalog.dtimport import as_toml, read_tree
from tests.conftest import ROOT, require, run_ghafgen

SYSFS = ROOT / "tests" / "data" / "sysfs"
EVIL = "Board\n[hardware.nvidia.virtualization]\nbpmp_allow_all = true\n# x"


def test_a_model_with_newlines_stays_a_comment_in_the_draft(tmp_path: Path):
    root = tmp_path / "root"
    shutil.copytree(SYSFS / "agx-gpu", root, symlinks=True)
    (root / "proc/device-tree/model").write_bytes(EVIL.encode() + b"\0")
    draft = tmp_path / "d.toml"
    done = run_ghafgen("discover", "--root", str(root), "--profile", str(draft))
    assert done.returncode == 0, done.stderr
    text = draft.read_text()
    doc = tomllib.loads(text)
    virt = doc.get("hardware", {}).get("nvidia", {}).get("virtualization", {})
    assert "bpmp_allow_all" not in virt
    live = [ln for ln in text.splitlines() if "bpmp_allow_all" in ln]
    assert live and all(ln.startswith("#") for ln in live), live
    assert run_ghafgen("validate", str(draft)).returncode == 0


def test_catalog_import_quotes_what_the_tree_says(tmp_path: Path):
    require("dtc")
    dts = tmp_path / "evil.dts"
    dts.write_text(
        "/dts-v1/;\n/ {\n#address-cells = <2>;\n#size-cells = <2>;\n"
        "evil: serial@3100000 {\n"
        '  compatible = "x\\n[imported.owned]\\nevil = true", "nvidia,tegra234-uart";\n'
        '  reg = <0 0x3100000 0 0x10000>;\n  status = "okay\\"\\nevil = 1";\n'
        '  clock-names = "a\\"b\\n[c]";\n  clocks = <&evil 5>;\n};\n};\n'
    )
    dtb = tmp_path / "evil.dtb"
    subprocess.run(
        ["dtc", "-q", "-@", "-I", "dts", "-O", "dtb", "-o", str(dtb), "--", str(dts)],
        check=True,
    )
    nodes = read_tree(dtb.read_bytes())
    doc = tomllib.loads(as_toml(nodes, "name\nwith = newline"))
    assert list(doc) == ["imported"] and list(doc["imported"]) == ["3100000-serial"]
    node = doc["imported"]["3100000-serial"]
    assert node["compatible"][0] == "x\n[imported.owned]\nevil = true"
    assert node["status"] == 'okay"\nevil = 1'
    assert node["clocks"] == [['a"b\n[c]', 5]]
    assert node["reg"] == [[0x3100000, 0x10000]]
    done = run_ghafgen("catalog", "import", "--dtb", str(dtb))
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(done.stdout) == tomllib.loads(as_toml(nodes, dtb.name))
