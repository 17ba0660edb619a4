"""Names of what VMs share on a host: shared-memory files, volume images, the
binding units, the attribute Ghaf's layout gives each VM, and the accounts each
VM's QEMU runs as.

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


def volume_dir(folder: str, target: str, vm: str) -> str:
    """One VM's folder on a host disk: owned by that VM's QEMU user, so no other
    VM's QEMU can open, replace or create its images."""
    return f"{folder.rstrip('/')}/{target}{SEP}{vm}"


def volume_image(folder: str, target: str, vm: str, volume: str) -> str:
    """A volume's image: in the VM's own folder on the host disk at `folder`, or
    with `folder` "" in the VM's state dir."""
    if folder:
        return f"{volume_dir(folder, target, vm)}/{volume}.img"
    return f"{target}{SEP}{vm}{SEP}{volume}.img"


def ghaf_vm_name(vm: str) -> str:
    """The VM's attribute in Ghaf (`ghaf.hardware.definition.<name>`): Ghaf names
    system VMs without the dash, net-vm -> netvm."""
    return vm.replace("-", "")


def binding_unit(passthrough: str) -> str:
    """The host unit that binds a passthrough's device to VFIO before its VM."""
    return f"ghafgen-vfio-{passthrough}"


# shadow's useradd and groupadd take names of at most 32 characters.
ACCOUNT_MAX = 32


def _account(prefix: str, name: str, key: str) -> str:
    """`prefix-name`, or when that is too long or `key` is not `name` alone, a
    shortened name and a digest of `key` (still unique, still 32 at most)."""
    full = f"{prefix}-{name}"
    if key == name and len(full) <= ACCOUNT_MAX:
        return full
    import hashlib  # OpenSSL loads on import: only for a name that needs it

    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    room = ACCOUNT_MAX - len(prefix) - len(digest) - 2
    return f"{prefix}-{name[:room]}-{digest}"


def vm_account(vm: str) -> str:
    """The user and group `vm`'s QEMU runs as (microvm.nix runs every VM's as
    microvm:kvm)."""
    return _account("microvm", vm, vm)


def channel_group(target: str, channel: str) -> str:
    """The group whose members (the channel's VMs' users) may map its file."""
    return _account("microvm-shm", channel, f"{target}{SEP}{channel}")
