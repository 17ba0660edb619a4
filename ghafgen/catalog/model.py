"""Typed view of the hardware catalog (SoC resources, devices, boards).

The data lives in `data/*.toml`; `catalog.load` parses it once into these
immutable records (NamedTuples: cheaper to define than frozen dataclasses,
which matters for start-up; annotations are evaluated, not strings, since
NamedTuple compiles each string one). Nothing outside `catalog/` holds
hardware facts.
"""

import enum
from typing import NamedTuple, TypeVar

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


def by_kind(kind: str, clocks: _T, resets: _T, power_domains: _T) -> _T:
    """The one of three per-kind values `kind` names; an unknown kind raises ValueError."""
    return {
        ResourceKind.CLOCK: clocks,
        ResourceKind.RESET: resets,
        ResourceKind.POWER_DOMAIN: power_domains,
    }[ResourceKind(kind)]


class Fact(NamedTuple):
    """Where a fact came from, and whether ghafgen could confirm it."""

    source: str = ""
    note: str = ""
    uncertain: bool = False


class Resource(NamedTuple):
    """A BPMP clock, reset or power domain with its raw numeric ID."""

    kind: str  # one of RESOURCE_KINDS
    name: str
    id: int
    parents: tuple[str, ...] = ()
    protected: bool = False
    host_critical: bool = False
    fact: Fact = Fact()


class FlavorView(NamedTuple):
    """How one device-tree flavour names a node, and resources that differ there."""

    flavor: str
    path: str = ""
    label: str = ""
    controller_iommus: bool = False
    # The node says dma-coherent: vfio accepts it without the SMMU patch.
    dma_coherent: bool = False
    clocks: tuple[str, ...] | None = None
    resets: tuple[str, ...] | None = None
    power_domains: tuple[str, ...] | None = None
    fact: Fact = Fact()


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
    fact: Fact = Fact()


class PlatformDevice(NamedTuple):
    key: str
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
    flavors: dict[str, FlavorView]
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
    fact: Fact = Fact()

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

    key: str
    instance_of: str
    dt_name: str
    clocks: frozenset[int]
    resets: frozenset[int]
    power_domains: frozenset[int]
    fact: Fact = Fact()


class PcieController(NamedTuple):
    key: str
    dt_name: str
    node: str
    domain: int
    dt_lanes: int
    clocks: tuple[str, ...]
    sid: int
    sid_name: str
    flavors: dict[str, FlavorView]
    fact: Fact = Fact()


class Slot(NamedTuple):
    key: str
    description: str
    controller: PcieController
    form: str
    max_lanes: int
    transports: tuple[str, ...] = ("pcie",)
    power_max_w: int | None = None
    power_warn_w: int | None = None
    host_storage: bool = False
    # The carrier tree's num-lanes for the controller, where it overrides the SoC's.
    dt_lanes: int | None = None
    fact: Fact = Fact()

    @property
    def tree_lanes(self) -> int:
        return self.controller.dt_lanes if self.dt_lanes is None else self.dt_lanes


class Series(NamedTuple):
    """A kernel series whose mainline tree the catalog's `mainline` facts describe."""

    name: str  # "6.12"
    fact: Fact = Fact()


class Soc(NamedTuple):
    name: str
    compatible: str
    smmu_platform: str
    passthrough_sid: int
    passthrough_sid_name: str
    clocks: dict[str, Resource]
    resets: dict[str, Resource]
    power_domains: dict[str, Resource]
    devices: dict[str, PlatformDevice]
    siblings: dict[str, Sibling]
    pcie: dict[str, PcieController]
    # The kernel series its `mainline` views are for, and every series it has.
    series: Series = Series("")
    known_series: tuple[str, ...] = ()

    def table(self, kind: str) -> dict[str, Resource]:
        """Resources of `kind`: "clock", "reset" or "power-domain"."""
        return by_kind(kind, self.clocks, self.resets, self.power_domains)

    def resource(self, kind: str, name: str) -> Resource:
        return self.table(kind)[name]


class Module(NamedTuple):
    """A module SKU (P3701-0005, P3767-0003, ...): what differs between SKUs."""

    sku: str
    description: str
    cpu_cores: int
    ram_mib: int
    dt_model: str = ""
    fused_off: tuple[str, ...] = ()  # SoC blocks the SKU does not have
    mainline_dts: str = ""  # when the SKU has its own mainline tree
    jetpack_som: str = ""  # jetpack-nixos som, when it differs from the carrier's
    fact: Fact = Fact()


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
    """The pinned QEMU's `virt` machine: platform bus, PCIe windows, BPMP bridge."""

    version: str
    platform_bus_path: str
    platform_bus_base: int
    platform_bus_size: int
    platform_bus_first_spi: int
    platform_bus_spis: int
    pcie_mmio_size: int
    high_pcie_mmio_size: int
    bpmp_bridge_base: int
    bpmp_bridge_old_base: int
    bpmp_node: str
    bpmp_compatible: tuple[str, ...]
    emits_node: tuple[str, ...]  # vfio-platform compatibles QEMU writes a node for
    fact: Fact = Fact()
    bridge_fact: Fact = Fact()


class QemuBuild(NamedTuple):
    """The QEMU ghafgen builds for VMs given platform devices (vfio-platform)."""

    version: str
    url: str
    hash: str
    vfio_platform_removed: str
    package_dir: str  # in the pinned Ghaf tree
    bridge_patches: tuple[str, ...]
    irqfd_patches: tuple[str, ...]
    dropped_base_patches: tuple[str, ...]
    fact: Fact = Fact()


class KernelPins(NamedTuple):
    """Host and guest kernel series, and the Ghaf patches keyed by series."""

    host_series: str
    host_package: str
    host_bpmp_series: tuple[str, ...]  # host series the BPMP host proxy builds on
    guest_series: str
    guest_package: str
    bpmp_hooks: dict[str, str]  # series -> path in the Ghaf tree
    smmu_patch: str
    host_fact: Fact = Fact()
    guest_fact: Fact = Fact()
    hooks_fact: Fact = Fact()
    smmu_fact: Fact = Fact()


class PinnedSource(NamedTuple):
    """A GitHub tree fetched by generated modules, pinned by revision and NAR hash."""

    name: str
    url: str
    rev: str
    hash: str
    paths: dict[str, str]
    fact: Fact = Fact()

    @property
    def github(self) -> tuple[str, str] | None:
        """(owner, repo) for a GitHub URL, fetched with fetchFromGitHub; else None."""
        prefix = "https://github.com/"
        if not self.url.startswith(prefix):
            return None
        owner, _, repo = self.url[len(prefix) :].removesuffix(".git").partition("/")
        return (owner, repo) if owner and repo and "/" not in repo else None
