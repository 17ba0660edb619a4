"""What a target asks of a running board, read once from its `ghafgen-manifest.json`
(the `contents.runtime` record `generate` writes) into typed records.

Entry point: `load_expected(target)` -> `Expected`; `installed_manifest(source)`
finds the one the running system was built from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from ghafgen.fileio import Unreadable, read_regular
from ghafgen.records import GIVEN, NAME, Parse, record
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


def _value(raw: Any) -> Value:
    if not isinstance(raw, dict):
        raise ValueError(f"a property value {raw!r}")
    if raw.get("empty"):
        return Value("empty")
    if "strings" in raw:
        return Value("strings", tuple(str(s) for s in raw["strings"]))
    return Value(
        "cells", tuple(c if isinstance(c, str) else int(c) for c in raw["cells"])
    )


def _props(raw: Any) -> dict[str, Value]:
    if not isinstance(raw, dict):
        raise ValueError(f"properties {raw!r}")
    return {str(k): _value(v) for k, v in raw.items()}


# Each record below is read from the manifest's JSON by its annotations
# (ghafgen.records): a field is its key there unless it says otherwise.
Props = Annotated[dict[str, Value], Parse(_props)]


class DtNode(NamedTuple):
    name: str
    props: Props
    nodes: tuple[DtNode, ...]


class Fragment(NamedTuple):
    target_label: str
    target_path: str
    props: Props
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
    mode: Annotated[int, Parse(lambda m: int(str(m), 8))]  # "0660"
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
    name: Annotated[str, NAME]  # its key in `vms`
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
    target: Annotated[str, GIVEN]  # the manifest's own `target`
    manifest: Annotated[str, GIVEN]  # where it was read
    kernel: Kernel
    overlays: tuple[Overlay, ...]
    bindings: tuple[Binding, ...]
    device_nodes: DeviceNodes
    vms: dict[str, Vm]


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
        return record(
            Expected,
            rt,
            "runtime",
            target=str(doc.get("target", "")),
            manifest=where,
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
