"""What a target asks of a running board, read once from its `ghafgen-manifest.json`
(the `contents.runtime` record `generate` writes) into typed records.

Entry point: `load_expected(target)` -> `Expected`; `installed_manifest(source)`
finds the one the running system was built from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from ghafgen.fileio import Unreadable, read_regular
from ghafgen.verify.source import Source, VerifyError

MANIFEST = "ghafgen-manifest.json"
# The cap render/output.py reads a manifest with (verify does not import render).
MAX_MANIFEST = 4 << 20
# Where the generated default.nix installs its manifest on the board.
INSTALLED = "etc/ghafgen"


class Value(NamedTuple):
    """A property value: no value, strings, or cells (ints and `&label`s)."""

    kind: str  # "empty" | "strings" | "cells"
    items: tuple[int | str, ...] = ()

    def text(self) -> str:
        if self.kind == "empty":
            return "(no value)"
        if self.kind == "strings":
            return ", ".join(f'"{s}"' for s in self.items)
        return "<" + " ".join(str(i) for i in self.items) + ">"


class DtNode(NamedTuple):
    name: str
    props: dict[str, Value]
    nodes: tuple[DtNode, ...]


class Fragment(NamedTuple):
    target_label: str
    target_path: str
    props: dict[str, Value]
    nodes: tuple[DtNode, ...]


class Overlay(NamedTuple):
    file: str
    fragments: tuple[Fragment, ...]


class Param(NamedTuple):
    param: str
    file: str


class Driver(NamedTuple):
    bus: str
    name: str


class Kernel(NamedTuple):
    series: str
    series_file: str
    params: tuple[Param, ...]
    absent_params: tuple[Param, ...]
    drivers: tuple[Driver, ...]


class Binding(NamedTuple):
    file: str
    bus: str
    driver: str
    devices: tuple[str, ...]
    vm: str


class DeviceNodes(NamedTuple):
    file: str
    group: str
    mode: int
    paths: tuple[str, ...]


class GpuNode(NamedTuple):
    """The node nvgpu makes that CUDA opens, and the group it is opened to."""

    path: str
    group: str


class Guest(NamedTuple):
    tree: Overlay | None
    compatibles: dict[str, tuple[str, ...]]
    platform_bus: str
    bpmp: bool
    bpmp_node: str
    bpmp_driver: str
    console: str
    params: tuple[str, ...]
    # The GPU guest's (absent from other VMs' records).
    modules: tuple[str, ...] = ()
    gpu_node: GpuNode | None = None


class Vm(NamedTuple):
    name: str
    file: str
    qemu: str
    machine: str
    args: tuple[str, ...]
    platform_devices: tuple[str, ...]
    pci_functions: tuple[str, ...]
    device_allow: tuple[str, ...]
    vfio_links: dict[str, str]
    policy_file: str
    guest: Guest


class Expected(NamedTuple):
    target: str
    manifest: str
    kernel: Kernel
    overlays: tuple[Overlay, ...]
    bindings: tuple[Binding, ...]
    device_nodes: DeviceNodes
    vms: dict[str, Vm]


def _value(raw: dict[str, Any]) -> Value:
    if raw.get("empty"):
        return Value("empty")
    if "strings" in raw:
        return Value("strings", tuple(str(s) for s in raw["strings"]))
    return Value(
        "cells", tuple(c if isinstance(c, str) else int(c) for c in raw["cells"])
    )


def _props(raw: dict[str, Any]) -> dict[str, Value]:
    return {str(k): _value(v) for k, v in raw.items()}


def _node(raw: dict[str, Any]) -> DtNode:
    return DtNode(
        str(raw["name"]),
        _props(raw["props"]),
        tuple(_node(n) for n in raw["nodes"]),
    )


def _overlay(raw: dict[str, Any]) -> Overlay:
    return Overlay(
        str(raw["file"]),
        tuple(
            Fragment(
                str(f["target_label"]),
                str(f["target_path"]),
                _props(f["props"]),
                tuple(_node(n) for n in f["nodes"]),
            )
            for f in raw["fragments"]
        ),
    )


def _strs(raw: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in raw)


def _vm(name: str, raw: dict[str, Any]) -> Vm:
    g = raw["guest"]
    return Vm(
        name=name,
        file=str(raw["file"]),
        qemu=str(raw["qemu"]),
        machine=str(raw["machine"]),
        args=_strs(raw["args"]),
        platform_devices=_strs(raw["platform_devices"]),
        pci_functions=_strs(raw["pci_functions"]),
        device_allow=_strs(raw["device_allow"]),
        vfio_links={str(k): str(v) for k, v in raw["vfio_links"].items()},
        policy_file=str(raw["policy_file"]),
        guest=Guest(
            tree=_overlay(g["tree"]) if g["tree"] else None,
            compatibles={str(k): _strs(v) for k, v in g["compatibles"].items()},
            platform_bus=str(g["platform_bus"]),
            bpmp=bool(g["bpmp"]),
            bpmp_node=str(g["bpmp_node"]),
            bpmp_driver=str(g["bpmp_driver"]),
            console=str(g["console"]),
            params=_strs(g["params"]),
            modules=_strs(g.get("modules", ())),
            gpu_node=(
                GpuNode(str(g["gpu_node"]["path"]), str(g["gpu_node"]["group"]))
                if g.get("gpu_node")
                else None
            ),
        ),
    )


def parse_expected(doc: Any, where: str) -> Expected:
    """The runtime record of a parsed manifest.

    Raises:
        VerifyError: not a ghafgen manifest, or one from before `runtime` existed.
    """
    if not isinstance(doc, dict) or doc.get("generator") != "ghafgen":
        raise VerifyError(f"{where}: not a ghafgen manifest")
    contents = doc.get("contents")
    rt = contents.get("runtime") if isinstance(contents, dict) else None
    if not isinstance(rt, dict):
        raise VerifyError(
            f"{where}: the manifest has no runtime record; regenerate the target "
            "with this ghafgen (ghafgen generate) and deploy it"
        )
    try:
        k = rt["kernel"]
        nodes = rt["device_nodes"]
        return Expected(
            target=str(doc.get("target", "")),
            manifest=where,
            kernel=Kernel(
                series=str(k["series"]),
                series_file=str(k["series_file"]),
                params=tuple(
                    Param(str(p["param"]), str(p["file"])) for p in k["params"]
                ),
                absent_params=tuple(
                    Param(str(p["param"]), str(p["file"])) for p in k["absent_params"]
                ),
                drivers=tuple(
                    Driver(str(d["bus"]), str(d["name"])) for d in k["drivers"]
                ),
            ),
            overlays=tuple(_overlay(o) for o in rt["overlays"]),
            bindings=tuple(
                Binding(
                    str(b["file"]),
                    str(b["bus"]),
                    str(b["driver"]),
                    _strs(b["devices"]),
                    str(b["vm"]),
                )
                for b in rt["bindings"]
            ),
            device_nodes=DeviceNodes(
                str(nodes["file"]),
                str(nodes["group"]),
                int(str(nodes["mode"]), 8),
                _strs(nodes["paths"]),
            ),
            vms={str(n): _vm(str(n), v) for n, v in rt["vms"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise VerifyError(f"{where}: malformed runtime record ({e!r})") from None


def load_expected(target: Path) -> Expected:
    """A generated folder's manifest, or the manifest file itself.

    Raises:
        VerifyError: unreadable, or not a ghafgen manifest.
    """
    try:
        if target.is_dir():
            # Found by ghafgen in the folder: read as any file it finds itself.
            path = target / MANIFEST
            data = read_regular(path, limit=MAX_MANIFEST, follow=False)
        else:
            # Named on the command line: `verify <(ssh board cat ...)` may be a pipe.
            path = target
            data = path.read_bytes()
        doc = json.loads(data.decode("utf-8"))
    except Unreadable as e:
        raise VerifyError(str(e)) from None
    except OSError as e:
        raise VerifyError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:
        raise VerifyError(f"{path}: not JSON ({e})") from None
    return parse_expected(doc, str(path))


def installed_manifest(source: Source) -> Expected:
    """The manifest the running system's configuration installed (/etc/ghafgen).

    Raises:
        VerifyError: none, or more than one, installed.
    """
    found = [
        f"{INSTALLED}/{name}/{MANIFEST}"
        for name in source.listdir(INSTALLED)
        if source.raw(f"{INSTALLED}/{name}/{MANIFEST}") is not None
    ]
    if len(found) != 1:
        what = "no target" if not found else f"{len(found)} targets"
        raise VerifyError(
            f"/{INSTALLED}: {what} installed; give verify the generated folder "
            "or its ghafgen-manifest.json"
        )
    data = source.raw(found[0]) or b""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise VerifyError(f"/{found[0]}: not JSON ({e})") from None
    return parse_expected(doc, "/" + found[0])
