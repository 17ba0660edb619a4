"""`ghafgen generate`: what it writes, when it refuses, and that it rewrites nothing needlessly."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen.cli import app
from ghafgen.render.output import MANIFEST
from tests.conftest import PROFILES, ROOT

runner = CliRunner()
UARTA = ROOT / "profiles" / "orin-agx-uarta.toml"
TARGET = "nvidia-jetson-orin-agx-uarta"


def gen(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["generate", *args])
    return result.exit_code, result.output


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    return tmp_path


def tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_generate_then_check_then_idempotent(work: Path):
    profiles = [f"profiles/{p.name}" for p in PROFILES]
    code, out = gen(*profiles, "-o", "out")
    assert code == 0, out
    assert f"{TARGET}: 19 written, 0 unchanged" in out
    code, out = gen("--check", *profiles, "-o", "out")
    assert (code, out) == (0, "")
    before = tree(work / "out")
    os.utime(work / "out" / TARGET / "default.nix", ns=(1, 1))  # make a rewrite visible
    before = tree(work / "out")
    code, out = gen(*profiles, "-o", "out")
    assert code == 0 and f"{TARGET}: 0 written, 19 unchanged" in out
    assert tree(work / "out") == before


def test_edited_profile_makes_check_fail_naming_files(work: Path):
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    p = work / "profiles/orin-agx-uarta.toml"
    p.write_text(p.read_text().replace("vcpus = 1", "vcpus = 2"))
    code, out = gen("--check", "profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 1
    assert out.splitlines() == [
        f"drift: out/{TARGET}/vms/uart-vm.nix",
        f"drift: out/{TARGET}/{MANIFEST}",
    ]


def test_only_changed_files_are_rewritten(work: Path):
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    before = tree(work / "out" / TARGET)
    p = work / "profiles/orin-agx-uarta.toml"
    p.write_text(p.read_text().replace('memory = "1G"', 'memory = "2G"'))
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 0 and "2 written, 17 unchanged" in out
    after = tree(work / "out" / TARGET)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"vms/uart-vm.nix", MANIFEST}


def test_hand_edited_file_is_refused_unless_forced(work: Path):
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    edited = work / "out" / TARGET / "host.nix"
    edited.write_text(edited.read_text() + "# my change\n")
    p = work / "profiles/orin-agx-uarta.toml"
    p.write_text(p.read_text().replace("vcpus = 1", "vcpus = 2"))
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 2
    assert f"edited by hand since ghafgen wrote them: out/{TARGET}/host.nix" in out
    assert "# my change" in edited.read_text()
    assert "vcpu = 1;" in (work / "out" / TARGET / "vms/uart-vm.nix").read_text()
    code, out = gen("--force", "profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 0
    assert "# my change" not in edited.read_text()


def test_files_people_add_are_kept(work: Path):
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    note = work / "out" / TARGET / "NOTES.md"
    note.write_text("mine\n")
    p = work / "profiles/orin-agx-uarta.toml"
    p.write_text(p.read_text().replace("vcpus = 1", "vcpus = 2"))
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    assert note.read_text() == "mine\n"


def test_files_no_longer_generated_are_removed(work: Path):
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    p = work / "profiles/orin-agx-uarta.toml"
    p.write_text(p.read_text().replace("uart-vm", "serial-vm"))
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    # vms/uart-vm.nix, vms/uart-vm.dts and the VM's QEMU binding patch
    assert code == 0 and "3 removed" in out
    assert not (work / "out" / TARGET / "vms/uart-vm.nix").exists()
    assert (work / "out" / TARGET / "vms/serial-vm.nix").exists()


def test_invalid_profile_writes_nothing(work: Path):
    bad = work / "bad.toml"
    bad.write_text(UARTA.read_text().replace('vm = "uart-vm"', 'vm = "nope"'))
    code, out = gen("profiles/orin-agx-uarta.toml", "bad.toml", "-o", "out")
    assert code == 1
    assert "error[GG103]" in out and "nothing written" in out
    assert not (work / "out").exists()


def test_output_under_a_file_is_one_clear_line(work: Path):
    (work / "afile").write_text("")
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "afile/out")
    assert code == 2
    assert out.strip() == "error: cannot write to afile/out: Not a directory"


def test_unwritable_output_is_one_clear_line(work: Path):
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that ignores permissions")
        code, out = gen("profiles/orin-agx-uarta.toml", "-o", "ro/out")
    finally:
        ro.chmod(0o700)
    assert code == 2
    assert out.strip().startswith("error: cannot write to ro/out")
    assert "Traceback" not in out


def test_uarta_output_carries_what_the_seed_documents(work: Path):
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    out = work / "out" / TARGET
    proxy = (out / "overlays/bpmp-host-proxy.dts").read_text()
    assert 'compatible = "nvidia,bpmp-host-proxy";' in proxy
    assert "allowed-clocks = <14 91 102 155>;" in proxy
    assert "allowed-resets = <100>;" in proxy
    host = (out / "host.nix").read_text()
    assert "TEGRA_BPMP_HOST_PROXY = yes;" in host
    assert "VFIO_PLATFORM = yes;" in host
    assert '"vfio_iommu_type1.allow_unsafe_interrupts=1"' in host
    device = (out / "devices/uarta.nix").read_text()
    assert '"platform 3100000.serial"' in device
    assert '"microvm@uart-vm.service"' in device
    vm = (out / "vms/uart-vm.nix").read_text()
    assert '"-device"\n      "vfio-platform,host=3100000.serial"' in vm
    assert '"-dtb"\n      "ghafgen-guest.dtb"' in vm
    assert '"clk_ignore_unused"' in vm and '"pd_ignore_unused"' in vm
    assert (
        "microvm.vms.uart-vm.config = ./vms/uart-vm.nix;"
        in (out / "default.nix").read_text()
    )


def test_bpmp_allow_all_only_on_explicit_request(work: Path):
    p = work / "profiles/orin-agx-uarta.toml"
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    assert (
        "BPMP_HOST_ALLOWS_ALL"
        not in (work / "out" / TARGET / "bpmp-virt.nix").read_text()
    )
    p.write_text(
        p.read_text().replace(
            "enable = true\n", "enable = true\nbpmp_allow_all = true\n", 1
        )
    )
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 0 and "warning[GG302]" in out
    text = (work / "out" / TARGET / "bpmp-virt.nix").read_text()
    assert (
        "--replace-fail '#define BPMP_HOST_ALLOWS_ALL   0' '#define BPMP_HOST_ALLOWS_ALL   1'"
        in text
    )
