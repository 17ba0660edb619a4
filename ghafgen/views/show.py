"""The ownership table: every device and slot of the board, who owns it and what it needs.

Entry point: `ownership(profile, board)`; `render_text` and `as_json` format it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ghafgen.catalog import Catalog
from ghafgen.catalog.model import RESOURCE_KINDS, Board
from ghafgen.derive.allowlist import (
    AllowList,
    allow_list,
    per_vm_form,
    vm_allow_lists,
)
from ghafgen.derive.runtime import device_access, runtime_stack
from ghafgen.profile.model import Passthrough, Profile
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
            for label, kind in zip(("clk", "rst", "pd"), RESOURCE_KINDS, strict=True)
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
    roles = _roles_text(profile, board)
    if roles:
        out.append(roles)
    if not allowed.empty:
        out.append(_allow_text(allowed))
    out.append(_runtime_text(profile, board))
    if profile.vms:
        out.append(_access_text(profile, board))
    return "\n".join(out)


def _access_text(profile: Profile, board: Board) -> str:
    """Per VM: the devices its microvm@ unit may open, and its BPMP node."""
    lines = ["Device access (microvm@<vm>: DevicePolicy=closed; isolation.nix):"]
    per_vm = {v.vm: v for v in vm_allow_lists(profile, board)}
    access = device_access(profile, board)
    width = max([6, *(len(a.vm) for a in access)])
    pad = " " * (width + 3)
    for a in access:
        lines.append(f"  {a.vm:{width}} {' '.join(a.devices)}")
        if a.shm:
            lines.append(f"{pad}shared memory: {' '.join(a.shm)}")
        if a.bpmp and per_vm_form(profile, board):
            own = per_vm[a.vm]
            ids = "; ".join(
                f"{kind}s {' '.join(map(str, own.allowed.ids(kind)))}"
                for kind in RESOURCE_KINDS
                if own.allowed.of(kind)
            )
            lines.append(f"{pad}{a.bpmp} allows {ids}")
    return "\n".join(lines)


def _runtime_text(profile: Profile, board: Board) -> str:
    """What runs: the host kernel and its patches, each VM's QEMU and kernel."""
    host, vms = runtime_stack(profile, board)
    width = max([6, *(len(vm.vm) for vm in vms)])
    pad = " " * (width + 3)
    lines = ["What runs (versions ghafgen pins; docs/runtime.md says why):"]
    patches = ", ".join(host.patches) or "-"
    lines.append(f"  {'host':{width}} {host.kernel}; patches: {patches}")
    if host.params:
        lines.append(f"{pad}{', '.join(host.params)}")
    for vm in vms:
        qemu_patches = ", ".join(vm.qemu_patches) or "-"
        lines.append(f"  {vm.vm:{width}} {vm.qemu}; QEMU patches: {qemu_patches}")
        kernel = (
            f"Linux {vm.kernel} (pinned)" if vm.kernel else "kernel: the guest's own"
        )
        lines.append(f"{pad}{kernel}; patches: {', '.join(vm.kernel_patches) or '-'}")
    return "\n".join(lines)


def _roles_data(profile: Profile, board: Board) -> dict[str, object]:
    """The GPU topology and each VM's role (derive.gpu.roles), for text and JSON."""
    if not any(
        board.devices[pt.device].group
        for pt in profile.enabled
        if pt.device in board.devices
    ):
        return {}
    from ghafgen.derive.gpu import roles

    top = roles(profile, board)
    return {
        "topology": top.name,
        "allowed": top.topology.allowed if top.topology is not None else False,
        "vms": {
            vm: {
                "role": r.name,
                "ghaf_vm": r.role.ghaf_vm,
                "description": r.role.description,
                "dce_guest": r.role.dce_guest,
                "no_syncpoint": r.role.no_syncpoint,
            }
            for vm, r in top.vms.items()
        },
        "unmatched": sorted(top.unmatched),
    }


def _roles_text(profile: Profile, board: Board) -> str:
    data = _roles_data(profile, board)
    if not data:
        return ""
    verdict = "" if data["allowed"] else " (refused: see `ghafgen validate`)"
    lines = [f"GPU and display topology: {data['topology'] or '-'}{verdict}"]
    vms = data["vms"]
    assert isinstance(vms, dict)
    width = max([6, *(len(vm) for vm in vms)])
    for vm, r in vms.items():
        lines.append(
            f"  {vm:{width}} {r['role']} (Ghaf {r['ghaf_vm']}): {r['description']}"
        )
    return "\n".join(lines)


def _allow_text(allowed: AllowList) -> str:
    lines = ["BPMP host proxy allow list (* = protected: enable and read only):"]
    for kind in RESOURCE_KINDS:
        ids = " ".join(f"{a.id}{'*' if a.protected else ''}" for a in allowed.of(kind))
        lines.append(f"  {kind + 's':14} {ids or '-'}")
    return "\n".join(lines)


def _id_list(board: Board, kind: str, names: tuple[str, ...]) -> list[int]:
    return [board.soc.resource(kind, n).id for n in names]


def ownership_data(profile: Profile, board: Board) -> list[dict[str, object]]:
    """The ownership table as data: numbers as numbers, lists as lists, no layout.

    `owner` is the VM (None: the host), `vfio` says a passed device is bound
    to vfio on the host without a VM.
    """
    by_device = {pt.device: pt for pt in profile.enabled}
    flavor = profile.target.dt_flavor
    out: list[dict[str, object]] = []
    for dev in board.devices.values():
        pt = by_device.get(dev.key)
        marked = dev.needs_sid_marking and pt is not None
        sid = board.soc.passthrough_sid if marked else dev.iommu_sid
        name = board.soc.passthrough_sid_name if marked else dev.iommu_sid_name
        out.append(
            {
                "device": dev.key,
                "kind": "device",
                "dt_name": dev.dt_name,
                "owner": pt.vm if pt else None,
                "vfio": pt is not None,
                "in_tree": flavor in dev.flavors,
                "iommu": None
                if sid is None or (dev.needs_sid_marking and not marked)
                else {"sid": sid, "name": name, "marked": marked},
                "bpmp": {
                    kind: _id_list(board, kind, dev.resources(flavor, kind))
                    if pt is not None
                    else []
                    for kind in RESOURCE_KINDS
                },
            }
        )
    for slot in board.slots.values():
        pt = by_device.get(slot.key)
        ctl = slot.controller
        view = ctl.flavors.get(flavor)
        out.append(
            {
                "device": slot.key,
                "kind": "slot",
                "dt_name": ctl.dt_name,
                "owner": pt.vm if pt else None,
                "vfio": pt is not None,
                "iommu": {
                    "sid": ctl.sid,
                    "name": ctl.sid_name,
                    "root_port_iommus_emptied": view.path
                    if pt and view and view.controller_iommus
                    else None,
                },
                "slot": {
                    "form": slot.form,
                    "max_lanes": slot.max_lanes,
                    "pci_domain": ctl.domain,
                    "power_max_w": slot.power_max_w,
                    "power_w": pt.max_power_w if pt else None,
                },
                "functions": [f.bdf for f in pt.functions] if pt else [],
            }
        )
    for vm in profile.vms.values():
        for kind in vm.shared:
            out.append(
                {
                    "device": f"virtio-{'net' if kind == 'network' else kind}",
                    "kind": "shared",
                    "owner": vm.name,
                    "vfio": False,
                }
            )
    return out


def boards_data(cat: Catalog) -> list[dict[str, object]]:
    """`show --boards` as data."""
    out: list[dict[str, object]] = []
    for name in cat.board_names():
        b = cat.board(name)
        out.append(
            {
                "board": name,
                "description": b.description,
                "cpu_cores": b.cpu_cores,
                "ram_mib": b.ram_mib,
                "devices": {k: d.dt_name for k, d in b.devices.items()},
                "slots": {k: s.description for k, s in b.slots.items()},
            }
        )
    return out


def as_json(profile: Profile, board: Board) -> dict[str, object]:
    allowed = allow_list(profile, board)
    host, vms = runtime_stack(profile, board)
    return {
        "target": profile.target.name,
        "board": board.name,
        "dt_flavor": profile.target.dt_flavor,
        "devices": ownership_data(profile, board),
        "gpu_roles": _roles_data(profile, board),
        "bpmp_allow_list": {
            kind: [a._asdict() for a in allowed.of(kind)] for kind in RESOURCE_KINDS
        },
        "runtime": {"host": asdict(host), "vms": [asdict(vm) for vm in vms]},
        "device_access": [asdict(a) for a in device_access(profile, board)],
        "bpmp_per_vm": [
            {
                "vm": v.vm,
                "device": v.device,
                "allowed": {kind: v.allowed.ids(kind) for kind in RESOURCE_KINDS},
                "protected": {kind: v.protected_ids(kind) for kind in RESOURCE_KINDS},
            }
            for v in (
                vm_allow_lists(profile, board) if per_vm_form(profile, board) else ()
            )
        ],
    }
