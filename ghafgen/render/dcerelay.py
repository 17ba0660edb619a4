"""The DCE relay for the VM that owns the display: the host's and that VM's part.

Entry points: `dce_relay(vm, layout)` (the pieces, as data) and
`relay_files(plan, relay)` (the files: `dce-relay.nix`, the host's NixOS
module; `dce-relay-guest.nix`, what the VM's out-of-tree modules add;
`overlays/dce-relay-host.dts`). Called once per target, for the one VM a
profile passes the display to; nothing here runs otherwise.

The display engine and the DCE's R5 stay with the host. The VM's `nvdisplay`
talks to the R5 through QEMU's DCE bridge (Ghaf's ghaf-qemu-bpmp 0002, in the
platform QEMU with the BPMP bridge), which QEMU creates only with
GHAF_DCE_GUEST=1 and which relays through the host's dce-host-proxy
(`/dev/dce-host`). Ghaf's files are referenced in the pinned Ghaf tree, never
copied (catalog/data/t234-display.toml says where each fact is from).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ghafgen.catalog import Catalog
from ghafgen.catalog.dcerelay import DceRelayFacts
from ghafgen.derive.resources import vm_account
from ghafgen.profile.spec import VM_NAME
from ghafgen.render.dt import Fragment, Node, Overlay, Prop, strings

if TYPE_CHECKING:  # plan.py holds a DceRelay: the import goes one way
    from ghafgen.render.plan import TargetPlan

# A VM name reaches a udev rule and a unit name: held to the profile's form
# again here, where it is used.
_VM_NAME = re.compile(VM_NAME)


@dataclass(frozen=True)
class HostSide:
    overlay: Overlay
    blacklist: tuple[str, ...]
    modules: tuple[str, ...]  # loaded at boot, in this order
    kernel_params: tuple[str, ...]
    udev_rule: str
    device: str  # the proxy's device node, in the VM's DeviceAllow=
    oot_files: tuple[tuple[str, str], ...]  # (Ghaf path, path in the OOT tree)
    oot_objects: tuple[str, ...]  # obj-m lines added to the OOT dce Makefile
    iso_anchor_dts: str  # Ghaf path of the overlay dce-iso-anchor embeds
    iso_anchor_header: str  # path in the OOT tree of its C array


@dataclass(frozen=True)
class GuestSide:
    environment: tuple[tuple[str, str], ...]  # of the VM's microvm@ unit
    modules: tuple[str, ...]
    oot_patches: tuple[str, ...]  # Ghaf paths, applied to the OOT tree
    oot_files: tuple[tuple[str, str], ...]
    oot_objects: tuple[str, ...]
    qemu_patches: tuple[str, ...]  # the VM's QEMU, relative to the package dir


@dataclass(frozen=True)
class DceRelay:
    vm: str
    user: str  # the VM's QEMU user; "" in the Ghaf layout (group kvm, as Ghaf)
    # Ghaf layout: Ghaf's own dce-probe-host.nix is in every AGX and NX host
    # (orin-agx.nix imports it), so the host module only marks the VM.
    ghaf_host: bool
    host: HostSide
    guest: GuestSide
    oot_overlay: str  # jetpack-nixos's kernel-package overlay (t234-gpu.toml)
    oot_package: str
    host_series: tuple[str, ...]  # kernel series the host proxy builds on


OVERLAY_NAME = "dce-relay-host"


def host_overlay(f: DceRelayFacts) -> Overlay:
    """The proxy node, HDA off and the /chosen framebuffer dummy."""
    fb_parent, _, fb_node = f.framebuffer.path.rpartition("/")
    proxy = Node(
        f.proxy.node,
        f.proxy.label,
        (
            Prop("compatible", strings(f.proxy.compatible)),
            Prop("status", strings("okay")),
        ),
    )
    framebuffer = Node(
        fb_node,
        "",
        (
            Prop("compatible", strings(f.framebuffer.compatible)),
            Prop("status", strings(f.framebuffer.status)),
        ),
    )
    return Overlay(
        name=OVERLAY_NAME,
        description="DCE relay: host proxy, headless host",
        compatible=f.proxy.overlay_compatible,
        fragments=(
            Fragment("", f.proxy.parent, nodes=(proxy,)),
            Fragment("", f.hda.path, (Prop("status", strings(f.hda.status)),)),
            Fragment("", fb_parent, nodes=(framebuffer,)),
        ),
    )


def _udev_rule(device: str, user: str, f: DceRelayFacts) -> str:
    name = device.removeprefix("/dev/")
    if user:
        # := so that no later rule (Ghaf's `GROUP="kvm"`) widens it again.
        return f'KERNEL=="{name}", OWNER:="{user}", GROUP:="{user}", MODE:="{f.proxy.mode}"'
    return f'KERNEL=="{name}", GROUP="{f.proxy.ghaf_group}", MODE="{f.proxy.ghaf_mode}"'


def dce_relay(vm: str, cat: Catalog, layout: str = "default") -> DceRelay:
    """What giving the display to `vm` takes, on the host and for `vm`, by the
    facts of catalog `cat`.

    `layout` is the plan's: in the default layout the proxy device belongs to
    `vm`'s own QEMU user (as its BPMP device does). In Ghaf's, Ghaf's own host
    module already gives it to group kvm and does the rest of the host side,
    so only the VM's GHAF_DCE_GUEST is written.
    """
    if not _VM_NAME.fullmatch(vm):
        raise ValueError(f"unsafe VM name {vm!r}")
    f = cat.dce_relay
    s = f.sources
    user = vm_account(vm) if layout != "ghaf" else ""
    oot = s.oot_dir
    anchor = f"{s.iso_anchor}/dce-iso-anchor"
    host = HostSide(
        overlay=host_overlay(f),
        blacklist=f.headless.blacklist,
        modules=f.headless.modules,
        kernel_params=f.headless.kernel_params,
        udev_rule=_udev_rule(f.proxy.device, user, f),
        device=f.proxy.device,
        oot_files=(
            (s.path(f"{s.host_proxy}/dce-host-proxy.c"), f"{oot}/dce-host-proxy.c"),
            (s.path(f"{s.host_proxy}/dce-host-proxy.h"), f"{oot}/dce-host-proxy.h"),
            (s.path(f"{anchor}.c"), f"{oot}/dce-iso-anchor.c"),
        ),
        oot_objects=("dce-host-proxy.o", "dce-iso-anchor.o"),
        iso_anchor_dts=s.path(f"{anchor}.dts"),
        iso_anchor_header=f"{oot}/dce-iso-anchor-dtbo.h",
    )
    guest = GuestSide(
        environment=((f.guest.env, f.guest.env_value),),
        modules=f.guest.modules,
        oot_patches=tuple(s.path(p) for p in s.oot_patches),
        oot_files=(
            (
                s.path(f"{s.guest_proxy}/dce-guest-proxy.c"),
                f"{oot}/dce-guest-proxy.c",
            ),
        ),
        oot_objects=("dce-guest-proxy.o",),
        # Ghaf's bridge patch follows its BPMP one; both are in the platform
        # QEMU's bridge set already, so a VM with the BPMP bridge has it.
        qemu_patches=tuple(
            p
            for p in cat.qemu_build.bridge_patches
            if p in (f.qemu.after, f.qemu.patch)
        ),
    )
    k = cat.gpu_group.kernel
    return DceRelay(
        vm=vm,
        user=user,
        ghaf_host=layout == "ghaf",
        host=host,
        guest=guest,
        oot_overlay=k.oot_overlay,
        oot_package=k.oot_package,
        host_series=f.proxy.series,
    )


def relay_files(plan: TargetPlan, relay: DceRelay) -> dict[str, bytes]:
    """The relay's files of one target, keyed by path inside the target folder.

    The host module takes the Ghaf tree from bpmp-virt.nix, which every target
    with a BPMP-backed device (the display's VM is one) has.
    """
    from ghafgen.render.files import _render

    # The guest's side (Ghaf's hook patches and dce-guest-proxy inside
    # nvidia-oot) is the display role's guest, in the VM's own module
    # (catalog/data/t234-gpu.toml [guest_dce]).
    files = {"dce-relay.nix": _render("dce-relay.nix.j2", plan=plan, relay=relay)}
    if not relay.ghaf_host:
        files[relay.host.overlay.file] = _render(
            "overlay.dts.j2", plan=plan, ov=relay.host.overlay
        )
    return files
