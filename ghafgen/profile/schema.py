"""JSON Schema (draft 2020-12) of the profile format, built from `profile.spec`."""

from __future__ import annotations

from typing import Any

from ghafgen.profile import spec

_SCALAR = {"str": "string", "size": "string", "int": "integer", "bool": "boolean"}
# End of input in both ECMA-262 and Python's `re.search` (which jsonschema
# uses): `$` alone also matches before a final newline in Python.
_END = r"(?![\s\S])"
# Strings without a pattern hold no control characters (the checker's rule).
_ONE_LINE = r"^[^\x00-\x1f\x7f]*$"


def _pattern(pattern: str) -> str:
    return pattern[:-1] + _END if pattern.endswith("$") else pattern


def _field(f: spec.Field) -> dict[str, Any]:
    def scalar(type_: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": _SCALAR[type_]}
        if f.enum:
            out["enum"] = list(f.enum)
        if f.pattern:
            out["pattern"] = _pattern(f.pattern)
        elif _SCALAR[type_] == "string" and not f.enum:
            out["pattern"] = _pattern(_ONE_LINE)
        if f.max_len:
            out["maxLength"] = f.max_len
        if f.minimum is not None:
            out["minimum"] = f.minimum
        if f.maximum is not None:
            out["maximum"] = f.maximum
        return out

    if f.type.startswith("list["):
        out: dict[str, Any] = {"type": "array", "items": scalar(f.type[5:-1])}
        if f.max_items:
            out["maxItems"] = f.max_items
    else:
        out = scalar(f.type)
    out["description"] = f.doc
    if f.default not in (None, ()):
        out["default"] = f.default
    return out


def _table(t: spec.Table) -> dict[str, Any]:
    properties = {f.key: _field(f) for f in t.fields}
    if t in spec.NESTED:
        key, inner = spec.NESTED[t]
        properties[key] = {
            "type": "object",
            "description": inner.doc,
            "propertyNames": {"pattern": _pattern(inner.name_pattern)},
            "additionalProperties": _table(inner),
        }
    return {
        "type": "object",
        "description": t.doc,
        "additionalProperties": False,
        "properties": properties,
        "required": [f.key for f in t.fields if f.required],
    }


def _node(path: tuple[str, ...]) -> dict[str, Any]:
    if path in spec.COLLECTIONS:
        t = spec.COLLECTIONS[path]
        return {
            "type": "object",
            "description": t.doc,
            "propertyNames": {"pattern": _pattern(t.name_pattern)},
            "additionalProperties": _table(t),
        }
    if path in spec.CONTAINERS:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: _node(path + (k,)) for k in spec.CONTAINERS[path]},
        }
    return _table(next(t for t in spec.TABLES if t.path == path))


def json_schema() -> dict[str, Any]:
    root = _node(())
    root.update(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://github.com/ghafgen/ghafgen/profile.schema.json",
            "title": "ghafgen profile",
            "required": list(spec.REQUIRED_TOP),
        }
    )
    return root
