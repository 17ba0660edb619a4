"""The integrated GPU group's catalog (`data/t234-gpu.toml`) as typed records.

Entry point: `gpu_group(doc, virt)`, which `Catalog` calls. The group's
members are ordinary platform devices of the SoC catalog (`t234.toml`,
`group = "gpu"`); this adds what passing them together takes: host
re-creation, carve-outs, guest memory, the QEMU variant and the guest kernel.
"""

from typing import Any, NamedTuple

from ghafgen.catalog.model import Fact, QemuVirt
from ghafgen.catalog.read import _fact


class Engine(NamedTuple):
    """How one member's node is re-created on the host and written in the guest."""

    key: str
    host_parent: str
    smmu: str
    disable: tuple[str, ...] = ()
    reg_names: tuple[str, ...] = ()
    interrupt_names: tuple[str, ...] = ()
    clock_names: tuple[str, ...] = ()
    assigned_clock_rate: int = 0
    ranges: tuple[tuple[int, int], ...] = ()
    guest_parent: str = ""  # "" = the platform bus, else a member's key
    guest_status: str = "okay"
    nvidia_bpmp: bool = False
    host1x_class: int | None = None
    fact: Fact = Fact()


class GuestExtra(NamedTuple):
    """A guest node that belongs to no passed device (the interconnect provider)."""

    key: str
    node: str
    label: str
    compatible: tuple[str, ...]
    clocks: tuple[str, ...]
    clock_names: tuple[str, ...]
    fact: Fact = Fact()


class Carveout(NamedTuple):
    """Host memory handed to the guest 1:1 through vfio-platform's mmio-base."""

    key: str
    base: int
    size: int
    wrapper: str
    smmu: str
    sid: int
    purpose: str
    guest_memory: bool = False
    fact: Fact = Fact()

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def dt_name(self) -> str:
        """The wrapper's platform-device name, as vfio-platform's host= takes it."""
        return f"{self.base:x}.{self.wrapper}"


class Reserved(NamedTuple):
    """A guest reserved-memory region the patched drivers expect."""

    key: str
    node: str
    label: str
    base: int
    size: int
    compatible: str
    no_map: bool = False
    reusable: bool = False
    cma_default: bool = False
    carveout: bool = False  # listed in tegra-carveouts' memory-region
    fact: Fact = Fact()

    @property
    def end(self) -> int:
        return self.base + self.size


class GpuQemu(NamedTuple):
    extra_patches: tuple[str, ...]
    irqfd: bool
    platform_bus_base: int
    platform_bus_size: int
    ram_base: int
    first_spi: int
    spis: int
    drop_qemu_memory_node: bool
    needs_fdt_binding: bool
    fact: Fact = Fact()
    bus_fact: Fact = Fact()
    dtb_fact: Fact = Fact()

    @property
    def platform_bus_path(self) -> str:
        return f"/platform-bus@{self.platform_bus_base:x}"

    @property
    def memory_node(self) -> str:
        """The RAM node QEMU writes itself (boot.c fdt_add_memory_node)."""
        return f"/memory@{self.ram_base:x}"


class GpuKernel(NamedTuple):
    series: str
    package: str
    oot_overlay: str
    oot_package: str
    oot_version: str  # the L4T release Ghaf's OOT patches are written for
    oot_fact: Fact
    modules: tuple[str, ...]
    firmware: str
    kernel_config: tuple[str, ...]
    oot_patches: tuple[str, ...]  # keys of sources.toml [ghaf]
    patches: tuple[str, ...]  # keys of sources.toml [ghaf]
    fact: Fact = Fact()


class GpuGroup(NamedTuple):
    key: str
    description: str
    members: tuple[str, ...]
    carveouts: tuple[Carveout, ...]
    host_keeps: tuple[str, ...]
    engines: dict[str, Engine]
    extras: tuple[GuestExtra, ...]
    reserved: tuple[Reserved, ...]
    qemu: GpuQemu
    kernel: GpuKernel
    root_compatible: tuple[str, ...]
    fact: Fact = Fact()

    @property
    def guest_memory(self) -> Carveout:
        return next(c for c in self.carveouts if c.guest_memory)


def _engine(key: str, e: dict[str, Any]) -> Engine:
    return Engine(
        key=key,
        host_parent=e["host_parent"],
        smmu=e["smmu"],
        disable=tuple(e.get("disable", ())),
        reg_names=tuple(e.get("reg_names", ())),
        interrupt_names=tuple(e.get("interrupt_names", ())),
        clock_names=tuple(e.get("clock_names", ())),
        assigned_clock_rate=int(e.get("assigned_clock_rate", 0)),
        ranges=tuple((int(a), int(s)) for a, s in e.get("ranges", ())),
        guest_parent=e.get("guest_parent", ""),
        guest_status=e.get("guest_status", "okay"),
        nvidia_bpmp=bool(e.get("nvidia_bpmp", False)),
        host1x_class=e.get("host1x_class"),
        fact=_fact(e),
    )


def gpu_group(doc: dict[str, Any], virt: QemuVirt) -> GpuGroup:
    """The Tegra234 GPU group of `t234-gpu.toml`'s parsed text, on `virt`'s bus lines."""
    d = doc
    g, q, k = d["group"], d["qemu"], d["kernel"]
    carve = d["carveouts"]
    return GpuGroup(
        key=g["key"],
        description=g["description"],
        members=tuple(g["members"]),
        carveouts=tuple(
            Carveout(
                key=c,
                base=int(carve[c]["base"]),
                size=int(carve[c]["size"]),
                wrapper=carve[c]["wrapper"],
                smmu=carve[c]["smmu"],
                sid=int(carve[c]["sid"]),
                purpose=carve[c]["purpose"],
                guest_memory=bool(carve[c].get("guest_memory", False)),
                fact=_fact(carve[c]),
            )
            for c in g["carveouts"]
        ),
        host_keeps=tuple(g.get("host_keeps", ())),
        engines={key: _engine(key, e) for key, e in d["engines"].items()},
        extras=tuple(
            GuestExtra(
                key=key,
                node=x["node"],
                label=x["label"],
                compatible=tuple(x["compatible"]),
                clocks=tuple(x["clocks"]),
                clock_names=tuple(x["clock_names"]),
                fact=_fact(x),
            )
            for key, x in d.get("guest_extra", {}).items()
        ),
        reserved=tuple(
            Reserved(
                key=key,
                node=r.get("node", key),
                label=r.get("label", key),
                base=int(r["base"]),
                size=int(r["size"]),
                compatible=r["compatible"],
                no_map=bool(r.get("no_map", False)),
                reusable=bool(r.get("reusable", False)),
                cma_default=bool(r.get("cma_default", False)),
                carveout=bool(r.get("carveout", False)),
                fact=_fact(r),
            )
            for key, r in d["guest_reserved"].items()
        ),
        qemu=GpuQemu(
            extra_patches=tuple(q["extra_patches"]),
            irqfd=bool(q["irqfd"]),
            platform_bus_base=int(q["platform_bus_base"]),
            platform_bus_size=int(q["platform_bus_size"]),
            ram_base=int(q["ram_base"]),
            # The variant moves the bus, not its lines: virt's own (runtime.toml).
            first_spi=virt.platform_bus_first_spi,
            spis=virt.platform_bus_spis,
            drop_qemu_memory_node=bool(q["dtb"]["drop_qemu_memory_node"]),
            needs_fdt_binding=bool(q["dtb"]["needs_fdt_binding"]),
            fact=_fact(q),
            bus_fact=_fact(q["platform_bus"]),
            dtb_fact=_fact(q["dtb"]),
        ),
        kernel=GpuKernel(
            series=k["series"],
            package=k["package"],
            oot_overlay=k["oot_overlay"],
            oot_package=k["oot_package"],
            oot_version=k["oot"]["version"],
            oot_fact=_fact(k["oot"]),
            modules=tuple(k["modules"]),
            firmware=k["firmware"],
            kernel_config=tuple(k["kernel_config"]),
            oot_patches=tuple(k["oot_patches"]["keys"]),
            patches=tuple(k["patches"]["keys"]),
            fact=_fact(k),
        ),
        root_compatible=tuple(d["guest"]["root_compatible"]),
        fact=_fact(g),
    )
