"""What a new user meets in the first hour (issue 29, item 7): output that fits
the terminal, errors that blame the right thing, labels that say something."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ghafgen import catalog
from ghafgen.table import render
from ghafgen.views.devicedoc import render as devices
from tests.conftest import ROOT, run_ghafgen

UARTA = ROOT / "profiles" / "orin-agx-uarta.toml"
NX = ROOT / "profiles" / "orin-nx-uarte.toml"
PARTITIONS = ROOT / "profiles" / "orin-agx-partitions.toml"


def _words(text: str) -> list[str]:
    return text.split()


def test_show_devices_fits_100_columns_in_a_pipe_and_loses_no_word():
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = run_ghafgen("show", "--devices", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100  # was 664
    # Every word of every row's class and reason is there, in order: the JSON
    # form of the same rows is the reference.
    data = json.loads(run_ghafgen("show", "--devices", "--format", "json").stdout)
    text = _words(done.stdout)
    at = 0
    for rows in data.values():
        for r in rows:
            for word in _words(f"{r['class']}: {r['why']}"):
                at = text.index(word, at) + 1


def test_show_devices_follows_the_terminal_width():
    env = {**os.environ, "COLUMNS": "72"}
    done = run_ghafgen("show", "--devices", "--board", "jetson-orin-nx-devkit", env=env)
    assert done.returncode == 0, done.stderr
    assert max(len(line) for line in done.stdout.splitlines()) <= 72


def test_a_narrow_table_wraps_cells_without_dropping_characters():
    out = devices(catalog.load(), "jetson-orin-nx-devkit", "text", 50)
    assert max(len(line) for line in out.splitlines()) <= 50
    table = render(
        ["device", "why"],
        [["3100000.serial", "a reason long enough to need three lines here"]],
        width=24,
    )
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 24 and len(lines) > 4
    # Wrapping moves characters to other lines, never drops one.
    kept = "".join(line for line in lines if set(line) != {"-", " "})
    given = "device why 3100000.serial a reason long enough to need three lines here"
    assert sorted(kept.replace(" ", "")) == sorted(given.replace(" ", ""))


def test_a_diagram_of_two_profiles_blames_the_profiles():
    done = run_ghafgen("show", "--format", "svg", str(UARTA), str(NX))
    assert done.returncode == 2 and done.stdout == ""
    assert "Invalid value for '[profiles]...': 2 profiles given" in done.stderr
    assert "--format" not in done.stderr.split("Error:")[1]
    assert "Traceback" not in done.stderr


def test_diagram_labels_say_what_the_cores_are():
    done = run_ghafgen("show", "--format", "mermaid", str(UARTA))
    assert done.returncode == 0, done.stderr
    assert "cores any" not in done.stdout
    # orin-agx-uarta pins nothing; the AGX Orin 64 GB has 12 cores (NVIDIA
    # Jetson AGX Orin Series data sheet), all the host's.
    assert "uart-vm<br/>1 vCPU, not pinned<br/>1G" in done.stdout
    assert "cores 0-11<br/>" in done.stdout
    # orin-agx-partitions.toml: gui-vm pinning = [4, 5, 6, 7], rt-vm [10, 11].
    out = run_ghafgen("show", "--format", "mermaid", str(PARTITIONS)).stdout
    assert "4 vCPUs on cores 4-7" in out
    assert "2 vCPUs on cores 10,11, SCHED_FIFO 50" in out


def test_generate_check_on_an_empty_folder_says_missing(tmp_path: Path):
    done = run_ghafgen("generate", "--check", str(UARTA), "-o", str(tmp_path))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines and all(line.startswith("missing: ") for line in lines), lines
    assert f"missing: {tmp_path}/nvidia-jetson-orin-agx-uarta/default.nix" in lines
    assert list(tmp_path.iterdir()) == []  # --check writes nothing


def test_generate_check_tells_a_changed_file_from_a_missing_one(tmp_path: Path):
    assert run_ghafgen("generate", str(UARTA), "-o", str(tmp_path)).returncode == 0
    target = tmp_path / "nvidia-jetson-orin-agx-uarta"
    (target / "host.nix").unlink()
    default = target / "default.nix"
    default.write_text(default.read_text() + "\n")
    done = run_ghafgen("generate", "--check", str(UARTA), "-o", str(tmp_path))
    assert done.returncode == 1
    assert f"missing: {target}/host.nix" in done.stdout.splitlines()
    assert f"drift: {default}" in done.stdout.splitlines()
