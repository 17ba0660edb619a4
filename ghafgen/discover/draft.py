"""Draft profiles for `discover --profile` and `new-target`: values plus why, as TOML.

Entry points: `from_discovery(discovery, name, cat)` and `Draft.toml()`. Every value
ghafgen guessed carries a `# GUESS:` comment saying what to check.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from ghafgen.catalog import Catalog
from ghafgen.catalog.model import Slot
from ghafgen.discover.sysfs import Discovery, SysfsPciFunction
from ghafgen.units import format_size

GUESS = "# GUESS:"


@dataclass
class DraftVm:
    name: str
    vcpus: int = 1
    memory: str = "1G"
    guess: str | None = ""  # why it is a guess ("" = size it); None: the user gave it


@dataclass
class DraftPassthrough:
    name: str
    vm: str | None
    device: str | None = None  # when it differs from the name
    kind: str | None = None
    functions: list[str] = field(default_factory=list)
    iommu_group: list[str] = field(default_factory=list)
    bar_size: str | None = None
    notes: list[str] = field(default_factory=list)
    commented: bool = False  # written for the reader, not enabled
    vm_guessed: bool = True


@dataclass
class Draft:
    target: str
    board: str
    flavor: str = "l4t"
    flavor_guess: str = ""
    header: list[str] = field(default_factory=list)
    passthroughs: list[DraftPassthrough] = field(default_factory=list)
    vms: list[DraftVm] = field(default_factory=list)
    # The board's platform devices (the catalog's), which need virtualization.
    platform: tuple[str, ...] = ()

    @property
    def needs_virtualization(self) -> bool:
        return any(
            (p.device or p.name) in self.platform
            for p in self.passthroughs
            if not p.commented
        )

    def toml(self) -> str:
        """The draft as TOML, written by tomlkit: every value is quoted by a TOML
        writer, and comments (which may quote what a device tree or sysfs said)
        are cut to one line, so no string from the hardware becomes a key."""
        import tomlkit

        doc = tomlkit.document()
        for h in self.header:
            doc.add(tomlkit.comment(_one_line(h)))
        target = tomlkit.table()
        target.add("name", self.target)
        target.add("board", self.board)
        target.add("dt_flavor", self.flavor)
        if self.flavor_guess:
            target["dt_flavor"].comment(f"GUESS: {_one_line(self.flavor_guess)}")
        doc.add(tomlkit.nl())
        doc.add("target", target)
        nvidia = tomlkit.table(is_super_table=True)
        if self.needs_virtualization:
            virt = tomlkit.table()
            virt.add("enable", True)
            nvidia.add("virtualization", virt)
        passthroughs = tomlkit.table(is_super_table=True)
        commented: list[str] = []
        for p in self.passthroughs:
            if p.commented:
                commented += _commented_out(p)
            else:
                passthroughs.add(p.name, _passthrough(p))
        if passthroughs:
            nvidia.add("passthroughs", passthroughs)
        if nvidia:
            hardware = tomlkit.table(is_super_table=True)
            hardware.add("nvidia", nvidia)
            doc.add("hardware", hardware)
        vms = tomlkit.table(is_super_table=True)
        for vm in self.vms:
            t = tomlkit.table()
            t.add("vcpus", vm.vcpus)
            t.add("memory", vm.memory)
            if vm.guess is not None:
                why = f"GUESS: {_one_line(vm.guess or 'size it for the workload')}"
                t["vcpus"].comment(why)
                t["memory"].comment(why)
            vms.add(vm.name, t)
        if self.vms:
            doc.add("vms", vms)
        text = tomlkit.dumps(doc)
        if commented:
            text = text.rstrip("\n") + "\n\n" + "\n".join(commented) + "\n"
        return text


def _one_line(text: str) -> str:
    """Free text for a comment: control characters (a newline above all) become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)


def _passthrough(p: DraftPassthrough) -> Any:
    import tomlkit

    t = tomlkit.table()
    for note in p.notes:
        t.add(tomlkit.comment(_one_line(note)))
    if p.device:
        t.add("device", p.device)
    if p.vm:
        t.add("vm", p.vm)
        if p.vm_guessed:
            t["vm"].comment("GUESS: which VM gets it")
    if p.kind:
        t.add("kind", p.kind)
    if p.functions:
        t.add("functions", list(p.functions))
    if p.iommu_group:
        t.add("iommu_group", list(p.iommu_group))
    if p.bar_size:
        t.add("bar_size", p.bar_size)
        t["bar_size"].comment("largest BAR, rounded up")
    return t


def _commented_out(p: DraftPassthrough) -> list[str]:
    """A passthrough the reader may enable: notes, then its TOML, every line a comment."""
    import tomlkit

    wrapper = tomlkit.document()
    hw = tomlkit.table(is_super_table=True)
    nv = tomlkit.table(is_super_table=True)
    pts = tomlkit.table(is_super_table=True)
    pts.add(p.name, _passthrough(dataclasses.replace(p, notes=[])))
    nv.add("passthroughs", pts)
    hw.add("nvidia", nv)
    wrapper.add("hardware", hw)
    body = tomlkit.dumps(wrapper).strip("\n").splitlines()
    return [f"# {_one_line(n)}" for n in p.notes] + [f"# {ln}" for ln in body] + [""]


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


VM_FOR_KIND = {
    "gpu": ("gui-vm", 4, "4G"),
    "wifi": ("net-vm", 2, "1G"),
    "nic": ("net-vm", 2, "1G"),
    "nvme": ("storage-vm", 2, "1G"),
}


def from_discovery(discovery: Discovery, name: str, cat: Catalog) -> Draft:
    """A draft that validates: the board's PCIe cards to guessed VMs, platform devices listed."""
    if discovery.board is None:
        raise ValueError("no catalog board matches " + ", ".join(discovery.compatible))
    board = cat.board(discovery.board)
    names = {p.name for p in discovery.platform}
    l4t = any(
        dev.dt_name in names
        for dev in board.devices.values()
        if "mainline" not in dev.flavors
    )
    draft = Draft(
        target=name,
        board=board.name,
        platform=tuple(board.devices),
        flavor="l4t" if l4t else "mainline",
        flavor_guess=(
            "a node only L4T trees have is present"
            if l4t
            else "no L4T-only node seen; mainline"
        ),
        header=[
            f"Drafted by `ghafgen discover` from {discovery.model or 'an unnamed board'}.",
            f"{discovery.cpus} CPUs, {discovery.mem_kib // 1024} MiB RAM seen. "
            "Lines marked GUESS need a person's check.",
            *(
                [
                    f"Module {board.module.sku.upper()}: {board.module.description}, "
                    f"{board.module.ram_mib // 1024} GiB RAM, {board.module.cpu_cores} cores."
                ]
                if board.module
                else []
            ),
        ],
    )
    vms: dict[str, DraftVm] = {}
    for slot in board.slots.values():
        domain = f"{slot.controller.domain:04x}:"
        endpoints = [
            f for f in discovery.pci if f.bdf.startswith(domain) and f.kind != "bridge"
        ]
        for card in sorted({f.bdf.rsplit(".", 1)[0] for f in endpoints}):
            funcs = [f for f in endpoints if f.bdf.startswith(card + ".")]
            entry = _pci_entry(discovery, slot, funcs, vms)
            if any(p.name == entry.name for p in draft.passthroughs):
                entry.name = f"{entry.name}-{slot.key.removeprefix('pcie-')}"
            draft.passthroughs.append(entry)
    for dev in board.devices.values():
        if dev.dt_name in names:
            p = next(x for x in discovery.platform if x.name == dev.dt_name)
            draft.passthroughs.append(
                DraftPassthrough(
                    name=dev.key,
                    vm=None,
                    commented=True,
                    notes=[
                        f"candidate: {dev.dt_name} ({dev.description}), host driver "
                        f"{p.driver or 'none'}; uncomment and set vm to pass it"
                    ],
                )
            )
    draft.vms = list(vms.values())
    return draft


def _pci_entry(
    d: Discovery,
    slot: Slot,
    funcs: list[SysfsPciFunction],
    vms: dict[str, DraftVm],
) -> DraftPassthrough:
    key, host_disk = slot.key, slot.host_storage
    lead = funcs[0]
    kind = "gpu" if any(f.kind == "gpu" for f in funcs) else lead.kind
    vm_name, vcpus, mem = VM_FOR_KIND.get(kind, (f"{key}-vm", 2, "1G"))
    group = d.group_of(lead.bdf)
    bridges = [
        g for g in group if any(f.bdf == g and f.kind == "bridge" for f in d.pci)
    ]
    others = [
        g for g in group if g not in bridges and not any(f.bdf == g for f in funcs)
    ]
    notes = [
        f"{key}: "
        + ", ".join(
            f"{f.bdf} {f.id} class {f.pci_class:06x} (driver {f.driver or 'none'})"
            for f in funcs
        )
    ]
    if bridges or others:
        notes.append(
            f"IOMMU group {lead.iommu_group} also holds {', '.join(bridges + others)}: "
            "the generated host overlay takes the root port out of the group"
        )
    biggest = max((b for f in funcs for b in f.bars), default=0)
    entry = DraftPassthrough(
        name=key.replace("pcie-", "") if kind == "other" else kind,
        device=key,
        vm=vm_name,
        kind=kind if kind in ("gpu", "wifi", "nic", "nvme") else None,
        functions=[f.bdf for f in funcs],
        iommu_group=[g for g in group if g not in bridges] if group else [],
        bar_size=format_size(_pow2(biggest)) if biggest > 256 << 20 else None,
        notes=notes,
        commented=host_disk,
    )
    if host_disk:
        entry.notes.append(
            "the host's drive slot (its root or data disk as a rule); left "
            "commented: uncomment only if the host does not use it"
        )
    else:
        vms.setdefault(vm_name, DraftVm(vm_name, vcpus, mem))
    if kind == "gpu" and slot.power_max_w is not None:
        entry.notes.append(
            "GUESS: add max_power_w from the card's data sheet "
            f"(slot limit {slot.power_max_w} W)"
        )
    return entry
