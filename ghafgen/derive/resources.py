"""Names of what VMs share on a host: shared-memory files and volume images.

Two profiles can run on one host, so every name carries the target, and the
parts are joined with '.', which no target, VM, channel or volume name may
contain: `a` + `b-c` and `a-b` + `c` can no longer meet in one file.
Generation (render.plan) and the cross-profile rule (GG706) both use these.
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
