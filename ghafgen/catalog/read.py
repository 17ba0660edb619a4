"""Read the catalog TOML files of one data folder into `catalog.model` records.

Only `catalog.catalog` calls these: the rest of ghafgen reads the facts
through the `Catalog` object it is given. Between runs, each file's parsed
form is kept in the user cache dir (`_parsed`), so that a command does not run
the TOML parser over the whole catalog on every start.
"""

from __future__ import annotations

import contextlib
import functools
import marshal
import os
import sys
import tomllib
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghafgen.catalog.model import (
    Board,
    Fact,
    FlavorView,
    GuestNode,
    KernelPins,
    Module,
    PcieController,
    PinnedSource,
    PlatformDevice,
    QemuBuild,
    QemuVirt,
    Resource,
    Series,
    Sibling,
    Slot,
    Soc,
)
from ghafgen.errors import GhafgenError, ProfileError
from ghafgen.fileio import cache_root
from ghafgen.units import mib, parse_size

if TYPE_CHECKING:
    from ghafgen.catalog.catalog import Catalog

# GHAFGEN_CATALOG points at another copy of data/ (a vendor import, a test's
# deliberately wrong copy); the shipped data is the default.
DATA = Path(os.environ.get("GHAFGEN_CATALOG") or Path(__file__).parent / "data")


class CatalogError(GhafgenError):
    """The catalog folder (GHAFGEN_CATALOG, or the shipped data) cannot be used."""


class UnknownSeries(ProfileError):
    """A mainline tree of a kernel series the catalog has no facts for."""

    def __init__(self, series: str, known: tuple[str, ...]) -> None:
        self.series, self.known = series, known
        super().__init__(
            f"the catalog has no mainline device-tree facts for kernel {series!r} "
            f"(it has {', '.join(known)})"
        )


def _where(data: Path) -> str:
    if data == DATA and os.environ.get("GHAFGEN_CATALOG"):
        return f"GHAFGEN_CATALOG={data}"
    return str(data)


@contextlib.contextmanager
def guarded(data: Path) -> Iterator[None]:
    """A missing, unreadable or malformed catalog file is one error line naming it."""
    try:
        yield
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or e
        name = getattr(e, "filename", None) or data
        raise CatalogError(
            f"cannot read catalog file {name}: {reason}; is {_where(data)} a copy "
            "of ghafgen's catalog/data folder?"
        ) from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
        raise CatalogError(
            f"catalog under {_where(data)} is malformed ({type(e).__name__}: {e})"
        ) from None


def _parsed(path: Path) -> dict[str, Any]:
    """`tomllib.loads` of the catalog file at `path`, kept between runs.

    The entry holds the exact text it was parsed from and is used only when
    the file's text is that text, so an edited file (or another GHAFGEN_CATALOG
    copy at the same path) is parsed again, never served stale. The entry's
    name only spreads files over entries (a clash costs a parse, never a wrong
    answer). An entry that is missing, unreadable, truncated or from another
    Python is ignored and rewritten; a cache dir that cannot be written (a
    read-only home) only costs the parse. marshal, as Python's own bytecode
    cache uses: plain data, no imports.
    """
    text = path.read_text(encoding="utf-8")
    tag = f"{sys.implementation.cache_tag}-{marshal.version}"
    root = cache_root()
    entry = None
    # Only below an absolute cache dir: never a folder named `~` in the cwd.
    if root.is_absolute():
        name = zlib.crc32(str(path).encode("utf-8", "surrogateescape"))
        entry = root / "catalog" / f"{path.stem}-{name:08x}.marshal"
        with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
            kept = marshal.loads(entry.read_bytes())
            if (
                isinstance(kept, tuple)
                and len(kept) == 3
                and kept[:2] == (tag, text)
                and isinstance(kept[2], dict)
            ):
                return kept[2]
    doc = tomllib.loads(text)
    if entry is not None:
        # ValueError: a value marshal cannot hold (a TOML date); not kept.
        with contextlib.suppress(OSError, ValueError):
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_name(f".{entry.name}.{os.getpid()}")
            tmp.write_bytes(marshal.dumps((tag, text, doc)))
            os.replace(tmp, entry)
    return doc


def _fact(d: dict[str, Any]) -> Fact:
    return Fact(
        source=str(d.get("source", "")),
        note=str(d.get("note", "")),
        uncertain=bool(d.get("uncertain", False)),
    )


def _names(d: dict[str, Any], key: str) -> tuple[str, ...] | None:
    return tuple(d[key]) if key in d else None


# What a view's `series` entry may carry besides the facts it keys.
_PROVENANCE = ("source", "note", "uncertain")


def _keyed(v: dict[str, Any], series: str, known: tuple[str, ...]) -> dict[str, Any]:
    """Table `v` as the mainline tree of `series` has it: its `series."<s>"`
    entry applied. A table with a `series` table names every known series in
    it, and each entry states every fact any entry keys (or `absent = true`):
    no series silently inherits a value read from another kernel."""
    by = v.get("series")
    if by is None:
        return v
    if set(by) != set(known):
        raise ValueError(
            f"a series table names {sorted(by)}; the catalog's mainline series are "
            f"{list(known)} (t234.toml [mainline_series]), and each must be keyed"
        )
    keyed = {k for e in by.values() for k in e if k not in (*_PROVENANCE, "absent")}
    for name, e in by.items():
        if not e.get("absent") and keyed - set(e):
            raise ValueError(
                f'series "{name}" does not state {sorted(keyed - set(e))}, '
                "which another series keys"
            )
    e = by[series]
    merged = {k: x for k, x in v.items() if k != "series"}
    merged.update({k: x for k, x in e.items() if k not in _PROVENANCE})
    if e.get("source"):
        merged["source"] = e["source"]
    notes = [x for x in (v.get("note"), e.get("note")) if x]
    if notes:
        merged["note"] = "; ".join(notes)
    merged["uncertain"] = bool(v.get("uncertain")) or bool(e.get("uncertain"))
    return merged


def _views(
    d: dict[str, Any], series: str, known: tuple[str, ...]
) -> dict[str, FlavorView]:
    views = {}
    for flavor, raw in sorted(d.get("dt", {}).items()):
        # Only the mainline tree changes with the kernel series.
        v = _keyed(raw, series, known) if flavor == "mainline" else raw
        if v.get("absent"):
            continue
        views[flavor] = FlavorView(
            flavor=flavor,
            path=v.get("path", ""),
            label=v.get("label", ""),
            controller_iommus=bool(v.get("controller_iommus", False)),
            dma_coherent=bool(v.get("dma_coherent", False)),
            clocks=_names(v, "clocks"),
            resets=_names(v, "resets"),
            power_domains=_names(v, "power_domains"),
            fact=_fact(v),
        )
    return views


def _resources(kind: str, table: dict[str, Any]) -> dict[str, Resource]:
    return {
        name: Resource(
            kind=kind,
            name=name,
            id=int(v["id"]),
            parents=tuple(v.get("parents", ())),
            protected=bool(v.get("protected", False)),
            host_critical=bool(v.get("host_critical", False)),
            fact=_fact(v),
        )
        for name, v in table.items()
    }


def _device(
    key: str, d: dict[str, Any], series: str, known: tuple[str, ...]
) -> PlatformDevice:
    g = d["guest"]
    return PlatformDevice(
        key=key,
        description=d["description"],
        dt_name=d["dt_name"],
        node=d["node"],
        compatible=tuple(d["compatible"]),
        reg=tuple((int(a), int(s)) for a, s in d["reg"]),
        interrupts=tuple(d["interrupts"]),
        clocks=tuple(d["clocks"]),
        resets=tuple(d["resets"]),
        power_domains=tuple(d["power_domains"]),
        instance_of=d["instance_of"],
        needs_sid_marking=bool(d["needs_sid_marking"]),
        flavors=_views(d, series, known),
        guest=GuestNode(
            compatible=tuple(g["compatible"]),
            bpmp=bool(g["bpmp"]),
            clock_names=tuple(g.get("clock_names", ())),
            guest_clocks=tuple(g.get("guest_clocks", ())),
            reset_names=tuple(g.get("reset_names", ())),
            current_speed=int(g.get("current_speed", 0)),
            qemu_emits_node=bool(g.get("qemu_emits_node", False)),
            kernel_config=tuple(g.get("kernel_config", ())),
            min_kernel=g.get("min_kernel", ""),
            ghaf_patches=tuple(g.get("ghaf_patches", ())),
            device_options=g.get("device_options", ""),
            tty=g.get("tty", ""),
            fact=_fact(g),
        ),
        iommu_sid=d.get("iommu_sid"),
        iommu_sid_name=d.get("iommu_sid_name", ""),
        host_compatible_override=d.get("host_compatible_override", ""),
        board_compatibles=tuple(d.get("board_compatibles", ())),
        host_driver_modules=tuple(d.get("host_driver_modules", ())),
        interrupt_count=d.get("interrupt_count"),
        smmu_bypass_reason=d.get("smmu_bypass_reason", ""),
        group=d.get("group", ""),
        withheld=tuple(d.get("withheld", ())),
        fact=_fact(d),
    )


def series_of(data: Path, name: str) -> dict[str, Series]:
    """The kernel series SoC `name`'s mainline facts are keyed by, oldest first."""
    table = _parsed(data / f"{name}.toml")["mainline_series"]
    return {k: Series(k, _fact(v)) for k, v in table.items()}


def soc(data: Path, name: str, series: str, known_series: dict[str, Series]) -> Soc:
    """SoC `name` with its mainline views for kernel `series`.

    Raises:
        UnknownSeries: the catalog keys no mainline facts by that series.
    """
    if series not in known_series:
        raise UnknownSeries(series, tuple(known_series))
    known = tuple(known_series)
    d = _parsed(data / f"{name}.toml")
    s = d["soc"]
    siblings = {k: _keyed(v, series, known) for k, v in d["siblings"].items()}
    return Soc(
        name=s["name"],
        compatible=s["compatible"],
        smmu_platform=s["smmu_platform"],
        passthrough_sid=int(s["passthrough_sid"]),
        passthrough_sid_name=s["passthrough_sid_name"],
        clocks=_resources("clock", d["clocks"]),
        resets=_resources("reset", d["resets"]),
        power_domains=_resources("power-domain", d["power_domains"]),
        devices={k: _device(k, v, series, known) for k, v in d["devices"].items()},
        siblings={
            k: Sibling(
                key=k,
                instance_of=v["instance_of"],
                dt_name=v["dt_name"],
                clocks=frozenset(v["clocks"]),
                resets=frozenset(v["resets"]),
                power_domains=frozenset(v["power_domains"]),
                fact=_fact(v),
            )
            for k, v in siblings.items()
        },
        pcie={
            k: PcieController(
                key=k,
                dt_name=v["dt_name"],
                node=v["node"],
                domain=int(v["domain"]),
                dt_lanes=int(v["dt_lanes"]),
                clocks=tuple(v["clocks"]),
                sid=int(v["sid"]),
                sid_name=v["sid_name"],
                flavors=_views(v, series, known),
                fact=_fact(v),
            )
            for k, v in d["pcie"].items()
        },
        series=known_series[series],
        known_series=known,
    )


def carriers(data: Path) -> list[str]:
    if not (data / "boards").is_dir():
        raise CatalogError(
            f"no boards/ folder under {_where(data)}; point it at a copy of "
            "ghafgen's catalog/data folder, or unset it"
        )
    return sorted(p.stem for p in (data / "boards").glob("*.toml"))


@functools.cache
def board_doc(data: Path, stem: str) -> dict[str, Any]:
    return _parsed(data / "boards" / f"{stem}.toml")


def board_names(data: Path) -> list[str]:
    """Every board name, sorted: each carrier's default, then `<carrier>+<sku>`."""
    names = []
    for stem in carriers(data):
        names.append(stem)
        names += [f"{stem}+{sku}" for sku in board_doc(data, stem).get("modules", {})]
    return sorted(names)


def _size_mib(text: str) -> int:
    size = parse_size(text)
    if size is None:
        raise ValueError(f"bad size {text!r} in catalog")
    if size % (1 << 20):
        # Kept in MiB: anything finer would be cut off without a word.
        raise ValueError(f"size {text!r} in catalog is not a whole number of MiB")
    return mib(size)


def _module(sku: str, m: dict[str, Any]) -> Module:
    return Module(
        sku=sku,
        description=m["description"],
        cpu_cores=int(m["cpu_cores"]),
        ram_mib=_size_mib(m["ram"]),
        dt_model=m.get("dt_model", ""),
        fused_off=tuple(m.get("fused_off", ())),
        mainline_dts=m.get("mainline_dts", ""),
        jetpack_som=m.get("jetpack_som", ""),
        fact=_fact(m),
    )


def board(data: Path, name: str, chip: Soc, catalog: Catalog) -> Board:
    """The board called `name` (`<carrier>` or `<carrier>+<sku>`) on SoC `chip`
    (its mainline views those of one kernel series), carrying `catalog`.

    Raises:
        ProfileError: no such board in the catalog.
    """
    stem, _, sku = name.partition("+")
    soc_of(data, name)
    d = board_doc(data, stem)
    b = d["board"]
    modules = {k: _module(k, v) for k, v in d.get("modules", {}).items()}
    # The SKU the name picks: its own values replace the carrier file's.
    picked = modules[sku] if sku else None
    module = picked or modules.get(b.get("default_module", ""))
    carrier = b.get("carrier", "")
    return Board(
        name=name,
        description=(
            f"{picked.description} on the {carrier.upper()} carrier"
            if picked
            else b["description"]
        ),
        soc=chip,
        # A carrier file without [modules] states its cores and RAM itself.
        cpu_cores=module.cpu_cores if module else int(b["cpu_cores"]),
        ram_mib=module.ram_mib if module else _size_mib(b["ram"]),
        host_reserve_mib=_size_mib(b["host_reserve"]),
        rootfs=b["rootfs"],
        dt_model=(picked.dt_model if picked and picked.dt_model else b["dt_model"]),
        dt_compatible=f"nvidia,{carrier}+{sku}" if sku else b["dt_compatible"],
        # A SKU with its own mainline tree (the Orin Nano kit's) checks against it.
        dts=(
            f"nvidia/{picked.mainline_dts}.dts"
            if picked and picked.mainline_dts
            else b.get("dts", "")
        ),
        devices={k: chip.devices[k] for k in b["devices"]},
        slots={
            k: Slot(
                key=k,
                description=v["description"],
                controller=chip.pcie[v["controller"]],
                form=v["form"],
                max_lanes=int(v["max_lanes"]),
                transports=tuple(v.get("transports", ("pcie",))),
                power_max_w=v.get("power_max_w"),
                power_warn_w=v.get("power_warn_w"),
                host_storage=bool(v.get("host_storage", False)),
                dt_lanes=v.get("dt_lanes"),
                fact=_fact(v),
            )
            for k, v in d.get("slots", {}).items()
        },
        fact=picked.fact if picked else _fact(b),
        carrier=carrier,
        module=module,
        modules=tuple(modules),
        mainline_dts=(
            picked.mainline_dts
            if picked and picked.mainline_dts
            else b.get("mainline_dts", "")
        ),
        jetpack_som=(
            picked.jetpack_som
            if picked and picked.jetpack_som
            else b.get("jetpack", {}).get("som", "generic")
        ),
        jetpack_carrier_board=b.get("jetpack", {}).get("carrier_board", "generic"),
        catalog=catalog,
    )


def soc_of(data: Path, name: str) -> str:
    """The SoC board `name`'s carrier file names.

    Raises:
        ProfileError: no such board in the catalog.
    """
    stem, _, sku = name.partition("+")
    # `name in board_names()`, reading only the one carrier file it names.
    known = carriers(data)
    if name not in known and not (
        sku and stem in known and sku in board_doc(data, stem).get("modules", {})
    ):
        raise ProfileError(f"no board {name!r} in the catalog")
    return str(board_doc(data, stem)["board"]["soc"])


def qemu_virt(runtime: dict[str, Any]) -> QemuVirt:
    q = runtime["qemu"]["platform"]
    v, b = q["virt"], q["bridge"]
    return QemuVirt(
        version=q["version"],
        platform_bus_path=v["platform_bus_path"],
        platform_bus_base=int(v["platform_bus_base"]),
        platform_bus_size=int(v["platform_bus_size"]),
        platform_bus_first_spi=int(v["platform_bus_first_spi"]),
        platform_bus_spis=int(v["platform_bus_spis"]),
        pcie_mmio_size=int(v["pcie_mmio_size"]),
        high_pcie_mmio_size=int(v["high_pcie_mmio_size"]),
        bpmp_bridge_base=int(b["base"]),
        bpmp_bridge_old_base=int(b["old_base"]),
        bpmp_node=b["node"],
        bpmp_compatible=tuple(b["compatible"]),
        emits_node=tuple(q["fdt_bindings"]["emits_node"]),
        fact=_fact(v),
        bridge_fact=_fact(b),
    )


def qemu_build(runtime: dict[str, Any]) -> QemuBuild:
    q = runtime["qemu"]["platform"]
    return QemuBuild(
        version=q["version"],
        url=q["url"],
        hash=q["hash"],
        vfio_platform_removed=q["vfio_platform_removed"],
        package_dir=q["package_dir"],
        bridge_patches=tuple(q["bridge_patches"]),
        irqfd_patches=tuple(q["irqfd_patches"]),
        dropped_base_patches=tuple(q["dropped_base_patches"]),
        fact=_fact(q),
    )


def kernel_pins(runtime: dict[str, Any]) -> KernelPins:
    k = runtime["kernel"]
    hooks = {s: p for s, p in k["bpmp_hooks"].items() if s != "source"}
    return KernelPins(
        host_series=k["host"]["series"],
        host_package=k["host"]["package"],
        host_bpmp_series=tuple(k["host"]["bpmp_series"]),
        guest_series=k["guest"]["series"],
        guest_package=k["guest"]["package"],
        bpmp_hooks=hooks,
        smmu_patch=k["smmu_coherency"]["patch"],
        host_fact=_fact(k["host"]),
        guest_fact=_fact(k["guest"]),
        hooks_fact=_fact(k["bpmp_hooks"]),
        smmu_fact=_fact(k["smmu_coherency"]),
    )


def sources(d: dict[str, Any]) -> dict[str, PinnedSource]:
    fixed = {"url", "rev", "hash", "source", "note", "uncertain"}
    return {
        name: PinnedSource(
            name=name,
            url=s["url"],
            rev=s["rev"],
            hash=s["hash"],
            paths={k: v for k, v in s.items() if k not in fixed},
            fact=_fact(s),
        )
        for name, s in d.items()
    }
