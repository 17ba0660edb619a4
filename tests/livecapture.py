"""A host capture of a board running a committed target, built the way the board
would show it, from the committed generated files and the kernel's own layout.

Nothing here calls ghafgen: the expected values come from the committed
nix/modules/<target>/ files (host.nix, devices/*.nix, isolation.nix, vms/*.nix,
qemu.nix, qemu-platform.nix, overlays/*.dts compiled by dtc and applied by
fdtoverlay to the 6.12 tree), and the layout from the kernel and systemd:

- /sys/firmware/devicetree/base: one folder per node, one file per property
  with its raw bytes, and a `name` file per node (drivers/of/fdt.c,
  populate_properties, recreates `name` from the unit name);
- platform devices are named `<unit address>.<node name>` (drivers/of/platform.c,
  of_device_make_bus_id) and linked from /sys/bus/platform/devices, each with
  `driver`, `of_node` and `iommu_group` links;
- instances of microvm@.service run in system-microvm.slice (systemd.special(7));
- microvm.nix's runner (lib/runners/qemu.nix) starts QEMU as
  `qemu-system-aarch64 -name <vm> -M virt,accel=kvm:tcg,gic-version=max -m <mem>M
  -smp <vcpu> ... <extraArgs>`.
"""

from __future__ import annotations

import gzip
import io
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from ghafgen.catalog.fdtview import FdtView
from tests.conftest import ROOT
from tests.trees import run

MODULES = ROOT / "nix" / "modules"
# Ghaf's bpmp-host-proxy.c registers its platform driver as "bpmp_host_proxy"
# (modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization/common/
# bpmp-virt-common/sources/drivers/firmware/tegra/bpmp-host-proxy/bpmp-host-proxy.c).
BPMP_PROXY_DRIVER = "bpmp_host_proxy"
# NixOS nixos/modules/misc/ids.nix: gids.kvm = 302. Any number would do: verify
# reads the name from /etc/group.
KVM_GID = 302
STORE_HASH = "0" * 32


def _nix_list(text: str, attr: str) -> list[str]:
    """The strings of `attr = [ ... ];` in a generated Nix file."""
    m = re.search(re.escape(attr) + r"\s*=\s*\[(.*?)\];", text, re.S)
    assert m, f"{attr} not found"
    return re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))


@dataclass
class TargetFiles:
    """What the committed files of one target say, read with plain regexes."""

    folder: Path
    series: str = ""
    params: list[str] = field(default_factory=list)
    bindings: list[tuple[str, list[str], str]] = field(default_factory=list)
    udev_group: str = ""
    udev_mode: str = ""
    isolation: str = ""
    vms: dict[str, dict[str, object]] = field(default_factory=dict)

    @classmethod
    def read(cls, name: str) -> TargetFiles:
        folder = MODULES / name
        t = cls(folder)
        t.series = re.findall(
            r'majorMinor kernel == "([0-9.]+)"', (folder / "assertions.nix").read_text()
        )[0]
        host = (folder / "host.nix").read_text()
        t.params = _nix_list(host, "boot.kernelParams")
        rule = re.search(
            r'SUBSYSTEM==\\"vfio\\", GROUP=\\"(\w+)\\", MODE=\\"(\d+)\\"', host
        )
        assert rule
        t.udev_group, t.udev_mode = rule.group(1), rule.group(2)
        for dev in sorted((folder / "devices").glob("*.nix")):
            text = dev.read_text()
            args = re.search(r'ExecStart = "\$\{bindVfio\} " \+ "([^"]+)"', text)
            vm = re.search(r'"microvm@([\w-]+)\.service"', text)
            assert args
            bus, *devices = args.group(1).split()
            t.bindings.append((bus, devices, vm.group(1) if vm else ""))
        iso = folder / "isolation.nix"
        iso_text = iso.read_text() if iso.exists() else ""
        t.isolation = iso_text
        qemu_version = ""
        if (folder / "qemu.nix").exists():
            qemu_version = re.findall(
                r'version = "([0-9.]+)"', (folder / "qemu.nix").read_text()
            )[0]
        for vm_file in sorted((folder / "vms").glob("*.nix")):
            vm = vm_file.stem
            text = vm_file.read_text()
            extra = (
                _nix_list(text, "qemu.extraArgs") if "qemu.extraArgs" in text else []
            )
            platform_qemu = "qemu.package = qemu;" in text
            # qemu-platform.nix: pname = "qemu-platform" + optionalString bpmpBridge "-bpmp"
            bridge = "bpmpBridge = true;" in text
            pname = "qemu-platform" + ("-bpmp" if bridge else "")
            m = re.search(
                r'systemd\.services\."microvm@'
                + re.escape(vm)
                + r'"\.serviceConfig = \{(.*?)\};',
                iso_text,
                re.S,
            )
            allow = (
                [a.split()[0] for a in _nix_list(m.group(1), "DeviceAllow")]
                if m
                else []
            )
            pci = re.findall(r'bus = "pci";\s*path = "([^"]+)"', text)
            t.vms[vm] = {
                "vcpu": re.findall(r"vcpu = (\d+);", text)[0],
                "mem": re.findall(r"mem = (\d+);", text)[0],
                "extra": extra,
                "pci": pci,
                "qemu": f"{pname}-{qemu_version}" if platform_qemu else "qemu-10.0.0",
                "allow": allow,
                "policy": bool(m),
            }
        return t


def applied_tree(target: TargetFiles, base: Path, tmp: Path, skip: str = "") -> Path:
    """The 6.12 tree with the target's overlays applied (all but `skip`)."""
    dtbos = []
    for dts in sorted((target.folder / "overlays").glob("*.dts")):
        if dts.stem == skip:
            continue
        dtbo = tmp / f"{dts.stem}.dtbo"
        run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(dts)])
        dtbos.append(str(dtbo))
    out = tmp / "live.dtb"
    if dtbos:
        run(["fdtoverlay", "-i", str(base), "-o", str(out), *dtbos])
    else:
        shutil.copy(base, out)
    return out


def write_devicetree(dtb: Path, dest: Path) -> dict[str, str]:
    """The tree as /sys/firmware/devicetree/base; returns node name -> path."""
    view = FdtView(dtb.read_bytes())
    by_name: dict[str, str] = {}
    for off, path in view.nodes():
        folder = dest / path.lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        name = path.rsplit("/", 1)[-1]
        by_name.setdefault(name, path)
        props = view.props(off)
        for prop, value in props.items():
            (folder / prop).write_bytes(value)
        if "name" not in props:
            (folder / "name").write_bytes(name.split("@")[0].encode() + b"\0")
    return by_name


def platform_node(by_name: dict[str, str], dev: str) -> str:
    """`3100000.serial` -> the path of `serial@3100000` (of_device_make_bus_id)."""
    addr, _, node = dev.partition(".")
    return by_name[f"{node}@{addr}"]


def link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.symlink_to(target)


def board_tree(target: TargetFiles, dtb: Path, root: Path) -> None:
    """Write the board running `target` under `root` (files and links only)."""
    sysfs = root / "sys"
    by_name = write_devicetree(dtb, sysfs / "firmware/devicetree/base")
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text(f"{target.series}.74\n")
    init = f"init=/nix/store/{STORE_HASH}-nixos-system-orin/init"
    (root / "proc/cmdline").write_text(
        " ".join([init, *target.params, "loglevel=4"]) + "\n"
    )
    drivers = {"platform": "vfio-platform", "pci": "vfio-pci"}  # bind-vfio.sh's case
    (sysfs / "bus/platform/drivers" / BPMP_PROXY_DRIVER).mkdir(parents=True)
    group = 10
    for bus, devices, _vm in target.bindings:
        (sysfs / "bus" / bus / "drivers" / drivers[bus]).mkdir(
            parents=True, exist_ok=True
        )
        for dev in devices:
            group += 1
            real = sysfs / "devices/platform/bus@0" / dev
            real.mkdir(parents=True)
            up = "../../../../"
            link(real / "driver", f"{up}bus/{bus}/drivers/{drivers[bus]}")
            if bus == "platform":
                node = platform_node(by_name, dev)
                link(real / "of_node", f"{up}firmware/devicetree/base{node}")
            link(real / "iommu_group", f"{up}kernel/iommu_groups/{group}")
            (real / "driver_override").write_text(drivers[bus] + "\n")
            link(
                sysfs / "bus" / bus / "devices" / dev,
                f"../../../devices/platform/bus@0/{dev}",
            )
            link(
                sysfs / f"kernel/iommu_groups/{group}/devices" / dev,
                f"../../../../devices/platform/bus@0/{dev}",
            )
            # isolation.nix's udev rule: SYMLINK+="ghafgen/vfio-<dev>" on the group node.
            if f'SYMLINK+=\\"ghafgen/vfio-{dev}\\"' in target.isolation:
                link(root / f"dev/ghafgen/vfio-{dev}", f"../vfio/{group}")
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/group").write_text(f"root:x:0:\n{target.udev_group}:x:{KVM_GID}:\n")
    units = root / "etc/systemd/system"
    for pid, (vm, v) in enumerate(sorted(target.vms.items()), start=4000):
        cg = sysfs / f"fs/cgroup/system.slice/system-microvm.slice/microvm@{vm}.service"
        cg.mkdir(parents=True)
        (cg / "cgroup.procs").write_text(f"{pid}\n")
        (root / f"proc/{pid}").mkdir(parents=True)
        (root / f"proc/{pid}/cmdline").write_bytes(
            b"".join(a.encode() + b"\0" for a in qemu_argv(vm, v))
        )
        if v["policy"]:
            (units / f"microvm@{vm}.service.d").mkdir(parents=True)
            lines = ["[Service]", "DevicePolicy=closed"]
            lines += [f"DeviceAllow={a} rw" for a in v["allow"]]  # type: ignore[attr-defined]
            (units / f"microvm@{vm}.service.d/overrides.conf").write_text(
                "\n".join(lines) + "\n"
            )


def qemu_argv(vm: str, v: dict[str, object]) -> list[str]:
    qemu = f"/nix/store/{STORE_HASH}-{v['qemu']}/bin/qemu-system-aarch64"
    argv = [qemu, "-name", vm, "-M", "virt,accel=kvm:tcg,gic-version=max"]
    argv += [
        "-m",
        f"{v['mem']}M",
        "-smp",
        str(v["vcpu"]),
        "-nodefaults",
        "-no-user-config",
    ]
    argv += ["-no-reboot", "-kernel", f"/nix/store/{STORE_HASH}-linux/Image"]
    argv += ["-chardev", "stdio,id=stdio,signal=off", "-device", "virtio-rng-pci"]
    for bdf in v["pci"]:  # type: ignore[attr-defined]
        argv += ["-device", f"vfio-pci,host={bdf},multifunction=on"]
    return argv + list(v["extra"])  # type: ignore[call-overload]


def device_nodes(target: TargetFiles, groups: list[str]) -> list[tuple[str, int, int]]:
    """(path, gid, mode) of the nodes host.nix's udev rules own."""
    mode = int(target.udev_mode, 8)
    paths = ["dev/vfio/vfio", *(f"dev/vfio/{g}" for g in groups)]
    if "bpmp-host" in (target.folder / "host.nix").read_text():
        paths.append("dev/bpmp-host")
    return [(p, KVM_GID, mode) for p in paths]


def pack(root: Path, out: Path, nodes: list[tuple[str, int, int]]) -> Path:
    """`root` as a capture .tar.gz, with device nodes a non-root user cannot make."""
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        tar.add(root, arcname=".", recursive=True)
        for path, gid, mode in nodes:
            info = tarfile.TarInfo(path)
            info.type, info.mode, info.gid = tarfile.CHRTYPE, mode, gid
            info.devmajor, info.devminor = 10, 100
            tar.addfile(info)
    out.write_bytes(buf.getvalue())
    return out


def groups_of(root: Path) -> list[str]:
    base = root / "sys/kernel/iommu_groups"
    return sorted(p.name for p in base.iterdir()) if base.exists() else []
