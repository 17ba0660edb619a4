"""Cross-profile checks for profiles that share one physical host."""

from __future__ import annotations

from pathlib import Path

from ghafgen import catalog
from ghafgen.rules.engine import validate
from tests.conftest import AGX

V = "[hardware.nvidia.virtualization]\nenable = true\n"


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


def profile(
    name: str, host: str, body: str, board: str = "jetson-agx-orin-devkit"
) -> str:
    head = AGX.replace('"t"', f'"{name}"').replace("jetson-agx-orin-devkit", board)
    return head + f'host = "{host}"\n' + body


def rules(paths: list[Path]) -> set[tuple[str, str, int]]:
    return {
        (f.rule_id, Path(f.src.file).stem, f.src.line)
        for f in validate(paths, catalog.load()).findings
    }


UART = (
    V
    + '[hardware.nvidia.passthroughs.uarta]\nvm = "{vm}"\n'
    + '\n[vms.{vm}]\nvcpus = 1\nmemory = "{mem}"\n'
)


def test_same_device_on_one_host(tmp_path: Path):
    a = write(tmp_path, "a", profile("a", "lab", UART.format(vm="x", mem="1G")))
    b = write(tmp_path, "b", profile("b", "lab", UART.format(vm="y", mem="1G")))
    # GG101, the one-profile rule, run over the host's profiles together.
    assert ("GG101", "b", 7) in rules([a, b])


def test_same_device_on_different_hosts_is_fine(tmp_path: Path):
    a = write(tmp_path, "a", profile("a", "lab1", UART.format(vm="x", mem="1G")))
    b = write(tmp_path, "b", profile("b", "lab2", UART.format(vm="y", mem="1G")))
    assert validate([a, b], catalog.load()).exit_code == 0


def test_vm_twice_and_target_twice(tmp_path: Path):
    a = write(tmp_path, "a", profile("same", "lab", UART.format(vm="x", mem="1G")))
    b = write(
        tmp_path,
        "b",
        profile("same", "lab", V + '\n[vms.x]\nvcpus = 1\nmemory = "1G"\n'),
    )
    found = rules([a, b])
    assert ("GG701", "b", 2) in found
    assert ("GG703", "b", 8) in found


def test_board_mismatch_and_memory(tmp_path: Path):
    a = write(tmp_path, "a", profile("a", "lab", UART.format(vm="x", mem="40G")))
    b = write(
        tmp_path,
        "b",
        profile(
            "b",
            "lab",
            '[hardware.nvidia.passthroughs.pcie-m2e]\nvm = "y"\n'
            'functions = ["0001:01:00.0"]\n\n[vms.y]\nvcpus = 1\nmemory = "30G"\n',
        ),
    )
    # GG505 over the host: the biggest VM's memory line, whichever profile has it.
    assert ("GG505", "a", 12) in rules([a, b])
    c = write(tmp_path, "c", profile("c", "lab", "", board="jetson-orin-nx-devkit"))
    assert ("GG704", "c", 3) in rules([a, c])
