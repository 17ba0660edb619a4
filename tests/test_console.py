"""Where a VM's console goes, as planned: the rule the guest boot test proves, kept fast.

tests/test_guest_boot.py shows on a booted guest that a passed SBSA UART with the
serial0 alias is ttyAMA0 and that the PCI serial console reaches stdio.
"""

from __future__ import annotations

from pathlib import Path

from ghafgen import catalog
from ghafgen.render.files import render_target
from ghafgen.render.plan import VmPlan, plan
from ghafgen.rules.engine import validate

HEAD = (
    '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\ndt_flavor = "l4t"\n'
    "[hardware.nvidia.virtualization]\nenable = true\n"
)


def vm_of(tmp_path: Path, passthroughs: list[str]) -> tuple[VmPlan, str]:
    """The plan of VM `v` given `passthroughs` in that order, and its vm.nix."""
    body = "".join(
        f'[hardware.nvidia.passthroughs.{p}]\nvm = "v"\n' for p in passthroughs
    )
    path = tmp_path / "p.toml"
    path.write_text(HEAD + body + '[vms.v]\nvcpus = 1\nmemory = "1G"\n')
    report = validate([path], catalog.load())
    assert report.usable, [f.render() for f in report.findings]
    target = plan(*report.usable[0], "p.toml")
    return target.vms[0], render_target(target)["vms/v.nix"].decode()


def consoles(vm: VmPlan) -> list[str]:
    return [p for p in vm.kernel_params if p.startswith("console=")]


def test_a_passed_sbsa_uart_moves_the_console_to_a_pci_serial_card(tmp_path: Path):
    vm, nix = vm_of(tmp_path, ["uarti"])
    assert vm.pci_serial_console
    assert vm.qemu_args[-2:] == ("-device", "pci-serial,chardev=stdio")
    assert consoles(vm)[-1] == "console=ttyS0"
    assert "qemu.serialConsole = false;" in nix


def test_a_passed_tegra_uart_leaves_the_console_on_the_pl011(tmp_path: Path):
    vm, nix = vm_of(tmp_path, ["uarta"])
    assert not vm.pci_serial_console
    assert "pci-serial" not in " ".join(vm.qemu_args)
    assert consoles(vm) == []
    assert "serialConsole" not in nix


def test_any_passed_sbsa_uart_moves_the_console(tmp_path: Path):
    # UARTA takes serial0 (ttyTHS0); UARTI, serial1, probes before the pl011 and
    # takes its port slot, so the pl011's number is not ttyAMA0 for sure.
    assert vm_of(tmp_path, ["uarta", "uarti"])[0].pci_serial_console
