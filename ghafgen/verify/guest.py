"""`ghafgen verify --guest`: inside a VM (or on a capture of one), is the guest
given what its profile passes it?

Entry point: `guest_checks(exp, src, vm)` -> list of `Check`, all on the
chain's last link, `guest`: its tree, its drivers, its BPMP and its console,
and in the GPU VM its modules and CUDA's node (verify/gpu.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.verify.expect import Expected, Vm
from ghafgen.verify.gpu import gpu_checks
from ghafgen.verify.livetree import GUEST_BASE, LiveTree, overlay_checks
from ghafgen.verify.report import Check, failed, passed
from ghafgen.verify.source import Source, VerifyError


def pick_vm(exp: Expected, name: str | None, src: Source) -> Vm:
    """The VM named, else the target's only one, else the one the guest's host
    name names (microvm.nix's host options.nix: networking.hostName = mkDefault
    <vm>).

    Raises:
        VerifyError: no such VM, or several and none named.
    """
    if name is None and len(exp.vms) != 1:
        host = (src.text("proc/sys/kernel/hostname") or "").strip()
        name = host if host in exp.vms else None
    if name is not None:
        if name not in exp.vms:
            raise VerifyError(
                f"{exp.manifest}: no VM '{name}'; the target has "
                + (", ".join(sorted(exp.vms)) or "none")
            )
        return exp.vms[name]
    if len(exp.vms) != 1:
        raise VerifyError(
            f"{exp.manifest}: the target has VMs {', '.join(sorted(exp.vms))}; "
            "name the one this is with --vm"
        )
    return next(iter(exp.vms.values()))


def _of_nodes(src: Source) -> dict[str, str]:
    """DT path -> platform device name, from each device's of_node link."""
    out = {}
    for dev in src.listdir("sys/bus/platform/devices"):
        node = src.link(f"sys/bus/platform/devices/{dev}/of_node")
        if node and "devicetree/base" in node:
            out[node.split("devicetree/base", 1)[1] or "/"] = dev
    return out


def _driver(src: Source, dev: str) -> str | None:
    link = src.link(f"sys/bus/platform/devices/{dev}/driver")
    return link.rstrip("/").rsplit("/", 1)[-1] if link else None


def _bound(
    src: Source, by_node: dict[str, str], path: str, want: str, vm: Vm, what: str
) -> Iterator[Check]:
    dev = by_node.get(path)
    driver = _driver(src, dev) if dev else None
    subject = f"{what} ({path}) bound to " + (want or "a driver")
    if driver and (not want or driver == want):
        yield passed("guest", subject, f"{dev} -> {driver}")
    else:
        yield failed(
            "guest",
            subject,
            expected=want or "a driver",
            source=vm.file,
            found=(f"{dev}: " if dev else "no platform device; ")
            + (driver or "no driver"),
            hint=(
                "the guest kernel lacks the driver (the guest config in the VM module),"
                " or its probe failed: dmesg in the guest"
            ),
        )


def _below(tree: LiveTree, path: str, depth: int) -> list[str]:
    """Nodes under `path`, down to `depth` levels (the GPU's bus sits on the platform bus)."""
    out = []
    for name in tree.children(path):
        child = f"{path.rstrip('/')}/{name}"
        out.append(child)
        if depth > 1:
            out += _below(tree, child, depth - 1)
    return out


def guest_checks(exp: Expected, src: Source, vm: Vm) -> list[Check]:
    g = vm.guest
    tree = LiveTree(src, GUEST_BASE)
    checks: list[Check] = []
    if g.tree is not None:
        checks += overlay_checks(tree, g.tree, "guest")
    by_node = _of_nodes(src)
    bus = g.platform_bus
    nodes = {p: tree.strings(p, "compatible") for p in _below(tree, bus, depth=3)}
    for dev, compatible in g.compatibles.items():
        where = [
            p for p, c in sorted(nodes.items()) if compatible and compatible[0] in c
        ]
        subject = f"{dev}'s node on {bus}"
        if not where:
            checks.append(
                failed(
                    "guest",
                    subject,
                    expected=f'compatible "{compatible[0]}"',
                    source=vm.file,
                    found="no such node",
                    hint=(
                        "QEMU was started without the device (-device vfio-platform) or"
                        " without the guest tree (-dtb); check the host with ghafgen "
                        "verify"
                    ),
                )
            )
            continue
        checks.append(passed("guest", subject, where[0]))
        checks += _bound(src, by_node, where[0], "", vm, dev)
    if g.bpmp:
        if tree.has(g.bpmp_node):
            checks.append(passed("guest", f"BPMP node {g.bpmp_node}"))
            checks += _bound(src, by_node, g.bpmp_node, g.bpmp_driver, vm, "BPMP")
        else:
            checks.append(
                failed(
                    "guest",
                    f"BPMP node {g.bpmp_node}",
                    expected=g.bpmp_node,
                    source=vm.file,
                    found="(absent)",
                    hint=(
                        "the VM's QEMU has no BPMP bridge: it must be the pinned "
                        "platform QEMU built with bpmpBridge = true"
                    ),
                )
            )
    checks += _console(src, vm)
    checks += gpu_checks(src, vm)
    return checks


def _console(src: Source, vm: Vm) -> Iterator[Check]:
    cmdline = (src.text("proc/cmdline") or "").split()
    consoles = [
        a.split("=", 1)[1].split(",")[0] for a in cmdline if a.startswith("console=")
    ]
    last = consoles[-1] if consoles else ""
    subject = f"console on {vm.guest.console}"
    if last == vm.guest.console:
        yield passed("guest", subject)
    else:
        yield failed(
            "guest",
            subject,
            expected=f"console={vm.guest.console}",
            source=vm.file,
            found=f"console={last}" if last else "no console= on /proc/cmdline",
            hint=(
                "the last console= wins; boot.kernelParams of the VM module puts it "
                "there"
            ),
        )
    for p in vm.guest.params:
        if p.startswith("console="):
            continue
        subject = f"guest /proc/cmdline has {p}"
        if p in cmdline:
            yield passed("guest", subject)
        else:
            yield failed(
                "guest",
                subject,
                expected=p,
                source=vm.file,
                found=" ".join(cmdline) or "(no /proc/cmdline)",
                hint=(
                    "the VM booted another kernel command line: restart microvm@ after "
                    "the switch"
                ),
            )
