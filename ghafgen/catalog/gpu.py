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
