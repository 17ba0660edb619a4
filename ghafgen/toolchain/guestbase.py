"""A guest's base tree as the pinned QEMU gives it, from the QEMU installed here.

Entry point: `guest_base(folder, vcpus=, mem_mib=, bpmp=)`. The pinned platform
QEMU emits the guest's `/bpmp` node itself (its BPMP bridge); Debian's QEMU,
the stand-in here, does not, so this adds that node exactly as the pinned
patch writes it (catalog runtime.toml, `qemu.platform.bridge`) and then names
it in `/__symbols__`, as the VM's preStart does before applying the guest
tree. The stand-in's own nodes are used as they are.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import libfdt

from ghafgen.catalog import Catalog
from ghafgen.catalog.fdtview import FdtView
from ghafgen.catalog.model import QemuVirt
from ghafgen.tools import run


def _max_phandle(data: bytes) -> int:
    view = FdtView(data)
    return max(int(view.fdt.get_phandle(off)) for off, _path in view.nodes())


def add_bridge_node(data: bytes, virt: QemuVirt) -> bytes:
    """`data` with the /bpmp node the pinned QEMU's (`virt`) bridge emits, if it lacks one."""
    fdt = libfdt.Fdt(bytearray(data))
    if fdt.path_offset(virt.bpmp_node, libfdt.QUIET_NOTFOUND) >= 0:
        return data
    fdt.resize(fdt.totalsize() + 1024)
    node = fdt.add_subnode(0, virt.bpmp_node.lstrip("/"))
    compatible = b"".join(c.encode() + b"\0" for c in virt.bpmp_compatible)
    fdt.setprop(node, "compatible", compatible)
    fdt.setprop_u64(node, "virtual-pa", virt.bpmp_bridge_base)
    for cells in ("#clock-cells", "#reset-cells", "#power-domain-cells"):
        fdt.setprop_u32(node, cells, 1)
    fdt.setprop(node, "phandle", struct.pack(">I", _max_phandle(data) + 1))
    fdt.pack()
    return bytes(fdt.as_bytearray())


def gpu_variant_base(data: bytes, cat: Catalog) -> bytes:
    """`data` (a stand-in QEMU's virt tree) as the GPU variant writes it: the
    platform bus moved (ghaf-qemu-bpmp patch 0002), node and props as
    sysbus-fdt.c writes them (one address and one size cell, the size cut to
    32 bits), and QEMU's RAM node gone, as the VM's preStart drops it."""
    q, virt = cat.gpu_group.qemu, cat.qemu_virt
    fdt = libfdt.Fdt(bytearray(data))
    fdt.resize(fdt.totalsize() + 1024)
    old = fdt.path_offset(virt.platform_bus_path)
    parent = fdt.getprop(old, "interrupt-parent")
    fdt.del_node(old)
    root = fdt.path_offset("/")
    off = fdt.first_subnode(root, libfdt.QUIET_NOTFOUND)
    while off >= 0:
        name = fdt.get_name(off)
        nxt = fdt.next_subnode(off, libfdt.QUIET_NOTFOUND)
        if name.startswith("memory@"):
            fdt.del_node(off)
            off = fdt.first_subnode(root, libfdt.QUIET_NOTFOUND)
            continue
        off = nxt
    node = fdt.add_subnode(0, q.platform_bus_path.lstrip("/"))
    fdt.setprop(node, "interrupt-parent", bytes(parent))
    fdt.setprop(
        node,
        "ranges",
        struct.pack(
            ">IIII",
            0,
            q.platform_bus_base >> 32,
            q.platform_bus_base & 0xFFFFFFFF,
            q.platform_bus_size & 0xFFFFFFFF,
        ),
    )
    fdt.setprop_u32(node, "#address-cells", 1)
    fdt.setprop_u32(node, "#size-cells", 1)
    fdt.setprop(node, "compatible", b"qemu,platform\0simple-bus\0")
    fdt.pack()
    return bytes(fdt.as_bytearray())


def name_bridge_node(data: bytes, virt: QemuVirt) -> bytes:
    """`data` with `/__symbols__/bpmp`, the label the guest trees refer to."""
    fdt = libfdt.Fdt(bytearray(data))
    fdt.resize(fdt.totalsize() + 256)
    symbols = fdt.path_offset("/__symbols__", libfdt.QUIET_NOTFOUND)
    if symbols < 0:
        symbols = fdt.add_subnode(0, "__symbols__")
    fdt.setprop_str(symbols, "bpmp", virt.bpmp_node)
    fdt.pack()
    return bytes(fdt.as_bytearray())


# microvm.nix's QEMU runner on aarch64 (microvm-nix/microvm.nix 71beea0,
# lib/runners/qemu.nix): machine "virt" (options.nix mkDefault on aarch64) with
# {accel = "kvm:tcg"; gic-version = "max";}, joined in attribute-name order.
# Here there is no KVM for an arm64 guest, so accel is tcg (the runner's fallback).
VIRT_MACHINE = "virt,accel=tcg,gic-version=max"


def dump_qemu_virt(folder: Path, vcpus: int = 1, mem_mib: int = 1024) -> Path | None:
    """QEMU's own virt tree (the guest trees' base), with the machine options
    microvm.nix uses on aarch64 (TCG here); None without QEMU."""
    if shutil.which("qemu-system-aarch64") is None:
        return None
    dtb = folder / f"virt-{vcpus}-{mem_mib}.dtb"
    run(
        [
            "qemu-system-aarch64",
            "-M",
            VIRT_MACHINE,
            "-cpu",
            "max",
            "-m",
            str(mem_mib),
            "-smp",
            str(vcpus),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-machine",
            f"dumpdtb={dtb}",
        ]
    ).or_raise()
    return dtb


def refers_to_bridge(dtbo: bytes) -> bool:
    """A compiled guest tree whose nodes point at the bridge's /bpmp (`&bpmp`)."""
    view = FdtView(dtbo)
    fixups = view.offset("/__fixups__")
    return fixups >= 0 and view.prop(fixups, "bpmp") is not None


def guest_base(
    folder: Path, virt: QemuVirt, *, vcpus: int, mem_mib: int, bpmp: bool
) -> Path | None:
    """QEMU's virt tree for one VM shape as the pinned QEMU (`virt`) gives it;
    None without QEMU."""
    dumped = dump_qemu_virt(folder, vcpus, mem_mib)
    if dumped is None or not bpmp:
        return dumped
    out = folder / f"{dumped.stem}-bpmp.dtb"
    out.write_bytes(name_bridge_node(add_bridge_node(dumped.read_bytes(), virt), virt))
    return out
