"""Binding schemas: what dt-validate says about the trees ghafgen's files make.

`validate` runs dt-validate (PyPI dtschema) over many DTBs against one
processed schema set, one process per CPU, and returns its findings per
DTB; `dtschema` says whether it can run at all. `added` keeps what a tree
has beyond its base tree: a finding the base already has is not
ghafgen's, and a finding that names properties only names the ones the base
lacked. `departure_for` says which documented departure
(catalog/data/binding_departures.toml) covers a finding, if any.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from ghafgen.errors import ToolError
from ghafgen.tools import run

# Messages that name the properties they are about (jsonschema's wording).
_NAMED = (
    re.compile(r"^('[^']+') is a required property$"),
    re.compile(r"^((?:'[^']+'(?:, )?)+) (?:does|do) not match any of the regexes"),
    re.compile(
        r"^(?:Unevaluated|Additional) properties are not allowed "
        r"\(((?:'[^']+'(?:, )?)+) (?:was|were) unexpected\)$"
    ),
)


@dataclass(frozen=True)
class Finding:
    node: str
    message: str
    schema: str = ""
    cited: tuple[str, ...] = ()  # property names the finding is about
    compatible: tuple[str, ...] = ()  # only for "failed to match any schema"

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """What makes two findings the same complaint, whatever names they cite."""
        shape = self.message if not self.cited else _shape(self.message)
        return (self.node, self.schema, (shape, *self.compatible))

    def render(self) -> str:
        where = self.schema.rsplit("/schemas/", 1)[-1] if self.schema else "dtschema"
        text = f"{self.node}: {self.message} [{where}]"
        named = set(re.findall(r"'([^']+)'", self.message))
        if self.cited and named - set(self.cited):
            # The message also names what the base has or a departure covers.
            text += f" (added and undocumented: {', '.join(self.cited)})"
        return text


@dataclass(frozen=True)
class Departure:
    id: str
    tree: str
    node: str
    reason: str
    source: str
    compatible: str = ""
    properties: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    in_base: bool = False  # the base tree's own (the pinned QEMU's /bpmp)

    def covers(self, f: Finding) -> bool:
        if not fnmatch.fnmatchcase(f.node, self.node):
            return False
        if f.compatible:
            return self.compatible in f.compatible
        if f.cited:
            return bool(self.properties) and set(f.cited) <= set(self.properties)
        return any(re.search(m, f.message) for m in self.messages)


def _shape(message: str) -> str:
    # A list of names is one slot: the base's "'a' do not match" and the
    # tree's "'a', 'b' do not match" are the same complaint.
    return re.sub(r"'[^']+'(?:, '[^']+')*", "'_'", message)


def _cited(message: str, path: list[object]) -> tuple[str, ...]:
    if path:
        return (str(path[0]),)
    for pattern in _NAMED:
        m = pattern.match(message)
        if m:
            return tuple(re.findall(r"'([^']+)'", m.group(1)))
    return ()


@dataclass(frozen=True)
class DtSchema:
    """dtschema as this interpreter has it: the one answer to "can `check` run
    dt-validate", asked by `check` and by the tests alike."""

    version: str
    scripts: dict[str, tuple[str, ...]]  # console script -> argv that runs it

    def argv(self, script: str) -> list[str]:
        return list(self.scripts[script])


_SCRIPTS = ("dt-validate", "dt-mk-schema")
NOT_INSTALLED = "dt-validate not installed (pip install 'ghafgen[schemas]')"


@functools.cache
def dtschema() -> DtSchema | None:
    """dtschema installed for the interpreter running ghafgen, or None.

    Its tools run as this interpreter's entry points, never as whatever
    `dt-validate` comes first on PATH: another Python's dtschema may be
    another version, and the schemas it processed would not be this one's.
    """
    try:
        dist = metadata.distribution("dtschema")
    except metadata.PackageNotFoundError:
        return None
    points = {e.name: e for e in dist.entry_points if e.group == "console_scripts"}
    if not all(name in points for name in _SCRIPTS):
        return None
    if not all(
        re.fullmatch(r"[\w.]+", points[n].value.replace(":", ".")) for n in _SCRIPTS
    ):
        return None  # not a plain module:function, so not one this can start
    scripts: dict[str, tuple[str, ...]] = {
        name: (
            sys.executable,
            "-c",
            f"import sys; from {points[name].module} import {points[name].attr} "
            f"as main; sys.exit(main())",
        )
        for name in _SCRIPTS
    }
    return DtSchema(dist.version, scripts)


# QEMU writes fresh random seeds into /chosen on every dump; zeroed, the same
# tree hashes the same and dt-validate's findings cache hits.
_SEEDS = ("rng-seed", "kaslr-seed")


def stable_copy(src: Path, dest: Path) -> None:
    """Copy a DTB with /chosen's random seeds zeroed (same length, same type)
    and no free space, so equal trees are equal bytes."""
    import libfdt

    fdt = libfdt.Fdt(src.read_bytes())
    chosen = fdt.path_offset("/chosen", [libfdt.NOTFOUND])
    if chosen >= 0:
        for name in _SEEDS:
            got = fdt.getprop(chosen, name, [libfdt.NOTFOUND])
            if not isinstance(got, int):
                fdt.setprop(chosen, name, bytes(len(got)))
    # QEMU's dump also leaves unset bytes in padding and free space; dtc
    # writes the same tree back with both zeroed.
    raw = dest.with_suffix(".raw")
    raw.write_bytes(bytes(fdt.as_bytearray()))
    run(
        ["dtc", "-q", "-I", "dtb", "-O", "dtb", "-o", str(dest), "--", str(raw)]
    ).or_raise()
    raw.unlink()


# Tree bytes worth a dt-validate process of their own (a whole board tree
# is about 200 KB, a cut one a few KB).
_SHARE_BYTES = 64 * 1024


def validate(
    tool: DtSchema, dtbs: list[Path], schema: Path, cache: Path
) -> dict[Path, list[Finding]]:
    """dt-validate over `dtbs` (all in one folder); findings per DTB.

    The trees are shared among one dt-validate process per CPU, largest
    first: a cold run over a board tree takes tens of seconds. Trees as
    small as the cut ones `check` gives (toolchain/prune.py) take one
    process: each pays about a second to load dtschema and the schemas.

    Raises:
        ToolError: dt-validate did not write its report.
    """
    if not dtbs:
        return {}
    cache.mkdir(parents=True, exist_ok=True)
    total = sum(p.stat().st_size for p in dtbs)
    count = min(len(dtbs), os.cpu_count() or 1, -(-total // _SHARE_BYTES))
    shares: list[list[Path]] = [[] for _ in range(max(count, 1))]
    sizes = [0] * len(shares)
    for path in sorted(dtbs, key=lambda p: (-p.stat().st_size, p.name)):
        least = sizes.index(min(sizes))
        shares[least].append(path)
        sizes[least] += path.stat().st_size
    with ThreadPoolExecutor(len(shares)) as pool:
        reports = list(
            pool.map(
                lambda n: _validate_one(tool, shares[n], schema, cache, n),
                range(len(shares)),
            )
        )
    out: dict[Path, list[Finding]] = {p: [] for p in dtbs}
    by_name = {p.name: p for p in dtbs}
    for d in [d for report in reports for d in report]:
        dtb = by_name.get(Path(str(d.get("file", ""))).name)
        if dtb is None or d.get("type") not in ("validation", "unmatched"):
            continue
        message = str(d["message"])
        compatible = d.get("compatible") if d["type"] == "unmatched" else None
        out[dtb].append(
            Finding(
                node=str(d.get("node") or "/"),
                message=message,
                schema=str(d.get("schema") or ""),
                cited=_cited(message, list(d.get("property_path") or [])),
                compatible=tuple(compatible or ()),
            )
        )
    return {
        k: sorted(set(v), key=lambda f: (f.node, f.message)) for k, v in out.items()
    }


def _validate_one(
    tool: DtSchema, dtbs: list[Path], schema: Path, cache: Path, n: int
) -> list[dict[str, Any]]:
    folder = dtbs[0].parent
    report = folder / f"dt-validate-{n}.json"
    report.unlink(missing_ok=True)
    # -m: a compatible no schema matches is a finding too (a binding that
    # does not exist cannot have been followed).
    done = run(
        tool.argv("dt-validate")
        + ["-m", "-s", str(schema), "--cache-dir", str(cache)]
        + ["--json-output", str(report), "--"]
        + [p.name for p in dtbs],
        cwd=folder,
    )
    if not report.exists():
        raise ToolError(f"dt-validate wrote no report:\n{done.stderr[-2000:]}")
    found: list[dict[str, Any]] = json.loads(report.read_text())
    return found


def added(found: list[Finding], base: list[Finding]) -> list[Finding]:
    """Findings of a tree that its base tree does not already have."""
    base_cited: dict[tuple[str, str, tuple[str, ...]], set[str]] = {}
    for f in base:
        base_cited.setdefault(f.key, set()).update(f.cited)
    out = []
    for f in found:
        if f.key not in base_cited:
            out.append(f)
        elif f.cited:
            new = tuple(n for n in f.cited if n not in base_cited[f.key])
            if new:
                out.append(replace(f, cited=new))
    return out


@functools.cache
def departures(data: Path) -> tuple[Departure, ...]:
    """The departures the catalog folder `data` documents (`Catalog.data`)."""
    path = data / "binding_departures.toml"
    if not path.exists():  # a catalog of one's own (GHAFGEN_CATALOG) without one
        return ()
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return tuple(
        Departure(
            id=d["id"],
            tree=d["tree"],
            node=d["node"],
            reason=d["reason"],
            source=d["source"],
            compatible=d.get("compatible", ""),
            properties=tuple(d.get("properties", ())),
            messages=tuple(d.get("messages", ())),
            in_base=bool(d.get("in_base", False)),
        )
        for d in doc["departure"]
    )


def base_departures(base: list[Finding], tree: str, data: Path) -> set[str]:
    """Ids of the `in_base` departures (of catalog folder `data`) the base
    tree's own findings show."""
    return {
        d.id
        for d in departures(data)
        if d.in_base and d.tree == tree and any(d.covers(f) for f in base)
    }


def undocumented(f: Finding, tree: str, data: Path) -> tuple[Finding | None, set[str]]:
    """(what of `f` no departure (of catalog folder `data`) covers or None, ids
    of the departures that cover some)."""
    deps = [
        d
        for d in departures(data)
        if d.tree == tree and fnmatch.fnmatchcase(f.node, d.node)
    ]
    if f.compatible or not f.cited:
        used = {d.id for d in deps if d.covers(f)}
        return (None if used else f), used
    left, used = [], set()
    for name in f.cited:
        by = [d.id for d in deps if name in d.properties]
        used.update(by)
        if not by:
            left.append(name)
    return (replace(f, cited=tuple(left)) if left else None), used
