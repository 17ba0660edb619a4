"""`ghafgen verify` on the host: does the running board do what the target asked?

Entry point: `host_checks(exp, src)` -> list of `Check`, in chain order:
kernel, overlay, binding, VM. Reads only; every read goes through `source`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from ghafgen.verify.expect import Binding, Expected, Vm
from ghafgen.verify.livetree import HOST_BASE, LiveTree, overlay_checks
from ghafgen.verify.report import Check, failed, passed
from ghafgen.verify.source import Source

REBOOT = (
    "boot the generation that has it (reboot after nixos-rebuild switch; "
    "check the bootloader entry)"
)
# systemd puts the instances of a template unit in the slice `system-<prefix>.slice`
# (systemd.special(7)); cgroup v2 is mounted at /sys/fs/cgroup.
VM_CGROUP = "sys/fs/cgroup/system.slice/system-microvm.slice/microvm@{vm}.service"
UNIT_DIR = "etc/systemd/system"


def _basename(link: str | None) -> str | None:
    return link.rstrip("/").rsplit("/", 1)[-1] if link else None


def kernel_checks(exp: Expected, src: Source) -> Iterator[Check]:
    k = exp.kernel
    release = (src.text("proc/sys/kernel/osrelease") or "").strip()
    series = ".".join(release.split(".")[:2])
    subject = f"kernel series {k.series}"
    if series == k.series:
        yield passed("kernel", subject, release)
    else:
        yield failed(
            "kernel",
            subject,
            expected=f"Linux {k.series}.x",
            source=k.series_file,
            found=release or "(no /proc/sys/kernel/osrelease)",
            hint=(
                "the host runs another kernel; set boot.kernelPackages to the pinned "
                "series and reboot into it"
            ),
        )
    cmdline = src.text("proc/cmdline")
    words = (cmdline or "").split()
    for p in k.params:
        subject = f"/proc/cmdline has {p.param}"
        if p.param in words:
            yield passed("kernel", subject)
        else:
            yield failed(
                "kernel",
                subject,
                expected=p.param,
                source=p.file,
                found=(cmdline or "(no /proc/cmdline)").strip(),
                hint=REBOOT,
            )
    for p in k.absent_params:
        subject = f"/proc/cmdline lacks {p.param}"
        if p.param not in words:
            yield passed("kernel", subject)
        else:
            yield failed(
                "kernel",
                subject,
                expected=f"no {p.param}",
                source=p.file,
                found=p.param,
                hint=(
                    "the profile passes no device that needs it; something else in the "
                    "configuration adds it, and it lets devices without an SMMU context"
                    " reach memory untranslated"
                ),
            )
    for d in k.drivers:
        subject = f"driver {d.name} registered"
        if d.name in src.listdir(f"sys/bus/{d.bus}/drivers"):
            yield passed("kernel", subject)
        else:
            yield failed(
                "kernel",
                subject,
                expected=f"/sys/bus/{d.bus}/drivers/{d.name}",
                source="host.nix",
                found="(absent)",
                hint=(
                    "the running kernel lacks the driver: is it built with host.nix's "
                    "kernelPatches (structuredExtraConfig), and was the board rebooted "
                    "into it?"
                ),
            )


def _group_members(src: Source, group: str) -> tuple[str, ...]:
    return src.listdir(f"sys/kernel/iommu_groups/{group}/devices")


def _passed_to(exp: Expected, vm: str) -> set[str]:
    return {d for b in exp.bindings if b.vm == vm for d in b.devices}


def binding_checks(exp: Expected, src: Source, tree: LiveTree) -> Iterator[Check]:
    groups: set[str] = set()
    for b in exp.bindings:
        for dev in b.devices:
            yield from _device(exp, src, tree, b, dev, groups)
    yield from _device_nodes(exp, src, groups)


def _device(
    exp: Expected, src: Source, tree: LiveTree, b: Binding, dev: str, groups: set[str]
) -> Iterator[Check]:
    base = f"sys/bus/{b.bus}/devices/{dev}"
    if src.link(base) is None and not src.listdir(base):
        yield failed(
            "binding",
            f"{dev} present",
            expected=f"/{base}",
            source=b.file,
            found="(absent)",
            hint=(
                'the kernel made no device of it: is its node\'s status "okay" in the '
                "booted tree, and its controller probed?"
            ),
        )
        return
    driver = _basename(src.link(f"{base}/driver"))
    subject = f"{dev} bound to {b.driver}"
    if driver == b.driver:
        yield passed("binding", subject)
    else:
        unit = b.file.removeprefix("devices/").removesuffix(".nix")
        yield failed(
            "binding",
            subject,
            expected=b.driver,
            source=b.file,
            found=driver or "no driver",
            hint=(
                f"systemctl status ghafgen-vfio-{unit}: the bind unit did not run "
                "or failed; a host driver may hold the device (blacklist it)"
            ),
        )
    if b.bus == "platform":
        node = src.link(f"{base}/of_node")
        path = (
            node.split("devicetree/base", 1)[1]
            if node and "devicetree/base" in node
            else ""
        )
        status = tree.strings(path, "status") if path else ()
        # No status is "okay" (the devicetree specification, 2.3.4).
        if path and (not status or status[0] in ("okay", "ok")):
            yield passed("binding", f"{dev} status okay", path)
        elif status:
            yield failed(
                "binding",
                f"{dev} status",
                expected='"okay"',
                source=b.file,
                found=f'"{status[0]}"',
                hint="the booted tree disables the device",
            )
    group = _basename(src.link(f"{base}/iommu_group"))
    if group is None:
        yield failed(
            "binding",
            f"{dev} in an IOMMU group",
            expected="an iommu_group link",
            source=b.file,
            found="none",
            hint=(
                "the SMMU does not translate the device: its node needs `iommus` (the "
                "passthrough overlay) and the SMMU must be enabled"
            ),
        )
        return
    groups.add(group)
    mine = _passed_to(exp, b.vm)
    others = [m for m in _group_members(src, group) if m not in mine]
    subject = f"IOMMU group {group} of {dev} passed whole to {b.vm or 'its VM'}"
    if not others:
        yield passed("binding", subject)
    else:
        yield failed(
            "binding",
            subject,
            expected=" ".join(sorted(mine)),
            source=b.file,
            found="the group also holds " + " ".join(others),
            hint=(
                "VFIO hands a VM whole groups: pass the other members to the same VM, "
                "or split the group (for a PCIe endpoint, the controller's iommus "
                "overlay)"
            ),
        )


def _device_nodes(exp: Expected, src: Source, groups: set[str]) -> Iterator[Check]:
    want = exp.device_nodes
    paths = list(want.paths) + [f"/dev/vfio/{g}" for g in sorted(groups, key=int)]
    for path in paths:
        node = src.node(path)
        subject = f"{path} group {want.group} mode {want.mode:04o}"
        if node is None or node.kind != "char":
            yield failed(
                "binding",
                subject,
                expected="a character device",
                source=want.file,
                found="(absent)" if node is None else "not a character device",
                hint=(
                    "the driver did not create it (is the device bound?); a capture "
                    "unpacked without root loses device nodes: give --root the .tar.gz"
                ),
            )
            continue
        group = src.group_name(node.gid)
        if group == want.group and node.mode == want.mode:
            yield passed("binding", subject)
        else:
            yield failed(
                "binding",
                subject,
                expected=f"group {want.group}, mode {want.mode:04o}",
                source=want.file,
                found=f"group {group}, mode {node.mode:04o}",
                hint=(
                    "udev did not apply host.nix's rules: udevadm trigger, or check "
                    "services.udev.extraRules in the running configuration"
                ),
            )


def _qemu(src: Source, vm: str) -> tuple[list[str], str]:
    """The QEMU process of microvm@<vm> (its argv), and its pids as read."""
    pids = (src.text(VM_CGROUP.format(vm=vm) + "/cgroup.procs") or "").split()
    for pid in pids:
        if not pid.isdigit():
            continue
        raw = src.raw(f"proc/{pid}/cmdline") or b""
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]]
        if argv and argv[0].rsplit("/", 1)[-1].startswith("qemu-system-"):
            return argv, " ".join(pids)
    return [], " ".join(pids) or "no process"


def _pairs(argv: list[str]) -> list[tuple[str, str]]:
    return list(itertools.pairwise(argv))


def _unit_settings(src: Source, vm: str) -> dict[str, list[str]]:
    """DevicePolicy= and DeviceAllow= as systemd assembles them from the unit file
    and its drop-ins (later files win; an empty DeviceAllow= resets the list)."""
    name = f"microvm@{vm}.service"
    files = [f"{UNIT_DIR}/microvm@.service", f"{UNIT_DIR}/{name}"]
    for d in (f"{UNIT_DIR}/microvm@.service.d", f"{UNIT_DIR}/{name}.d"):
        files += [f"{d}/{f}" for f in sorted(src.listdir(d)) if f.endswith(".conf")]
    out: dict[str, list[str]] = {"DevicePolicy": [], "DeviceAllow": []}
    for f in files:
        for line in (src.text(f) or "").splitlines():
            key, sep, value = line.strip().partition("=")
            if not sep or key not in out:
                continue
            if key == "DevicePolicy":
                out[key] = [value.strip()]
            elif not value.strip():
                out[key] = []
            else:
                out[key].append(value.strip().split()[0])
    return out


def vm_checks(exp: Expected, src: Source) -> Iterator[Check]:
    for vm in exp.vms.values():
        yield from _vm(exp, src, vm)


def _vm(exp: Expected, src: Source, vm: Vm) -> Iterator[Check]:
    argv, pids = _qemu(src, vm.name)
    subject = f"microvm@{vm.name} runs QEMU"
    if not argv:
        yield failed(
            "VM",
            subject,
            expected="a qemu-system process in its cgroup",
            source=vm.file,
            found=pids,
            hint=f"systemctl status microvm@{vm.name}; journalctl -u microvm@{vm.name} -b",
        )
        return
    yield passed("VM", subject, argv[0])
    if vm.qemu:
        store = argv[0].split("/")
        names = [part.split("-", 1)[1] for part in store if "-" in part]
        subject = f"microvm@{vm.name} QEMU is {vm.qemu}"
        # A store name is <name>-<version>; Ghaf's layout names only the package.
        if any(
            n == vm.qemu or re.fullmatch(re.escape(vm.qemu) + r"-\d[\w.]*", n)
            for n in names
        ):
            yield passed("VM", subject)
        else:
            yield failed(
                "VM",
                subject,
                expected=vm.qemu,
                source=vm.file,
                found=argv[0],
                hint=(
                    "the VM runs another QEMU; microvm.qemu.package must be the pinned "
                    "platform QEMU (qemu.nix); restart microvm@ after the switch"
                ),
            )
    machine = next(
        (
            v
            for f, v in _pairs(argv)
            if f in ("-M", "-machine") and not v.startswith("dumpdtb")
        ),
        "",
    )
    subject = f"microvm@{vm.name} machine {vm.machine}"
    if machine.split(",")[0] == vm.machine:
        yield passed("VM", subject, machine)
    else:
        yield failed(
            "VM",
            subject,
            expected=vm.machine,
            source=vm.file,
            found=machine or "(none)",
            hint=(
                "microvm.qemu.machine is overridden somewhere; the guest tree is "
                "written for QEMU's virt machine"
            ),
        )
    pairs = _pairs(argv)
    want = list(zip(vm.args[::2], vm.args[1::2], strict=False))
    want += [("-device", f"vfio-pci,host={bdf}") for bdf in vm.pci_functions]
    for flag, value in want:
        subject = f"microvm@{vm.name} has {flag} {value}"
        hit = any(
            f == flag
            and (
                v == value
                or (value.startswith("vfio-pci,") and v.startswith(value + ","))
            )
            for f, v in pairs
        )
        if hit:
            yield passed("VM", subject)
        else:
            yield failed(
                "VM",
                subject,
                expected=f"{flag} {value}",
                source=vm.file,
                found="not in /proc/<pid>/cmdline",
                hint=(
                    "the running QEMU was started from another configuration: "
                    f"systemctl restart microvm@{vm.name} after nixos-rebuild switch"
                ),
            )
    given = {
        v.split("host=", 1)[1].split(",")[0]
        for f, v in pairs
        if f == "-device"
        and v.startswith(("vfio-platform,", "vfio-pci,"))
        and "host=" in v
    }
    foreign = sorted(given - set(vm.platform_devices) - set(vm.pci_functions))
    subject = f"microvm@{vm.name} is given only its own devices"
    if not foreign:
        yield passed("VM", subject)
    else:
        yield failed(
            "VM",
            subject,
            expected=" ".join(vm.platform_devices + vm.pci_functions) or "none",
            source=vm.file,
            found=" ".join(foreign),
            hint=(
                "another module adds passthrough devices to this VM; the profile does "
                "not give it these"
            ),
        )
    if vm.policy_file:
        yield from _policy(src, vm)
        yield from _vfio_links(exp, src, vm)


def _vfio_links(exp: Expected, src: Source, vm: Vm) -> Iterator[Check]:
    """The link DeviceAllow= names leads to the passed device's own group node."""
    buses = {d: b.bus for b in exp.bindings for d in b.devices}
    for dev, path in sorted(vm.vfio_links.items()):
        group = _basename(
            src.link(f"sys/bus/{buses.get(dev, 'platform')}/devices/{dev}/iommu_group")
        )
        target = src.link(path)
        subject = f"{path} leads to the VFIO group of {dev}"
        if group is not None and target is not None and _basename(target) == group:
            yield passed("VM", subject, target)
        else:
            yield failed(
                "VM",
                subject,
                expected=f"/dev/vfio/{group}" if group else "the device's group node",
                source=vm.policy_file,
                found=target or "(absent)",
                hint=(
                    "isolation.nix's udev rule did not run for the group (udevadm "
                    "trigger -s vfio); microvm@ cannot open the device without it"
                ),
            )


def _policy(src: Source, vm: Vm) -> Iterator[Check]:
    settings = _unit_settings(src, vm.name)
    policy = settings["DevicePolicy"][-1] if settings["DevicePolicy"] else ""
    subject = f"microvm@{vm.name} DevicePolicy=closed"
    if policy == "closed":
        yield passed("VM", subject)
    else:
        yield failed(
            "VM",
            subject,
            expected="closed",
            source=vm.policy_file,
            found=policy or "(unset)",
            hint=(
                "the unit runs without isolation.nix's settings: is the target's "
                "default.nix imported in the running configuration?"
            ),
        )
    allowed = set(settings["DeviceAllow"])
    want = set(vm.device_allow)
    subject = f"microvm@{vm.name} DeviceAllow= is its own devices"
    if allowed == want:
        yield passed("VM", subject)
    else:
        parts = []
        if want - allowed:
            parts.append("lacks " + " ".join(sorted(want - allowed)))
        if allowed - want:
            parts.append("also allows " + " ".join(sorted(allowed - want)))
        yield failed(
            "VM",
            subject,
            expected=" ".join(vm.device_allow),
            source=vm.policy_file,
            found="; ".join(parts),
            hint=(
                "another module widens or narrows the unit's device list; one VM must "
                "not reach another's devices"
            ),
        )


def host_checks(exp: Expected, src: Source) -> list[Check]:
    """Every host check, kernel first, so the first failure is the first broken link."""
    tree = LiveTree(src, HOST_BASE)
    checks = list(kernel_checks(exp, src))
    for ov in exp.overlays:
        checks += overlay_checks(tree, ov, "overlay")
    checks += binding_checks(exp, src, tree)
    checks += vm_checks(exp, src)
    return checks
