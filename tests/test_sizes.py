"""Sizes reach the output as given, or are refused (issue 29).

microvm.nix counts a guest's `mem` and a volume's `size` in MiB
(nixos-modules/microvm/options.nix at the pinned revision: `mem` "Amount of
RAM in megabytes", `types.ints.positive`; a volume's `size` "Volume size (in
MiB) if created automatically", `int`), so a
value that is not whole MiB would be cut to another size: `memory = "1024"`
(bytes) became `mem = 0;`, "1500K" `mem = 1;`. Such values are errors with
a hint; sizes the output writes in bytes (channels) stay exact.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.catalog.read import DATA
from ghafgen.profile.parse import load_text
from ghafgen.render.files import render_target
from ghafgen.render.plan import plan
from ghafgen.rules.engine import apply_rules
from tests.conftest import AGX, ROOT, run_ghafgen

UARTA = (
    "[hardware.nvidia.virtualization]\nenable = true\n"
    '[hardware.nvidia.passthroughs.uarta]\nvm = "a"\n'
)


def vm(memory: str, extra: str = "") -> str:
    return f'[vms.a]\nvcpus = 1\nmemory = "{memory}"\n{extra}'


@pytest.mark.parametrize(
    ("memory", "message", "hint"),
    [
        (
            "1024",
            "'vms.a.memory' is '1024', a bare number is bytes",
            'write "1024M" for 1024 MiB; the output counts MiB',
        ),
        (
            "128K",
            "'vms.a.memory' is '128K', under 1 MiB",
            'write whole MiB with M, G or T, e.g. "1M"; the output counts MiB',
        ),
        (
            "1500K",
            "'vms.a.memory' is '1500K', not a whole number of MiB",
            'write whole MiB with M, G or T, e.g. "2M"; the output counts MiB',
        ),
        (
            "2048K",
            "'vms.a.memory' is '2048K', written in K",
            'write "2M"; the output counts MiB',
        ),
        (
            "1GB",
            "'vms.a.memory' has an invalid value '1GB'",
            'write "1G": binary units, no B or space',
        ),
        (
            "2 GiB",
            "'vms.a.memory' has an invalid value '2 GiB'",
            'write "2G": binary units, no B or space',
        ),
        (
            "lots",
            "'vms.a.memory' has an invalid value 'lots'",
            'write whole MiB with M, G or T, e.g. "512M" or "4G"',
        ),
    ],
)
def test_memory_that_is_not_whole_mib_is_an_error(memory: str, message: str, hint: str):
    result = load_text(AGX + UARTA + vm(memory), "p.toml")
    assert result.profile is None
    [f] = result.findings
    assert (f.rule_id, f.src.line, f.message, f.hint) == ("GG007", 10, message, hint)


def test_volume_size_is_whole_mib():
    volume = '[vms.a.volumes.v]\nsize = "{}"\nmount = "/data"\ndisk = "nvme"\n'
    disk = '[disks.nvme]\nsize = "64G"\n'
    for size, message in (
        ("1500K", "'vms.a.volumes.v.size' is '1500K', not a whole number of MiB"),
        ("4096", "'vms.a.volumes.v.size' is '4096', a bare number is bytes"),
    ):
        result = load_text(AGX + UARTA + vm("1G") + volume.format(size) + disk, "p")
        assert [(f.rule_id, f.message) for f in result.findings] == [("GG007", message)]


@pytest.mark.parametrize(
    ("board", "cores"),
    [
        # NVIDIA Jetson AGX Orin Series data sheet: the 64 GB module has a
        # 12-core Arm Cortex-A78AE CPU; Jetson Orin NX Series data sheet: the
        # 8 GB module has 6 cores.
        ("jetson-agx-orin-devkit", 12),
        ("jetson-orin-nx-devkit+p3767-0001", 6),
    ],
)
def test_zero_vcpus_hint_says_what_to_do(board: str, cores: int):
    text = (
        f'[target]\nname = "t"\nboard = "{board}"\n[vms.a]\nvcpus = 0\nmemory = "1G"\n'
    )
    [f] = load_text(text, "p", catalog.load()).findings
    assert f.message == "'vms.a.vcpus' is 0, outside 1..256"
    assert f.hint == (
        f"give the VM at least 1 vCPU and at most the board's {cores} cores "
        "(`ghafgen show --boards`)"
    )


def _files(text: str) -> dict[str, str]:
    result = load_text(text, "p.toml")
    board, found = apply_rules(result, catalog.load())
    assert result.profile is not None and board is not None, found
    assert not [f for f in found if f.severity.value == "error"], found
    return {
        k: v.decode()
        for k, v in render_target(plan(result.profile, board, "p.toml")).items()
    }


def test_sizes_reach_the_output_as_given():
    files = _files(
        AGX
        + UARTA
        + vm("1536M", '[vms.a.volumes.v]\nsize = "1500M"\nmount = "/d"\ndisk = "n"\n')
        + '[vms.b]\nvcpus = 1\nmemory = "1G"\nshared = ["network"]\n'
        + '[disks.n]\nsize = "64G"\n'
        # A channel's size goes to QEMU in bytes: a bare byte count is exact.
        + '[channels.c]\nvms = ["a", "b"]\nsize = "4096"\n'
    )
    a = files["vms/a.nix"]
    assert "mem = 1536;" in a
    assert "size = 1500;" in a
    assert ",size=4096,share=on" in a


def test_generate_refuses_a_bare_memory_number_and_writes_nothing(tmp_path: Path):
    profile = tmp_path / "p.toml"
    profile.write_text(AGX + UARTA + vm("1024"), encoding="utf-8")
    out = tmp_path / "out"
    done = run_ghafgen("generate", str(profile), "-o", str(out))
    assert done.returncode == 1, done.stderr
    said = done.stdout + done.stderr
    assert (
        f"{profile}:10: error[GG007]: 'vms.a.memory' is '1024', a bare number is bytes"
        in said
    )
    assert 'hint: write "1024M" for 1024 MiB; the output counts MiB' in said
    assert "Traceback" not in said
    assert not out.exists() or not any(out.rglob("*.nix"))


def test_a_catalog_size_finer_than_mib_is_refused(tmp_path: Path):
    """Board RAM and host reserve are kept in MiB; '1500K' was cut to 1 MiB."""
    data = shutil.copytree(DATA, tmp_path / "data")
    board = data / "boards" / "jetson-agx-orin-devkit.toml"
    text = board.read_text(encoding="utf-8")
    assert 'host_reserve = "2G"' in text
    board.write_text(text.replace('host_reserve = "2G"', 'host_reserve = "1500K"'))
    profile = ROOT / "profiles" / "orin-agx-uarta.toml"
    done = run_ghafgen(
        "validate", str(profile), env={**os.environ, "GHAFGEN_CATALOG": str(data)}
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "size '1500K' in catalog is not a whole number of MiB" in done.stderr
    assert "Traceback" not in done.stderr
