"""The integrated GPU group's catalog (`data/t234-gpu.toml`) as typed records.

Entry point: `gpu_group()`. The group's members are ordinary platform devices
of the SoC catalog (`t234.toml`, `group = "gpu"`); this adds what passing them
together takes: host re-creation, carve-outs, guest memory, the QEMU variant
and the guest kernel.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from ghafgen.catalog.load import DATA, _fact, _guarded, _parsed, qemu_virt
from ghafgen.catalog.model import Fact


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
    scanout: bool = False  # the display's scanout surfaces (t234-gpu-roles.toml)
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


@functools.cache
@_guarded
def gpu_group() -> GpuGroup:
    """The Tegra234 GPU group, read once."""
    d = _parsed(DATA / "t234-gpu.toml")
    g, q, k = d["group"], d["qemu"], d["kernel"]
    carve = d["carveouts"]
    virt = qemu_virt()
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


# ------------------------------------------------------------------- roles
# data/t234-gpu-roles.toml: what each of Ghaf's GPU and display VM roles owns.

CAPABILITIES = ("gpu", "host1x", "media", "display")


class Keyhole(NamedTuple):
    """A window of the host's display registers handed to the guest at `mmio_base`."""

    key: str
    base: int
    size: int
    wrapper: str
    mmio_base: int
    smmu: str
    sid: int
    purpose: str
    fact: Fact = Fact()

    @property
    def dt_name(self) -> str:
        return f"{self.base:x}.{self.wrapper}"


class GpuRole(NamedTuple):
    """One VM role: Ghaf's capability set and what it brings."""

    key: str  # "gpu" | "display" | "gui"
    ghaf_vm: str
    description: str
    capabilities: frozenset[str]  # of CAPABILITIES
    no_syncpoint_display: bool  # Ghaf's flag, as its payload states it
    devices: frozenset[str]  # catalog device keys the capabilities stand for
    carveouts: tuple[Carveout, ...]  # in the order Ghaf passes them
    keyholes: tuple[Keyhole, ...]
    guest_modules: tuple[str, ...]
    dt_defines: tuple[str, ...]
    oot_patches: tuple[str, ...]  # Ghaf's nvidia-oot patch numbers, applied in order
    dce_guest: bool  # GHAF_DCE_GUEST=1 in this VM's QEMU
    bpmp_clocks: tuple[int, ...]
    bpmp_resets: tuple[int, ...]
    bpmp_power_domains: tuple[int, ...]
    host_changes: tuple[str, ...]
    fact: Fact = Fact()

    @property
    def display(self) -> bool:
        return "display" in self.capabilities

    @property
    def host1x(self) -> bool:
        return "host1x" in self.capabilities

    @property
    def no_syncpoint(self) -> bool:
        """NVKMS without host1x syncpoints (Ghaf's patch 0021): a display role
        that has no host1x of its own; decided here, never read from data."""
        return self.display and not self.host1x


class Topology(NamedTuple):
    """A set of roles one host may (or may not) run."""

    key: str  # "split" | "accelerated" | "compute-only" | "display-only"
    roles: frozenset[str]
    allowed: bool
    reason: str
    fact: Fact = Fact()


class Window(NamedTuple):
    """A register window of the display node and where the guest sees it."""

    name: str
    host: int
    guest: int
    size: int


class GuestDisplay(NamedTuple):
    """The display's guest nodes, as Ghaf's display guest tree writes them."""

    node: str
    label: str
    compatible: str
    niso_compatible: str
    num_dpaux: int
    chip_id: int
    interrupts: tuple[int, ...]
    interrupt_names: tuple[str, ...]
    power_domain: int
    resets: tuple[tuple[int, str], ...]  # (ID, reset-name)
    clocks: tuple[tuple[int, str], ...]  # (ID, clock-name), in Ghaf's order
    windows: tuple[Window, ...]
    scanout_pool: int
    dce_virtual_pa: int
    dce_spi: int
    dce_compatible: str
    dce_proxy_compatible: str
    fuse: Window
    fuse_node: str
    fuse_compatible: str
    fuse_clock: int
    # The display-only role's guest RAM banks and reserved regions.
    reserved: tuple[Reserved, ...]
    fact: Fact = Fact()
    windows_fact: Fact = Fact()
    dce_fact: Fact = Fact()
    fuse_fact: Fact = Fact()
    memory_fact: Fact = Fact()


class GpuRoles(NamedTuple):
    roles: dict[str, GpuRole]
    topologies: dict[str, Topology]
    capability_devices: dict[str, tuple[str, ...]]
    display_carveouts: dict[str, Carveout]
    keyholes: dict[str, Keyhole]
    guest: GuestDisplay
    fact: Fact = Fact()

    def topology(self, role_keys: frozenset[str]) -> Topology | None:
        return next((t for t in self.topologies.values() if t.roles == role_keys), None)


def _carveout(key: str, c: dict[str, Any]) -> Carveout:
    return Carveout(
        key=key,
        base=int(c["base"]),
        size=int(c["size"]),
        wrapper=c["wrapper"],
        smmu=c["smmu"],
        sid=int(c["sid"]),
        purpose=c["purpose"],
        guest_memory=bool(c.get("guest_memory", False)),
        scanout=bool(c.get("scanout", False)),
        fact=_fact(c),
    )


def _reserved(r: dict[str, Any]) -> Reserved:
    return Reserved(
        key=r["key"],
        node=r.get("node", r["key"]),
        label=r.get("label", r["key"]),
        base=int(r["base"]),
        size=int(r["size"]),
        compatible=r["compatible"],
        no_map=bool(r.get("no_map", False)),
        reusable=bool(r.get("reusable", False)),
        cma_default=bool(r.get("cma_default", False)),
        carveout=bool(r.get("carveout", False)),
        fact=_fact(r),
    )


def _guest_display(g: dict[str, Any]) -> GuestDisplay:
    dce, fuse = g["dce"], g["fuse"]
    return GuestDisplay(
        node=g["node"],
        label=g["label"],
        compatible=g["compatible"],
        niso_compatible=g["niso_compatible"],
        num_dpaux=int(g["num_dpaux"]),
        chip_id=int(g["chip_id"]),
        interrupts=tuple(int(i) for i in g["interrupts"]),
        interrupt_names=tuple(g["interrupt_names"]),
        power_domain=int(g["power_domains"][1]),
        resets=tuple((int(i), n) for _c, i, n in g["resets"]),
        clocks=tuple((int(i), n) for _c, i, n in g["clocks"]),
        windows=tuple(
            Window(w["name"], int(w["host"]), int(w["guest"]), int(w["size"]))
            for w in g["windows"]
        ),
        scanout_pool=int(g["scanout_pool"]),
        dce_virtual_pa=int(dce["virtual_pa"]),
        dce_spi=int(dce["spi"]),
        dce_compatible=dce["compatible"],
        dce_proxy_compatible=dce["proxy_compatible"],
        fuse=Window("fuse", int(fuse["host"]), int(fuse["guest"]), int(fuse["size"])),
        fuse_node=fuse["node"],
        fuse_compatible=fuse["compatible"],
        fuse_clock=int(fuse["clock"][1]),
        reserved=tuple(_reserved(r) for r in g["reserved"]),
        fact=_fact(g),
        windows_fact=_fact(g["windows_fact"]),
        dce_fact=_fact(dce),
        fuse_fact=_fact(fuse),
        memory_fact=_fact(g["memory"]),
    )


def _check_role(role: GpuRole) -> None:
    """Ghaf's capability assertions (ownership-assertions.nix:39-52), held by the
    catalog: a role breaking one is a malformed catalog, not a bad profile."""
    caps = role.capabilities
    if "gpu" in caps and "host1x" not in caps:
        raise ValueError(f"role {role.key!r} owns ga10b without host1x")
    if "media" in caps and "host1x" not in caps:
        raise ValueError(f"role {role.key!r} owns media engines without host1x")
    if role.no_syncpoint_display != role.no_syncpoint:
        raise ValueError(
            f"role {role.key!r}: no-syncpoint NVKMS is for the display-only role only"
        )
    if role.display and not any(c.scanout for c in role.carveouts):
        raise ValueError(f"role {role.key!r} has the display but no scanout carve-out")
    if ("0021" in role.oot_patches) != role.no_syncpoint:
        raise ValueError(f"role {role.key!r}: patch 0021 goes with no-syncpoint NVKMS")


@functools.cache
@_guarded
def gpu_roles() -> GpuRoles:
    """The GPU and display roles, read once and checked against Ghaf's assertions."""
    d = _parsed(DATA / "t234-gpu-roles.toml")
    group = _parsed(DATA / "t234-gpu.toml")["carveouts"]
    cap_devices = {
        k: tuple(v) for k, v in d["capability_devices"].items() if k in CAPABILITIES
    }
    display_carve = {k: _carveout(k, c) for k, c in d["display_carveouts"].items()}
    carve = {k: _carveout(k, c) for k, c in group.items()} | display_carve
    keyholes = {
        k: Keyhole(
            key=k,
            base=int(h["base"]),
            size=int(h["size"]),
            wrapper=h["wrapper"],
            mmio_base=int(h["mmio_base"]),
            smmu=h["smmu"],
            sid=int(h["sid"]),
            purpose=h["purpose"],
            fact=_fact(h),
        )
        for k, h in d["keyholes"].items()
    }
    roles = {}
    for key, r in d["roles"].items():
        caps = frozenset(c for c in CAPABILITIES if r[c])
        role = GpuRole(
            key=key,
            ghaf_vm=r["ghaf_vm"],
            description=r["description"],
            capabilities=caps,
            no_syncpoint_display=bool(r["no_syncpoint_display"]),
            devices=frozenset(dev for c in caps for dev in cap_devices[c]),
            carveouts=tuple(carve[c] for c in r["carveouts"]),
            keyholes=tuple(keyholes[k] for k in r["keyholes"]),
            guest_modules=tuple(r["guest_modules"]),
            dt_defines=tuple(r["dt_defines"]),
            oot_patches=tuple(r["oot_patches"]),
            dce_guest=bool(r["dce_guest"]),
            bpmp_clocks=tuple(int(i) for i in r["bpmp_clocks"]),
            bpmp_resets=tuple(int(i) for i in r["bpmp_resets"]),
            bpmp_power_domains=tuple(int(i) for i in r["bpmp_power_domains"]),
            host_changes=tuple(r["host_changes"]),
            fact=_fact(r),
        )
        _check_role(role)
        roles[key] = role
    topologies = {
        key: Topology(
            key=key,
            roles=frozenset(t["roles"]),
            allowed=bool(t["allowed"]),
            reason=t.get("reason", ""),
            fact=_fact(t),
        )
        for key, t in d["topologies"].items()
    }
    for t in topologies.values():
        unknown = t.roles - set(roles)
        if unknown:
            raise ValueError(
                f"topology {t.key!r} names unknown roles {sorted(unknown)}"
            )
    return GpuRoles(
        guest=_guest_display(d["guest_display"]),
        roles=roles,
        topologies=topologies,
        capability_devices=cap_devices,
        display_carveouts=display_carve,
        keyholes=keyholes,
        fact=_fact(d["capability_devices"]),
    )
