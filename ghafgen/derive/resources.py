"""Names of what VMs share on a host: shared-memory files, volume images, the
binding units, and the attribute Ghaf's layout gives each VM.

Two profiles can run on one host, so every name carries the target, and the
parts are joined with '.', which no target, VM, channel or volume name may
contain: `a` + `b-c` and `a-b` + `c` can no longer meet in one file.
Generation (render.plan) and the host rules (GG706, GG107, GG108) both use these.
"""

from __future__ import annotations

SEP = "."


def channel_shm(target: str, channel: str) -> str:
    """The file every member of a channel maps (QEMU memory-backend-file)."""
    return f"/dev/shm/ghafgen{SEP}{target}{SEP}{channel}"


def volume_image(folder: str, target: str, vm: str, volume: str) -> str:
    """A volume's image; `folder` is the host disk's path, or "" for the VM's state dir."""
    prefix = f"{folder.rstrip('/')}/" if folder else ""
    return f"{prefix}{target}{SEP}{vm}{SEP}{volume}.img"


def ghaf_vm_name(vm: str) -> str:
    """The VM's attribute in Ghaf (`ghaf.hardware.definition.<name>`): Ghaf names
    system VMs without the dash, net-vm -> netvm."""
    return vm.replace("-", "")


def binding_unit(passthrough: str) -> str:
    """The host unit that binds a passthrough's device to VFIO before its VM."""
    return f"ghafgen-vfio-{passthrough}"
