"""Read the catalog TOML files of one data folder into `catalog.model` records,
each through `ghafgen.records.record` (the record's annotations say which key each
field is). The board is assembled by hand (`board`): a SKU's values replace
its carrier file's, so its fields are not one table's keys.

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ghafgen.catalog.model import (
    RESOURCE_KINDS,
    Board,
    Drivers,
    Fact,
    FlavorView,
    KernelPins,
    MicrovmDefaults,
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
    size_mib,
)
from ghafgen.errors import GhafgenError, ProfileError
from ghafgen.fileio import cache_root
from ghafgen.records import record

if TYPE_CHECKING:
    from ghafgen.catalog.catalog import Catalog

R = TypeVar("R")

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
    d: dict[str, Any], series: str, known: tuple[str, ...], where: str
) -> dict[str, FlavorView]:
    views = {}
    for flavor, raw in sorted(d.get("dt", {}).items()):
        # Only the mainline tree changes with the kernel series.
        v = _keyed(raw, series, known) if flavor == "mainline" else raw
        if v.get("absent"):
            continue
        views[flavor] = record(FlavorView, v, f"{where} dt.{flavor}", flavor)
    return views


def _entries(
    table: dict[str, Any],
    file: str,
    path: str,
    make: Callable[[str, dict[str, Any], str], R],
) -> dict[str, R]:
    """`make(name, entry, where)` of each entry of the table at `path` in `file`."""
    return {k: make(k, v, f"{file} [{path}.{k}]") for k, v in table.items()}


def series_of(data: Path, name: str) -> dict[str, Series]:
    """The kernel series SoC `name`'s mainline facts are keyed by, oldest first."""
    table = _parsed(data / f"{name}.toml")["mainline_series"]
    return _entries(
        table,
        f"{name}.toml",
        "mainline_series",
        lambda k, v, where: record(Series, v, where, k),
    )


def soc(data: Path, name: str, series: str, known_series: dict[str, Series]) -> Soc:
    """SoC `name` with its mainline views for kernel `series`.

    Raises:
        UnknownSeries: the catalog keys no mainline facts by that series.
    """
    if series not in known_series:
        raise UnknownSeries(series, tuple(known_series))
    known = tuple(known_series)
    file = f"{name}.toml"
    d = _parsed(data / file)
    resources = {
        kind: _entries(
            d[table],
            file,
            table,
            lambda k, v, where, kind=kind: record(Resource, v, where, k, kind=kind),  # type: ignore[misc]
        )
        for kind, table in zip(
            RESOURCE_KINDS, ("clocks", "resets", "power_domains"), strict=True
        )
    }
    return record(
        Soc,
        d["soc"],
        f"{file} [soc]",
        clocks=resources["clock"],
        resets=resources["reset"],
        power_domains=resources["power-domain"],
        devices=_entries(
            d["devices"],
            file,
            "devices",
            lambda k, v, where: record(
                PlatformDevice, v, where, k, flavors=_views(v, series, known, where)
            ),
        ),
        siblings=_entries(
            d["siblings"],
            file,
            "siblings",
            lambda k, v, where: record(Sibling, _keyed(v, series, known), where, k),
        ),
        pcie=_entries(
            d["pcie"],
            file,
            "pcie",
            lambda k, v, where: record(
                PcieController, v, where, k, flavors=_views(v, series, known, where)
            ),
        ),
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
    file = f"boards/{stem}.toml"
    modules = _entries(
        d.get("modules", {}), file, "modules", lambda k, v, w: record(Module, v, w, k)
    )
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
        ram_mib=module.ram_mib if module else size_mib(b["ram"]),
        host_reserve_mib=size_mib(b["host_reserve"]),
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
        slots=_entries(
            d.get("slots", {}),
            file,
            "slots",
            lambda k, v, w: record(
                Slot, v, w, k, controller=chip.pcie[v["controller"]]
            ),
        ),
        fact=picked.fact if picked else record(Fact, b, f"{file} [board]"),
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
    return record(QemuVirt, q, "runtime.toml [qemu.platform]")


def qemu_build(runtime: dict[str, Any]) -> QemuBuild:
    q = runtime["qemu"]["platform"]
    return record(QemuBuild, q, "runtime.toml [qemu.platform]")


def drivers(runtime: dict[str, Any]) -> Drivers:
    return record(Drivers, runtime["drivers"], "runtime.toml [drivers]")


def microvm(runtime: dict[str, Any]) -> MicrovmDefaults:
    return record(MicrovmDefaults, runtime["microvm"], "runtime.toml [microvm]")


def kernel_pins(runtime: dict[str, Any]) -> KernelPins:
    return record(KernelPins, runtime["kernel"], "runtime.toml [kernel]")


def sources(d: dict[str, Any]) -> dict[str, PinnedSource]:
    return {k: record(PinnedSource, v, f"sources.toml [{k}]", k) for k, v in d.items()}
