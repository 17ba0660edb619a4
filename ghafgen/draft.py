"""Draft profiles for `discover --profile` and `new-target`: values plus why, as TOML.

Entry points: `from_discovery(discovery, name)` and `Draft.toml()`. Every value
ghafgen guessed carries a `# GUESS:` comment saying what to check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ghafgen import catalog
from ghafgen.catalog.model import Slot
from ghafgen.discover import Discovery, PciFunction
from ghafgen.units import format_size

GUESS = "# GUESS:"


@dataclass
class DraftVm:
    name: str
    vcpus: int = 1
    memory: str = "1G"
    guess: str = ""


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

    @property
    def needs_virtualization(self) -> bool:
        board = catalog.board(self.board)
        return any(
            (p.device or p.name) in board.devices
            for p in self.passthroughs
            if not p.commented
        )

    def toml(self) -> str:
        q = json.dumps  # TOML basic strings for the values ghafgen writes
        out = [
            *(f"# {h}" for h in self.header),
            "",
            "[target]",
            f"name = {q(self.target)}",
            f"board = {q(self.board)}",
            f"dt_flavor = {q(self.flavor)}"
            + (f"  {GUESS} {self.flavor_guess}" if self.flavor_guess else ""),
        ]
        if self.needs_virtualization:
            out += ["", "[hardware.nvidia.virtualization]", "enable = true"]
        for p in self.passthroughs:
            lines = [f"[hardware.nvidia.passthroughs.{p.name}]"]
            if p.device:
                lines.append(f"device = {q(p.device)}")
            if p.vm:
                mark = f"  {GUESS} which VM gets it" if p.vm_guessed else ""
                lines.append(f"vm = {q(p.vm)}{mark}")
            if p.kind:
                lines.append(f"kind = {q(p.kind)}")
            if p.functions:
                lines.append(
                    "functions = [" + ", ".join(q(f) for f in p.functions) + "]"
                )
            if p.iommu_group:
                lines.append(
                    "iommu_group = [" + ", ".join(q(f) for f in p.iommu_group) + "]"
                )
            if p.bar_size:
                lines.append(f"bar_size = {q(p.bar_size)}  # largest BAR, rounded up")
            out.append("")
            out += [f"# {n}" for n in p.notes]
            out += [f"# {ln}" if p.commented else ln for ln in lines]
        for vm in self.vms:
            out += [
                "",
                f"[vms.{vm.name}]",
                f"vcpus = {vm.vcpus}  {GUESS} {vm.guess or 'size it for the workload'}",
                f"memory = {q(vm.memory)}  {GUESS} {vm.guess or 'size it for the workload'}",
            ]
        return "\n".join(out) + "\n"


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


VM_FOR_KIND = {
    "gpu": ("gui-vm", 4, "4G"),
    "wifi": ("net-vm", 2, "1G"),
    "nic": ("net-vm", 2, "1G"),
    "nvme": ("storage-vm", 2, "1G"),
}


def from_discovery(d: Discovery, name: str) -> Draft:
    """A draft that validates: the board's PCIe cards to guessed VMs, platform devices listed."""
    if d.board is None:
        raise ValueError("no catalog board matches " + ", ".join(d.compatible))
    board = catalog.board(d.board)
    names = {p.name for p in d.platform}
    l4t = any(
        dev.dt_name in names
        for dev in board.devices.values()
        if "mainline" not in dev.flavors
    )
    draft = Draft(
        target=name,
        board=board.name,
        flavor="l4t" if l4t else "mainline",
        flavor_guess=(
            "a node only L4T trees have is present"
            if l4t
            else "no L4T-only node seen; mainline"
        ),
        header=[
            f"Drafted by `ghafgen discover` from {d.model or 'an unnamed board'}.",
            f"{d.cpus} CPUs, {d.mem_kib // 1024} MiB RAM seen. Lines marked GUESS need a "
            "person's check.",
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
            f for f in d.pci if f.bdf.startswith(domain) and f.kind != "bridge"
        ]
        for card in sorted({f.bdf.rsplit(".", 1)[0] for f in endpoints}):
            funcs = [f for f in endpoints if f.bdf.startswith(card + ".")]
            entry = _pci_entry(d, slot, funcs, vms)
            if any(p.name == entry.name for p in draft.passthroughs):
                entry.name = f"{entry.name}-{slot.key.removeprefix('pcie-')}"
            draft.passthroughs.append(entry)
    for dev in board.devices.values():
        if dev.dt_name in names:
            p = next(x for x in d.platform if x.name == dev.dt_name)
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
    funcs: list[PciFunction],
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
