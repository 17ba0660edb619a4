"""What a running board must show when it runs a target: the manifest's `runtime`
record, which `ghafgen verify` compares the live system against.

Entry point: `runtime_facts(p)`, `p` a TargetPlan. Each fact names the generated file that
asks for it, so a failed check can say which file was not honoured.
"""

from __future__ import annotations

import re

from ghafgen.derive.runtime import vfio_link
from ghafgen.render import dt
from ghafgen.render.plan import (
    DEVICE_GROUP,
    DEVICE_MODE,
    SMMU_BYPASS_PARAM,
    TargetPlan,
    VmPlan,
)

# The driver names verify looks for and microvm.nix's defaults are catalog
# facts (runtime.toml [drivers], [microvm]), read through the target's board.

_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_GROUP = re.compile(r"<([^<>]*)>")


def dts_value(text: str | None) -> dict[str, object]:
    """A property value as `render.dt` prints it, as data: no value, strings, or
    cells (integers and `&label` references, resolved on the board).

    Raises:
        ValueError: a value this module cannot read (a new form in render.dt).
    """
    if text is None:
        return {"empty": True}
    text = text.strip()
    if text.startswith('"'):
        parts = [m.group(1) for m in _STRING.finditer(text)]
        rebuilt = ", ".join(f'"{p}"' for p in parts)
        if rebuilt != text:
            raise ValueError(f"unreadable string list {text!r}")
        return {"strings": [re.sub(r"\\(.)", r"\1", p) for p in parts]}
    groups = _GROUP.findall(text)
    if ", ".join(f"<{g}>" for g in groups) != text:
        raise ValueError(f"unreadable cell list {text!r}")
    return {"cells": [_cell(tok) for tok in " ".join(groups).split()]}


def _cell(tok: str) -> int | str:
    if tok.startswith("&"):
        return tok  # a label; its phandle is the board's
    return int(tok, 0)


def _node(node: dt.Node) -> dict[str, object]:
    return {
        "name": node.name,
        "props": {p.name: dts_value(p.value) for p in node.props},
        "nodes": [_node(c) for c in node.children],
    }


def overlay_facts(ov: dt.Overlay, file: str) -> dict[str, object]:
    """Each fragment's target and what it sets there."""
    return {
        "file": file,
        "fragments": [
            {
                "target_label": f.target_label,
                "target_path": f.target_path,
                "props": {p.name: dts_value(p.value) for p in f.props},
                "nodes": [_node(n) for n in f.nodes],
            }
            for f in ov.fragments
        ],
    }


def _vm(p: TargetPlan, vm: VmPlan) -> dict[str, object]:
    access = next((a for a in p.access if a.vm == vm.name), None)
    microvm, drivers = p.board.catalog.microvm, p.board.catalog.drivers
    if vm.ghaf_layout:
        qemu = vm.ghaf_qemu_package if vm.custom_qemu else ""
    elif vm.custom_qemu:
        qemu = "qemu-platform" + ("-bpmp" if vm.bpmp else "") + "-" + p.qemu.version
    else:
        qemu = ""  # nixpkgs' own QEMU: any release
    console = next(
        (
            a.split("=", 1)[1]
            for a in reversed(vm.kernel_params)
            if a.startswith("console=")
        ),
        microvm.console,
    )
    return {
        "file": f"vms/{vm.name}.nix",
        "qemu": qemu,
        "machine": microvm.machine,
        "args": list(vm.qemu_args),
        "platform_devices": list(vm.vfio_platform_hosts),
        "pci_functions": list(vm.pci_functions),
        "device_allow": list(access.devices) if access else [],
        # Each passed device's udev link to its VFIO group node (DeviceAllow= names it).
        "vfio_links": {d: vfio_link(d) for d in access.vfio} if access else {},
        "policy_file": "isolation.nix" if access else "",
        "guest": {
            "tree": overlay_facts(vm.guest_tree, f"vms/{vm.name}.dts")
            if vm.guest_tree is not None
            else None,
            "compatibles": {d.dt_name: list(d.guest.compatible) for d in vm.platform},
            # Where QEMU's platform bus is: the guest tree's last fragment (the
            # GPU variant moves it), else the pinned QEMU's own.
            "platform_bus": (
                vm.guest_tree.fragments[-1].target_path
                if vm.guest_tree is not None
                else p.board.catalog.qemu_virt.platform_bus_path
            ),
            "bpmp": vm.bpmp,
            "bpmp_node": p.bpmp_node if vm.bpmp else "",
            "bpmp_driver": drivers.bpmp_guest if vm.bpmp else "",
            "console": console,
            "params": list(vm.kernel_params),
            **_gpu_guest(vm),
        },
    }


def _gpu_guest(vm: VmPlan) -> dict[str, object]:
    """What the GPU guest's role loads, and the node CUDA opens (GPU VMs only)."""
    if vm.gpu is None:
        return {}
    g = vm.gpu.guest
    facts: dict[str, object] = {"modules": list(g.modules)}
    if g.node_wait:
        facts["gpu_node"] = {"path": g.node_wait, "group": g.node_group}
    return facts


def _drivers(p: TargetPlan) -> list[dict[str, str]]:
    names = p.board.catalog.drivers
    out = []
    if any(b.bus == "platform" for b in p.bindings):
        out.append({"bus": "platform", "name": names.vfio_platform})
    if any(b.bus == "pci" for b in p.bindings):
        out.append({"bus": "pci", "name": names.vfio_pci})
    if p.proxy_overlay is not None:
        out.append({"bus": "platform", "name": names.bpmp_host_proxy})
    return out


def _device_nodes(p: TargetPlan) -> list[str]:
    """The device nodes host.nix's udev rules give to group kvm, mode 0660."""
    nodes = ["/dev/vfio/vfio"] if p.bindings else []
    bpmp = sorted({vm.bridge_device for vm in p.vms if vm.bpmp})
    if p.proxy_overlay is not None and not bpmp:
        bpmp = ["/dev/bpmp-host"]
    return nodes + bpmp


def runtime_facts(p: TargetPlan) -> dict[str, object]:
    """The `runtime` record of a target's manifest."""
    params = [{"param": a, "file": "host.nix"} for a in p.host_params]
    params += [{"param": a, "file": "partitions.nix"} for a in p.partition_params]
    absent = [] if SMMU_BYPASS_PARAM in p.host_params else [SMMU_BYPASS_PARAM]
    drivers = p.board.catalog.drivers
    return {
        "kernel": {
            "series": ".".join(p.kernel_version.split(".")[:2]),
            "series_file": "assertions.nix",
            "params": params,
            "absent_params": [{"param": a, "file": "host.nix"} for a in absent],
            "drivers": _drivers(p),
        },
        "overlays": [overlay_facts(ov, ov.file) for ov in p.overlays],
        "bindings": [
            {
                "file": f"devices/{b.name}.nix",
                "bus": b.bus,
                "driver": drivers.vfio_platform
                if b.bus == "platform"
                else drivers.vfio_pci,
                "devices": list(b.devices),
                "vm": b.vm or "",
            }
            for b in p.bindings
        ],
        "device_nodes": {
            "file": "host.nix",
            "group": DEVICE_GROUP,
            "mode": DEVICE_MODE,
            "paths": _device_nodes(p),
        },
        "vms": {vm.name: _vm(p, vm) for vm in p.vms},
    }
