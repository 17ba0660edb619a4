"""The integrated GPU group's catalog (`data/t234-gpu.toml`) as typed records.

Entry points: `gpu_group()` and `guest_role(name)`. The group's members are
ordinary platform devices of the SoC catalog (`t234.toml`, `group = "gpu"`);
this adds what passing them together takes: host re-creation, carve-outs,
guest memory, the QEMU variant and the guest kernel, and per role (compute,
display, both) what the guest loads, patches and carries.
"""

from __future__ import annotations

import functools
import re
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
    firmware: str
    kernel_config: tuple[str, ...]
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
            firmware=k["firmware"],
            kernel_config=tuple(k["kernel_config"]),
            patches=tuple(k["patches"]["keys"]),
            fact=_fact(k),
        ),
        root_compatible=tuple(d["guest"]["root_compatible"]),
        fact=_fact(g),
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

    key: str
    name: str  # a symlinkJoin's name; "" = the one path itself
    paths: tuple[PackageRef, ...]
    remove: tuple[str, ...]  # files deleted from the join (relative, globs)
    fact: Fact = Fact()


class GuestEgl(NamedTuple):
    etc: str  # environment.etc name
    driver_dir: str  # below the graphics driver link
    fact: Fact = Fact()


class GuestDce(NamedTuple):
    """The guest DCE relay, built inside nvidia-oot."""

    patches: tuple[str, ...]  # keys of sources.toml [ghaf]
    patch_dir: str
    source_key: str  # the driver's .c, a key of sources.toml [ghaf]
    install_to: str
    makefile: str
    object: str
    fact: Fact = Fact()


class GuestRole(NamedTuple):
    """What the GPU guest carries in one role (gpu, display or gui)."""

    key: str
    kernel_params: tuple[str, ...]
    modules: tuple[str, ...]
    oot_patches: tuple[str, ...]  # keys of sources.toml [ghaf], in order
    graphics: tuple[GraphicsPackage, ...]
    egl: GuestEgl
    dce: GuestDce | None  # the relay, for display roles
    library_path: tuple[str, ...] = ()  # pkgs attrs for LD_LIBRARY_PATH
    node_group: str = ""  # the group the GPU's nodes are opened to
    node_wait: str = ""  # the node whose appearance means nvgpu made them
    nodes: tuple[str, ...] = ()
    fact: Fact = Fact()


def _graphics(key: str, g: dict[str, Any]) -> GraphicsPackage:
    return GraphicsPackage(
        key=key,
        name=_checked(_STORE_PATH, [g.get("name", "")])[0] if "name" in g else "",
        paths=tuple(
            PackageRef(_checked(_ATTR, [r["attr"]])[0], tuple(r.get("patches", ())))
            for r in g["paths"]
        ),
        remove=_checked(_STORE_PATH, g.get("remove", ())),
        fact=_fact(g),
    )


@functools.cache
@_guarded
def guest_roles() -> dict[str, GuestRole]:
    """Each role's guest table ([roles.<name>.guest]); other role keys are not read."""
    d = _parsed(DATA / "t234-gpu.toml")
    graphics = {k: _graphics(k, g) for k, g in d["guest_graphics"].items()}
    e, c = d["guest_egl"], d["guest_dce"]
    egl = GuestEgl(e["etc"], e["driver_dir"], _fact(e))
    dce = GuestDce(
        patches=tuple(c["patches"]),
        patch_dir=c["patch_dir"],
        source_key=c["source_key"],
        install_to=c["install_to"],
        makefile=c["makefile"],
        object=c["object"],
        fact=_fact(c),
    )
    _checked(_STORE_PATH, (dce.patch_dir, dce.install_to, dce.makefile, dce.object))
    roles = {}
    for key, role in d["roles"].items():
        r = role["guest"]
        roles[key] = GuestRole(
            key=key,
            kernel_params=tuple(r["kernel_params"]),
            modules=tuple(r["modules"]),
            oot_patches=tuple(r["oot_patches"]),
            graphics=tuple(graphics[g] for g in r["graphics"]),
            egl=egl,
            dce=dce if r["dce_guest_proxy"] else None,
            library_path=_checked(_ATTR, r.get("library_path", ())),
            node_group=_checked(_ATTR, [r.get("node_group", "video")])[0],
            node_wait=r.get("node_wait", ""),
            nodes=_checked(_DEV_PATH, r.get("nodes", ())),
            fact=_fact(r),
        )
        if roles[key].node_wait:
            _checked(_DEV_PATH, [roles[key].node_wait])
    return roles


def guest_role(name: str) -> GuestRole:
    """One role's guest.

    Raises:
        ValueError: the catalog has no such role (callers pass a derived role).
    """
    roles = guest_roles()
    if name not in roles:
        raise ValueError(
            f"no GPU guest role {name!r} in t234-gpu.toml (it has {', '.join(roles)})"
        )
    return roles[name]
