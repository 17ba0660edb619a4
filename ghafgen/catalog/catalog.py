"""The catalog as one object: every hardware and runtime fact the pipeline
reads, from one data folder.

Entry point: `load(data=None)`. The CLI loads it once and hands it down:
`rules.engine.validate` takes it and gives each profile the board it names,
`Catalog.board(...)`, and a board carries the catalog it came from
(`Board.catalog`), so derive, rules, render and views reach the runtime pins,
the GPU group and the sources through the board they are given. Nothing
outside `catalog/` reads a catalog global.

A `Catalog` is immutable (a NamedTuple with evaluated annotations, as
model.py's records: validate compiles no dataclass on its path).
`cat._replace(qemu_build=...)` is a catalog with one fact changed; the boards
it hands out then carry that catalog.
"""

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ghafgen.catalog import read as _read
from ghafgen.catalog.model import (
    Board,
    Drivers,
    KernelPins,
    MicrovmDefaults,
    PinnedSource,
    QemuBuild,
    QemuVirt,
    Series,
    Soc,
)

if TYPE_CHECKING:
    from ghafgen.catalog.dcerelay import DceRelayFacts
    from ghafgen.catalog.gpu import GpuGroup, GpuRoles, GuestRole
    from ghafgen.catalog.soc import SocDevice

# The facts only GPU and display profiles read (t234-gpu.toml,
# t234-gpu-roles.toml, t234-display.toml): read on first use, so validating
# any other profile neither imports their records nor parses their files.
GPU_FACTS = ("gpu_group", "gpu_roles", "gpu_guests", "dce_relay")


class _Built(dict[tuple[int, str, str, str], Any]):
    """Boards and SoCs a catalog has built, by (id of the catalog, kind, name,
    series). `_replace` hands the same dict to the new catalog; an entry is
    used only by the catalog that built it."""

    def __repr__(self) -> str:
        return f"<{len(self)} built>"


class Catalog(NamedTuple):
    """Every catalog fact the pipeline reads (`load()` makes one)."""

    data: Path  # the folder the facts were read from
    qemu_virt: QemuVirt
    qemu_build: QemuBuild
    kernel_pins: KernelPins
    sources: dict[str, PinnedSource]
    # The kernel series the SoC's mainline facts are keyed by, oldest first.
    mainline_series: dict[str, Series]
    drivers: Drivers  # the driver names verify looks for
    microvm: MicrovmDefaults  # microvm.nix's QEMU defaults
    built: _Built
    # GPU_FACTS given in place of the data folder's (`with_gpu_facts`).
    gpu_given: tuple[tuple[str, Any], ...] = ()

    def __repr__(self) -> str:
        # A board carries its catalog: a board's repr names it, not every fact.
        return f"Catalog(data={str(self.data)!r})"

    def _cached(self, kind: str, name: str, series: str, make: Any) -> Any:
        key = (id(self), kind, name, series)
        hit = self.built.get(key)
        if hit is None or hit[0] is not self:
            with _read.guarded(self.data):
                hit = self.built[key] = (self, make())
        return hit[1]

    def soc(self, name: str = "t234", series: str | None = None) -> Soc:
        """SoC `name` with its mainline views for kernel `series` (default: the
        pinned host kernel's).

        Raises:
            UnknownSeries: the catalog keys no mainline facts by that series.
        """
        s = series or self.kernel_pins.host_series
        chip: Soc = self._cached(
            "soc",
            name,
            s,
            lambda: _read.soc(self.data, name, s, self.mainline_series),
        )
        return chip

    def board(self, name: str, series: str | None = None) -> Board:
        """The board called `name` (`<carrier>` or `<carrier>+<sku>`), its
        mainline views those of kernel `series` (default: the pinned host
        kernel's).

        Raises:
            ProfileError: no such board in the catalog.
            UnknownSeries: the catalog keys no mainline facts by that series.
        """
        s = series or self.kernel_pins.host_series

        def make() -> Board:
            chip = self.soc(_read.soc_of(self.data, name), s)
            return _read.board(self.data, name, chip, self)

        b: Board = self._cached("board", name, s, make)
        return b

    def _gpu_fact(self, name: str) -> Any:
        given = dict(self.gpu_given)
        if name in given:
            return given[name]
        facts = self._cached("gpu", "facts", "", lambda: _gpu_facts(self))
        return facts[name]

    @property
    def gpu_group(self) -> "GpuGroup":
        """The integrated GPU group (t234-gpu.toml)."""
        group: GpuGroup = self._gpu_fact("gpu_group")
        return group

    @property
    def gpu_roles(self) -> "GpuRoles":
        """Ghaf's GPU and display VM roles: what each owns, the topologies."""
        roles: GpuRoles = self._gpu_fact("gpu_roles")
        return roles

    @property
    def gpu_guests(self) -> "dict[str, GuestRole]":
        """What the GPU guest carries in each role (gpu, display, gui)."""
        guests: dict[str, GuestRole] = self._gpu_fact("gpu_guests")
        return guests

    @property
    def dce_relay(self) -> "DceRelayFacts":
        """Giving the display to a VM through the DCE relay."""
        relay: DceRelayFacts = self._gpu_fact("dce_relay")
        return relay

    def with_gpu_facts(self, **facts: Any) -> "Catalog":
        """This catalog with some of GPU_FACTS replaced (`_replace` for the rest)."""
        unknown = set(facts) - set(GPU_FACTS)
        if unknown:
            raise TypeError(f"not a GPU fact: {sorted(unknown)}")
        return self._replace(gpu_given=(*self.gpu_given, *facts.items()))

    def gpu_guest_role(self, name: str) -> "GuestRole":
        """The GPU guest of role `name`.

        Raises:
            ValueError: the catalog has no such role (callers pass a derived role).
        """
        if name not in self.gpu_guests:
            raise ValueError(
                f"no GPU guest role {name!r} in t234-gpu.toml "
                f"(it has {', '.join(self.gpu_guests)})"
            )
        return self.gpu_guests[name]

    def board_names(self) -> list[str]:
        """Every board name, sorted: each carrier's default, then `<carrier>+<sku>`."""
        with _read.guarded(self.data):
            return _read.board_names(self.data)

    def resolve(self, name: str) -> str | None:
        """A board name for `name`: itself, or the one board that takes SKU `name`."""
        names = self.board_names()
        if name in names:
            return name
        hits = [n for n in names if n.endswith(f"+{name.lower()}")]
        return hits[0] if len(hits) == 1 else None

    def l4t_devices(self) -> dict[str, dict[str, Any]]:
        """Devices only L4T trees describe (`t234.toml` [l4t_devices]), by key."""
        with _read.guarded(self.data):
            table: dict[str, dict[str, Any]] = _read._parsed(self.data / "t234.toml")
            return dict(table.get("l4t_devices", {}))

    def soc_devices(self, mainline_dts: str) -> "tuple[SocDevice, ...]":
        """The committed whole-SoC catalog of a board's mainline tree (empty if none)."""
        from ghafgen.catalog import soc  # a dataclass module: only when asked

        path = self.data / "soc" / f"{mainline_dts}.toml"
        if not mainline_dts or not path.exists():
            return ()
        devices: tuple[SocDevice, ...] = self._cached(
            "soc_devices", mainline_dts, "", lambda: tuple(soc.load(path))
        )
        return devices


def load(data: Path | None = None) -> Catalog:
    """The catalog of folder `data` (default: GHAFGEN_CATALOG, else the shipped
    `catalog/data`). The default is read once per process.

    Raises:
        CatalogError: a file is missing, unreadable or malformed.
    """
    return _catalog(data) if data else _shipped()


@functools.cache
def _shipped() -> Catalog:
    return _catalog(_read.DATA)


def _catalog(data: Path) -> Catalog:
    with _read.guarded(data):
        runtime = _read._parsed(data / "runtime.toml")
        virt = _read.qemu_virt(runtime)
        return Catalog(
            data=data,
            qemu_virt=virt,
            qemu_build=_read.qemu_build(runtime),
            kernel_pins=_read.kernel_pins(runtime),
            sources=_read.sources(_read._parsed(data / "sources.toml")),
            mainline_series=_read.series_of(data, "t234"),
            drivers=_read.drivers(runtime),
            microvm=_read.microvm(runtime),
            built=_Built(),
        )


def _gpu_facts(cat: Catalog) -> dict[str, Any]:
    """GPU_FACTS of `cat`'s data folder (its own QEMU virt and sources)."""
    from ghafgen.catalog.dcerelay import dce_relay_facts
    from ghafgen.catalog.gpu import gpu_group, gpu_roles, guest_roles

    data = cat.data
    gpu = _read._parsed(data / "t234-gpu.toml")
    guests = guest_roles(gpu)
    return {
        "gpu_group": gpu_group(gpu, cat.qemu_virt),
        "gpu_roles": gpu_roles(
            _read._parsed(data / "t234-gpu-roles.toml"),
            gpu,
            guests,
            cat.sources["ghaf"].paths,
        ),
        "gpu_guests": guests,
        "dce_relay": dce_relay_facts(_read._parsed(data / "t234-display.toml")),
    }
