"""Which of a kernel's binding schemas a set of trees can use.

`dt-mk-schema` over every binding of a kernel takes minutes; the trees `check`
validates name a few dozen compatibles. `select` keeps the schemas that can
apply to them: each schema that names one of the trees' compatibles (or has
a compatible pattern one matches), each schema with a `select:` of its own
unless that block selects only by compatibles none of the trees has
(dt-validate tries the others on every node), and whatever those reference
with `$ref`, transitively. dtschema adds its own
core schemas whatever it is given.

dtschema also decodes each property by the type any schema it was given
defines for it, so the schemas that name a property of the trees that its
own schemas do not are kept too, and the schemas it selects by node name.

A schema is kept by its text, without parsing YAML: a compatible as a whole
word, a `pattern:` as a regular expression, a property as a key. Each can
keep too much, which costs time. What can still differ is a property typed
only by a patternProperties regex of a dropped schema;
benchmarks/first_check.py compares the findings on every reference tree with
the subset and with every schema.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ghafgen.catalog.fdtview import FdtView

_KEY = re.compile(r"""^\s+['"]?(#?[^\s'"#:]+)['"]?:""", re.MULTILINE)
# Nodes whose properties are labels, not properties any schema types.
_LABEL_NODES = ("/__symbols__", "/aliases", "/__fixups__", "/__local_fixups__")
_NODENAME = re.compile(r"^  \$nodename:", re.MULTILINE)
_COMPATIBLE = re.compile(r"^  compatible:", re.MULTILINE)
_REF = re.compile(r"""\$ref:\s*["']?([^"'#\s]+\.yaml)""")
_PATTERN = re.compile(r"""pattern:\s*["']?(.+?)["']?\s*$""", re.MULTILINE)
# A schema's own `select:` block: to the next top-level key.
_OWN_SELECT = re.compile(r"^select:(.*?)(?=^\S)", re.MULTILINE | re.DOTALL)
_LOGIC = re.compile(r"\b(?:not|anyOf|oneOf|allOf|if):")
_NEEDS_COMPATIBLE = re.compile(r"required:\s*(?:\n\s*-\s*|\[\s*)compatible\b")
# Characters a compatible is made of: a name is whole when none touches it.
_WORD = r"[\w,.+/-]"


class Trees(NamedTuple):
    """What of the trees decides which schemas they can use."""

    compatibles: frozenset[str]
    properties: frozenset[str]  # property names, on any node


def trees(dtbs: Iterable[Path]) -> Trees:
    compats: set[str] = set()
    props: set[str] = set()
    for dtb in dtbs:
        view = FdtView(dtb.read_bytes(), str(dtb))
        for off, path in view.nodes():
            compats.update(view.strings(off, "compatible"))
            if not path.startswith(_LABEL_NODES):
                props.update(view.props(off))
    return Trees(frozenset(compats), frozenset(props))


def _core_names() -> set[str]:
    """Every key dtschema's own schemas use (it always loads them)."""
    spec = importlib.util.find_spec("dtschema")
    if spec is None or not spec.submodule_search_locations:
        return set()
    out: set[str] = set()
    for where in spec.submodule_search_locations:
        for path in Path(where, "schemas").rglob("*.yaml"):
            out.update(_KEY.findall(path.read_text(encoding="utf-8")))
    return out


def _names_one(text: str, names: re.Pattern[str], compats: set[str]) -> bool:
    if names.search(text):
        return True
    for m in _PATTERN.finditer(text):
        try:
            pattern = re.compile(m.group(1))
        except re.error:
            continue
        if any(pattern.search(c) for c in compats):
            return True
    return False


def _applies(text: str, names: re.Pattern[str], compats: set[str]) -> bool:
    own = _OWN_SELECT.search(text)
    if own is None:
        if _NODENAME.search(text) and not _COMPATIBLE.search(text):
            return True  # dtschema selects it by node name
        # dtschema selects it by the compatibles it lists
        return _names_one(text, names, compats)
    block = own.group(1)
    if block.strip() == "false":
        return False
    if (
        "compatible" in block
        and _NEEDS_COMPATIBLE.search(block)
        and not _LOGIC.search(block)
    ):
        # Selects only nodes with one of the compatibles its block names.
        return _names_one(block, names, compats)
    return True  # selects by something else: it may apply to any node


def _refs(path: Path, text: str, root: Path) -> list[Path]:
    out = []
    for ref in _REF.findall(text):
        for prefix in ("http://devicetree.org/schemas/", "/schemas/"):
            if ref.startswith(prefix):
                target = root / ref.removeprefix(prefix)
                break
        else:
            target = (path.parent / ref).resolve()
        if target.is_file():  # else one of dtschema's core schemas
            out.append(target)
    return out


def select(bindings: Path, used: Trees) -> list[Path]:
    """The schemas under `bindings` the trees can use, sorted."""
    root = bindings.resolve()
    compats = set(used.compatibles)
    words = "|".join(re.escape(c) for c in sorted(compats)) or r"(?!)"
    names = re.compile(rf"(?<!{_WORD})(?:{words})(?!{_WORD})")
    texts = {p: p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.yaml"))}
    kept = _closure(
        [p for p, text in texts.items() if _applies(text, names, compats)], texts, root
    )
    # dtschema decodes a property by the type any schema it was given defines:
    # a property of the trees that neither its own schemas nor the kept ones
    # name brings in the schemas that do.
    keys = {p: set(_KEY.findall(text)) for p, text in texts.items()}
    named = _core_names().union(*(keys[p] for p in kept if p in keys))
    missing = used.properties - named
    more = [p for p, k in keys.items() if p not in kept and not missing.isdisjoint(k)]
    return sorted(_closure([*kept, *more], texts, root))


def _closure(paths: list[Path], texts: dict[Path, str], root: Path) -> set[Path]:
    """`paths` and every schema they reference with `$ref`, transitively."""
    todo = list(paths)
    kept: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in kept:
            continue
        kept.add(path)
        text = texts.get(path)
        if text is None:
            text = path.read_text(encoding="utf-8")
        todo += _refs(path, text, root)
    return kept


# Bumped when `select` changes what it keeps: older remembered choices go stale.
RULES = 1


def remembered(bindings: Path, used: Trees, folder: Path) -> list[Path]:
    """`select`, remembered in `folder` per set of compatibles and properties:
    reading every schema's text takes seconds a warm `check` need not pay."""
    wanted = json.dumps([RULES, sorted(used.compatibles), sorted(used.properties)])
    name = hashlib.sha256(wanted.encode()).hexdigest()[:24]
    path = folder / f"{name}.json"
    root = bindings.resolve()
    if path.is_file():
        return [root / rel for rel in json.loads(path.read_text(encoding="utf-8"))]
    picked = select(bindings, used)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.{os.getpid()}"
    tmp.write_text(json.dumps([p.relative_to(root).as_posix() for p in picked]))
    os.replace(tmp, path)
    return picked


def key(bindings: Path, schemas: list[Path]) -> str:
    """A short name for the selection: another selection gets another key."""
    root = bindings.resolve()
    digest = hashlib.sha256()
    for p in schemas:
        digest.update(p.relative_to(root).as_posix().encode() + b"\0")
    return digest.hexdigest()[:16]
