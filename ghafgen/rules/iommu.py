"""IOMMU groups pass whole, and PCI functions match their slot."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import Board
from ghafgen.derive.slots import slots_in_use
from ghafgen.findings import Finding
from ghafgen.profile.model import Passthrough, Profile
from ghafgen.rules.ownership import claimant
from ghafgen.rules.registry import ERROR, finding, rule


def _to(pt: Passthrough) -> str:
    return f"'{pt.vm}'" if pt.vm else "the host"


def _file(first: Passthrough, pt: Passthrough) -> str:
    """`, in FILE` when `first` is declared in another profile than `pt`."""
    return "" if first.at.file == pt.at.file else f", in {first.at.file}"


@rule(
    "GG201",
    "iommu-group-split",
    ERROR,
    scope="host",
    fix="Pass every function of the card (and every member of its IOMMU group) to one VM.",
)
def iommu_group_split(p: Profile, b: Board) -> Iterator[Finding]:
    """All functions of one PCI device, and all of an IOMMU group, go to the same VM of the host."""
    owner: dict[str, Passthrough] = {}
    for pt in slots_in_use(p, b):
        for fn in pt.functions:
            seen = owner.setdefault(fn.device, pt)
            if claimant(seen) != claimant(pt):
                yield finding(
                    "GG201",
                    pt.at("functions"),
                    f"functions of '{fn.device}' go to {_to(seen)} (entry '{seen.name}'"
                    f"{_file(seen, pt)}) and to {_to(pt)}",
                    "functions of one card share an IOMMU group; VFIO gives a group to one VM",
                )
        missing = [g.bdf for g in pt.iommu_group if g not in pt.functions]
        if missing:
            yield finding(
                "GG201",
                pt.at("iommu_group"),
                f"'{pt.name}' leaves {', '.join(repr(m) for m in missing)} "
                "of its IOMMU group behind",
                "add them to `functions`: VFIO refuses a group with a device left on the host",
            )


@rule(
    "GG202",
    "gpu-without-audio",
    ERROR,
    fix="Add the GPU's audio function (usually .1) to `functions`, "
    "or set `audio_function = false`.",
)
def gpu_without_audio(p: Profile, b: Board) -> Iterator[Finding]:
    """A GPU's HDMI/DP audio function shares its IOMMU group and goes with it."""
    for pt in slots_in_use(p, b):
        if pt.kind != "gpu" or not pt.audio_function:
            continue
        for dev in sorted({f.device for f in pt.functions}):
            if not any(f.device == dev and f.function != 0 for f in pt.functions):
                yield finding(
                    "GG202",
                    pt.at("functions"),
                    f"GPU '{dev}.0' is passed without its audio function",
                    f'add "{dev}.1" to `functions` (same card, same IOMMU group), or set '
                    "`audio_function = false` if the card has none",
                )


@rule(
    "GG203",
    "functions-need-slot",
    ERROR,
    fix="Give PCI functions only to slot entries; give slot entries at least one function.",
)
def functions_need_slot(p: Profile, b: Board) -> Iterator[Finding]:
    """PCI functions belong to slot passthroughs; a slot passthrough lists its functions."""
    for pt in p.enabled:
        if pt.device in b.slots and not pt.functions:
            yield finding(
                "GG203",
                pt.at(),
                f"slot '{pt.device}' is passed with no `functions`",
                f"list the card's PCI functions, e.g. functions = "
                f'["{b.slots[pt.device].controller.domain:04x}:01:00.0"]',
            )
        elif pt.device in b.devices and (pt.functions or pt.iommu_group):
            yield finding(
                "GG203",
                pt.at("functions"),
                f"'{pt.device}' is a platform device; it has no PCI functions",
                "remove `functions` and `iommu_group` from this entry",
            )


@rule(
    "GG204",
    "function-domain-mismatch",
    ERROR,
    fix="Use the PCI domain of the slot's controller in every function address.",
)
def function_domain_mismatch(p: Profile, b: Board) -> Iterator[Finding]:
    """A slot's functions sit in the PCI domain of the slot's controller."""
    for pt in slots_in_use(p, b):
        slot = b.slots[pt.device]
        want = slot.controller.domain
        for i, fn in enumerate((*pt.functions, *pt.iommu_group)):
            if fn.domain != want:
                key = "functions" if i < len(pt.functions) else "iommu_group"
                yield finding(
                    "GG204",
                    pt.at(key),
                    f"'{fn.bdf}' is in PCI domain {fn.domain:04x}, but slot '{slot.key}' is "
                    f"controller {slot.controller.dt_name}, domain {want:04x}",
                    f'write it as "{want:04x}{fn.bdf[4:]}", or pass the slot that holds the card',
                )


@rule(
    "GG205",
    "shared-sid-split",
    ERROR,
    scope="host",
    fix="Pass platform devices that share the passthrough stream ID to the same VM.",
)
def shared_sid_split(p: Profile, b: Board) -> Iterator[Finding]:
    """Platform devices given the one passthrough SID go to one VM of the host (one group)."""
    marked: dict[tuple[str, str], Passthrough] = {}
    for pt in p.enabled:
        dev = b.devices.get(pt.device)
        if dev is None:
            continue
        # The GPU group's overlay gives ga10b (and its carve-outs) the same ID.
        if not (dev.needs_sid_marking or dev.iommu_sid == b.soc.passthrough_sid):
            continue
        marked.setdefault(claimant(pt), pt)
    if len(marked) > 1:
        items = list(marked.values())
        yield finding(
            "GG205",
            items[1].at(),
            f"'{items[0].device}' (to {_to(items[0])}{_file(items[0], items[1])}) and "
            f"'{items[1].device}' (to {_to(items[1])}) both get stream ID "
            f"{b.soc.passthrough_sid_name}, so the SMMU puts them in one IOMMU group",
            "give both to one VM (arm-smmu.c arm_smmu_device_group shares a group per stream ID)",
        )
