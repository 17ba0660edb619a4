"""The integrated GPU group's catalog (`data/t234-gpu.toml`) as typed records.

Entry points: `gpu_group(doc, virt)` and `guest_roles(doc)`, which `Catalog`
calls. The group's members are ordinary platform devices of the SoC catalog
(`t234.toml`, `group = "gpu"`); this adds what passing them together takes:
host re-creation, carve-outs, guest memory, the QEMU variant and the guest
kernel, and per role (compute, display, both) what the guest loads, patches
and carries.
"""

import re
from typing import Annotated, Any, NamedTuple

from ghafgen.catalog.model import Fact, Provenance, QemuVirt
from ghafgen.records import GIVEN, NAME, OR_NAME, At, Or, record


class Engine(NamedTuple):
    """How one member's node is re-created on the host and written in the guest."""

    key: Annotated[str, NAME]
    host_parent: str
    smmu: str
    disable: tuple[str, ...] = ()
    reg_names: tuple[str, ...] = ()
    interrupt_names: tuple[str, ...] = ()
    clock_names: tuple[str, ...] = ()
    # The host node's memory clients, (mc.h name, ID) each, through the EMC.
    interconnects: tuple[tuple[str, int], ...] = ()
    interconnect_names: tuple[str, ...] = ()
    interconnect_labels: tuple[str, ...] = ()  # (provider, target)
    assigned_clock_rate: int = 0
    ranges: tuple[tuple[int, int], ...] = ()
    guest_parent: str = ""  # "" = the platform bus, else a member's key
    guest_status: str = "okay"
    nvidia_bpmp: bool = False
    host1x_class: int | None = None
    fact: Provenance = Fact()


class GuestExtra(NamedTuple):
    """A guest node that belongs to no passed device (the interconnect provider)."""

    key: Annotated[str, NAME]
    node: str
    label: str
    compatible: tuple[str, ...]
    clocks: tuple[str, ...]
    clock_names: tuple[str, ...]
    fact: Provenance = Fact()


class Carveout(NamedTuple):
    """Host memory handed to the guest 1:1 through vfio-platform's mmio-base."""

    key: Annotated[str, NAME]
    base: int
    size: int
    wrapper: str
    smmu: str
    sid: int
    purpose: str
    guest_memory: bool = False
    scanout: bool = False  # the display's scanout surfaces (t234-gpu-roles.toml)
    fact: Provenance = Fact()

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def dt_name(self) -> str:
        """The wrapper's platform-device name, as vfio-platform's host= takes it."""
        return f"{self.base:x}.{self.wrapper}"


class Reserved(NamedTuple):
    """A guest reserved-memory region the patched drivers expect."""

    key: Annotated[str, NAME]
    node: Annotated[str, OR_NAME]
    label: Annotated[str, OR_NAME]
    base: int
    size: int
    compatible: str
    no_map: bool = False
    reusable: bool = False
    cma_default: bool = False
    carveout: bool = False  # listed in tegra-carveouts' memory-region
    fact: Provenance = Fact()

    @property
    def end(self) -> int:
        return self.base + self.size


class GpuQemu(NamedTuple):
    """The group's QEMU variant: t234-gpu.toml [qemu]."""

    extra_patches: tuple[str, ...]
    irqfd: bool
    platform_bus_base: int
    platform_bus_size: int
    ram_base: int
    # The variant moves the bus, not its lines: virt's own (runtime.toml).
    first_spi: Annotated[int, GIVEN]
    spis: Annotated[int, GIVEN]
    drop_qemu_memory_node: Annotated[bool, At("dtb", "drop_qemu_memory_node")]
    needs_fdt_binding: Annotated[bool, At("dtb", "needs_fdt_binding")]
    fact: Provenance = Fact()
    bus_fact: Annotated[Fact, At("platform_bus")] = Fact()
    dtb_fact: Annotated[Fact, At("dtb")] = Fact()

    @property
    def platform_bus_path(self) -> str:
        return f"/platform-bus@{self.platform_bus_base:x}"

    @property
    def memory_node(self) -> str:
        """The RAM node QEMU writes itself (boot.c fdt_add_memory_node)."""
        return f"/memory@{self.ram_base:x}"


class GpuKernel(NamedTuple):
    """The group VM's guest kernel: t234-gpu.toml [kernel]."""

    series: str
    package: str
    oot_overlay: str
    oot_package: str
    # the L4T release Ghaf's OOT patches are written for
    oot_version: Annotated[str, At("oot", "version")]
    oot_fact: Annotated[Fact, At("oot")]
    firmware: str
    kernel_config: tuple[str, ...]
    # keys of sources.toml [ghaf]
    patches: Annotated[tuple[str, ...], At("patches", "keys")]
    fact: Provenance = Fact()


class GpuGroup(NamedTuple):
    """The whole of t234-gpu.toml: the [group] table and the tables beside it."""

    key: Annotated[str, At("group", "key")]
    description: Annotated[str, At("group", "description")]
    members: Annotated[tuple[str, ...], At("group", "members")]
    # [carveouts] entries, in the order [group] carveouts lists them.
    carveouts: Annotated[tuple[Carveout, ...], GIVEN]
    host_keeps: Annotated[tuple[str, ...], At("group", "host_keeps"), Or(())]
    engines: dict[str, Engine]
    extras: Annotated[tuple[GuestExtra, ...], At("guest_extra"), Or(())]
    reserved: Annotated[tuple[Reserved, ...], At("guest_reserved")]
    qemu: Annotated[GpuQemu, GIVEN]  # its bus lines are virt's
    kernel: GpuKernel
    root_compatible: Annotated[tuple[str, ...], At("guest", "root_compatible")]
    fact: Annotated[Fact, At("group")] = Fact()

    @property
    def guest_memory(self) -> Carveout:
        return next(c for c in self.carveouts if c.guest_memory)


def gpu_group(doc: dict[str, Any], virt: QemuVirt) -> GpuGroup:
    """The Tegra234 GPU group of `t234-gpu.toml`'s parsed text, on `virt`'s bus lines."""
    where = "t234-gpu.toml"
    carve = doc["carveouts"]
    return record(
        GpuGroup,
        doc,
        where,
        carveouts=tuple(
            record(Carveout, carve[c], f"{where} [carveouts.{c}]", c)
            for c in doc["group"]["carveouts"]
        ),
        qemu=record(
            GpuQemu,
            doc["qemu"],
            f"{where} [qemu]",
            first_spi=virt.platform_bus_first_spi,
            spis=virt.platform_bus_spis,
        ),
    )


# Catalog text that the guest module writes into Nix and into shell lines of a
# build step or a unit: only these characters, so none of it needs quoting.
_ATTR = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*")
_STORE_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.*/-]*")
_DEV_PATH = re.compile(r"/dev/[A-Za-z0-9_][A-Za-z0-9_*/-]*")


def _checked(pattern: re.Pattern[str], values: Any) -> tuple[str, ...]:
    out = tuple(str(v) for v in values)
    for v in out:
        if not pattern.fullmatch(v):
            raise ValueError(f"{v!r} does not match {pattern.pattern}")
    return out


class PackageRef(NamedTuple):
    attr: str  # a pkgs attribute path: "nvidia-jetpack.l4t-cuda"
    patches: tuple[str, ...] = ()  # keys of sources.toml [ghaf]


class GraphicsPackage(NamedTuple):
    """One hardware.graphics.extraPackages entry of the GPU guest."""

    key: Annotated[str, NAME]
    name: str = ""  # a symlinkJoin's name; "" = the one path itself
    paths: tuple[PackageRef, ...] = ()
    remove: tuple[str, ...] = ()  # files deleted from the join (relative, globs)
    fact: Provenance = Fact()


class GuestEgl(NamedTuple):
    etc: str  # environment.etc name
    driver_dir: str  # below the graphics driver link
    fact: Provenance = Fact()


class GuestDce(NamedTuple):
    """The guest DCE relay, built inside nvidia-oot."""

    patches: tuple[str, ...]  # keys of sources.toml [ghaf]
    patch_dir: str
    source_key: str  # the driver's .c, a key of sources.toml [ghaf]
    install_to: str
    makefile: str
    object: str
    fact: Provenance = Fact()


class GuestRole(NamedTuple):
    """What the GPU guest carries in one role (gpu, display or gui)."""

    key: Annotated[str, NAME]
    kernel_params: tuple[str, ...]
    modules: tuple[str, ...]
    oot_patches: tuple[str, ...]  # keys of sources.toml [ghaf], in order
    graphics: Annotated[tuple[GraphicsPackage, ...], GIVEN]
    egl: Annotated[GuestEgl, GIVEN]
    dce: Annotated[GuestDce | None, GIVEN]  # the relay, for display roles
    library_path: tuple[str, ...] = ()  # pkgs attrs for LD_LIBRARY_PATH
    node_group: str = "video"  # the group the GPU's nodes are opened to
    node_wait: str = ""  # the node whose appearance means nvgpu made them
    nodes: tuple[str, ...] = ()
    fact: Provenance = Fact()


def guest_roles(doc: dict[str, Any]) -> dict[str, GuestRole]:
    """Each role's guest table ([roles.<name>.guest]) of `t234-gpu.toml`'s
    parsed text; other role keys are not read.

    Raises:
        ValueError: a value the guest module would have to quote, or a
            missing or misshapen key.
    """
    where = "t234-gpu.toml"
    graphics = {
        k: record(GraphicsPackage, g, f"{where} [guest_graphics.{k}]", k)
        for k, g in doc["guest_graphics"].items()
    }
    for g in graphics.values():
        _checked(_STORE_PATH, [g.name] if g.name else [])
        _checked(_ATTR, [r.attr for r in g.paths])
        _checked(_STORE_PATH, g.remove)
    egl = record(GuestEgl, doc["guest_egl"], f"{where} [guest_egl]")
    dce = record(GuestDce, doc["guest_dce"], f"{where} [guest_dce]")
    _checked(_STORE_PATH, (dce.patch_dir, dce.install_to, dce.makefile, dce.object))
    roles = {}
    for key, role in doc["roles"].items():
        r = role["guest"]
        guest = record(
            GuestRole,
            r,
            f"{where} [roles.{key}.guest]",
            key,
            graphics=tuple(graphics[name] for name in r["graphics"]),
            egl=egl,
            dce=dce if r["dce_guest_proxy"] else None,
        )
        _checked(_ATTR, guest.library_path)
        _checked(_ATTR, [guest.node_group])
        _checked(
            _DEV_PATH, guest.nodes + ((guest.node_wait,) if guest.node_wait else ())
        )
        roles[key] = guest
    return roles


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
    # The role's guest modules and Ghaf's nvidia-oot patch numbers, applied in
    # order: read from its guest (t234-gpu.toml [roles.<role>.guest]), one truth.
    guest_modules: tuple[str, ...]
    dt_defines: tuple[str, ...]
    oot_patches: tuple[str, ...]
    dce_guest: bool  # GHAF_DCE_GUEST=1 in this VM's QEMU
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


class Dcb(NamedTuple):
    """The board's display configuration block the display node embeds."""

    ghaf: str  # key of sources.toml [ghaf]: the file, in the pinned Ghaf tree
    bytes: int
    sha256: str
    fact: Provenance = Fact()


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
    dcb: Dcb
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


_ROLES = "t234-gpu-roles.toml"


def _fact(d: dict[str, Any]) -> Fact:
    return record(Fact, d, _ROLES)


def _carveout(key: str, c: dict[str, Any]) -> Carveout:
    return record(Carveout, c, f"{_ROLES} [{key}]", key)


def _reserved(r: dict[str, Any]) -> Reserved:
    return record(Reserved, r, f"{_ROLES} [guest_display.reserved]", r["key"])


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
        dcb=record(Dcb, g["dcb"], f"{_ROLES} [guest_display.dcb]", "dcb"),
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
    if role.dce_guest != role.display:
        raise ValueError(f"role {role.key!r}: GHAF_DCE_GUEST goes with the display")


def gpu_roles(
    d: dict[str, Any],
    gpu: dict[str, Any],
    guests: dict[str, GuestRole],
    ghaf_paths: dict[str, str],
) -> GpuRoles:
    """The GPU and display roles of `t234-gpu-roles.toml`'s parsed text `d`
    (the group's carve-outs from `t234-gpu.toml`'s, `gpu`; each role's modules
    and patches from its guest in `guests`, the patches' numbers from their
    file names in the Ghaf tree, `ghaf_paths`), checked against Ghaf's
    assertions."""
    group = gpu["carveouts"]
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
            guest_modules=guests[key].modules,
            dt_defines=tuple(r["dt_defines"]),
            oot_patches=tuple(
                ghaf_paths[k].rsplit("/", 1)[-1].split("-", 1)[0]
                for k in guests[key].oot_patches
            ),
            dce_guest=bool(r["dce_guest"]),
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
