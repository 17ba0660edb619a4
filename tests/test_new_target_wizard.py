"""`ghafgen new-target` as a new user meets it: what is marked GUESS, what is asked
again, what Ctrl-C and CI=false do, and flags that cannot be combined."""

from __future__ import annotations

import os
import re
import signal
import sys
import tomllib
from pathlib import Path

import pexpect
import pytest

from ghafgen import catalog
from ghafgen.discover.newtarget import draft
from ghafgen.profile.parse import load_text
from tests.conftest import ROOT, run_ghafgen

SYSFS = ROOT / "tests" / "data" / "sysfs" / "agx-gpu"


def _default_sigint() -> None:
    # A run started as `nohup pytest &` ignores SIGINT, and an ignored signal
    # stays ignored across exec: Python would then never raise
    # KeyboardInterrupt and the Ctrl-C tests would wait for an exit that never
    # comes. ghafgen leaves an inherited SIG_IGN alone on purpose (a parent
    # that ignores Ctrl-C for its background jobs means it), so the test gives
    # its child the terminal's default back, as an interactive shell would,
    # and unblocked: a blocked signal also survives exec.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _ends_on_ctrl_c(child: pexpect.spawn) -> None:
    """Ctrl-C on the child's terminal ends it; if it does not, the failure
    shows the child's signal masks (/proc/PID/status), to tell a lost signal
    from a slow exit."""
    child.sendintr()
    try:
        child.expect(pexpect.EOF, timeout=60)
    except pexpect.TIMEOUT:
        status = Path(f"/proc/{child.pid}/status").read_text()
        masks = [ln for ln in status.splitlines() if ln.startswith("Sig")]
        child.terminate(force=True)
        pytest.fail(f"no exit 60 s after Ctrl-C; child {masks}: {child.before[-300:]}")


def spawn(tmp_path: Path, *args: str, ci: str | None = None) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(ROOT)}
    if ci is not None:
        env["CI"] = ci
    return pexpect.spawn(
        sys.executable,
        ["-m", "ghafgen", "new-target", *args],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=30,
        preexec_fn=_default_sigint,
    )


def test_values_the_user_gave_are_not_marked_guess():
    text = draft(
        "t",
        "jetson-agx-orin-devkit",
        ["uarta:uart-vm"],
        ["uart-vm:2:2G"],
        None,
        catalog.load(),
    ).toml()
    vm_lines = [ln for ln in text.splitlines() if ln.startswith(("vcpus", "memory"))]
    assert vm_lines == ["vcpus = 2", 'memory = "2G"']
    assert 'vm = "uart-vm"\n' in text  # given by flag: no GUESS either
    defaulted = draft(
        "t", "jetson-agx-orin-devkit", ["uarta:uart-vm"], [], None, catalog.load()
    )
    assert "vcpus = 1 # GUESS:" in defaulted.toml()


def test_zero_vcpus_is_refused_before_anything_is_written(tmp_path: Path):
    done = run_ghafgen(
        "new-target",
        "t",
        "--board",
        "jetson-agx-orin-devkit",
        "--vm",
        "a:0:1G",
        "--passthrough",
        "uarta:a",
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "CI"},
    )
    assert done.returncode == 2
    assert "error: --vm 'a:0:1G': 'vms.a.vcpus' is 0, outside 1..256 (GG007)\n" in (
        done.stderr
    )
    # The AGX Orin 64 GB has 12 cores (NVIDIA Jetson AGX Orin Series data sheet).
    assert "hint: give the VM at least 1 vCPU and at most the board's 12 cores" in (
        done.stderr
    )
    assert not (tmp_path / "profiles").exists()


def test_a_wrong_answer_is_asked_again(tmp_path: Path):
    child = spawn(tmp_path, "wiz", "--board", "jetson-agx-orin-devkit")
    child.expect("devices to pass, DEVICE:VM")
    child.sendline("nosuch:net-vm")
    child.expect("Error: 'nosuch:net-vm': write DEVICE:VM")
    child.expect("devices to pass, DEVICE:VM")
    child.sendline("mgbe0:net-vm")
    child.expect("vCPUs for net-vm")
    child.sendline("0")
    child.expect(re.escape("Error: 'vms.net-vm.vcpus' is 0, outside 1..256 (GG007)"))
    child.expect("vCPUs for net-vm")
    child.sendline("2")
    child.expect("memory for net-vm")
    child.sendline("lots")
    child.expect(re.escape("Error: 'vms.net-vm.memory' has an invalid value 'lots'"))
    child.expect("memory for net-vm")
    child.sendline("2G")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    doc = tomllib.loads((tmp_path / "profiles" / "wiz.toml").read_text())
    assert doc["vms"]["net-vm"] == {"vcpus": 2, "memory": "2G"}
    text = (tmp_path / "profiles" / "wiz.toml").read_text()
    assert "vcpus = 2\n" in text  # answered, so not a guess


def test_ctrl_c_at_a_prompt_exits_130_and_writes_nothing(tmp_path: Path):
    child = spawn(tmp_path, "wiz", "--board", "jetson-agx-orin-devkit")
    child.expect("devices to pass, DEVICE:VM")
    _ends_on_ctrl_c(child)
    child.close()
    assert child.exitstatus == 130, child.before
    assert "Traceback" not in (child.before or "")
    assert not (tmp_path / "profiles").exists()


def test_ctrl_c_works_when_the_test_run_ignores_sigint(tmp_path: Path):
    # What `nohup python3 -m pytest &` does to the run: SIGINT ignored, which
    # every child inherits unless spawn() gives it back.
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        child = spawn(tmp_path, "wiz", "--board", "jetson-agx-orin-devkit")
    finally:
        signal.signal(signal.SIGINT, before)
    child.expect("devices to pass, DEVICE:VM")
    _ends_on_ctrl_c(child)
    child.close()
    assert child.exitstatus == 130, child.before
    assert not (tmp_path / "profiles").exists()


def test_ci_false_still_asks(tmp_path: Path):
    child = spawn(tmp_path, "wiz", "--board", "jetson-agx-orin-devkit", ci="false")
    child.expect("devices to pass, DEVICE:VM")
    _ends_on_ctrl_c(child)
    child.close()
    quiet = spawn(tmp_path, "wiz2", ci="true")
    quiet.expect("give --board")
    quiet.expect(pexpect.EOF)
    quiet.close()
    assert quiet.exitstatus == 2


@pytest.mark.parametrize(
    ("flags", "profile_vm"),
    [
        (("--vm", "net:2:1GB"), ("net", 2, "1GB")),
        (("--vm", "net:2:1024"), ("net", 2, "1024")),
        (("--vm", "net:0:1G"), ("net", 0, "1G")),
        (("--vm", "Net VM:2:1G"), ("Net VM", 2, "1G")),
        (("--passthrough", "uarta:Net VM"), ("Net VM", 1, "1G")),
    ],
)
def test_a_bad_flag_gets_the_words_and_hint_validate_gives(
    tmp_path: Path, flags: tuple[str, str], profile_vm: tuple[str, int, str]
):
    """One source of truth: the same value in a profile and in a flag is refused
    with the same message, rule ID and hint."""
    name, vcpus, memory = profile_vm
    profile = (
        '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\n'
        f'[hardware.nvidia.passthroughs.uarta]\nvm = "{name}"\n'
        f'[vms."{name}"]\nvcpus = {vcpus}\nmemory = "{memory}"\n'
    )
    findings = load_text(profile, "p.toml", catalog.load()).findings
    flag, value = flags
    pt = ["--passthrough", "uarta:net"] if flag == "--vm" else []
    done = run_ghafgen(
        "new-target",
        "t",
        "--board",
        "jetson-agx-orin-devkit",
        flag,
        value,
        *pt,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "CI"},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"error: {flag} {value!r}: ")
    said = [f for f in findings if f"{f.message} ({f.rule_id})" in first]
    assert len(said) == 1, (first, [f.render() for f in findings])
    assert done.stderr.splitlines()[1] == f"  hint: {said[0].hint}"
    assert not (tmp_path / "profiles").exists()


def test_from_discover_refuses_flags_it_would_ignore(tmp_path: Path):
    for flag, value in (
        ("--board", "jetson-agx-orin-devkit"),
        ("--passthrough", "uarta:x"),
        ("--vm", "x:1:1G"),
    ):
        done = run_ghafgen(
            "new-target", "t", "--from-discover", str(SYSFS), flag, value, cwd=tmp_path
        )
        assert done.returncode == 2, done.stderr
        assert "leave out --board, --passthrough and --vm" in done.stderr
    assert not (tmp_path / "profiles").exists()
