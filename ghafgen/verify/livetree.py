"""The live device tree as the kernel exposes it (one folder per node, one file
per property holding its raw bytes), and the overlay check built on it.

Entry points: `LiveTree(source, base)`, `overlay_checks(tree, overlay, link)`.
Labels resolve through the tree's own /__symbols__ and `phandle` properties, as
the overlay's references did when it was applied.
"""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.verify.expect import DtNode, Overlay, Value
from ghafgen.verify.report import Check, failed, passed
from ghafgen.verify.source import Source

# drivers/of/base.c: of_core_init() exposes the tree at /sys/firmware/devicetree/base.
HOST_BASE = "sys/firmware/devicetree/base"
# Inside a guest the same tree is also at /proc/device-tree (a link to the above).
GUEST_BASE = HOST_BASE


class LiveTree:
    def __init__(self, source: Source, base: str = HOST_BASE) -> None:
        self.source = source
        self.base = base.strip("/")

    def _dir(self, path: str) -> str:
        return self.base + ("" if path in ("", "/") else "/" + path.strip("/"))

    def prop(self, path: str, name: str) -> bytes | None:
        return self.source.raw(f"{self._dir(path)}/{name}")

    def has(self, path: str) -> bool:
        """A node exists: the kernel gives every node a `name` (drivers/of/fdt.c,
        populate_properties), so its folder holds at least that file."""
        return self.prop(path, "name") is not None

    def children(self, path: str) -> tuple[str, ...]:
        return tuple(
            n
            for n in self.source.listdir(self._dir(path))
            if self.has(f"{path.rstrip('/')}/{n}")
        )

    def label_path(self, label: str) -> str | None:
        raw = self.prop("/__symbols__", label)
        return raw.rstrip(b"\0").decode("utf-8", errors="replace") if raw else None

    def phandle(self, label: str) -> int | None:
        path = self.label_path(label)
        raw = self.prop(path, "phandle") if path else None
        return int.from_bytes(raw[:4], "big") if raw and len(raw) >= 4 else None

    def strings(self, path: str, name: str) -> tuple[str, ...]:
        raw = self.prop(path, name)
        if raw is None:
            return ()
        return tuple(s.decode("utf-8", "replace") for s in raw.split(b"\0") if s)

    def encode(self, value: Value) -> bytes | str:
        """The bytes a property holds; a string names a label the tree lacks."""
        if value.kind == "empty":
            return b""
        if value.kind == "strings":
            return b"".join(str(s).encode() + b"\0" for s in value.items)
        out = b""
        for item in value.items:
            if isinstance(item, str):
                ph = self.phandle(item.lstrip("&"))
                if ph is None:
                    return f"no phandle for {item} in /__symbols__"
                out += ph.to_bytes(4, "big")
            else:
                out += item.to_bytes(4, "big")
        return out


def shown(raw: bytes | None, like: Value) -> str:
    """Bytes as the kind of value expected, for a failure message."""
    if raw is None:
        return "(absent)"
    if like.kind == "strings":
        return ", ".join(
            f'"{s.decode("utf-8", "replace")}"' for s in raw.split(b"\0")[:-1]
        )
    if like.kind == "cells" and len(raw) % 4 == 0:
        return (
            "<"
            + " ".join(
                str(int.from_bytes(raw[i : i + 4], "big"))
                for i in range(0, len(raw), 4)
            )
            + ">"
        )
    return "(no value)" if not raw else raw.hex()


def _id_diff(expected: bytes, raw: bytes) -> str:
    """Which IDs an allow list lacks and which it holds beyond the generated ones."""

    def ids(b: bytes) -> set[int]:
        return {int.from_bytes(b[i : i + 4], "big") for i in range(0, len(b) - 3, 4)}

    want, got = ids(expected), ids(raw)
    parts = []
    if want - got:
        parts.append("lacks " + " ".join(str(i) for i in sorted(want - got)))
    if got - want:
        parts.append("also allows " + " ".join(str(i) for i in sorted(got - want)))
    return "; ".join(parts)


def _props(
    tree: LiveTree, path: str, props: dict[str, Value], file: str, link: str
) -> Iterator[Check]:
    for name, value in props.items():
        subject = f"{path} {name}"
        want = tree.encode(value)
        raw = tree.prop(path, name)
        if isinstance(want, str):
            yield failed(
                link,
                subject,
                expected=value.text(),
                source=file,
                found=want,
                hint=(
                    "the tree was not built with labels (dtc -@); is this the tree the "
                    "target's overlays were applied to?"
                ),
            )
        elif raw == want:
            yield passed(link, subject, shown(raw, value))
        else:
            found = shown(raw, value)
            if raw is not None and name.startswith("allowed-"):
                found += f" ({_id_diff(want, raw)})"
            yield failed(
                link,
                subject,
                expected=value.text(),
                source=file,
                found=found,
                hint=_hint(link, raw is None),
            )


def _hint(link: str, absent: bool) -> str:
    if link == "guest":
        return (
            "the VM did not start with the generated guest tree: check microvm@<vm>'s "
            "preStart (guest-tree.nix) and that QEMU got -dtb ghafgen-guest.dtb"
        )
    if absent:
        return (
            "the booted tree lacks the overlay: is hardware.deviceTree enabled, "
            "and did the bootloader load the DTB of this generation (reboot after "
            "nixos-rebuild switch; UEFI/extlinux may load the firmware's own tree)?"
        )
    return (
        "the booted tree differs from the overlay: another overlay or a later "
        "edit changes it; regenerate and redeploy, or boot this generation's DTB"
    )


def _nodes(
    tree: LiveTree, parent: str, nodes: tuple[DtNode, ...], file: str, link: str
) -> Iterator[Check]:
    for node in nodes:
        path = f"{parent.rstrip('/')}/{node.name}"
        if not tree.has(path):
            yield failed(
                link,
                f"{path} present",
                expected=f"node {node.name}",
                source=file,
                found="(absent)",
                hint=_hint(link, True),
            )
            continue
        yield passed(link, f"{path} present")
        yield from _props(tree, path, node.props, file, link)
        yield from _nodes(tree, path, node.nodes, file, link)
        # A node the overlay writes holds only what it writes: another VM's
        # node under the proxy would widen what some VM may reach.
        extra = sorted(set(tree.children(path)) - {n.name for n in node.nodes})
        if extra:
            yield failed(
                link,
                f"{path} holds only the generated nodes",
                expected=", ".join(n.name for n in node.nodes) or "no child node",
                source=file,
                found=", ".join(extra),
                hint=(
                    "something else adds nodes here (another overlay or a hand edit); "
                    "remove it"
                ),
            )


def overlay_checks(tree: LiveTree, overlay: Overlay, link: str) -> Iterator[Check]:
    """Every property and node the overlay writes, found in the live tree."""
    for frag in overlay.fragments:
        if frag.target_label:
            path = tree.label_path(frag.target_label)
            if path is None:
                yield failed(
                    link,
                    f"&{frag.target_label} in /__symbols__",
                    expected=f"label {frag.target_label}",
                    source=overlay.file,
                    found="(absent)",
                    hint=(
                        "the booted tree is not the one the target was generated for "
                        "(dt_flavor, board), or it was built without labels (dtc -@)"
                    ),
                )
                continue
        else:
            path = frag.target_path
        if not tree.has(path):
            yield failed(
                link,
                f"{path} present",
                expected="the overlay's target node",
                source=overlay.file,
                found="(absent)",
                hint=_hint(link, True),
            )
            continue
        yield from _props(tree, path, frag.props, overlay.file, link)
        yield from _nodes(tree, path, frag.nodes, overlay.file, link)
