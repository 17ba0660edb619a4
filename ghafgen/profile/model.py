"""Typed profile: frozen dataclasses built once from checked TOML.

Every object knows where it was written (`src`) and where each of its keys
was (`at(key)`), so rules can point at `profile.toml:LINE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ghafgen.findings import Location
from ghafgen.profile.lockfile import Pin
from ghafgen.profile.toml_lines import KeyPath, line_of


@dataclass(frozen=True)
class Locator:
    """Turns key paths into `Location`s for one profile file."""

    file: str
    lines: dict[KeyPath, int] = field(hash=False, compare=False)

    def at(self, *path: str | int) -> Location:
        return Location(self.file, line_of(self.lines, tuple(path)))


@dataclass(frozen=True)
class _Located:
    loc: Locator = field(repr=False, compare=False, hash=False)
    path: tuple[str, ...] = field(repr=False, compare=False, hash=False)

    @property
    def src(self) -> Location:
        return self.loc.at(*self.path)

    def at(self, *key: str | int) -> Location:
        return self.loc.at(*self.path, *key)


# Profile values carry no defaults here: the parser fills in the format's own
# (profile.spec), so a default is written once.
@dataclass(frozen=True)
class Target(_Located):
    name: str
    board: str
    dt_flavor: str
    kernel_version: str
    host: str
    rootfs: str
    description: str
    host_cores: tuple[int, ...]
    isolated_cores: tuple[int, ...]

    @property
    def kernel(self) -> tuple[int, int]:
        major, minor = self.kernel_version.split(".")[:2]
        return int(major), int(minor)


@dataclass(frozen=True)
class Virtualization(_Located):
    enable: bool
    bpmp_allow_all: bool
    bpmp_per_vm: bool
    extra_allowed_clocks: tuple[int, ...]
    extra_allowed_resets: tuple[int, ...]
    extra_allowed_power_domains: tuple[int, ...]


class PciAddress(NamedTuple):
    """A PCI function's address in a profile, `domain:bus:device.function`."""

    bdf: str

    @property
    def domain(self) -> int:
        return int(self.bdf[:4], 16)

    @property
    def device(self) -> str:
        """`domain:bus:device`, the part all functions of one card share."""
        return self.bdf.rsplit(".", 1)[0]

    @property
    def function(self) -> int:
        return int(self.bdf[-1])


@dataclass(frozen=True)
class Passthrough(_Located):
    name: str
    device: str
    enable: bool
    vm: str | None
    functions: tuple[PciAddress, ...]
    kind: str
    audio_function: bool
    display: bool
    ids: tuple[str, ...]
    binding: str
    iommu_group: tuple[PciAddress, ...]
    max_power_w: int | None
    lanes: int | None
    bar_size: int | None


@dataclass(frozen=True)
class Volume(_Located):
    name: str = ""
    size: int = 0
    mount: str = ""
    disk: str = ""


@dataclass(frozen=True)
class Disk(_Located):
    name: str
    size: int
    root: bool
    host_path: str  # profile key `path`


@dataclass(frozen=True)
class Channel(_Located):
    name: str = ""
    vms: tuple[str, ...] = ()
    size: int = 0


@dataclass(frozen=True)
class Vm(_Located):
    name: str
    vcpus: int
    memory: int
    kernel_params: tuple[str, ...]
    kernel: str  # guest kernel series; "" = what its devices need
    pinning: tuple[int, ...]
    cpu_weight: int | None
    rt_priority: int | None
    hugepages: bool
    vsock_cid: int | None
    shared: tuple[str, ...]
    volumes: tuple[Volume, ...]


@dataclass(frozen=True)
class SourceRef(_Located):
    name: str = ""
    url: str = ""
    rev: str | None = None


@dataclass(frozen=True)
class Profile:
    file: str
    text: str = field(repr=False)  # as read; `sha256` names it in the manifest
    target: Target
    virtualization: Virtualization
    passthroughs: tuple[Passthrough, ...]
    vms: dict[str, Vm] = field(hash=False)
    sources: dict[str, SourceRef] = field(default_factory=dict, hash=False)
    pins: dict[str, Pin] = field(default_factory=dict, hash=False)
    disks: dict[str, Disk] = field(default_factory=dict, hash=False)
    channels: dict[str, Channel] = field(default_factory=dict, hash=False)

    @property
    def sha256(self) -> str:
        # hashlib loads OpenSSL (~5 ms); only generation asks for the digest.
        import hashlib

        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def enabled(self) -> tuple[Passthrough, ...]:
        return tuple(p for p in self.passthroughs if p.enable)

    @property
    def host(self) -> str:
        return self.target.host or self.target.name
