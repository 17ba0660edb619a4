"""`ghafgen verify --guest`: inside a VM (or on a capture of one), is the guest
given what its profile passes it?

Entry point: `guest_checks(exp, src, vm)` -> list of `Check`, all on the
chain's last link, `guest`: its tree, its drivers, its BPMP and its console,
and in the GPU VM its modules and CUDA's node (verify/gpu.py).

One cause makes checks not provable rather than failed, because the guest
shows it itself: a kernel with no BPMP driver at all. Then neither the BPMP
node nor a passed node whose clocks, resets or power domains it supplies can
bind on this guest, whatever the host did; a kernel that has the driver and
did not bind is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.verify.expect import Expected, Vm
from ghafgen.verify.gpu import gpu_checks
from ghafgen.verify.livetree import GUEST_BASE, LiveTree, overlay_checks
from ghafgen.verify.report import Check, failed, passed, unproven
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


# Where the kernel lists its platform drivers (drivers/base/bus.c: one folder
# per registered driver, bound to a device or not).
DRIVERS = "sys/bus/platform/drivers"
# The properties through which a node takes something from a provider, and
# the provider's property that says how many cells follow its phandle
# (devicetree specification; the clock, reset and power-domain bindings).
SUPPLIES = (
    ("clocks", "#clock-cells"),
    ("resets", "#reset-cells"),
    ("power-domains", "#power-domain-cells"),
)


def _kernel_without(src: Source, driver: str) -> str:
    """Why `driver` cannot bind on this guest, as the guest shows it; "" when
    its kernel lists the driver, or lists none (nothing to go on).

    Only for the BPMP driver: Linux's tegra-bpmp is `builtin_platform_driver`
    and TEGRA_BPMP a bool (drivers/firmware/tegra/bpmp.c and Kconfig, 6.12),
    so it is listed from boot or not in the kernel at all; no module to load.
    """
    listed = src.listdir(DRIVERS)
    if not listed or driver in listed:
        return ""
    return (
        f"the guest kernel has no {driver} driver (/{DRIVERS} does not list it; "
        "it is built in or absent): not the guest kernel the VM module builds, "
        "which has it. Where the module's kernel runs this check holds or fails; "
        "a guest on the board without it runs another kernel, a fault of its own"
    )


def _phandles(tree: LiveTree, path: str = "/") -> dict[int, str]:
    """phandle -> node path, for every node of the tree."""
    out = {}
    raw = tree.prop(path, "phandle")
    if raw and len(raw) == 4:
        out[int.from_bytes(raw, "big")] = path
    for name in tree.children(path):
        out.update(_phandles(tree, f"{path.rstrip('/')}/{name}"))
    return out


def _supplied_by(tree: LiveTree, path: str, provider: str) -> list[str]:
    """Which of the node's SUPPLIES name the node at `provider`, each
    specifier walked with its provider's cell count."""
    raw = tree.prop(provider, "phandle")
    if raw is None or len(raw) != 4:
        return []
    wanted = int.from_bytes(raw, "big")
    index: dict[int, str] | None = None
    out = []
    for prop, cells_name in SUPPLIES:
        value = tree.prop(path, prop) or b""
        cells = [
            int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value) - 3, 4)
        ]
        i = 0
        while i < len(cells):
            if cells[i] == wanted:
                out.append(prop)
                break
            index = _phandles(tree) if index is None else index
            node = index.get(cells[i])
            count = tree.prop(node, cells_name) if node else None
            if count is None or len(count) != 4:
                break  # an unknown provider: the rest cannot be read
            i += 1 + int.from_bytes(count, "big")
    return out


def _bound(
    src: Source,
    by_node: dict[str, str],
    path: str,
    want: str,
    vm: Vm,
    what: str,
    why_not: str = "",
) -> Iterator[Check]:
    """The node's device is bound (to `want`, if given); `why_not`: the cause,
    shown by the guest, that it cannot bind here (then an unbound one is not
    provable rather than failed)."""
    dev = by_node.get(path)
    driver = _driver(src, dev) if dev else None
    subject = f"{what} ({path}) bound to " + (want or "a driver")
    found = (f"{dev}: " if dev else "no platform device; ") + (driver or "no driver")
    if driver and (not want or driver == want):
        yield passed("guest", subject, f"{dev} -> {driver}")
    elif why_not and not driver:
        yield unproven(
            "guest",
            subject,
            expected=want or "a driver",
            source=vm.file,
            found=found,
            why=why_not,
        )
    else:
        yield failed(
            "guest",
            subject,
            expected=want or "a driver",
            source=vm.file,
            found=found,
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
    no_bpmp = _kernel_without(src, g.bpmp_driver) if g.bpmp else ""
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
        takes = _supplied_by(tree, where[0], g.bpmp_node) if no_bpmp else []
        why = (
            f"its {', '.join(takes)} come from {g.bpmp_node}, and {no_bpmp}"
            if takes
            else ""
        )
        checks += _bound(src, by_node, where[0], "", vm, dev, why)
    if g.bpmp:
        if tree.has(g.bpmp_node):
            checks.append(passed("guest", f"BPMP node {g.bpmp_node}"))
            checks += _bound(
                src, by_node, g.bpmp_node, g.bpmp_driver, vm, "BPMP", no_bpmp
            )
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
