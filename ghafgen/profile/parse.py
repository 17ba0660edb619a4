"""Read a profile file: TOML syntax, keys, types and values, then the typed model.

Entry point: `load(path, display_name)`. It never raises on bad input; it
returns the findings, and a `Profile` only when the document is well formed.
"""

import re
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from ghafgen.catalog import Catalog
from ghafgen.findings import (
    ERROR,
    Finding,
    Location,
    Severity,
    declare,
    did_you_mean,
    finding,
)
from ghafgen.profile import spec
from ghafgen.profile.model import (
    Channel,
    Disk,
    Locator,
    Passthrough,
    PciAddress,
    Profile,
    SourceRef,
    Target,
    Virtualization,
    Vm,
    Volume,
)
from ghafgen.profile.toml_lines import KeyPath, key_lines
from ghafgen.units import format_size, parse_size

declare(
    "GG001",
    "toml-syntax",
    ERROR,
    "The profile is not readable TOML (or not UTF-8).",
    "Fix the syntax at the reported line; the message says what the parser expected.",
)
declare(
    "GG012",
    "profile-unreadable",
    ERROR,
    "The profile file cannot be read: missing, a folder, or not permitted.",
    "Check the path and its permissions.",
)
declare(
    "GG002",
    "unknown-key",
    ERROR,
    "A key or table that the profile format does not have.",
    "Use the suggested key, or see `ghafgen schema` for every key.",
)
declare(
    "GG003",
    "wrong-type",
    ERROR,
    "A value of the wrong TOML type (a string where a number belongs, say).",
    'Write the value in the type the message names, e.g. `vcpus = 2`, not `vcpus = "2"`.',
)
declare(
    "GG004",
    "missing-key",
    ERROR,
    "A required key or table is absent.",
    "Add the key; `ghafgen schema` lists the required ones.",
)
declare(
    "GG005",
    "invalid-name",
    ERROR,
    "A name that is not safe as a Nix attribute, systemd unit and file name.",
    "Use lowercase letters, digits and '-', starting with a letter: `net-vm`, not `Net VM`.",
)
declare(
    "GG006",
    "value-too-long",
    ERROR,
    "A string or list longer than the format allows.",
    "Shorten it; names become unit and file names, which have length limits.",
)
declare(
    "GG007",
    "invalid-value",
    ERROR,
    "A value of the right type but outside what the key accepts.",
    "Use one of the values the message lists, or the format it shows.",
)

_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "bool": "true or false",
    "size": 'a size string like "1G"',
    "list[str]": "a list of strings",
    "list[int]": "a list of integers",
}


class LoadResult(NamedTuple):
    profile: Profile | None
    findings: tuple[Finding, ...]

    @property
    def unusable(self) -> bool:
        """True when the file could not be read as TOML at all."""
        return any(f.rule_id in ("GG001", "GG012") for f in self.findings)


def _toml_error_line(message: str) -> int:
    m = re.search(r"at line (\d+)", message)
    return int(m.group(1)) if m else 1


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class _Checker:
    def __init__(
        self, loc: Locator, board: object = None, cat: Catalog | None = None
    ) -> None:
        self.loc = loc
        self.board = board  # [target] board as written, for hints only
        self.cat = cat  # the catalog that names the board, for hints only
        self.findings: list[Finding] = []

    def add(self, rule_id: str, path: KeyPath, message: str, hint: str = "") -> None:
        self.findings.append(finding(rule_id, self.loc(*path), message, hint))

    def unknown(self, path: KeyPath, key: str, allowed: tuple[str, ...]) -> None:
        dotted = ".".join(str(p) for p in path + (key,))
        hint = did_you_mean(key, allowed, "allowed here: " + ", ".join(allowed))
        self.add("GG002", path + (key,), f"unknown key '{dotted}'", hint)

    def container(self, path: tuple[str, ...], value: object) -> None:
        if not isinstance(value, dict):
            self.add(
                "GG003",
                path,
                f"'{'.'.join(path)}' must be a table, not {_kind(value)}",
                f"write it as a [{'.'.join(path)}] table header with keys below it",
            )
            return
        allowed = spec.CONTAINERS[path]
        for key, sub in value.items():
            sub_path = path + (key,)
            if key not in allowed:
                self.unknown(path, key, allowed)
            elif sub_path in spec.CONTAINERS:
                self.container(sub_path, sub)
            elif sub_path in spec.COLLECTIONS:
                self.collection(sub_path, sub, spec.COLLECTIONS[sub_path])
            else:
                self.table(sub_path, sub, _table_at(sub_path))
        if path == ():
            for key in spec.REQUIRED_TOP:
                if key not in value:
                    self.add(
                        "GG004",
                        (),
                        f"missing table [{key}]",
                        "every profile starts with [target] naming `name` and `board`",
                    )

    def collection(
        self, path: tuple[str, ...], value: object, table: spec.Table
    ) -> None:
        if not isinstance(value, dict):
            self.add(
                "GG003",
                path,
                f"'{'.'.join(path)}' must be a table, not {_kind(value)}",
                f"write one [{'.'.join(path)}.<name>] table per entry",
            )
            return
        for name, sub in value.items():
            self.name(path, name, table)
            self.table(path + (name,), sub, table)

    def name(self, path: tuple[str, ...], name: str, table: spec.Table) -> None:
        problem = name_problem(".".join(path), name, table)
        if problem is not None:
            self.add(problem.rule_id, path + (name,), problem.message, problem.hint)

    def table(self, path: tuple[str, ...], value: object, table: spec.Table) -> None:
        if not isinstance(value, dict):
            dotted = ".".join(str(p) for p in path)
            self.add(
                "GG003",
                path,
                f"'{dotted}' must be a table, not {_kind(value)}",
                f"write it as a [{dotted}] table header with keys below it",
            )
            return
        nested = spec.NESTED.get(table)
        allowed = tuple(f.key for f in table.fields) + ((nested[0],) if nested else ())
        for key, sub in value.items():
            fld = table.field(key)
            if nested is not None and key == nested[0]:
                self.collection(path + (key,), sub, nested[1])
            elif fld is None:
                self.unknown(path, key, allowed)
            else:
                self.value(path + (key,), sub, fld)
        for fld in table.fields:
            if fld.required and fld.key not in value:
                self.add(
                    "GG004",
                    path,
                    f"missing key '{fld.key}' in [{'.'.join(path)}]",
                    f"{fld.key}: {fld.doc}",
                )

    def value(self, path: KeyPath, value: object, fld: spec.Field) -> None:
        dotted = ".".join(str(p) for p in path)
        if fld.type.startswith("list["):
            if not isinstance(value, list):
                self.add(
                    "GG003",
                    path,
                    f"'{dotted}' must be {_TYPE_NAMES[fld.type]}, not {_kind(value)}",
                    f"write it in brackets: `{fld.key} = {_example(fld, fld.type[5:-1])}`",
                )
                return
            if fld.max_items and len(value) > fld.max_items:
                self.add(
                    "GG006",
                    path,
                    f"'{dotted}' has {len(value)} items, at most "
                    f"{fld.max_items} are allowed",
                )
            item_type = fld.type[5:-1]
            for i, item in enumerate(value):
                self.scalar(path + (i,), f"{dotted}[{i}]", item, item_type, fld)
        else:
            self.scalar(path, dotted, value, fld.type, fld)

    def scalar(
        self, path: KeyPath, dotted: str, value: object, type_: str, fld: spec.Field
    ) -> None:
        cores = self.board_cores if fld is _VCPUS else None
        problem = value_problem(dotted, value, fld, type_, cores=cores)
        if problem is not None:
            self.add(problem.rule_id, path, problem.message, problem.hint)

    @property
    def board_cores(self) -> int | None:
        """The named board's cores, for the vCPU hint; None if it names none."""
        if not isinstance(self.board, str) or self.cat is None:
            return None
        resolved = self.cat.resolve(self.board)
        return self.cat.board(resolved).cpu_cores if resolved else None


class Problem(NamedTuple):
    """What is wrong with one value, as validate reports it."""

    rule_id: str
    message: str
    hint: str

    def text(self) -> str:
        """The finding without a file and line, for a value given elsewhere (a flag)."""
        return f"{self.message} ({self.rule_id})" + (
            f"\n  hint: {self.hint}" if self.hint else ""
        )


def name_problem(what: str, name: str, table: spec.Table) -> Problem | None:
    """Why `name` cannot name an entry of [`what`] (a `table`), or None."""
    if len(name) > 64:
        return Problem(
            "GG006",
            f"name in [{what}] is {len(name)} characters long",
            f"use {table.name_doc}",
        )
    if not re.fullmatch(table.name_pattern, name):
        return Problem(
            "GG005", f"invalid name {name!r} in [{what}]", f"use {table.name_doc}"
        )
    return None


def spec_field(table: spec.Table, key: str) -> spec.Field:
    """The field `key` of `table`, which must declare it."""
    fld = table.field(key)
    if fld is None:
        raise KeyError(f"{key} in {'.'.join(table.path)}")
    return fld


_VCPUS = spec_field(spec.VM, "vcpus")


def value_problem(
    dotted: str,
    value: object,
    fld: spec.Field,
    type_: str | None = None,
    *,
    cores: int | None = None,
) -> Problem | None:
    """Why `value` cannot stand at `dotted` (a field of type `type_`, by default
    the field's own), or None. Validate and `new-target`'s flags share it, so a
    value is refused in the same words wherever it is given; `cores` (the
    board's) completes the hint of a vCPU count out of range."""
    type_ = type_ or fld.type
    want_str = type_ in ("str", "size")
    ok = (
        (want_str and isinstance(value, str))
        or (type_ == "int" and isinstance(value, int) and not isinstance(value, bool))
        or (type_ == "bool" and isinstance(value, bool))
    )
    if not ok:
        return Problem(
            "GG003",
            f"'{dotted}' must be {_TYPE_NAMES[type_]}, not "
            f"{_kind(value)} ({_short(value)})",
            _type_hint(fld, type_),
        )
    if isinstance(value, str):
        return _string_problem(dotted, value, fld)
    if isinstance(value, int) and (
        (fld.minimum is not None and value < fld.minimum)
        or (fld.maximum is not None and value > fld.maximum)
    ):
        return Problem(
            "GG007",
            f"'{dotted}' is {value}, outside {fld.minimum}..{fld.maximum}",
            _range_hint(fld, cores),
        )
    return None


def _range_hint(fld: spec.Field, cores: int | None) -> str:
    if fld is _VCPUS:
        most = f"the board's {cores} cores" if cores else "the board's cores"
        return (
            f"give the VM at least 1 vCPU and at most {most} (`ghafgen show --boards`)"
        )
    return f"use a number from {fld.minimum} to {fld.maximum}"


def _string_problem(dotted: str, value: str, fld: spec.Field) -> Problem | None:
    if fld.max_len and len(value) > fld.max_len:
        return Problem(
            "GG006",
            f"'{dotted}' is {len(value)} characters long, at most "
            f"{fld.max_len} are allowed",
            "",
        )
    if fld.enum and value not in fld.enum:
        hint = did_you_mean(value, fld.enum, "use one of: " + ", ".join(fld.enum))
        return Problem(
            "GG007", f"'{dotted}' is {value!r}, not one of " + ", ".join(fld.enum), hint
        )
    if fld.pattern == spec.MIB_SIZE and re.fullmatch(spec.SIZE, value):
        return _mib_problem(dotted, value)
    if fld.pattern and not re.fullmatch(fld.pattern, value):
        rule_id = "GG005" if fld.pattern in _NAME_PATTERNS else "GG007"
        return Problem(
            rule_id,
            f"'{dotted}' has an invalid value {_short(value)}",
            _size_hint(value, fld),
        )
    if "\n" in value or "\r" in value:
        return Problem(
            "GG007", f"'{dotted}' spans several lines", "write it on one line"
        )
    if _CONTROL.search(value):
        return Problem(
            "GG007",
            f"'{dotted}' holds a control character {_short(value)}",
            "remove it; values are printed into files and terminals",
        )
    return None


def _mib_problem(dotted: str, value: str) -> Problem | None:
    """A size the output writes in MiB (microvm.nix's `mem`, volume `size`):
    one that is not whole MiB would be cut to another size there."""
    if re.fullmatch(spec.MIB_SIZE, value):
        return None
    n = parse_size(value) or 0
    whole = -(-n // _MIB)  # rounded up: never less than was asked for
    if value.isdigit():
        why = "a bare number is bytes"
        hint = f'write "{value}M" for {value} MiB; the output counts MiB'
    elif n % _MIB == 0:
        why = "written in K"
        hint = f'write "{format_size(n)}"; the output counts MiB'
    else:
        why = "under 1 MiB" if n < _MIB else "not a whole number of MiB"
        hint = f'write whole MiB with M, G or T, e.g. "{whole}M"; the output counts MiB'
    return Problem("GG007", f"'{dotted}' is {value!r}, {why}", hint)


def _size_hint(value: str, fld: spec.Field) -> str:
    if fld.type == "size":
        # "1GB", "1 GiB", "1g": what was meant is plain to see.
        m = re.fullmatch(r"([1-9][0-9]*)\s*([KMGTkmgt])(i?[Bb])?", value.strip())
        fixed = f"{m.group(1)}{m.group(2).upper()}" if m else ""
        if fixed and re.fullmatch(fld.pattern, fixed):
            return f'write "{fixed}": binary units, no B or space'
    return _PATTERN_HINTS.get(fld.pattern, fld.doc)


_MIB = 1 << 20


# Any C0 control character or DEL; a tab is as unwelcome in a name as a newline.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME_PATTERNS = {spec.VM_NAME, spec.TARGET_NAME, spec.PASSTHROUGH_NAME}
_PATTERN_HINTS = {
    spec.VM_NAME: "use lowercase letters, digits and '-', starting with a letter, "
    "at most 32 characters",
    spec.TARGET_NAME: "use lowercase letters, digits and '-', starting with a letter",
    spec.PASSTHROUGH_NAME: "use lowercase letters, digits, '-' and '_', starting with a letter",
    spec.BDF: 'write PCI functions as domain:bus:device.function in hex, e.g. "0005:01:00.0"',
    spec.PCI_ID: 'write IDs as vendor:device in hex, e.g. "10de:1cb1"',
    spec.KERNEL_PARAM: 'one token per list item, no spaces or quotes: ["console=ttyAMA0", "quiet"]',
    spec.KERNEL_VERSION: 'write major.minor, e.g. "6.6"',
    spec.SOURCE_URL: "an https://, ssh://, git:// or file:// URL, or a local path without "
    "':'; no spaces or quotes, not starting with '-'",
    spec.SOURCE_REV: "a branch, tag or commit ID (letters, digits, '.', '_', '/', '-'; "
    "not starting with '-')",
    spec.SIZE: 'write a size as a number with K, M, G or T, e.g. "512M" or "4G"',
    spec.ABS_PATH: "an absolute path of names (letters, digits, '.', '_', '-') with no "
    "'.' or '..' component, e.g. \"/var/lib/volumes\"",
    spec.MIB_SIZE: 'write whole MiB with M, G or T, e.g. "512M" or "4G"',
}


def _example(fld: spec.Field, type_: str) -> str:
    """A value of the field's type, for a hint: `[1, 2]`, `"1G"`, `true`."""
    one = {
        "int": str(fld.minimum if fld.minimum is not None else 1),
        "bool": "true",
        "size": '"1G"',
        "str": f'"{fld.enum[0]}"' if fld.enum else '"..."',
    }[type_]
    return f"[{one}]" if fld.type.startswith("list[") else one


def _type_hint(fld: spec.Field, type_: str) -> str:
    how = {
        "int": "a number without quotes",
        "bool": "true or false without quotes",
        "size": "a size in quotes",
        "str": "text in quotes",
    }[type_]
    if fld.type.startswith("list["):
        return f"each item is {how}: `{fld.key} = {_example(fld, type_)}`"
    return f"write {how}: `{fld.key} = {_example(fld, type_)}`"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _table_at(path: tuple[str, ...]) -> spec.Table:
    return next(t for t in spec.TABLES if t.path == path)


def _functions(values: list[str]) -> tuple[PciAddress, ...]:
    return tuple(PciAddress(v) for v in values)


def _given(table: spec.Table, raw: dict[str, Any], key: str) -> Any:
    """The value `raw` gives `key` (a list as a tuple), else the format's default."""
    fld = table.field(key)
    assert fld is not None, f"{key} is not a key of {table.path}"
    value = raw.get(key, fld.default)
    return tuple(value) if isinstance(value, list) else value


def _build(doc: dict[str, Any], loc: Locator, text: str) -> Profile:
    t = doc["target"]
    fields = {f.key: t.get(f.key, f.default or "") for f in spec.TARGET.fields}
    fields |= {k: tuple(t.get(k, ())) for k in ("host_cores", "isolated_cores")}
    target = Target(loc.under("target"), **fields)
    v = doc.get("hardware", {}).get("nvidia", {}).get("virtualization", {})
    virt = Virtualization(
        loc.under("hardware", "nvidia", "virtualization"),
        **{
            f.key: _given(spec.VIRTUALIZATION, v, f.key)
            for f in spec.VIRTUALIZATION.fields
        },
    )
    passthroughs = []
    pt = spec.PASSTHROUGH
    for name, p in (
        doc.get("hardware", {}).get("nvidia", {}).get("passthroughs", {}).items()
    ):
        bar = p.get("bar_size")
        passthroughs.append(
            Passthrough(
                loc.under("hardware", "nvidia", "passthroughs", name),
                name=name,
                device=p.get("device", name),
                enable=_given(pt, p, "enable"),
                vm=p.get("vm"),
                functions=_functions(p.get("functions", [])),
                kind=_given(pt, p, "kind"),
                audio_function=_given(pt, p, "audio_function"),
                display=_given(pt, p, "display"),
                ids=_given(pt, p, "ids"),
                binding=_given(pt, p, "binding"),
                iommu_group=_functions(p.get("iommu_group", [])),
                max_power_w=p.get("max_power_w"),
                lanes=p.get("lanes"),
                bar_size=parse_size(bar) if bar else None,
            )
        )
    vms = {
        name: Vm(
            loc.under("vms", name),
            name=name,
            vcpus=m["vcpus"],
            memory=parse_size(m["memory"]) or 0,
            kernel_params=tuple(m.get("kernel_params", ())),
            kernel=m.get("kernel", ""),
            pinning=tuple(m.get("pinning", ())),
            cpu_weight=m.get("cpu_weight"),
            rt_priority=m.get("rt_priority"),
            hugepages=_given(spec.VM, m, "hugepages"),
            vsock_cid=m.get("vsock_cid"),
            shared=tuple(m.get("shared", ())),
            volumes=tuple(
                Volume(
                    loc.under("vms", name, "volumes", vol),
                    name=vol,
                    size=parse_size(v["size"]) or 0,
                    mount=v["mount"],
                    disk=v["disk"],
                )
                for vol, v in m.get("volumes", {}).items()
            ),
        )
        for name, m in doc.get("vms", {}).items()
    }
    disks = {
        name: Disk(
            loc.under("disks", name),
            name=name,
            size=parse_size(d["size"]) or 0,
            root=_given(spec.DISK, d, "root"),
            host_path=d.get("path", ""),
        )
        for name, d in doc.get("disks", {}).items()
    }
    channels = {
        name: Channel(
            loc.under("channels", name),
            name=name,
            vms=tuple(c["vms"]),
            size=parse_size(c["size"]) or 0,
        )
        for name, c in doc.get("channels", {}).items()
    }
    sources = {
        name: SourceRef(
            loc.under("sources", name), name=name, url=s["url"], rev=s.get("rev")
        )
        for name, s in doc.get("sources", {}).items()
    }
    return Profile(
        loc.file,
        text,
        target,
        virt,
        tuple(passthroughs),
        vms,
        sources,
        pins={},
        disks=disks,
        channels=channels,
    )


def load_text(text: str, display_name: str, cat: Catalog | None = None) -> LoadResult:
    """Check and build a profile from TOML text; `display_name` goes into findings,
    and a hint names the cores of the board `cat` has under the profile's name."""
    loc = Locator(display_name, {})
    if text.startswith("\ufeff"):
        return LoadResult(
            None,
            (
                finding(
                    "GG001",
                    Location(display_name, 1),
                    "the file starts with a UTF-8 byte-order mark, which TOML does not allow",
                    "save it as UTF-8 without BOM",
                ),
            ),
        )
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        # tomllib recurses once per nesting level: hundreds of `[` end it.
        return LoadResult(
            None,
            (
                finding(
                    "GG001",
                    Location(display_name, 1),
                    "arrays or inline tables nested too deeply to read",
                    "a profile needs at most three levels; flatten the value",
                ),
            ),
        )
    except tomllib.TOMLDecodeError as e:
        line = _toml_error_line(str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e)).rstrip(".")
        msg = msg[0].lower() + msg[1:] if msg else "invalid TOML"
        return LoadResult(
            None,
            (
                finding(
                    "GG001",
                    Location(display_name, line),
                    f"TOML syntax: {msg}",
                    "check quotes, brackets and '=' on this line",
                ),
            ),
        )
    loc = Locator(display_name, key_lines(text))
    target = doc.get("target")
    checker = _Checker(
        loc, target.get("board") if isinstance(target, dict) else None, cat
    )
    checker.container((), doc)
    if any(f.severity is Severity.ERROR for f in checker.findings):
        return LoadResult(None, tuple(checker.findings))
    return LoadResult(_build(doc, loc, text), tuple(checker.findings))


def load(
    path: Path, display_name: str | None = None, cat: Catalog | None = None
) -> LoadResult:
    """Read and check the profile at `path` (`cat`: as `load_text`)."""
    name = display_name or str(path)
    loc = Locator(name, {})
    try:
        raw = path.read_bytes()
    except OSError as e:
        reason = e.strerror or str(e)
        return LoadResult(
            None,
            (
                finding(
                    "GG012",
                    loc(),
                    f"cannot read profile: {reason}",
                    "check the path and its permissions",
                ),
            ),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        return LoadResult(
            None,
            (
                finding(
                    "GG001",
                    Location(name, line),
                    "profile is not UTF-8 text",
                    "save the file as UTF-8",
                ),
            ),
        )
    return load_text(text, name, cat)
