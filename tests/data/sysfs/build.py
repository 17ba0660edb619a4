"""Build the captured sysfs/procfs trees the discovery tests read.

Run from this folder: python3 build.py. The trees are committed; this script
says where each fact comes from. Devices and addresses follow the catalog
(ghafgen/catalog/data) and the seeds; PCI IDs of the cards are examples:
the AGX devkit's Realtek RTL8822CE Wi-Fi (10ec:c822, in Ghaf's vfio-pci.ids),
an NVIDIA Quadro P1000 (10de:1cb1) with its HDMI audio (10de:0fb9) as in the
seed's x8-slot trials, the Orin NX devkit's Realtek NIC (10ec:8168). Root-port
IDs (10de:229x) are illustrative.

The four SKU trees (agx-orin-64gb, agx-orin-industrial, orin-nx-16gb,
orin-nano-8gb) carry the root compatible list in the shape of the mainline
board trees (linux 6.12 arch/arm64/boot/dts/nvidia: "nvidia,<carrier>+<module>",
"nvidia,<module>", "nvidia,tegra234") with the SKU of each module, the model
strings of tegra234-p3737-0000+p3701-0000.dts, tegra234-p3768-0000+p3767-0000.dts
and -0005.dts, and the platform devices those trees enable. MemTotal values are
illustrative: module RAM less a firmware carve-out.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent

AGX = {
    "model": "NVIDIA Jetson AGX Orin Developer Kit",
    "compatible": [
        "nvidia,p3737-0000+p3701-0000",
        "nvidia,p3701-0005",
        "nvidia,tegra234",
    ],
    "cpus": 12,
    "mem_kib": 64 * 1024 * 1024 - 1500000,
}
NX = {
    "model": "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
    "compatible": [
        "nvidia,p3768-0000+p3767-0000",
        "nvidia,p3767-0000",
        "nvidia,tegra234",
    ],
    "cpus": 8,
    "mem_kib": 16 * 1024 * 1024 - 800000,
}
UART = ("nvidia,tegra234-uart", "nvidia,tegra20-uart")
HSUART = ("nvidia,tegra194-hsuart",)  # what the 6.12 board trees make UARTA/UARTE
I2C = ("nvidia,tegra194-i2c",)
GiB_KIB = 1024 * 1024


def sku_board(carrier, module, model, cpus, ram_gib, carveout_kib):
    return {
        "model": model,
        "compatible": [
            f"nvidia,{carrier}+{module}",
            f"nvidia,{module}",
            "nvidia,tegra234",
        ],
        "cpus": cpus,
        "mem_kib": ram_gib * GiB_KIB - carveout_kib,
    }


MiB = 1 << 20


def pci(bdf, vid, did, cls, driver, bars=()):
    return {
        "bdf": bdf,
        "vendor": vid,
        "device": did,
        "class": cls,
        "driver": driver,
        "bars": bars,
    }


def agx_pci(gpu: bool):
    devs = [
        pci("0001:00:00.0", "10de", "229e", 0x060400, "pcieport"),
        pci(
            "0001:01:00.0",
            "10ec",
            "c822",
            0x028000,
            "rtw88_8822ce",
            (1 * MiB, 64 * 1024),
        ),
        pci("0004:00:00.0", "10de", "229c", 0x060400, "pcieport"),
        pci("0004:01:00.0", "144d", "a80a", 0x010802, "nvme", (16 * 1024,)),
    ]
    if gpu:
        devs += [
            pci("0005:00:00.0", "10de", "229a", 0x060400, "pcieport"),
            pci(
                "0005:01:00.0",
                "10de",
                "1cb1",
                0x030000,
                "nouveau",
                (16 * MiB, 256 * MiB, 32 * MiB),
            ),
            pci(
                "0005:01:00.1", "10de", "0fb9", 0x040300, "snd_hda_intel", (16 * 1024,)
            ),
        ]
    return devs


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def tree(name, board, pcidevs, groups, platform):
    root = HERE / name
    shutil.rmtree(root, ignore_errors=True)
    write(root / "proc/device-tree/model", board["model"] + "\0")
    write(
        root / "proc/device-tree/compatible",
        "".join(c + "\0" for c in board["compatible"]),
    )
    write(
        root / "proc/cpuinfo",
        "".join(
            f"processor\t: {i}\nBogoMIPS\t: 62.50\n\n" for i in range(board["cpus"])
        ),
    )
    write(root / "proc/meminfo", f"MemTotal:       {board['mem_kib']} kB\n")
    group_of = {dev: g for g, members in groups.items() for dev in members}
    for d in pcidevs:
        base = root / "sys/bus/pci/devices" / d["bdf"]
        write(base / "vendor", f"0x{d['vendor']}\n")
        write(base / "device", f"0x{d['device']}\n")
        write(base / "class", f"0x{d['class']:06x}\n")
        lines, addr = [], 0x2000000000
        for size in d["bars"]:
            lines.append(f"0x{addr:016x} 0x{addr + size - 1:016x} 0x0000000000040200")
            addr += max(size, 1 << 20)
        lines += ["0x0000000000000000 0x0000000000000000 0x0000000000000000"] * (
            13 - len(lines)
        )
        write(base / "resource", "\n".join(lines) + "\n")
        link(base / "driver", f"../../../bus/pci/drivers/{d['driver']}")
        if d["bdf"] in group_of:
            link(
                base / "iommu_group",
                f"../../../kernel/iommu_groups/{group_of[d['bdf']]}",
            )
    for name_, driver, compat in platform:
        base = root / "sys/bus/platform/devices" / name_
        write(base / "of_node/compatible", "".join(c + "\0" for c in compat))
        link(base / "driver", f"../../../bus/platform/drivers/{driver}")
        if name_ in group_of:
            link(
                base / "iommu_group", f"../../../kernel/iommu_groups/{group_of[name_]}"
            )
    for g, members in groups.items():
        folder = root / "sys/kernel/iommu_groups" / g / "devices"
        folder.mkdir(parents=True, exist_ok=True)
        for m in members:
            bus = "pci" if ":" in m else "platform"
            link(folder / m, f"../../../../bus/{bus}/devices/{m}")


AGX_PLATFORM = [
    ("3100000.serial", "serial-tegra", UART),
    ("31d0000.serial", "uart-pl011", ("arm,sbsa-uart",)),  # L4T trees only
    ("6800000.ethernet", "nvethernet", ("nvidia,tegra234-mgbe",)),
    ("14100000.pcie", "tegra194-pcie", ("nvidia,tegra234-pcie",)),
    ("14160000.pcie", "tegra194-pcie", ("nvidia,tegra234-pcie",)),
    ("141a0000.pcie", "tegra194-pcie", ("nvidia,tegra234-pcie",)),
]

# AGX devkit, Wi-Fi card and GPU + audio; each endpoint apart from its root port.
tree(
    "agx-gpu",
    AGX,
    agx_pci(gpu=True),
    {
        "4": ["0001:00:00.0"],
        "5": ["0001:01:00.0"],
        "6": ["0004:00:00.0"],
        "7": ["0004:01:00.0"],
        "8": ["0005:00:00.0"],
        "9": ["0005:01:00.0", "0005:01:00.1"],
        "12": ["6800000.ethernet"],
    },
    AGX_PLATFORM,
)
# The same before the overlay: the x8 controller (L4T iommus) and root port share the
# endpoint's group, so discovery says the root-port overlay is needed.
tree(
    "agx-shared-group",
    AGX,
    agx_pci(gpu=True),
    {
        "4": ["0001:00:00.0"],
        "5": ["0001:01:00.0"],
        "6": ["0004:00:00.0"],
        "7": ["0004:01:00.0"],
        "9": ["141a0000.pcie", "0005:00:00.0", "0005:01:00.0", "0005:01:00.1"],
        "12": ["6800000.ethernet"],
    },
    AGX_PLATFORM,
)
# Orin NX devkit: on-board Realtek NIC on C8; NVMe on C4 holds the root filesystem.
tree(
    "orin-nx",
    NX,
    [
        pci("0004:00:00.0", "10de", "229c", 0x060400, "pcieport"),
        pci("0004:01:00.0", "144d", "a80a", 0x010802, "nvme", (16 * 1024,)),
        pci("0008:00:00.0", "10de", "229c", 0x060400, "pcieport"),
        pci("0008:01:00.0", "10ec", "8168", 0x020000, "r8169", (4 * 1024, 16 * 1024)),
    ],
    {
        "1": ["0004:00:00.0"],
        "2": ["0004:01:00.0"],
        "3": ["0008:00:00.0"],
        "4": ["0008:01:00.0"],
    },
    [("3100000.serial", "serial-tegra", UART)],
)


AGX_612_PLATFORM = [
    ("3100000.serial", "serial-tegra", HSUART),
    ("3160000.i2c", "tegra-i2c", I2C),
    ("6800000.ethernet", "dwc-eth-dwmac", ("nvidia,tegra234-mgbe",)),
    ("14100000.pcie", "tegra194-pcie", ("nvidia,tegra234-pcie",)),
    ("14160000.pcie", "tegra194-pcie", ("nvidia,tegra234-pcie",)),
    ("141a0000.pcie", "tegra194-pcie", ("nvidia,tegra234-pcie",)),
]
P3768_612_PLATFORM = [
    ("3100000.serial", "serial-tegra", HSUART),
    ("3140000.serial", "serial-tegra", HSUART),
    ("3160000.i2c", "tegra-i2c", I2C),
    ("c240000.i2c", "tegra-i2c", I2C),
    ("14160000.pcie", "tegra194-pcie", ("nvidia,tegra234-pcie",)),
    ("140a0000.pcie", "tegra194-pcie", ("nvidia,tegra234-pcie",)),
]
AGX_GROUPS = {
    "4": ["0001:00:00.0"],
    "5": ["0001:01:00.0"],
    "6": ["0004:00:00.0"],
    "7": ["0004:01:00.0"],
    "12": ["6800000.ethernet"],
}
P3768_PCI = [
    pci("0004:00:00.0", "10de", "229c", 0x060400, "pcieport"),
    pci("0004:01:00.0", "144d", "a80a", 0x010802, "nvme", (16 * 1024,)),
    pci("0008:00:00.0", "10de", "229c", 0x060400, "pcieport"),
    pci("0008:01:00.0", "10ec", "8168", 0x020000, "r8169", (4 * 1024, 16 * 1024)),
]
P3768_GROUPS = {
    "1": ["0004:00:00.0"],
    "2": ["0004:01:00.0"],
    "3": ["0008:00:00.0"],
    "4": ["0008:01:00.0"],
}
AGX_MODEL = "NVIDIA Jetson AGX Orin Developer Kit"
tree(
    "agx-orin-64gb",
    sku_board("p3737-0000", "p3701-0005", AGX_MODEL, 12, 64, 1500000),
    agx_pci(gpu=False),
    AGX_GROUPS,
    AGX_612_PLATFORM,
)
tree(
    "agx-orin-industrial",
    sku_board("p3737-0000", "p3701-0008", AGX_MODEL, 12, 64, 1600000),
    agx_pci(gpu=False),
    AGX_GROUPS,
    AGX_612_PLATFORM,
)
tree(
    "orin-nx-16gb",
    sku_board(
        "p3768-0000",
        "p3767-0000",
        "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
        8,
        16,
        800000,
    ),
    P3768_PCI,
    P3768_GROUPS,
    P3768_612_PLATFORM,
)
tree(
    "orin-nano-8gb",
    sku_board(
        "p3768-0000",
        "p3767-0005",
        "NVIDIA Jetson Orin Nano Developer Kit",
        6,
        8,
        600000,
    ),
    P3768_PCI,
    P3768_GROUPS,
    P3768_612_PLATFORM,
)
# A carrier the catalog does not know (an Orin NX on a third-party carrier):
# discover writes a board draft listing what is missing.
tree(
    "unknown-carrier",
    sku_board(
        "p3509-0000", "p3767-0000", "Third-party carrier with Orin NX", 8, 16, 800000
    ),
    [],
    {},
    [("3100000.serial", "serial-tegra", HSUART)],
)
