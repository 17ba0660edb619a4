"""Typed profile: immutable records built once from checked TOML.

Every record knows where it was written: `record.at()` is the `Location` of
its table and `record.at(key)` that of one of its keys, so rules can point at
`profile.toml:LINE`. The records are NamedTuples, as the catalog's are: a
frozen dataclass costs about 1 ms to define, and `ghafgen validate` defines
them on every run. The module evaluates its annotations (no `from __future__
import annotations`) because NamedTuple compiles each string annotation.
Records compare as tuples; their `at` compares by identity, so the records
of two parses of one file are not equal.
"""

from typing import NamedTuple

from ghafgen.findings import Location
from ghafgen.profile.lockfile import Pin
from ghafgen.profile.toml_lines import KeyPath, line_of


class Locator:
    """Where one profile file wrote the keys below `path`: calling it with a
    key path gives that key's `Location`, and with none the table's own."""

    __slots__ = ("file", "lines", "path")

    def __init__(
        self, file: str, lines: dict[KeyPath, int], path: tuple[str, ...] = ()
    ) -> None:
        self.file = file
        self.lines = lines
        self.path = path

    def __call__(self, *key: str | int) -> Location:
        return Location(self.file, line_of(self.lines, (*self.path, *key)))

    def sets(self, *path: str | int) -> bool:
        """Whether this locator's file writes the key at `path` (from the root)."""
        return tuple(path) in self.lines

    def under(self, *path: str) -> "Locator":
        """The locator of the table at `path` below this one."""
        return Locator(self.file, self.lines, (*self.path, *path))

    def __repr__(self) -> str:
        return f"Locator({self.file!r}, {self.path!r})"


# Profile values carry no defaults here: the parser fills in the format's own
# (profile.spec), so a default is written once. `at` comes first in each.
class Target(NamedTuple):
    at: Locator
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

    @property
    def series(self) -> str:
        """The host kernel's series, "6.6": the mainline tree the catalog keys facts by."""
        return ".".join(self.kernel_version.split(".")[:2])


class Virtualization(NamedTuple):
    at: Locator
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


class Passthrough(NamedTuple):
    at: Locator
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


class Volume(NamedTuple):
    at: Locator
    name: str
    size: int
    mount: str
    disk: str


class Disk(NamedTuple):
    at: Locator
    name: str
    size: int
    root: bool
    host_path: str  # profile key `path`


class Channel(NamedTuple):
    at: Locator
    name: str
    vms: tuple[str, ...]
    size: int


class Vm(NamedTuple):
    at: Locator
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


class SourceRef(NamedTuple):
    at: Locator
    name: str
    url: str
    rev: str | None


class Profile(NamedTuple):
    file: str
    text: str  # as read; `sha256` names it in the manifest
    target: Target
    virtualization: Virtualization
    passthroughs: tuple[Passthrough, ...]
    vms: dict[str, Vm]
    sources: dict[str, SourceRef]
    pins: dict[str, Pin]  # from the lock file beside the profile
    disks: dict[str, Disk]
    channels: dict[str, Channel]

    def __repr__(self) -> str:
        return f"Profile({self.file!r})"

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
