"""A tree and its base cut down to what dt-validate needs to judge the difference.

`check` subtracts a base tree's findings from those of the tree its overlays
make, so only the nodes the overlays touch can add any. Validating the whole
board tree twice costs tens of seconds of CPU and brings in the schemas of
every device on the board; `pair` keeps, in both trees alike:

- whole (every property): the root, each node the tree adds or changes with
  everything below it (a node's schema also sees its children), the nodes
  `also` names, and the ancestors of all these (their `#address-cells`,
  `#size-cells`, `interrupt-parent` and ranges decide how a descendant's
  cells are read);
- as stubs (only `reg`, `ranges`, `phandle` and the `#...-cells`): every
  node a whole node's cells may refer to by phandle, with its ancestors:
  dtschema reads `#clock-cells`, `#interrupt-cells`, `#iommu-cells`, ...
  from the provider to split a phandle array; a provider that is not there
  stops it, and one without its cells sends its decoder into a loop.

A cell counts as a reference when its value is a phandle of the tree: that
keeps a stub too many at worst. A stub refers to nothing, so no more are
needed. Nodes under `/__` (symbols, fixups) are dropped: dt-validate skips
them. Every other node is left out. A node kept but untouched is the same
in both trees, so what dt-validate says of it is in both and subtracted; a
parent's findings can only name the children kept (those the files touch).
"""

from __future__ import annotations

import fnmatch
import struct
from collections.abc import Iterable
from typing import Any, NamedTuple

from ghafgen.catalog.fdtview import FdtView

_STUB = ("reg", "ranges", "phandle")
_SELF = ("phandle", "linux,phandle")


class Kept(NamedTuple):
    whole: frozenset[str]
    stubs: frozenset[str]


# Each node's properties by path, and which node each phandle names.
_Index = tuple[dict[str, dict[str, bytes]], dict[int, str]]


def _index(view: FdtView) -> _Index:
    props: dict[str, dict[str, bytes]] = {}
    phandles: dict[int, str] = {}
    for off, path in view.nodes():
        if path.startswith("/__"):
            continue
        props[path] = view.props(off)
        for name in _SELF:
            value = props[path].get(name)
            if value is not None and len(value) == 4:
                phandles[struct.unpack(">I", value)[0]] = path
    return props, phandles


def _ancestors(path: str) -> list[str]:
    out = ["/"]
    parts = path.strip("/").split("/")
    out += ["/" + "/".join(parts[:n]) for n in range(1, len(parts))]
    return out if path != "/" else []


def _indexes(base: bytes, tree: bytes) -> list[_Index]:
    return [_index(FdtView(base, "the base tree")), _index(FdtView(tree, "the tree"))]


def changed(base: bytes, tree: bytes) -> set[str]:
    """Paths of the nodes one tree has and the other lacks, or has otherwise."""
    (old, _), (new, _) = _indexes(base, tree)
    return {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}


def keep(base: bytes, tree: bytes, also: Iterable[str] = ()) -> Kept:
    """Which nodes of the two trees `pair` keeps whole and which as stubs."""
    trees = _indexes(base, tree)
    (old, _), (new, _) = trees
    paths = old.keys() | new.keys()
    roots = {p for p in paths if old.get(p) != new.get(p)}
    roots |= {p for p in paths if any(fnmatch.fnmatchcase(p, g) for g in also)}
    whole = {"/"} | {
        p for p in paths if p in roots or any(a in roots for a in _ancestors(p))
    }
    whole |= {a for p in whole for a in _ancestors(p)}
    stubs: set[str] = set()
    for props, phandles in trees:
        for path in whole & props.keys():
            for name, value in props[path].items():
                if name in _SELF or len(value) % 4:
                    continue
                for (cell,) in struct.iter_unpack(">I", value):
                    found = phandles.get(cell)
                    if found is not None:
                        stubs.add(found)
                        stubs.update(_ancestors(found))
    return Kept(frozenset(whole), frozenset(stubs - whole))


def pruned(blob: bytes, kept: Kept) -> bytes:
    """`blob` with only the nodes `kept` names, as `kept` says, in their order."""
    import libfdt

    view = FdtView(blob)
    out = libfdt.FdtSw(len(blob) + 1024)  # never larger than the whole
    out.finish_reservemap()

    def emit(off: int, path: str) -> None:
        stub = path in kept.stubs
        out.begin_node("" if path == "/" else view.fdt.get_name(off))
        for name, value in view.props(off).items():
            if not stub or name in _STUB or name.startswith("#"):
                out.property(name, value)
        for child in view.children(off):
            name = view.fdt.get_name(child)
            sub = f"{path.rstrip('/')}/{name}"
            if sub in kept.whole or sub in kept.stubs:
                emit(child, sub)
        out.end_node()

    emit(0, "/")
    fdt: Any = out.as_fdt()
    fdt.pack()
    return bytes(fdt.as_bytearray())


def pair(base: bytes, tree: bytes, also: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """(base, tree), each cut down to the nodes `keep` names for both."""
    kept = keep(base, tree, also)
    return pruned(base, kept), pruned(tree, kept)
