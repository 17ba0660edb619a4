"""Typed view of the hardware catalog (SoC resources, devices, boards).

The data lives in `data/*.toml`; `catalog.read` parses it into these
immutable records (NamedTuples: cheaper to define than frozen dataclasses,
which matters for start-up; annotations are evaluated, not strings, since
NamedTuple compiles each string one). Each field says once what it is and
where its table has it (`ghafgen.records`: `At`, `NAME`, `GIVEN`, ...); a
field without a note is the key of its own name. Nothing outside `catalog/`
holds hardware facts.
"""

import enum
from typing import TYPE_CHECKING, Annotated, NamedTuple, TypeVar

from ghafgen.records import ENTRIES, GIVEN, NAME, REST, At, Parse
from ghafgen.units import mib, parse_size

if TYPE_CHECKING:
    from ghafgen.catalog.catalog import Catalog
else:
    # Record annotations are evaluated (see above), and `catalog.catalog`
    # imports this module: at run time a board's catalog is typed `object`.
    Catalog = object

FLAVORS = ("l4t", "mainline")
# The `l4t` flavour is the tree of L4T 36.x (JetPack 6), the one Ghaf boots; a
# `mainline` tree is the kernel's own, and its facts are keyed by kernel series
# (t234.toml [mainline_series]): a board is loaded for one series.
L4T_RELEASE = "36.x"
# The device groups whose renderers write their members' nodes
# (PlatformDevice.group): the integrated GPU group (data/t234-gpu.toml) and
# the display through the DCE relay (data/t234-gpu-roles.toml).
GPU_GROUP = "gpu"
DISPLAY_GROUP = "display"


class ResourceKind(enum.Enum):
    """The kinds of BPMP resource; `ResourceKind("clk")` raises ValueError."""

    CLOCK = "clock"
    RESET = "reset"
    POWER_DOMAIN = "power-domain"


# The kinds as the strings profiles, catalog files and output use, in this order.
RESOURCE_KINDS: tuple[str, ...] = tuple(k.value for k in ResourceKind)

_T = TypeVar("_T")


# Each kind's place in by_kind's arguments (rules ask thousands of times per
# host: a dict lookup, not an enum lookup and a new dict each time).
_KIND_INDEX = {k: i for i, k in enumerate(RESOURCE_KINDS)}


def by_kind(kind: str, clocks: _T, resets: _T, power_domains: _T) -> _T:
    """The one of three per-kind values `kind` names; an unknown kind raises ValueError."""
    i = _KIND_INDEX.get(kind)
    if i is None:  # a member, or the enum's own ValueError
        i = _KIND_INDEX[ResourceKind(kind).value]
    return (clocks, resets, power_domains)[i]


class Fact(NamedTuple):
    """Where a fact came from, and whether ghafgen could confirm it."""

    source: str = ""
    note: str = ""
    uncertain: bool = False


# A record's own provenance: the `source`, `note` and `uncertain` keys of the
# table the record is read from.
Provenance = Annotated[Fact, At()]


class Resource(NamedTuple):
    """A BPMP clock, reset or power domain with its raw numeric ID."""

    kind: Annotated[str, GIVEN]  # one of RESOURCE_KINDS: which table it is in
    name: Annotated[str, NAME]
    id: int
    parents: tuple[str, ...] = ()
    protected: bool = False
    host_critical: bool = False
    fact: Provenance = Fact()


class FlavorView(NamedTuple):
    """How one device-tree flavour names a node, and resources that differ there."""

    flavor: Annotated[str, NAME]
    path: str = ""
    label: str = ""
    controller_iommus: bool = False
    # The node says dma-coherent: vfio accepts it without the SMMU patch.
    dma_coherent: bool = False
    clocks: tuple[str, ...] | None = None
    resets: tuple[str, ...] | None = None
    power_domains: tuple[str, ...] | None = None
    fact: Provenance = Fact()


class GuestNode(NamedTuple):
    compatible: tuple[str, ...]
    bpmp: bool
    clock_names: tuple[str, ...] = ()
    guest_clocks: tuple[str, ...] = ()
    reset_names: tuple[str, ...] = ()
    current_speed: int = 0
    qemu_emits_node: bool = False
    kernel_config: tuple[str, ...] = ()
    min_kernel: str = ""
    ghaf_patches: tuple[str, ...] = ()  # keys of sources.toml [ghaf] paths
    device_options: str = ""  # -device vfio-platform options of the pinned QEMU
    tty: str = ""  # the guest driver's port names ("ttyAMA": ttyAMA0, ttyAMA1, ...)
    fact: Provenance = Fact()


class PlatformDevice(NamedTuple):
    key: Annotated[str, NAME]
    description: str
    dt_name: str
    node: str
    compatible: tuple[str, ...]
    reg: tuple[tuple[int, int], ...]
    interrupts: tuple[int, ...]
    clocks: tuple[str, ...]
    resets: tuple[str, ...]
    power_domains: tuple[str, ...]
    instance_of: str
    needs_sid_marking: bool
    # Its `dt.<flavor>` tables, the mainline one keyed by kernel series.
    flavors: Annotated[dict[str, FlavorView], GIVEN]
    guest: GuestNode
    iommu_sid: int | None = None
    iommu_sid_name: str = ""
    host_compatible_override: str = ""
    board_compatibles: tuple[str, ...] = ()  # what board trees replace it with
    host_driver_modules: tuple[str, ...] = ()
    interrupt_count: int | None = None
    # Needs arm-smmu.disable_bypass=0 on the host, and why (empty: does not).
    smmu_bypass_reason: str = ""
    # A device group (data/t234-gpu.toml) whose members pass together and whose
    # host and guest nodes the group's renderer writes ("" for none).
    group: str = ""
    # Resources the node names that the allow list withholds, because a host
    # node uses them too (the device's catalog entry says why).
    withheld: tuple[str, ...] = ()
    fact: Provenance = Fact()

    @property
    def irq_count(self) -> int:
        """How many IRQs vfio-platform hands the guest (known even where numbers are not)."""
        return (
            len(self.interrupts)
            if self.interrupt_count is None
            else self.interrupt_count
        )

    def view(self, flavor: str) -> FlavorView | None:
        return self.flavors.get(flavor)

    def resources(self, flavor: str, kind: str) -> tuple[str, ...]:
        """Resource names of `kind` this device uses on a `flavor` tree."""
        base = by_kind(kind, self.clocks, self.resets, self.power_domains)
        view = self.flavors.get(flavor)
        override = None
        if view is not None:
            override = by_kind(kind, view.clocks, view.resets, view.power_domains)
        return base if override is None else override

    @property
    def qemu_compatibles(self) -> tuple[str, ...]:
        """Every compatible the host node may carry: QEMU matches any of them."""
        if self.host_compatible_override:
            return (self.host_compatible_override,)
        return tuple(dict.fromkeys((*self.compatible, *self.board_compatibles)))

    @property
    def uses_bpmp(self) -> bool:
        return bool(self.clocks or self.resets or self.power_domains)


class Sibling(NamedTuple):
    """Another instance of a passable device, kept only to prove nothing leaks."""

    key: Annotated[str, NAME]
    instance_of: str
    dt_name: str
    clocks: frozenset[int]
    resets: frozenset[int]
    power_domains: frozenset[int]
    fact: Provenance = Fact()


class PcieController(NamedTuple):
    key: Annotated[str, NAME]
    dt_name: str
    node: str
    domain: int
    dt_lanes: int
    clocks: tuple[str, ...]
    sid: int
    sid_name: str
    flavors: Annotated[dict[str, FlavorView], GIVEN]  # as PlatformDevice's
    fact: Provenance = Fact()


class Slot(NamedTuple):
    key: Annotated[str, NAME]
    description: str
    controller: Annotated[PcieController, GIVEN]  # the SoC's, by the key it names
    form: str
    max_lanes: int
    transports: tuple[str, ...] = ("pcie",)
    power_max_w: int | None = None
    power_warn_w: int | None = None
    host_storage: bool = False
    # The carrier tree's num-lanes for the controller, where it overrides the SoC's.
    dt_lanes: int | None = None
    fact: Provenance = Fact()

    @property
    def tree_lanes(self) -> int:
        return self.controller.dt_lanes if self.dt_lanes is None else self.dt_lanes


class Series(NamedTuple):
    """A kernel series whose mainline tree the catalog's `mainline` facts describe."""

    name: Annotated[str, NAME]  # "6.12"
    fact: Provenance = Fact()


class Soc(NamedTuple):
    """Read from the [soc] table; the rest of the file's tables are given (each
    resource table's kind, every entry keyed by kernel series)."""

    name: str
    compatible: str
    smmu_platform: str
    passthrough_sid: int
    passthrough_sid_name: str
    clocks: Annotated[dict[str, Resource], GIVEN]
    resets: Annotated[dict[str, Resource], GIVEN]
    power_domains: Annotated[dict[str, Resource], GIVEN]
    devices: Annotated[dict[str, PlatformDevice], GIVEN]
    siblings: Annotated[dict[str, Sibling], GIVEN]
    pcie: Annotated[dict[str, PcieController], GIVEN]
    # The kernel series its `mainline` views are for, and every series it has.
    series: Annotated[Series, GIVEN] = Series("")
    known_series: Annotated[tuple[str, ...], GIVEN] = ()

    def table(self, kind: str) -> dict[str, Resource]:
        """Resources of `kind`: "clock", "reset" or "power-domain"."""
        return by_kind(kind, self.clocks, self.resets, self.power_domains)

    def resource(self, kind: str, name: str) -> Resource:
        return self.table(kind)[name]


def size_mib(text: object) -> int:
    """A catalog size ("64G", "2G") in MiB; finer than a MiB is refused."""
    size = parse_size(str(text))
    if size is None:
        raise ValueError(f"bad size {text!r} in catalog")
    if size % (1 << 20):
        # Kept in MiB: anything finer would be cut off without a word.
        raise ValueError(f"size {text!r} in catalog is not a whole number of MiB")
    return mib(size)


class Module(NamedTuple):
    """A module SKU (P3701-0005, P3767-0003, ...): what differs between SKUs."""

    sku: Annotated[str, NAME]
    description: str
    cpu_cores: int
    ram_mib: Annotated[int, At("ram"), Parse(size_mib)]
    dt_model: str = ""
    fused_off: tuple[str, ...] = ()  # SoC blocks the SKU does not have
    mainline_dts: str = ""  # when the SKU has its own mainline tree
    jetpack_som: str = ""  # jetpack-nixos som, when it differs from the carrier's
    fact: Provenance = Fact()


class Board(NamedTuple):
    name: str
    description: str
    soc: Soc
    cpu_cores: int
    ram_mib: int
    host_reserve_mib: int
    rootfs: str
    dt_model: str
    dt_compatible: str
    devices: dict[str, PlatformDevice]
    slots: dict[str, Slot]
    # The catalog the board was loaded from (`Catalog.board`): the pipeline
    # reaches every other fact (runtime pins, GPU group, sources) through it.
    catalog: Catalog
    # The board's DTS below a kernel tree's arch/arm64/boot/dts ("" if none).
    dts: str = ""
    fact: Fact = Fact()
    carrier: str = ""  # "p3737-0000"
    module: Module | None = None
    modules: tuple[str, ...] = ()  # every SKU the carrier takes
    mainline_dts: str = ""  # the mainline board tree (data/soc/<name>.toml)
    # jetpack-nixos's hardware.nvidia-jetpack.som / .carrierBoard for this board,
    # which an L4T-flavoured host configuration sets.
    jetpack_som: str = "generic"
    jetpack_carrier_board: str = "generic"

    @property
    def series(self) -> str:
        """The kernel series whose mainline tree the board's `mainline` views describe."""
        return self.soc.series.name

    def tree(self, flavor: str) -> str:
        """The tree a flavour names on this board: "L4T 36.x", "mainline 6.6"."""
        return f"L4T {L4T_RELEASE}" if flavor == "l4t" else f"mainline {self.series}"

    def passable(self) -> list[str]:
        """Every passthrough key this board offers: platform devices, then slots."""
        return [*self.devices, *self.slots]


class QemuVirt(NamedTuple):
    """The pinned QEMU's `virt` machine: platform bus, PCIe windows, BPMP bridge
    (runtime.toml [qemu.platform] and its virt, bridge and fdt_bindings tables)."""

    version: str
    platform_bus_path: Annotated[str, At("virt", "platform_bus_path")]
    platform_bus_base: Annotated[int, At("virt", "platform_bus_base")]
    platform_bus_size: Annotated[int, At("virt", "platform_bus_size")]
    platform_bus_first_spi: Annotated[int, At("virt", "platform_bus_first_spi")]
    platform_bus_spis: Annotated[int, At("virt", "platform_bus_spis")]
    pcie_mmio_size: Annotated[int, At("virt", "pcie_mmio_size")]
    high_pcie_mmio_size: Annotated[int, At("virt", "high_pcie_mmio_size")]
    bpmp_bridge_base: Annotated[int, At("bridge", "base")]
    bpmp_bridge_old_base: Annotated[int, At("bridge", "old_base")]
    bpmp_node: Annotated[str, At("bridge", "node")]
    bpmp_compatible: Annotated[tuple[str, ...], At("bridge", "compatible")]
    # vfio-platform compatibles QEMU writes a node for
    emits_node: Annotated[tuple[str, ...], At("fdt_bindings", "emits_node")]
    fact: Annotated[Fact, At("virt")] = Fact()
    bridge_fact: Annotated[Fact, At("bridge")] = Fact()


class QemuBuild(NamedTuple):
    """The QEMU ghafgen builds for VMs given platform devices (vfio-platform):
    runtime.toml [qemu.platform]."""

    version: str
    url: str
    hash: str
    vfio_platform_removed: str
    package_dir: str  # in the pinned Ghaf tree
    bridge_patches: tuple[str, ...]
    irqfd_patches: tuple[str, ...]
    dropped_base_patches: tuple[str, ...]
    fact: Provenance = Fact()


class KernelPins(NamedTuple):
    """Host and guest kernel series, and the Ghaf patches keyed by series
    (runtime.toml [kernel])."""

    host_series: Annotated[str, At("host", "series")]
    host_package: Annotated[str, At("host", "package")]
    # host series the BPMP host proxy builds on
    host_bpmp_series: Annotated[tuple[str, ...], At("host", "bpmp_series")]
    guest_series: Annotated[str, At("guest", "series")]
    guest_package: Annotated[str, At("guest", "package")]
    bpmp_hooks: Annotated[dict[str, str], ENTRIES]  # series -> path in the Ghaf tree
    smmu_patch: Annotated[str, At("smmu_coherency", "patch")]
    host_fact: Annotated[Fact, At("host")] = Fact()
    guest_fact: Annotated[Fact, At("guest")] = Fact()
    hooks_fact: Annotated[Fact, At("bpmp_hooks")] = Fact()
    smmu_fact: Annotated[Fact, At("smmu_coherency")] = Fact()


class Drivers(NamedTuple):
    """Driver names as the kernel registers them (runtime.toml [drivers])."""

    vfio_platform: str
    vfio_pci: str
    bpmp_host_proxy: str  # Ghaf's BPMP host proxy
    bpmp_guest: str  # the guest's BPMP driver
    fact: Provenance = Fact()


class MicrovmDefaults(NamedTuple):
    """What microvm.nix's QEMU runner gives a VM by default (runtime.toml [microvm])."""

    machine: str  # QEMU -M on aarch64
    console: str  # the guest's console= with qemu.serialConsole on
    fact: Provenance = Fact()


class PinnedSource(NamedTuple):
    """A GitHub tree fetched by generated modules, pinned by revision and NAR hash
    (a table of sources.toml)."""

    name: Annotated[str, NAME]
    url: str
    rev: str
    hash: str
    paths: Annotated[dict[str, str], REST]  # every other key: a path in the tree
    fact: Provenance = Fact()

    @property
    def github(self) -> tuple[str, str] | None:
        """(owner, repo) for a GitHub URL, fetched with fetchFromGitHub; else None."""
        prefix = "https://github.com/"
        if not self.url.startswith(prefix):
            return None
        owner, _, repo = self.url[len(prefix) :].removesuffix(".git").partition("/")
        return (owner, repo) if owner and repo and "/" not in repo else None
