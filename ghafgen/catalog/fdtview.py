"""A read-only view of a flattened device tree through pylibfdt.

Shared by `catalog import` (reading a vendor tree) and `check` (what a base
tree offers, what a guest tree holds). libfdt is imported on first use so
commands that never read a DTB do not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ghafgen.errors import GhafgenError


class NotADeviceTree(GhafgenError):
    """Bytes that libfdt does not accept as a flattened device tree."""


class FdtView:
    def __init__(self, blob: bytes, source: str = "the tree") -> None:
        """Raises NotADeviceTree when `blob` is not a flattened device tree."""
        import libfdt

        try:
            self.fdt: Any = libfdt.Fdt(blob)
        except libfdt.FdtException as e:
            raise NotADeviceTree(
                f"{source} is not a compiled device tree (.dtb): {e}"
            ) from None
        self.quiet = [libfdt.NOTFOUND]

    def offset(self, path: str) -> int:
        """Offset of the node at `path`, negative when there is none."""
        return int(self.fdt.path_offset(path, self.quiet))

    def prop(self, off: int, name: str) -> Any | None:
        got = self.fdt.getprop(off, name, self.quiet)
        return None if isinstance(got, int) else got

    def cells(self, off: int, name: str) -> list[int]:
        got = self.prop(off, name)
        return list(got.as_uint32_list()) if got is not None else []

    def strings(self, off: int, name: str) -> list[str]:
        got = self.prop(off, name)
        return list(got.as_stringlist()) if got is not None else []

    def cell_count(self, off: int, name: str, default: int) -> int:
        """`#address-cells`/`#size-cells` that apply to node `off` (its parent's)."""
        got = self.cells(self.fdt.parent_offset(off), name)
        return got[0] if got else default

    def symbols(self) -> dict[str, str]:
        """label -> path, from __symbols__ (every label, several may share a path)."""
        off = self.offset("/__symbols__")
        out: dict[str, str] = {}
        if off < 0:
            return out
        prop = self.fdt.first_property_offset(off, self.quiet)
        while prop >= 0:
            p = self.fdt.get_property_by_offset(prop)
            out[p.name] = p.as_str()
            prop = self.fdt.next_property_offset(prop, self.quiet)
        return out

    def props(self, off: int) -> dict[str, bytes]:
        """Every property of node `off`, name -> raw value."""
        out: dict[str, bytes] = {}
        prop = self.fdt.first_property_offset(off, self.quiet)
        while prop >= 0:
            p = self.fdt.get_property_by_offset(prop)
            out[p.name] = bytes(p)
            prop = self.fdt.next_property_offset(prop, self.quiet)
        return out

    def children(self, off: int) -> Iterator[int]:
        child = self.fdt.first_subnode(off, self.quiet)
        while child >= 0:
            yield child
            child = self.fdt.next_subnode(child, self.quiet)

    def nodes(self) -> list[tuple[int, str]]:
        """(offset, path) of every node, sorted by path."""
        out, stack = [], [(0, "")]
        while stack:
            off, path = stack.pop()
            out.append((off, path or "/"))
            stack += [(c, f"{path}/{self.fdt.get_name(c)}") for c in self.children(off)]
        return sorted(out, key=lambda x: x[1])
