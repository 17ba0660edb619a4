"""PCIe slots: power, lanes, BAR sizes, host storage, binding."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import Board
from ghafgen.derive.slots import slots_in_use
from ghafgen.findings import Finding
from ghafgen.profile.model import Passthrough, Profile
from ghafgen.rules.registry import ERROR, INFO, WARNING, finding, rule
from ghafgen.units import format_size


def bars_in_high_window(p: Profile, b: Board) -> list[Passthrough]:
    """Slot passthroughs whose BAR only fits QEMU's 64-bit PCIe window."""
    virt = b.catalog.qemu_virt
    return [
        pt
        for pt in slots_in_use(p, b)
        if pt.bar_size is not None and pt.bar_size > virt.pcie_mmio_size
    ]


@rule(
    "GG401",
    "slot-power-exceeded",
    ERROR,
    fix="Use a card within the slot's limit (40 W in the AGX x8 slot), "
    "or power it externally.",
)
def slot_power_exceeded(p: Profile, b: Board) -> Iterator[Finding]:
    """A card may not draw more than its slot supplies (x8 on AGX Orin: 40 W at 12 V)."""
    for pt in slots_in_use(p, b):
        slot = b.slots[pt.device]
        if (
            slot.power_max_w is not None
            and pt.max_power_w is not None
            and pt.max_power_w > slot.power_max_w
        ):
            yield finding(
                "GG401",
                pt.at("max_power_w"),
                f"{pt.max_power_w} W is more than slot '{slot.key}' supplies "
                f"({slot.power_max_w} W at 12 V, not the 75 W of a desktop slot)",
                f"choose a card of {slot.power_max_w} W or less, or power it externally",
            )


@rule(
    "GG402",
    "slot-power-high",
    WARNING,
    fix="Check the card's real draw; 30-34 W GPUs are what Ghaf has tried.",
)
def slot_power_high(p: Profile, b: Board) -> Iterator[Finding]:
    """A card close to the slot's limit, or of unknown draw, needs checking."""
    for pt in slots_in_use(p, b):
        slot = b.slots[pt.device]
        if slot.power_max_w is None:
            continue
        if pt.max_power_w is None and pt.kind == "gpu":
            yield finding(
                "GG402",
                pt.at(),
                f"GPU in slot '{slot.key}' has no `max_power_w`",
                f"state the card's draw; the slot supplies at most {slot.power_max_w} W",
            )
        elif (
            pt.max_power_w is not None
            and slot.power_warn_w is not None
            and slot.power_warn_w < pt.max_power_w <= slot.power_max_w
        ):
            yield finding(
                "GG402",
                pt.at("max_power_w"),
                f"{pt.max_power_w} W is close to slot '{slot.key}''s {slot.power_max_w} W "
                "limit",
                "Ghaf has run 30-34 W GPUs here; measure the card under load",
            )


@rule(
    "GG403",
    "lanes-exceed-slot",
    ERROR,
    fix="Set `lanes` to what the slot has, or use another slot.",
)
def lanes_exceed_slot(p: Profile, b: Board) -> Iterator[Finding]:
    """A card cannot use more lanes than its slot has (M.2 key E: x2)."""
    for pt in slots_in_use(p, b):
        slot = b.slots[pt.device]
        if pt.lanes is not None and pt.lanes > slot.max_lanes:
            yield finding(
                "GG403",
                pt.at("lanes"),
                f"{pt.lanes} lanes requested, slot '{slot.key}' has {slot.max_lanes}",
                f"{slot.description} carries at most x{slot.max_lanes}",
            )


@rule(
    "GG404",
    "host-storage-slot",
    ERROR,
    fix="Keep the NVMe slot with the host, or move the host's root filesystem (target.rootfs).",
)
def host_storage_slot(p: Profile, b: Board) -> Iterator[Finding]:
    """The slot holding the host's root filesystem cannot be passed."""
    rootfs = p.target.rootfs or b.rootfs
    if any(d.root and d.name == "nvme" for d in p.disks.values()):
        rootfs = "nvme"
    for pt in slots_in_use(p, b):
        slot = b.slots[pt.device]
        if slot.host_storage and rootfs == "nvme":
            yield finding(
                "GG404",
                pt.at(),
                f"slot '{slot.key}' holds the host's root filesystem (rootfs = 'nvme')",
                "passing it takes the host's disk away; set target.rootfs to where the "
                "root really is if it is not on NVMe",
            )


@rule(
    "GG405",
    "bar-in-high-window",
    INFO,
    fix="Nothing to do: keep the guest's highmem on (QEMU's default; ghafgen never "
    "turns it off).",
)
def bar_in_high_window(p: Profile, b: Board) -> Iterator[Finding]:
    """A BAR bigger than QEMU's 32-bit PCIe window goes to its 64-bit window."""
    virt = b.catalog.qemu_virt
    for pt in bars_in_high_window(p, b):
        assert pt.bar_size is not None
        yield finding(
            "GG405",
            pt.at("bar_size"),
            f"BAR of {format_size(pt.bar_size)} exceeds QEMU {virt.version} virt's "
            f"32-bit PCIe window ({format_size(virt.pcie_mmio_size)}); it is placed in "
            f"the 64-bit window ({format_size(virt.high_pcie_mmio_size)})",
            "64-bit prefetchable BARs go there with highmem on; no QEMU patch is needed",
        )


@rule(
    "GG406",
    "bar-size-invalid",
    ERROR,
    fix="Give the BAR size as a power of two that fits QEMU's 64-bit PCIe window.",
)
def bar_size_invalid(p: Profile, b: Board) -> Iterator[Finding]:
    """BARs are powers of two and fit the pinned QEMU's 64-bit PCIe window (512 GiB)."""
    virt = b.catalog.qemu_virt
    for pt in slots_in_use(p, b):
        size = pt.bar_size
        if size is None:
            continue
        if size & (size - 1):
            yield finding(
                "GG406",
                pt.at("bar_size"),
                f"BAR size {format_size(size)} is not a power of two",
                "PCI BARs are powers of two; round up to the card's real BAR",
            )
        elif size > virt.high_pcie_mmio_size:
            yield finding(
                "GG406",
                pt.at("bar_size"),
                f"BAR of {format_size(size)} is larger than QEMU {virt.version} virt's "
                f"64-bit PCIe window ({format_size(virt.high_pcie_mmio_size)})",
                "no QEMU virt guest can map it; use a card with a smaller BAR",
            )


@rule(
    "GG407",
    "card-unfit-for-slot",
    ERROR,
    fix="Put NVMe drives in an M.2 key M slot; state the right `kind`.",
)
def card_unfit_for_slot(p: Profile, b: Board) -> Iterator[Finding]:
    """M.2 key E carries PCIe and USB cards such as Wi-Fi, not NVMe drives or GPUs."""
    for pt in slots_in_use(p, b):
        slot = b.slots[pt.device]
        if slot.form == "m2-key-e" and pt.kind in ("nvme", "gpu"):
            yield finding(
                "GG407",
                pt.at("kind"),
                f"a {pt.kind} card does not fit slot '{slot.key}' ({slot.description})",
                "M.2 key E is for Wi-Fi/Bluetooth-class cards (PCIe x2 and USB)",
            )


@rule(
    "GG408",
    "vfio-ids-missing",
    ERROR,
    fix='List the card\'s vendor:device IDs in `ids`, or use binding = "driver-override".',
)
def vfio_ids_missing(p: Profile, b: Board) -> Iterator[Finding]:
    """Binding with vfio-pci.ids= needs the vendor:device IDs."""
    for pt in slots_in_use(p, b):
        if pt.binding == "ids" and not pt.ids:
            yield finding(
                "GG408",
                pt.at("binding"),
                f"'{pt.name}' binds with vfio-pci.ids= but lists no `ids`",
                'add ids = ["10de:1cb1", ...] from `lspci -nn`, or use '
                'binding = "driver-override"',
            )
