"""BPMP virtualization: when it is needed, and what the proxy may allow."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import RESOURCE_KINDS, Board
from ghafgen.derive.allowlist import Allowed, allow_list, platform_devices
from ghafgen.findings import Finding
from ghafgen.profile.model import Profile
from ghafgen.profile.spec import SHIPPED_PINS
from ghafgen.rules.registry import ERROR, WARNING, finding, rule

_EXTRA_KEYS = {
    "clock": "extra_allowed_clocks",
    "reset": "extra_allowed_resets",
    "power-domain": "extra_allowed_power_domains",
}


@rule(
    "GG301",
    "platform-needs-virtualization",
    ERROR,
    fix="Set `enable = true` under [hardware.nvidia.virtualization].",
)
def platform_needs_virtualization(p: Profile, b: Board) -> Iterator[Finding]:
    """Passing a platform device needs host virtualization (VFIO platform, BPMP proxy)."""
    if p.virtualization.enable:
        return
    for name, dev in platform_devices(p, b):
        pt = next(x for x in p.enabled if x.name == name)
        why = (
            "its clocks and resets go through the BPMP host proxy"
            if dev.uses_bpmp
            else "vfio-platform comes with it"
        )
        yield finding(
            "GG301",
            pt.at(),
            f"platform device '{dev.dt_name}' is passed with virtualization off",
            f"add [hardware.nvidia.virtualization] enable = true; {why}",
        )


@rule(
    "GG302",
    "bpmp-allow-all",
    WARNING,
    fix="Remove `bpmp_allow_all`; list any missing ID in `extra_allowed_*` instead.",
)
def bpmp_allow_all(p: Profile, b: Board) -> Iterator[Finding]:
    """Allowing every BPMP resource lets a guest switch off the host's clocks."""
    if p.virtualization.bpmp_allow_all:
        yield finding(
            "GG302",
            p.virtualization.at("bpmp_allow_all"),
            "bpmp_allow_all lets guests gate every clock, reset and power domain, "
            "the host's eMMC and memory clocks included",
            "use it only briefly to learn what a guest requests, then list those IDs",
        )


@rule(
    "GG303",
    "kernel-without-bpmp-host-support",
    ERROR,
    fix=f'Set `kernel_version = "{" or ".join(SHIPPED_PINS.host_bpmp_series)}"` under '
    "[target]: the pinned BPMP host proxy builds on that series only.",
)
def kernel_without_bpmp_host_support(p: Profile, b: Board) -> Iterator[Finding]:
    """BPMP virtualization needs a host kernel series the pinned host proxy and hooks build on."""
    pins = b.catalog.kernel_pins
    if p.virtualization.enable and p.target.kernel_version not in pins.host_bpmp_series:
        why = (
            "its host proxy does not build there (its .remove returns int; "
            "6.11+ platform drivers return void)"
            if p.target.kernel_version in pins.bpmp_hooks
            else f"it has BPMP hooks for {', '.join(pins.bpmp_hooks)} only"
        )
        yield finding(
            "GG303",
            p.target.at("kernel_version"),
            f"the pinned Ghaf cannot virtualize BPMP on a kernel "
            f"{p.target.kernel_version!r} host: {why}",
            f'use kernel_version = "{pins.host_series}"',
        )


@rule(
    "GG304",
    "allow-list-unsafe",
    ERROR,
    fix="Remove the ID from `extra_allowed_*`; it belongs to the host or another device.",
)
def allow_list_unsafe(p: Profile, b: Board) -> Iterator[Finding]:
    """The allow list never holds a host-critical resource or another instance's."""
    allowed = allow_list(p, b)
    passed = {dev.key for _n, dev in platform_devices(p, b)}
    passed_nodes = {dev.dt_name for _n, dev in platform_devices(p, b)}
    # A withheld resource is a host node's too: an extra that names it needs an owner check.
    passed_ids = {
        k: {
            b.soc.resource(k, r).id
            for _n, d in platform_devices(p, b)
            for r in d.resources(p.target.dt_flavor, k)
            if r not in d.withheld
        }
        for k in RESOURCE_KINDS
    }
    critical = {
        k: {r.id: r.name for r in b.soc.table(k).values() if r.host_critical}
        for k in RESOURCE_KINDS
    }
    for kind in RESOURCE_KINDS:
        for a in allowed.of(kind):
            src = (
                p.virtualization.at(_EXTRA_KEYS[kind])
                if a.why == "extra"
                else p.virtualization.at()
            )
            if a.id in critical[kind]:
                yield finding(
                    "GG304",
                    src,
                    f"{kind} {a.id} ({critical[kind][a.id]}) is host-critical and "
                    "may not be allowed",
                    "a guest that can gate it can stop the host",
                )
                continue
            if a.id in passed_ids[kind]:
                continue
            owner = next(
                (
                    f"'{sib.dt_name}' ({sib.key})"
                    for sib in b.soc.siblings.values()
                    if sib.key not in passed
                    and a.id
                    in {"clock": sib.clocks, "reset": sib.resets}.get(
                        kind, sib.power_domains
                    )
                ),
                None,
            ) or _tree_owner(b, kind, a, passed_nodes)
            if owner:
                yield finding(
                    "GG304",
                    src,
                    f"{kind} {a.id} belongs to {owner}, which is not passed",
                    f"allow only the passed devices' own {kind}s; never another device's",
                )


def _tree_owner(b: Board, kind: str, a: Allowed, passed_nodes: set[str]) -> str:
    """Another node of the board's mainline tree using the ID, from the
    whole-SoC catalog (data/soc); protected roots are shared by design."""
    if a.protected:
        return ""
    # The whole-SoC files: read only for a conflict.
    for node in b.catalog.soc_devices(b.mainline_dts):
        if node.dt_name in passed_nodes:
            continue
        ids = {"clock": node.clocks, "reset": node.resets}.get(kind, node.power_domains)
        if a.id in ids:
            return f"'{node.dt_name}' in the {b.mainline_dts} tree"
    return ""


@rule(
    "GG305",
    "device-missing-in-flavour",
    ERROR,
    fix="Pick the dt_flavor your target boots, or pass a device that tree has.",
)
def device_missing_in_flavour(p: Profile, b: Board) -> Iterator[Finding]:
    """A device must exist in the device-tree flavour the target boots."""
    flavor = p.target.dt_flavor
    for pt in p.enabled:
        dev = b.devices.get(pt.device)
        slot = b.slots.get(pt.device)
        views = dev.flavors if dev else (slot.controller.flavors if slot else {})
        if (dev or slot) and flavor not in views:
            have = ", ".join(sorted(views)) or "none"
            yield finding(
                "GG305",
                pt.at(),
                f"'{pt.device}' has no node in the {b.tree(flavor)} device tree "
                f"(it is in: {have})",
                dev.fact.note
                if dev and dev.fact.note
                else f"set dt_flavor to one of: {have}",
            )


@rule(
    "GG306",
    "virtualization-unused",
    WARNING,
    fix="Turn [hardware.nvidia.virtualization] off, or pass a platform device.",
)
def virtualization_unused(p: Profile, b: Board) -> Iterator[Finding]:
    """Virtualization is on but no platform device is passed (PCIe needs none)."""
    if p.virtualization.enable and not platform_devices(p, b):
        yield finding(
            "GG306",
            p.virtualization.at("enable"),
            "virtualization is enabled but no platform device is passed",
            "it patches the host kernel and adds the BPMP proxy for nothing; vfio-pci "
            "passthrough works without it",
        )
