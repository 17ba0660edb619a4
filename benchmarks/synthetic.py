"""A synthetic large board for the scaling benchmark: N platform devices, V VMs.

`write_catalog(dest, n)` copies the shipped catalog and adds a board with N
BPMP-backed platform devices; `profile_text(n, vms)` passes them all. Used by
bench.py through GHAFGEN_CATALOG; nothing here is shipped catalog data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "ghafgen" / "catalog" / "data"
BOARD = "synthetic-board"
# (devices, VMs) of each scaling row bench.py times; tests/test_benchmarks.py
# validates the same profiles, so a rule that starts refusing them shows there.
SHAPES = ((50, 5), (100, 10), (250, 25), (500, 50))


def write_catalog(dest: Path, n: int) -> Path:
    shutil.copytree(DATA, dest)
    soc = ["", "# Synthetic devices for benchmarks/bench.py"]
    for i in range(n):
        base = 0x40000000 + i * 0x10000
        soc += [
            f"[clocks.SYN{i}]",
            f"id = {10000 + i}",
            'source = "synthetic"',
            f"[resets.SYN{i}]",
            f"id = {10000 + i}",
            'source = "synthetic"',
            f"[devices.syn{i}]",
            f'description = "synthetic device {i}"',
            f'dt_name = "{base:x}.serial"',
            f'node = "serial@{base:x}"',
            'compatible = ["nvidia,tegra234-uart"]',
            f"reg = [[{base:#x}, 0x10000]]",
            f"interrupts = [{200 + i}]",
            f'clocks = ["SYN{i}"]',
            f'resets = ["SYN{i}"]',
            "power_domains = []",
            'instance_of = "syn"',
            "needs_sid_marking = false",
            f"iommu_sid = {0x100 + i}",
            'iommu_sid_name = "SYNTHETIC"',
            'source = "synthetic"',
            f"[devices.syn{i}.dt.l4t]",
            f'label = "syn{i}"',
            f"[devices.syn{i}.guest]",
            'compatible = ["nvidia,tegra194-hsuart"]',
            "bpmp = true",
            f'guest_clocks = ["SYN{i}"]',
            'clock_names = ["serial"]',
            'reset_names = ["serial"]',
            'source = "synthetic"',
        ]
    with open(dest / "t234.toml", "a", encoding="utf-8") as f:
        f.write("\n".join(soc) + "\n")
    devices = ", ".join(f'"syn{i}"' for i in range(n))
    (dest / "boards" / f"{BOARD}.toml").write_text(
        "[board]\n"
        f'name = "{BOARD}"\nsoc = "t234"\ndescription = "synthetic"\ncpu_cores = 256\n'
        'ram = "4096G"\nhost_reserve = "2G"\nrootfs = "emmc"\ndt_model = "synthetic"\n'
        'dt_compatible = "synthetic"\nsource = "synthetic"\n'
        f"devices = [{devices}]\n",
        encoding="utf-8",
    )
    return dest


def profile_text(n: int, vms: int) -> str:
    lines = [
        "[target]",
        'name = "synthetic"',
        f'board = "{BOARD}"',
        "[hardware.nvidia.virtualization]",
        "enable = true",
    ]
    if vms > 1:
        # Every synthetic device is BPMP-backed: VMs sharing one proxy device
        # could reach each other's clocks and resets (GG307).
        lines.append("bpmp_per_vm = true")
    for i in range(n):
        lines += [f"[hardware.nvidia.passthroughs.syn{i}]", f'vm = "vm{i % vms}"']
    for v in range(vms):
        lines += [f"[vms.vm{v}]", "vcpus = 2", 'memory = "1G"']
    return "\n".join(lines) + "\n"
