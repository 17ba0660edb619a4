"""The GPU and display roles of a host: the display reaches a VM only beside the
GPU group, the group never runs without a display owner, GPU and media engines
come with host1x, and these roles keep the closed BPMP list (Ghaf's
ownership-assertions.nix, read at the pin in sources.toml)."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import DISPLAY_GROUP, GPU_GROUP, Board
from ghafgen.findings import Finding
from ghafgen.profile.model import Passthrough, Profile
from ghafgen.rules.registry import ERROR, finding, rule

# Where each verdict comes from, for the hints.
OWN = "Ghaf ownership-assertions.nix"


def _grouped(p: Profile, b: Board, group: str) -> list[Passthrough]:
    """The profile's enabled entries for devices of catalog group `group`."""
    return [
        pt
        for pt in p.enabled
        if pt.device in b.devices and b.devices[pt.device].group == group
    ]


def _display(p: Profile, b: Board) -> list[Passthrough]:
    return _grouped(p, b, DISPLAY_GROUP)


def _gpu(p: Profile, b: Board) -> list[Passthrough]:
    return _grouped(p, b, GPU_GROUP)


def _verdict(b: Board, key: str) -> str:
    """The catalog's reason a topology is refused, with its source."""
    t = b.catalog.gpu_roles.topologies[key]
    return f"{t.reason} ({t.fact.source})"


@rule(
    "GG808",
    "display-to-no-vm",
    ERROR,
    fix='Set `vm = "<name>"` on the display: the DCE relay, its carve-outs and the '
    "guest tree come with the VM ghafgen generates.",
)
def display_to_no_vm(p: Profile, b: Board) -> Iterator[Finding]:
    """The display goes to a VM ghafgen generates, never to a hand-started guest."""
    for pt in _display(p, b):
        if pt.vm is None:
            yield finding(
                "GG808",
                pt.at(),
                f"'{pt.device}' goes to no VM",
                "the display role needs the GPU variant of QEMU, its DCE bridge "
                "(GHAF_DCE_GUEST=1 in exactly one VM) and a guest tree: set "
                'vm = "disp-vm" (split, beside gpu-vm) or the GPU group\'s VM '
                "(accelerated)",
            )


@rule(
    "GG809",
    "gpu-without-display-owner",
    ERROR,
    scope="host",
    fix="Pass the display too: to another VM (split: gpu-vm + disp-vm) or to the "
    "GPU's VM (accelerated gui-vm).",
)
def gpu_without_display_owner(p: Profile, b: Board) -> Iterator[Finding]:
    """A host that passes the GPU group gives the display to a VM too (no compute-only gpu-vm)."""
    group = _gpu(p, b)
    if not group or _display(p, b):
        return
    first = group[0]
    vm = first.vm or "gpu-vm"
    yield finding(
        "GG809",
        first.at(),
        f"the GPU group goes to {first.vm or 'no VM'} and no VM of this host owns "
        "the display (compute-only: refused)",
        f"{OWN}: {_verdict(b, 'compute-only')}; add [hardware.nvidia.passthroughs.display] "
        f'vm = "disp-vm" (split) or vm = "{vm}" (accelerated)',
    )


@rule(
    "GG810",
    "display-without-gpu",
    ERROR,
    scope="host",
    fix="Pass the GPU group on the same host: to another VM (split) or to the "
    "display's VM (accelerated).",
)
def display_without_gpu(p: Profile, b: Board) -> Iterator[Finding]:
    """A host that gives the display to a VM passes the GPU group too, on the same host."""
    shown = _display(p, b)
    if not shown or _gpu(p, b):
        return
    first = shown[0]
    yield finding(
        "GG810",
        first.at(),
        f"'{first.device}' goes to {first.vm or 'no VM'} and no VM of this host "
        "gets the GPU group (display-only: refused)",
        f"{OWN}: {_verdict(b, 'display-only')}; pass gpu, host1x, vic, nvdec and nvjpg "
        'to "gpu-vm" on this host',
    )


@rule(
    "GG811",
    "engines-without-host1x",
    ERROR,
    fix="Give host1x to the VM that gets ga10b or the media engines.",
)
def engines_without_host1x(p: Profile, b: Board) -> Iterator[Finding]:
    """A VM given ga10b or a media engine gets host1x too."""
    entries = _gpu(p, b)
    if not entries:
        return
    caps = b.catalog.gpu_roles.capability_devices
    needs = set(caps["gpu"]) | set(caps["media"])
    by_vm: dict[str | None, list[Passthrough]] = {}
    for pt in entries:
        by_vm.setdefault(pt.vm, []).append(pt)
    for vm, mine in by_vm.items():
        keys = {pt.device for pt in mine}
        users = [pt for pt in mine if pt.device in needs]
        if users and not keys & (set(caps["host1x"]) - needs):
            first = users[0]
            yield finding(
                "GG811",
                first.at(),
                f"'{first.device}' goes to {vm or 'no VM'} without host1x",
                "the GPU's and the media engines' jobs run through the physical "
                f"host1x (CUDA needs it; {OWN}:39-46, 'a definition owns GA10B "
                "without physical host1x'); add [hardware.nvidia.passthroughs.host1x] "
                f'vm = "{vm or "gpu-vm"}"',
            )


@rule(
    "GG812",
    "gpu-roles-allow-all",
    ERROR,
    fix="Remove `bpmp_allow_all`: the GPU and display roles run on the closed list.",
)
def gpu_roles_allow_all(p: Profile, b: Board) -> Iterator[Finding]:
    """The GPU and display roles keep the closed BPMP allow list (no allow-all)."""
    if not p.virtualization.bpmp_allow_all:
        return
    entries = _gpu(p, b) + _display(p, b)
    if entries:
        yield finding(
            "GG812",
            p.virtualization.at("bpmp_allow_all"),
            f"'{entries[0].device}' is passed with bpmp_allow_all: the guest could "
            "gate every clock, reset and power domain of the host",
            "Ghaf's gpu-vm and gui-vm assert bpmpAllowAllDomains stays false "
            "(passthrough/gpu-vm/default.nix:66-71, gui-vm/default.nix:47-52); "
            "the closed list is the BPMP security boundary",
        )
