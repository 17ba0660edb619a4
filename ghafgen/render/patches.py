"""Patches ghafgen writes itself: the vfio_platform reset relaxation and QEMU's
vfio-platform FDT bindings.

Entry points: `VFIO_RESET` (a fixed diff) and `qemu_fdt_bindings(compatibles)`.
Patches that exist upstream (the bpmp-virt series, Ghaf's QEMU and SMMU patches)
are fetched from the pinned Ghaf tree, never written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Patch:
    name: str
    file: str
    description: str
    diff: str
    license: str = "GPL-2.0-only"  # the patched tree's: Linux here, QEMU is or-later


# drivers/vfio/platform/vfio_platform.c lines 16-22 are the same in Linux 6.1,
# 6.6 and 6.12. Tegra devices have no vfio reset handler; without this,
# vfio-platform refuses to open them.
def _diff(*lines: str) -> str:
    """A diff body from its lines; written as a list so that no formatter can strip
    the single space of a blank context line."""
    return "\n".join(lines) + "\n"


BLANK = " "  # a blank line of context

VFIO_RESET = Patch(
    name="vfio-platform-reset-not-required",
    file="patches/vfio-platform-reset-not-required.patch",
    description="vfio_platform: do not require a reset handler (Tegra devices have none)",
    diff=_diff(
        "diff --git a/drivers/vfio/platform/vfio_platform.c "
        "b/drivers/vfio/platform/vfio_platform.c",
        "--- a/drivers/vfio/platform/vfio_platform.c",
        "+++ b/drivers/vfio/platform/vfio_platform.c",
        "@@ -16,7 +16,7 @@",
        ' #define DRIVER_AUTHOR   "Antonios Motakis <a.motakis@virtualopensystems.com>"',
        ' #define DRIVER_DESC     "VFIO for platform devices - User Level meta-driver"',
        BLANK,
        "-static bool reset_required = true;",
        "+static bool reset_required = false;",
        " module_param(reset_required, bool, 0444);",
        ' MODULE_PARM_DESC(reset_required, "override reset requirement (default: 1)");',
        BLANK,
    ),
)


# hw/core/sysbus-fdt.c of the pinned QEMU (10.1): the end of bindings[]. The
# lines before the insertion are in the context of Ghaf's patch 0001 against
# the same release; the three after it are QEMU's since uefi-vars (10.0).
# Inserted after the TPM entry, away from the hunk Ghaf's 0001 adds, so the
# two apply in either order.
def qemu_fdt_bindings(vm: str, compatibles: tuple[tuple[str, str], ...]) -> Patch:
    """Bindings that let vfio-platform devices whose guest node ghafgen writes start.

    QEMU exits for a vfio-platform device with no FDT binding ("can not be
    dynamically instantiated"); these bind each host compatible to QEMU's
    no_fdt_node, so QEMU maps the device and the VM's -dtb describes it.
    `compatibles` holds (compatible, device) pairs.
    """
    added = [
        f'+    VFIO_PLATFORM_BINDING("{compat}", no_fdt_node), /* {dev} */'
        for compat, dev in compatibles
    ]
    return Patch(
        license="GPL-2.0-or-later",
        name=f"qemu-vfio-platform-bindings-{vm}",
        file=f"patches/qemu-vfio-platform-bindings-{vm}.patch",
        description="hw/core/sysbus-fdt.c: let "
        + ", ".join(dict.fromkeys(dev for _c, dev in compatibles))
        + " start under vfio-platform; the guest node comes from the VM's -dtb",
        diff=_diff(
            "diff --git a/hw/core/sysbus-fdt.c b/hw/core/sysbus-fdt.c",
            "--- a/hw/core/sysbus-fdt.c",
            "+++ b/hw/core/sysbus-fdt.c",
            f"@@ -518,6 +518,{6 + len(added) + 2} @@ static const BindingEntry bindings[] = {{",
            " #ifdef CONFIG_TPM",
            "     TYPE_BINDING(TYPE_TPM_TIS_SYSBUS, add_tpm_tis_fdt_node),",
            " #endif",
            "+#ifdef CONFIG_LINUX",
            *added,
            "+#endif",
            "     TYPE_BINDING(TYPE_RAMFB_DEVICE, no_fdt_node),",
            "     TYPE_BINDING(TYPE_UEFI_VARS_SYSBUS, add_uefi_vars_node),",
            '     TYPE_BINDING("", NULL), /* last element */',
        ),
    )


# The proxy's policy (wherever the proxy runs) and per-VM BPMP enforcement
# (profile `bpmp_per_vm`, the bridge patch). Both diffs are ghafgen's own,
# written against the pinned Ghaf sources (tiiuae/ghaf 9a37dc8c2ed1): the proxy
# file the bpmp-virt drivers patch adds, and the QEMU bridge source Ghaf copies
# into the tree in postPatch. They are kept as diff files in render/static.
_STATIC = Path(__file__).parent / "static"


def _static_diff(name: str) -> str:
    return (_STATIC / name).read_text(encoding="utf-8")


def proxy_per_vm() -> Patch:
    """bpmp-host-proxy.c: deny by default, one device and one policy per child node."""
    return Patch(
        name="bpmp-host-proxy-per-vm",
        file="patches/bpmp-host-proxy-per-vm.patch",
        description="bpmp-host-proxy: one /dev/bpmp-host-<vm> per child node of "
        "bpmp_host_proxy, each with its own allowed-* lists and allowed-protected-* lists "
        "(resources shared with the host or another VM: enable and read only); "
        "no child node: Ghaf's single /dev/bpmp-host. Deny by default: only the "
        "message types a guest's BPMP clients send pass, clock IDs (24 bits) and "
        "commands (8 bits) read whole, set-parent's parent checked, open files "
        "keep the lists past an unbind. A message is checked against the lists "
        "of the device it was written to, before the BPMP is looked up. Applies "
        "after the bpmp-virt drivers patch.",
        diff=_static_diff("bpmp-host-proxy-per-vm.diff"),
    )


def bridge_host_device() -> Patch:
    """nvidia_bpmp_guest.c: a `host-device` property naming the proxy device."""
    return Patch(
        license="GPL-2.0-or-later",
        name="qemu-bpmp-guest-host-device",
        file="patches/qemu-bpmp-guest-host-device.patch",
        description="hw/misc/nvidia_bpmp_guest.c: a host-device property (set with "
        "-global nvidia_bpmp_guest.host-device=/dev/bpmp-host-<vm>) instead of the "
        "fixed /dev/bpmp-host; a VM given its own device exits if it cannot open "
        "it. Applied in postPatch, after Ghaf's bridge source is copied in.",
        diff=_static_diff("qemu-bpmp-guest-host-device.diff"),
    )


# Patches whose target file is not in a plain kernel or QEMU tree: `ghafgen
# check --kernel-src/--qemu-src` cannot apply them (tests/test_isolation.py
# applies them to the pinned Ghaf sources).
ON_GHAF_SOURCES = {
    "bpmp-host-proxy-per-vm.patch": "patches the proxy file Ghaf's bpmp-virt drivers "
    "patch adds, not in a plain kernel tree",
    "qemu-bpmp-guest-host-device.patch": "patches the bridge source Ghaf's QEMU "
    "package copies in, not in a plain QEMU tree",
}
