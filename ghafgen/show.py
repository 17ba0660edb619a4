"""The ownership table: every device and slot of the board, who owns it and what it needs.

Entry point: `ownership(profile, board)`; `render_text` and `as_json` format it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ghafgen.allowlist import KINDS, AllowList, allow_list
from ghafgen.catalog.model import Board
from ghafgen.profile.model import Passthrough, Profile
from ghafgen.runtime import runtime_stack
from ghafgen.table import render


@dataclass(frozen=True)
class Row:
    device: str
    dt_name: str
    owner: str  # VM name, "host (vfio)" or "host"
    mode: str  # "passthrough" | "host"
    iommu: str
    bpmp: str
    slot: str
    functions: str


def _owner(pt: Passthrough | None) -> tuple[str, str]:
    if pt is None:
        return "host", "host"
    return (pt.vm or "host (vfio)"), "passthrough"


def _ids(board: Board, kind: str, names: tuple[str, ...]) -> str:
    return ",".join(str(board.soc.resource(kind, n).id) for n in names)


def ownership(profile: Profile, board: Board) -> list[Row]:
    by_device = {pt.device: pt for pt in profile.enabled}
    flavor = profile.target.dt_flavor
    rows = []
    for dev in board.devices.values():
        pt = by_device.get(dev.key)
        owner, mode = _owner(pt)
        if dev.needs_sid_marking and pt is None:
            iommu = "none (marked when passed)"
        elif dev.needs_sid_marking:
            iommu = f"{board.soc.passthrough_sid:#x} {board.soc.passthrough_sid_name} (marked)"
        elif dev.iommu_sid is not None:
            iommu = f"{dev.iommu_sid:#x} {dev.iommu_sid_name}"
        else:
            iommu = "-"
        if flavor not in dev.flavors:
            iommu = f"not in {flavor} tree"
        # Only a passed device's IDs are allowed; the host's own are not shown.
        parts = [
            f"{label} {_ids(board, kind, dev.resources(flavor, kind))}"
            for label, kind in zip(("clk", "rst", "pd"), KINDS, strict=True)
            if pt is not None and dev.resources(flavor, kind)
        ]
        rows.append(
            Row(
                dev.key,
                dev.dt_name,
                owner,
                mode,
                iommu,
                " ".join(parts) or "-",
                "-",
                "-",
            )
        )
    for slot in board.slots.values():
        pt = by_device.get(slot.key)
        owner, mode = _owner(pt)
        ctl = slot.controller
        view = ctl.flavors.get(flavor)
        rp = ""
        if pt and view and view.controller_iommus:
            rp = f", {view.path} iommus emptied"
        power = ""
        if slot.power_max_w is not None:
            used = f"{pt.max_power_w}" if pt and pt.max_power_w is not None else "?"
            power = f", {used}/{slot.power_max_w} W"
        rows.append(
            Row(
                slot.key,
                ctl.dt_name,
                owner,
                mode,
                f"{ctl.sid:#x} {ctl.sid_name}{rp}",
                "-",
                f"{slot.form} x{slot.max_lanes} dom {ctl.domain:04x}{power}",
                " ".join(f.bdf for f in pt.functions) if pt else "-",
            )
        )
    for vm in profile.vms.values():
        for kind in vm.shared:
            rows.append(
                Row(
                    f"virtio-{'net' if kind == 'network' else kind}",
                    "-",
                    vm.name,
                    "shared (virtio)",
                    "-",
                    "-",
                    "-",
                    "-",
                )
            )
    return rows


HEADERS = [
    "device",
    "dt name",
    "owner",
    "mode",
    "iommu",
    "bpmp ids",
    "slot",
    "functions",
]


def render_text(profile: Profile, board: Board) -> str:
    rows = ownership(profile, board)
    allowed = allow_list(profile, board)
    out = [
        f"{profile.target.name} on {board.name} ({profile.target.dt_flavor} tree)",
        render(HEADERS, [list(asdict(r).values()) for r in rows]),
    ]
    if not allowed.empty:
        out.append(_allow_text(allowed))
    out.append(_runtime_text(profile, board))
    return "\n".join(out)


def _runtime_text(profile: Profile, board: Board) -> str:
    """What runs: the host kernel and its patches, each VM's QEMU and kernel."""
    host, vms = runtime_stack(profile, board)
    lines = ["What runs (versions ghafgen pins; docs/runtime.md says why):"]
    lines.append(f"  host   {host.kernel}; patches: {', '.join(host.patches) or '-'}")
    if host.params:
        lines.append(f"         {', '.join(host.params)}")
    for vm in vms:
        lines.append(
            f"  {vm.vm:6} {vm.qemu}; QEMU patches: {', '.join(vm.qemu_patches) or '-'}"
        )
        kernel = (
            f"Linux {vm.kernel} (pinned)" if vm.kernel else "kernel: the guest's own"
        )
        lines.append(
            f"         {kernel}; patches: {', '.join(vm.kernel_patches) or '-'}"
        )
    return "\n".join(lines)


def _allow_text(allowed: AllowList) -> str:
    lines = ["BPMP host proxy allow list (* = protected: enable and read only):"]
    for kind in KINDS:
        ids = " ".join(f"{a.id}{'*' if a.protected else ''}" for a in allowed.of(kind))
        lines.append(f"  {kind + 's':14} {ids or '-'}")
    return "\n".join(lines)


def as_json(profile: Profile, board: Board) -> dict[str, object]:
    allowed = allow_list(profile, board)
    host, vms = runtime_stack(profile, board)
    return {
        "target": profile.target.name,
        "board": board.name,
        "dt_flavor": profile.target.dt_flavor,
        "devices": [asdict(r) for r in ownership(profile, board)],
        "bpmp_allow_list": {
            kind: [asdict(a) for a in allowed.of(kind)] for kind in KINDS
        },
        "runtime": {"host": asdict(host), "vms": [asdict(vm) for vm in vms]},
    }
