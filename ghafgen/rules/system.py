"""What only holds between the files of one physical host (`target.host`).

Rules that keep VMs apart (one owner per device, IOMMU groups, cores, RAM,
vsock CIDs, BPMP) are host-scope rules in their own modules, run on all of a
host's profiles at once (rules.hostview); these check the files themselves:
distinct targets, VM names, one board, and the names of what they share.
"""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import Board
from ghafgen.derive.resources import channel_shm, volume_image
from ghafgen.findings import Finding, Location
from ghafgen.profile.model import Profile
from ghafgen.rules.registry import ERROR, finding, rule

Group = list[tuple[Profile, Board]]


@rule(
    "GG701",
    "target-name-twice",
    ERROR,
    scope="system",
    fix="Give every profile its own target.name.",
)
def target_name_twice(group: Group) -> Iterator[Finding]:
    """Target names are unique: they name output folders and flake attributes."""
    seen: dict[str, Profile] = {}
    for p, _b in group:
        first = seen.setdefault(p.target.name, p)
        if first is not p:
            yield finding(
                "GG701",
                p.target.at("name"),
                f"target '{p.target.name}' is also defined in {first.target.at('name')}",
                "rename one of them",
            )


@rule(
    "GG703",
    "vm-defined-twice",
    ERROR,
    scope="system",
    fix="Rename the VM in one profile; microvm@<name> units would clash.",
)
def vm_defined_twice(group: Group) -> Iterator[Finding]:
    """VM names are unique on a host (they become microvm@<name>.service)."""
    seen: dict[str, Profile] = {}
    for p, _b in group:
        for vm in p.vms.values():
            first = seen.setdefault(vm.name, p)
            if first is not p:
                yield finding(
                    "GG703",
                    vm.at(),
                    f"VM '{vm.name}' is also defined in {first.vms[vm.name].at()}; "
                    f"both profiles run on host '{p.host}'",
                    "rename one VM",
                )


@rule(
    "GG704",
    "host-board-mismatch",
    ERROR,
    scope="system",
    fix="Profiles that share target.host must name the same board.",
)
def host_board_mismatch(group: Group) -> Iterator[Finding]:
    """Profiles on one host describe the same board."""
    p0, b0 = group[0]
    for p, b in group[1:]:
        if b.name != b0.name:
            yield finding(
                "GG704",
                p.target.at("board"),
                f"host '{p.host}' is '{b0.name}' in {p0.file} but '{b.name}' here",
                "fix target.host or target.board",
            )


# microvm.nix keeps a VM's relative volume images in its state directory.
_STATE_DIR = "/var/lib/microvms"


def _host_resources(p: Profile) -> Iterator[tuple[str, str, Location]]:
    """(kind, host-wide name, where the profile sets it) of what VMs hold on the host."""
    for ch in p.channels.values():
        yield "shared-memory file", channel_shm(p.target.name, ch.name), ch.at()
    for vm in p.vms.values():
        for vol in vm.volumes:
            disk = p.disks.get(vol.disk)
            folder = disk.host_path if disk is not None else ""
            image = volume_image(folder, p.target.name, vm.name, vol.name)
            if not image.startswith("/"):
                image = f"{_STATE_DIR}/{vm.name}/{image}"
            yield "volume image", image, vol.at()


@rule(
    "GG706",
    "host-resource-shared",
    ERROR,
    scope="system",
    fix="Rename the clashing target, VM, channel or volume.",
)
def host_resource_shared(group: Group) -> Iterator[Finding]:
    """Profiles on one host share no shared-memory file or volume image."""
    seen: dict[tuple[str, str], tuple[Profile, Location]] = {}
    for p, _b in group:
        for kind, name, src in _host_resources(p):
            first = seen.setdefault((kind, name), (p, src))
            if first[0] is not p:
                yield finding(
                    "GG706",
                    src,
                    f"{kind} {name} is also used by {first[1]}; both profiles run "
                    f"on host '{p.host}'",
                    "VMs of different profiles would read and write one resource",
                )
