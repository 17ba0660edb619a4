"""The manifest records what `ghafgen check` compares against; it must say what
the generated text says (the text is read back here, and only here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

TARGETS = sorted(
    p.parent for p in (ROOT / "nix" / "modules").glob("*/ghafgen-manifest.json")
)


@pytest.mark.parametrize("target", TARGETS, ids=lambda p: p.name)
def test_manifest_contents_match_the_generated_text(target: Path) -> None:
    contents = json.loads((target / "ghafgen-manifest.json").read_text())["contents"]
    for f in sorted(target.rglob("*.nix")):
        rel = f.relative_to(target).as_posix()
        text = f.read_text()
        symbols = re.findall(r"^\s+([A-Z][A-Z0-9_]+) = (?:yes|no|module);", text, re.M)
        pinned = re.search(r"linuxPackages_(\d+)_(\d+)", text)
        entry = contents["kernel_config"].get(rel, {"symbols": [], "pinned_series": ""})
        assert entry["symbols"] == symbols, rel
        assert entry["pinned_series"] == (
            f"{pinned.group(1)}.{pinned.group(2)}" if pinned else ""
        ), rel
    for vm, facts in contents["vms"].items():
        text = (target / "vms" / f"{vm}.nix").read_text()
        hosts = re.findall(r'"vfio-platform,host=([^",]+)[^"]*"', text)
        assert facts["platform_devices"] == hosts, vm
