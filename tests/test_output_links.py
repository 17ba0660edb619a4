"""The output tree: symlinks are refused, never followed; nothing a person put there is lost."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen.cli import app
from tests.conftest import ROOT

TARGET = "nvidia-jetson-orin-agx-uarta"
runner = CliRunner()


def gen(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["generate", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    (tmp_path / "out").mkdir()
    return tmp_path


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_a_symlinked_lock_file_is_refused_and_not_followed(work: Path):
    victim = work / "victim"
    victim.write_text("keep\n")
    (work / "out/.ghafgen.lock").symlink_to(victim)
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 2 and ".ghafgen.lock is a symlink" in out
    assert victim.read_text() == "keep\n"
    assert listing(work / "out") == [".ghafgen.lock"]


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_a_symlink_or_file_at_the_target_is_refused_before_writing(
    work: Path, kind: str
):
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    at = work / "out" / TARGET
    if kind == "symlink":
        at.symlink_to(elsewhere)
    else:
        at.write_text("mine\n")
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 2, out
    assert f"out/{TARGET} is a {kind}" in out
    assert listing(work / "out") == [TARGET]  # no temp tree, no lock file
    assert listing(elsewhere) == []
    if kind == "file":
        assert at.read_text() == "mine\n"
    else:
        assert at.is_symlink() and os.readlink(at) == str(elsewhere)


def test_what_a_person_put_inside_survives_regeneration(work: Path):
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    folder = work / "out" / TARGET
    (folder / "empty").mkdir()
    (folder / "notes" / "deep").mkdir(parents=True)
    (folder / "link").symlink_to("/etc/hostname")
    os.mkfifo(folder / "pipe")
    p = work / "profiles/orin-agx-uarta.toml"
    p.write_text(p.read_text().replace("vcpus = 1", "vcpus = 2"))
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 0, out
    assert (
        "kept what ghafgen did not write: empty/, link, notes/, notes/deep/, pipe"
        in out
    )
    assert (folder / "empty").is_dir() and (folder / "notes/deep").is_dir()
    assert os.readlink(folder / "link") == "/etc/hostname"
    assert (folder / "pipe").is_fifo()
    assert "vcpu = 2;" in (folder / "vms/uart-vm.nix").read_text()


def test_a_link_where_ghafgen_writes_is_refused(work: Path):
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    folder = work / "out" / TARGET
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(folder / "vms")
    (folder / "vms").symlink_to(elsewhere)
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 2 and f"out/{TARGET}/vms" in out and "move them away" in out
    assert listing(elsewhere) == [] and (folder / "vms").is_symlink()


@pytest.mark.parametrize("first_run", [True, False])
def test_a_link_at_the_old_pid_temp_name_is_never_written_through(
    work: Path, first_run: bool
):
    """Issue 25 item 8: ghafgen used to build the new tree at
    DIR/.<target>.tmp-<pid>; a link planted there received every file, was
    swapped in as the target, and the real target folder was then removed."""
    if not first_run:
        assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
        p = work / "profiles/orin-agx-uarta.toml"
        p.write_text(p.read_text().replace("vcpus = 1", "vcpus = 2"))
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "victim").write_text("keep\n")
    planted = work / "out" / f".{TARGET}.tmp-{os.getpid()}"  # this process's pid
    planted.symlink_to(elsewhere)
    code, out = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 0, out
    assert listing(elsewhere) == ["victim"]
    assert (elsewhere / "victim").read_text() == "keep\n"
    assert planted.is_symlink() and os.readlink(planted) == str(elsewhere)
    folder = work / "out" / TARGET
    assert folder.is_dir() and not folder.is_symlink()
    vcpus = "vcpu = 1;" if first_run else "vcpu = 2;"
    assert vcpus in (folder / "vms/uart-vm.nix").read_text()
    # The folder's mode is what mkdir gives, not mkdtemp's 0700.
    assert folder.stat().st_mode & 0o777 == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_look_alike_temp_folder_of_another_user_is_not_removed(work: Path):
    """Leftovers of a killed run are removed only when they are real folders of
    the user running ghafgen; a link or another user's folder stays."""
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    out = work / "out"
    theirs = out / f".{TARGET}.tmp-theirs"
    theirs.mkdir()
    (theirs / "data").write_text("theirs\n")
    mine = out / f".{TARGET}.tmp-mine"
    mine.mkdir()
    (mine / "data").write_text("left by a killed run\n")
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "victim").write_text("keep\n")
    link = out / f".{TARGET}.old-link"
    link.symlink_to(elsewhere)
    os.chown(theirs, 65534, 65534)
    p = work / "profiles/orin-agx-uarta.toml"
    p.write_text(p.read_text().replace("vcpus = 1", "vcpus = 2"))
    code, msg = gen("profiles/orin-agx-uarta.toml", "-o", "out")
    assert code == 0, msg
    assert (theirs / "data").read_text() == "theirs\n"
    assert not mine.exists()
    assert link.is_symlink() and listing(elsewhere) == ["victim"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".ghafgen.lock", TARGET, theirs.name, link.name]
    )


def test_a_link_planted_at_the_pid_name_of_a_real_process(work: Path):
    """The same as a process: the link is planted under the pid ghafgen runs
    with (exec keeps it), before ghafgen starts."""
    import subprocess
    import sys

    assert gen("profiles/orin-agx-uarta.toml", "-o", "out")[0] == 0
    p = work / "profiles/orin-agx-uarta.toml"
    p.write_text(p.read_text().replace("vcpus = 1", "vcpus = 2"))
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    plant_then_exec = (
        "import os, sys\n"
        f"os.symlink({str(elsewhere)!r}, 'out/.{TARGET}.tmp-' + str(os.getpid()))\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'ghafgen', *sys.argv[1:]])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", plant_then_exec, "generate", str(p), "-o", "out"],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert listing(elsewhere) == []
    planted = [q for q in (work / "out").iterdir() if q.is_symlink()]
    assert len(planted) == 1 and os.readlink(planted[0]) == str(elsewhere)
    folder = work / "out" / TARGET
    assert not folder.is_symlink()
    assert "vcpu = 2;" in (folder / "vms/uart-vm.nix").read_text()
