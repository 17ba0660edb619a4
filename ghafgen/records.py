"""One converter from a parsed table (TOML, JSON) to a typed record, by the
record's annotations: a field is named once, in its record, with its type and
where in the table it is read from. The catalog's records (catalog/model.py,
catalog/gpu.py) and verify's reading of a manifest's runtime record use it.

Entry point: `record(cls, table, where)`. A field is read from the key of its
own name unless its annotation says otherwise:

- `Annotated[T, At("bridge", "base")]`: another key, or a path of keys from
  the record's table; `At()` is the record's table itself (a `Fact`, which
  describes the table it is read from, is written `Provenance`);
- `Annotated[str, NAME]`: the name the table has in its parent table
  (`[devices.uarta]` -> "uarta"); `OR_NAME`: that name when the key is absent;
- `Annotated[T, GIVEN]`: not in the table; the loader passes it (a fact
  merged from other tables, or keyed by kernel series);
- `Annotated[T, Parse(fn)]`: the value as `fn` reads it (a size string);
- `Annotated[dict[str, str], REST]`: every other key of the table, its
  provenance keys (source, note, uncertain) left out;
- `Annotated[dict[str, X], ENTRIES]`: a table's entries, its provenance keys
  left out;
- `Annotated[T, Or(value)]`: `value` when the key is absent, where the
  record's own default cannot be written (a field before a required one).

Types: str, int, bool, `X | None`, `tuple[X, ...]`, `tuple[X, Y]`,
`frozenset[X]`, `dict[str, X]` and records (NamedTuples, their annotations
evaluated or strings: a sub-table; a `tuple[Record, ...]` from an array of
tables, or from a table of named entries in file order). A value of the
wrong shape, or a missing key without a default, raises ValueError naming
the table and the key.
"""

import functools
import types
from collections.abc import Callable
from typing import (
    Annotated,
    Any,
    NamedTuple,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

R = TypeVar("R")

# A table's own provenance, never one of its entries.
PROVENANCE = ("source", "note", "uncertain")


class At:
    """Read the field from this path of keys below the record's table."""

    def __init__(self, *path: str) -> None:
        self.path = path


class Parse:
    """Read the field's value through `fn`."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn


class Or:
    """The field's value when its key is absent."""

    def __init__(self, value: object) -> None:
        self.value = value


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NAME = _Marker("NAME")
OR_NAME = _Marker("OR_NAME")
GIVEN = _Marker("GIVEN")
REST = _Marker("REST")
ENTRIES = _Marker("ENTRIES")
_ABSENT = object()


def _split(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    if get_origin(hint) is Annotated:
        base, *meta = get_args(hint)
        return base, tuple(meta)
    return hint, ()


def _is_record(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


Convert = Callable[[Any, str], Any]


class _Field(NamedTuple):
    """How one field of a record is read, worked out once per record class."""

    name: str
    how: _Marker | None  # NAME, GIVEN, REST, or None: a key below the table
    path: tuple[str, ...]
    suffix: str  # the path as errors name it after the table: " bridge.base"
    convert: Convert
    fallback: Any  # the value when the key is absent (_ABSENT: an error)
    or_name: bool


@functools.cache
def _plan(cls: Any) -> tuple[_Field, ...]:
    defaults: dict[str, Any] = cls._field_defaults
    fields = []
    for name, hint in get_type_hints(cls, include_extras=True).items():
        tp, meta = _split(hint)
        how = next((m for m in meta if m in (NAME, GIVEN, REST)), None)
        at = next((m.path for m in meta if isinstance(m, At)), (name,))
        parse = next((m.fn for m in meta if isinstance(m, Parse)), None)
        fallback = next(
            (m.value for m in meta if isinstance(m, Or)), defaults.get(name, _ABSENT)
        )
        convert = _through(parse) if parse else _converter(tp)
        if ENTRIES in meta:
            convert = _entries(convert)
        suffix = f" {'.'.join(at)}" if at else ""
        fields.append(_Field(name, how, at, suffix, convert, fallback, OR_NAME in meta))
    return tuple(fields)


def _through(fn: Callable[[Any], Any]) -> Convert:
    return lambda v, _w: fn(v)


def _entries(convert: Convert) -> Convert:
    """`convert` of a table without its provenance keys."""
    return lambda v, w: convert(
        {k: x for k, x in _table(v, w).items() if k not in PROVENANCE}, w
    )


def record(
    cls: type[R], table: object, where: str, name: str = "", /, **given: Any
) -> R:
    """The record `cls` read from `table` (`where` names it in errors: "t234.toml
    [devices.uarta]"); `name` is the table's name in its parent, `given` the
    fields its loader passes."""
    if not isinstance(table, dict):
        raise ValueError(f"{where} is {type(table).__name__}, not a table")
    values: dict[str, Any] = {}
    rest = None
    spec: Any = cls  # a class: hashable, as _plan's cache needs
    plan = _plan(spec)
    for f in plan:
        if f.name in given:
            values[f.name] = given.pop(f.name)
        elif f.how is NAME:
            values[f.name] = name
        elif f.how is REST:
            rest = f.name
        elif f.how is GIVEN:
            raise TypeError(f"{cls.__name__}.{f.name} is given by its loader")
        else:
            raw: Any = table
            for key in f.path:
                raw = raw.get(key, _ABSENT) if isinstance(raw, dict) else _ABSENT
            if raw is not _ABSENT:
                values[f.name] = f.convert(raw, where + f.suffix)
            elif f.or_name:
                values[f.name] = name
            elif f.fallback is not _ABSENT:
                values[f.name] = f.fallback
            else:
                raise ValueError(
                    f"{where} has no '{'.'.join(f.path)}' ({cls.__name__}.{f.name})"
                )
    if rest is not None:
        named = {f.path[0] for f in plan if f.how is None and f.path}
        values[rest] = {
            k: _string(v, f"{where} {k}")
            for k, v in table.items()
            if k not in named and k not in PROVENANCE
        }
    if given:
        raise TypeError(f"{cls.__name__} has no field {sorted(given)}")
    return cls(**values)


def _string(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{where} is {v!r}, not a string")
    return v


def _integer(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise ValueError(f"{where} is {v!r}, not an integer")
    return int(v)


def _list(v: Any, where: str) -> list[Any]:
    if not isinstance(v, list | tuple):
        raise ValueError(f"{where} is {v!r}, not an array")
    return list(v)


def _table(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError(f"{where} is {v!r}, not a table")
    return v


def _each(item: Convert, items: list[Any], where: str) -> list[Any]:
    """Each of `items` read by `item`; an error names the item's index."""
    try:
        return [item(x, where) for x in items]
    except ValueError:
        return [item(x, f"{where}[{i}]") for i, x in enumerate(items)]


@functools.cache
def _converter(tp: Any) -> Convert:
    """How a value of type `tp` is read, worked out once per type."""
    tp, _meta = _split(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        inner = _converter(next(a for a in args if a is not type(None)))
        return lambda v, w: None if v is None else inner(v, w)
    if _is_record(tp):
        return lambda v, w: record(tp, v, w)
    if tp is str:
        return _string
    if tp is int:
        return _integer
    if tp is bool:
        return lambda v, _w: bool(v)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _converter(args[0])
        if _is_record(args[0]):
            # A table of named entries, in file order, or an array of tables.
            return lambda v, w: (
                tuple(record(args[0], x, f"{w}.{k}", k) for k, x in v.items())
                if isinstance(v, dict)
                else tuple(_each(item, _list(v, w), w))
            )
        return lambda v, w: tuple(_each(item, _list(v, w), w))
    if origin is tuple:
        items = [_converter(a) for a in args]

        def fixed(v: Any, w: str) -> tuple[Any, ...]:
            got = _list(v, w)
            if len(got) != len(items):
                raise ValueError(f"{w} has {len(got)} items, not {len(items)}")
            return tuple(
                c(x, f"{w}[{i}]")
                for i, (c, x) in enumerate(zip(items, got, strict=True))
            )

        return fixed
    if origin is frozenset:
        item = _converter(args[0])
        return lambda v, w: frozenset(_each(item, _list(v, w), w))
    if origin is dict:
        if _is_record(args[1]):
            return lambda v, w: {
                k: record(args[1], x, f"{w}.{k}", k) for k, x in _table(v, w).items()
            }
        entry = _converter(args[1])
        return lambda v, w: {k: entry(x, f"{w}.{k}") for k, x in _table(v, w).items()}
    raise TypeError(f"no conversion to {tp!r}")
