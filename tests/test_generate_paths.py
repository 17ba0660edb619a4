"""`generate` writes the same bytes however the paths are spelled and wherever it runs;
a renamed target's old folder is reported; Ghaf's dash-less VM names cannot clash."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import ROOT, run_ghafgen

TARGET = "nvidia-jetson-orin-agx-uarta"


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_output_does_not_depend_on_spelling_or_working_directory(tmp_path: Path):
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "profiles", work / "profiles")
    (work / "sub").mkdir()
    runs = [
        (work, ("profiles/orin-agx-uarta.toml", "-o", "out1")),
        (work, (str(work / "profiles/orin-agx-uarta.toml"), "-o", str(work / "out2"))),
        (work / "sub", ("../profiles/./orin-agx-uarta.toml", "-o", "../out3")),
        (tmp_path, ("repo/profiles/orin-agx-uarta.toml", "-o", "repo/out4")),
    ]
    for cwd, args in runs:
        done = run_ghafgen("generate", *args, cwd=cwd)
        assert done.returncode == 0, done.stderr
    first = tree(work / "out1" / TARGET)
    for n in (2, 3, 4):
        assert tree(work / f"out{n}" / TARGET) == first, n
    assert b"from profiles/orin-agx-uarta.toml;" in first["default.nix"]


def test_a_renamed_target_leaves_a_reported_orphan(tmp_path: Path):
    profile = tmp_path / "p.toml"
    profile.write_text((ROOT / "profiles/orin-agx-uarta.toml").read_text())
    out = tmp_path / "out"
    assert run_ghafgen("generate", str(profile), "-o", str(out)).returncode == 0
    profile.write_text(profile.read_text().replace(f'"{TARGET}"', '"renamed"'))
    done = run_ghafgen("generate", str(profile), "-o", str(out))
    assert done.returncode == 0
    assert (
        f"orphan: {out / TARGET} was written from one of these profiles" in done.stderr
    )
    assert (out / TARGET).is_dir()  # reported, not deleted
    check = run_ghafgen("generate", str(profile), "-o", str(out), "--check")
    assert check.returncode == 1 and f"orphan: {out / TARGET}" in check.stdout


def test_ghaf_layout_refuses_vms_that_meet_without_dashes(tmp_path: Path):
    profile = tmp_path / "p.toml"
    profile.write_text(
        '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\n'
        '[vms.net-vm]\nvcpus = 1\nmemory = "512M"\n'
        '[vms.netvm]\nvcpus = 1\nmemory = "512M"\n'
    )
    done = run_ghafgen(
        "generate", "--layout", "ghaf", str(profile), "-o", str(tmp_path / "out")
    )
    # Refused before anything is planned: GG107 checks a host's VM names in
    # every layout, since another profile of the host may be generated for Ghaf.
    assert done.returncode == 1, done.stderr
    assert "p.toml:7: error[GG107]: VMs 'net-vm'" in done.stderr
    assert "both become Ghaf's 'netvm'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
