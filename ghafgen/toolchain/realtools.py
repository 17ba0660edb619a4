"""`ghafgen check DIR`: check generated output with the real tools.

Entry point: `check_with_real_tools(folder, CheckInputs(...))` -> list of `Result`. Each target
folder (one holding ghafgen-manifest.json) gets: Nix parse, dtc, host overlays
on a base DTB, guest trees on QEMU's virt tree, binding schemas (dt-validate)
on both, patches on source trees, and kernel symbols in the tree's Kconfig.

Without --base-dtb the host base is built from an installed linux-source
tarball (basetrees.py). A check that cannot run is a `skipped` Result with
the reason, never a silent absence.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ghafgen.catalog import Catalog
from ghafgen.catalog.fdtview import FdtView
from ghafgen.errors import GhafgenError, ProfileError
from ghafgen.fileio import Unreadable, cache_root, read_regular
from ghafgen.findings import printable
from ghafgen.render.output import MANIFEST, read_manifest_bytes
from ghafgen.render.patches import ON_GHAF_SOURCES
from ghafgen.toolchain import basetrees, bindings, manifestcheck, prune, schemaset
from ghafgen.toolchain.guestbase import (
    add_bridge_node,
    gpu_variant_base,
    name_bridge_node,
    refers_to_bridge,
)
from ghafgen.tools import run, which

# A guest overlay is compiled without QEMU's tree, so dtc cannot see the bus's
# interrupt-parent or the node an alias names; both hold once applied.
# avoid_unnecessary_addr_size: a guest tree states its bus's cells (QEMU's) for
# a child that has `ranges` (the GPU's translating bus), not `reg`.
GUEST_WARNINGS = ("interrupts_property", "alias_paths", "avoid_unnecessary_addr_size")
_NIX_AT = re.compile(r"at (.+:\d+:\d+):?")
# Symbols the BPMP series adds itself (its Kconfig comes with the patch).
PATCH_SYMBOLS = {"TEGRA_BPMP_HOST_PROXY", "TEGRA_BPMP_GUEST_PROXY"}


@dataclass(frozen=True)
class Result:
    target: str
    # manifest | nix-parse | dtc | overlay | base-tree | base-series | guest-tree |
    # schema | patch | kconfig
    check: str
    subject: str
    ok: bool
    message: str = ""
    skipped: bool = False

    def render(self) -> str:
        """One line per result; a file name's control characters escaped (the
        folder is the user's), a tool's message keeping only its newlines."""
        state = "skip" if self.skipped else ("ok" if self.ok else "FAIL")
        text = f"{state:4} {self.check:10} {self.target}/{printable(self.subject)}"
        message = printable(self.message, keep_newlines=True)
        return text + (f": {message}" if message else "")


@dataclass(frozen=True)
class CheckInputs:
    base_dtb: Path | None = None
    qemu_dtb: Path | None = None
    kernel_src: Path | None = None
    qemu_src: Path | None = None
    # Where linux-source-X.Y.tar.xz are looked for (default: GHAFGEN_KERNEL_SOURCES, /usr/src).
    kernel_sources: Path | None = None
    schemas: bool = True
    # dt-validate over the whole trees rather than what the overlays touch
    # (toolchain/prune.py); the same findings, slower: for the tests that say so.
    whole_trees: bool = False


# The public tree with JetPack 6's layout (PCIe under /bus@0, the uarti label):
# the stand-in for L4T-flavoured targets and for every binding schema.
L4T_STANDIN = "6.12"


@dataclass(frozen=True)
class HostBase:
    dtb: Path
    what: str  # said in every overlay result: which tree this was
    kernel: Path | None = None  # the tree it came from (its bindings), if known


@dataclass(frozen=True)
class _Job:
    """One tree to validate against the binding schemas, and its base tree."""

    target: str
    kind: str  # host | guest (which departures apply)
    files: tuple[str, ...]  # the target's files that made the tree
    dtb: Path
    base: Path
    by_node: dict[str, list[str]]  # node path -> files that touch it (host)
    kernel: Path | None = None  # whose bindings; None: the stand-in tree


@dataclass
class _Schemas:
    """Trees collected while checking, validated in one dt-validate run at the end."""

    jobs: list[_Job] = field(default_factory=list)
    skipped: list[Result] = field(default_factory=list)


def targets(folder: Path) -> list[Path]:
    if (folder / MANIFEST).is_file():
        return [folder]
    # A writer's temp tree (.<target>.tmp-*, .<target>.old-*) is not a target.
    return sorted(
        p.parent
        for p in folder.glob(f"*/{MANIFEST}")
        if not p.parent.name.startswith(".")
    )


def regular(paths: Iterable[Path]) -> list[Path]:
    """The regular files among `paths`: a FIFO handed to dtc or nix-instantiate
    would block it, a link would check a file from elsewhere (the manifest
    check names both)."""
    return [p for p in paths if p.is_file() and not p.is_symlink()]


def _text(f: Path) -> str:
    """A generated file's text, read as the manifest check reads it ("" when
    it cannot be: that check names why)."""
    try:
        data = read_regular(f, limit=manifestcheck.MAX_FILE_BYTES, follow=False)
    except (OSError, Unreadable):
        return ""
    return data.decode(errors="replace")


def _manifest(target: Path) -> list[Result]:
    """Every file the manifest lists is there, as recorded (manifestcheck)."""
    wrong = manifestcheck.differences(target)
    if not wrong:
        count = manifestcheck.listed_count(target)
        return [
            Result(
                target.name, "manifest", MANIFEST, True, f"{count} files as recorded"
            )
        ]
    return [Result(target.name, "manifest", rel, False, why) for rel, why in wrong]


def _nix(target: Path) -> list[Result]:
    which("nix-instantiate")
    files = sorted(regular(target.rglob("*.nix")))
    # One process parses them all; only a failure needs one run per file to
    # say which file it was.
    if not files:
        return []
    if run(["nix-instantiate", "--parse", "--", *map(str, files)]).returncode == 0:
        return [
            Result(target.name, "nix-parse", str(f.relative_to(target)), True)
            for f in files
        ]
    out = []
    for f in files:
        done = run(["nix-instantiate", "--parse", "--", str(f)])
        msg = nix_error(done.stderr) if done.returncode else ""
        out.append(
            Result(
                target.name,
                "nix-parse",
                str(f.relative_to(target)),
                done.returncode == 0,
                msg,
            )
        )
    return out


def compile_dts(src: Path, dest: Path) -> tuple[bool, list[str], str]:
    """(ok, warning names, stderr) of `dtc -@` on one source."""
    done = run(["dtc", "-@", "-I", "dts", "-O", "dtb", "-o", str(dest), "--", str(src)])
    return (
        done.returncode == 0,
        re.findall(r"Warning \((\w+)\)", done.stderr),
        done.stderr,
    )


def nix_error(stderr: str) -> str:
    """Nix's error line with the `file:line:col` it printed on a later line."""
    lines = [ln.strip() for ln in stderr.splitlines()]
    msg = next((ln for ln in lines if ln.startswith("error")), "")
    at = next((m.group(1) for ln in lines if (m := _NIX_AT.fullmatch(ln))), "")
    return f"{msg} (at {at})" if at else msg or (lines[-1] if lines else "")


def dtc_error(stderr: str) -> str:
    """dtc's first `Error: file:line.col-col ...` line, not its closing FATAL ERROR."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    first = next((ln for ln in lines if ln.startswith("Error:")), "")
    return first or (lines[-1] if lines else "")


def _first_error(stderr: str) -> str:
    """git's first `error:` line (it names the file and line), else the last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return next(
        (ln for ln in lines if ln.startswith("error:")), lines[-1] if lines else ""
    )


def _dtc(target: Path, tmp: Path) -> list[Result]:
    which("dtc")
    out = []
    for f in sorted(regular(target.rglob("*.dts"))):
        rel = f.relative_to(target)
        ok, warnings, err = compile_dts(f, tmp / (str(rel).replace("/", "_") + "o"))
        allowed = GUEST_WARNINGS if rel.parts[0] == "vms" else ()
        extra = [w for w in warnings if w not in allowed]
        msg = (
            dtc_error(err)
            if not ok
            else (f"dtc warnings: {', '.join(extra)}" if extra else "")
        )
        out.append(Result(target.name, "dtc", str(rel), ok and not extra, msg))
    return out


def _symbols_and_paths(dtb: Path) -> tuple[set[str], set[str]]:
    view = FdtView(dtb.read_bytes(), str(dtb))
    return set(view.symbols()), {path for _, path in view.nodes()}


def overlay_targets(dts: str) -> list[tuple[str, str]]:
    """(kind, name) of every fragment target: ("label", x) or ("path", x)."""
    found = [("label", m) for m in re.findall(r"target = <&([^>]+)>;", dts)]
    found += [("path", m) for m in re.findall(r'target-path = "([^"]+)";', dts)]
    found += [("label", m) for m in re.findall(r"<&(smmu_\w+)\b", dts)]
    return found


def _base_flavor(target: Path, base: Path, cat: Catalog) -> list[Result]:
    """The base tree's flavour against the profile's dt_flavor (the manifest's host facts).

    A flavour is recognised by the catalog's node paths for the target's board:
    the one whose paths the base tree has more of. No manifest facts, or no
    clear winner, says nothing.
    """
    from ghafgen.errors import GhafgenError

    doc = read_manifest(target)
    try:
        wanted = str(doc["host"]["dt_flavor"])
        series = str(doc["host"]["kernel_series"]) if wanted == "mainline" else None
        board = cat.board(str(doc["host"]["board"]), series)
    except (KeyError, TypeError, GhafgenError):
        return []
    _labels, paths = _symbols_and_paths(base)
    views = [v for d in board.devices.values() for v in d.flavors.values()]
    views += [v for s in board.slots.values() for v in s.controller.flavors.values()]
    seen = {
        flavor: sum(v.path in paths for v in views if v.flavor == flavor and v.path)
        for flavor in {v.flavor for v in views}
    }
    best = max(seen, key=lambda f: (seen[f], f == wanted))
    if best == wanted or seen[best] == seen.get(wanted, 0):
        return [Result(target.name, "base-tree", base.name, True)]
    return [
        Result(
            target.name,
            "base-tree",
            base.name,
            False,
            f"looks like a {best} tree ({seen[best]} of its node paths, "
            f"{seen.get(wanted, 0)} of {wanted}'s); the profile says dt_flavor = "
            f'"{wanted}": give the {wanted} base tree, or change dt_flavor',
        )
    ]


def _base_series(target: Path, base: Path, cat: Catalog) -> list[Result]:
    """A mainline target's base tree against its kernel series' catalog facts,
    on the nodes its host overlays name (toolchain/baseseries.py)."""
    from ghafgen.toolchain import baseseries

    doc = read_manifest(target)
    host = doc.get("host")
    if not isinstance(host, dict) or host.get("dt_flavor") != "mainline":
        return []
    series = str(host.get("kernel_series", ""))
    vms = _contents(doc, "vms") or {}
    passed = {
        str(name)
        for vm in vms.values()
        if isinstance(vm, dict)
        for name in vm.get("platform_devices", [])
    }
    overlays = "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in sorted((target / "overlays").glob("*.dts"))
    )
    try:
        found = baseseries.disagreements(
            cat, str(host["board"]), series, passed, overlays, base.read_bytes()
        )
    except (KeyError, GhafgenError):
        return []
    if not found.wrong:
        return [Result(target.name, "base-series", base.name, True)]
    others = [s for s in found.matching if s != series]
    looks = f"it matches mainline {' and '.join(others)}'s; " if others else ""
    return [
        Result(
            target.name,
            "base-series",
            base.name,
            False,
            f"the catalog's mainline {series} facts disagree with this tree on "
            f"the passed nodes ({'; '.join(found.wrong)}); {looks}the output is "
            f"generated for kernel_version {series}: give that series' tree, or "
            "change kernel_version",
        )
    ]


def touched(base: FdtView, tree: FdtView) -> set[str]:
    """Paths of nodes `tree` adds to `base` or whose properties differ."""
    have = {path: off for off, path in base.nodes()}
    out = set()
    for off, path in tree.nodes():
        if path.startswith("/__"):  # __symbols__, __fixups__: bookkeeping
            continue
        if path not in have or base.props(have[path]) != tree.props(off):
            out.add(path)
    return out


def _overlays(
    target: Path, base: HostBase, tmp: Path, schemas: _Schemas
) -> list[Result]:
    which("fdtoverlay")
    labels, paths = _symbols_and_paths(base.dtb)
    base_view = FdtView(base.dtb.read_bytes())
    out, applied, touches = [], [], {}
    for f in sorted(regular((target / "overlays").glob("*.dts"))):
        rel = str(f.relative_to(target))
        missing = [
            (k, n)
            for k, n in overlay_targets(_text(f))
            if (k == "label" and n not in labels) or (k == "path" and n not in paths)
        ]
        if missing:
            what = "; ".join(f"{k} '{n}'" for k, n in missing)
            out.append(
                Result(
                    target.name,
                    "overlay",
                    rel,
                    False,
                    f"targets {what}, which {base.dtb.name} lacks ({base.what})",
                )
            )
            continue
        dtbo = tmp / f"{target.name}--{f.stem}.host.dtbo"
        ok, _w, err = compile_dts(f, dtbo)
        alone = tmp / f"{target.name}--{f.stem}.host.dtb"
        done = run(
            ["fdtoverlay", "-i", str(base.dtb), "-o", str(alone), "--", str(dtbo)]
        )
        ok = ok and done.returncode == 0
        if ok:
            applied.append(dtbo)
            touches[rel] = touched(base_view, FdtView(alone.read_bytes()))
        out.append(
            Result(
                target.name,
                "overlay",
                rel,
                ok,
                f"applied to {base.what}" if ok else dtc_error(done.stderr or err),
            )
        )
    if applied and len(applied) == len(out):
        # The tree the board boots: every overlay of the target at once.
        whole = tmp / f"{target.name}--host.dtb"
        run(
            ["fdtoverlay", "-i", str(base.dtb), "-o", str(whole), "--"]
            + [str(p) for p in applied]
        ).or_raise()
        by_node: dict[str, list[str]] = {}
        for rel, nodes in touches.items():
            for node in nodes:
                by_node.setdefault(node, []).append(rel)
        schemas.jobs.append(
            _Job(
                target.name,
                "host",
                tuple(touches),
                whole,
                base.dtb,
                by_node,
                base.kernel,
            )
        )
    elif out:
        schemas.skipped.append(
            Result(
                target.name,
                "schema",
                "overlays",
                True,
                "binding schemas not run on the host tree: its overlays did not apply",
                skipped=True,
            )
        )
    return out


def _gpu_nodes(view: FdtView, bus: int, units: set[str]) -> int:
    """Device nodes below the GPU variant's bus, through ghafgen's translating
    buses and host1x (the engines are host1x's children), whose unit address
    is one of `units`: the display's helper nodes (its NISO child, the
    disabled fuse dummy) are no passed device."""
    if bus < 0:
        return 0
    count = 0
    for child in view.children(bus):
        for node in view.children(child):
            for off in (node, *view.children(node)):
                name = view.fdt.get_name(off)
                count += name.rpartition("@")[2] in units and "@" in name
    return count


def _guests(
    target: Path, qemu_dtb: Path, tmp: Path, schemas: _Schemas, cat: Catalog
) -> list[Result]:
    bus_path = cat.qemu_virt.platform_bus_path
    vms = _contents(read_manifest(target), "vms")
    out = []
    for f in sorted(regular((target / "vms").glob("*.dts"))):
        rel = str(f.relative_to(target))
        dtbo = tmp / f"{target.name}--{f.stem}.guest.dtbo"
        compile_dts(f, dtbo)
        applied = tmp / f"{target.name}--{f.stem}.guest.dtb"
        base = qemu_dtb
        gpu_bus = cat.gpu_group.qemu.platform_bus_path
        gpu = f'target-path = "{gpu_bus}"' in _text(f)
        if refers_to_bridge(dtbo.read_bytes()) or gpu:
            # The pinned QEMU emits /bpmp for this VM; the stand-in does not.
            # The GPU's QEMU variant moves the platform bus (t234-gpu.toml).
            data = qemu_dtb.read_bytes()
            if gpu:
                data = gpu_variant_base(data, cat)
            base = tmp / f"{target.name}--{f.stem}.base.dtb"
            virt = cat.qemu_virt
            base.write_bytes(name_bridge_node(add_bridge_node(data, virt), virt))
        done = run(["fdtoverlay", "-i", str(base), "-o", str(applied), "--", str(dtbo)])
        if done.returncode != 0:
            out.append(
                Result(target.name, "guest-tree", rel, False, done.stderr.strip())
            )
            continue
        # The diff's base is what the pinned QEMU gives: its tree and the bridge's /bpmp.
        schemas.jobs.append(_Job(target.name, "guest", (rel,), applied, base, {}))
        view = FdtView(applied.read_bytes(), str(applied))
        vm = (vms or {}).get(f.stem)
        if not isinstance(vm, dict) or not isinstance(vm.get("platform_devices"), list):
            msg = f"VM {f.stem}'s passed devices: {REGENERATE}"
            out.append(Result(target.name, "guest-tree", rel, False, msg))
            continue
        wanted = len(vm["platform_devices"])
        bus = view.offset(bus_path)
        have = len(list(view.children(bus))) if bus >= 0 else 0
        if gpu:
            # The members sit in ghafgen's translating bus; carve-outs are
            # memory, and the display's keyholes are windows of its one node.
            roles = cat.gpu_roles
            carve = {c.dt_name for c in cat.gpu_group.carveouts}
            carve |= {c.dt_name for c in roles.display_carveouts.values()}
            holes = {h.dt_name for h in roles.keyholes.values()}
            passed = {str(d) for d in vm["platform_devices"]} - carve
            units = {d.split(".", 1)[0] for d in passed - holes}
            if passed & holes:
                units.add(roles.guest.node.rpartition("@")[2])
            wanted = len(units)
            have = _gpu_nodes(view, view.offset(gpu_bus), units)
        ok = have == wanted
        out.append(
            Result(
                target.name,
                "guest-tree",
                rel,
                ok,
                "" if ok else f"{have} device nodes for {wanted} passed devices",
            )
        )
    return out


def _patches(target: Path, kernel: Path | None, qemu: Path | None) -> list[Result]:
    out = []
    for f in sorted(regular((target / "patches").glob("*.patch"))):
        rel = str(f.relative_to(target))
        src = qemu if f.name.startswith("qemu-") else kernel
        if f.name in ON_GHAF_SOURCES:
            why = ON_GHAF_SOURCES[f.name]
            out.append(Result(target.name, "patch", rel, True, why, skipped=True))
            continue
        if src is None:
            flag = "--qemu-src" if f.name.startswith("qemu-") else "--kernel-src"
            out.append(
                Result(target.name, "patch", rel, True, f"no {flag}", skipped=True)
            )
            continue
        done = run(["git", "apply", "--check", "--", str(f.resolve())], cwd=src)
        out.append(
            Result(
                target.name,
                "patch",
                rel,
                done.returncode == 0,
                _first_error(done.stderr) if done.returncode else "",
            )
        )
    return out


def kconfig_symbols(kernel: Path) -> set[str]:
    found: set[str] = set()
    for f in kernel.rglob("Kconfig*"):
        found.update(
            re.findall(
                r"^\s*(?:menu)?config\s+(\w+)",
                f.read_text(errors="replace"),
                re.MULTILINE,
            )
        )
    return found


def kernel_version(kernel: Path) -> str:
    """`major.minor` of a kernel tree, from its top Makefile ("" if unknown)."""
    try:
        text = (kernel / "Makefile").read_text(errors="replace")
    except OSError:
        return ""
    m = re.search(r"^VERSION = (\d+)\s+PATCHLEVEL = (\d+)", text, re.MULTILINE)
    return f"{m.group(1)}.{m.group(2)}" if m else ""


def _symbol(
    target: str, subject: str, sym: str, known: set[str], wants: str, tree: str
) -> Result:
    """One structuredExtraConfig symbol against the tree's Kconfig."""
    if sym in known:
        return Result(target, "kconfig", subject, True)
    if sym in PATCH_SYMBOLS:
        return Result(target, "kconfig", subject, True, "added by the bpmp-virt series")
    if wants and wants != tree:
        return Result(
            target,
            "kconfig",
            subject,
            True,
            f"not in this {tree or '?'} tree; the module uses Linux {wants}: "
            f"check against a {wants} tree",
            skipped=True,
        )
    return Result(
        target, "kconfig", subject, False, "no such symbol in the kernel tree's Kconfig"
    )


def _kconfig(target: Path, known: set[str], tree: str) -> list[Result]:
    """The kernel symbols each Nix file sets (as the manifest records them)."""
    config = _contents(read_manifest(target), "kernel_config")
    if config is None:
        return [
            Result(
                target.name, "kconfig", "*.nix", False, f"kernel symbols: {REGENERATE}"
            )
        ]
    out = []
    for rel in sorted(config, key=Path):
        entry = config[rel]
        wants = str(entry.get("pinned_series", ""))
        for sym in entry.get("symbols", ()):
            out.append(_symbol(target.name, f"{rel}:{sym}", sym, known, wants, tree))
    return out


def read_manifest(target: Path) -> dict[str, Any]:
    """The target's manifest ({} if it cannot be read; the manifest check says why)."""
    try:
        doc = json.loads(read_manifest_bytes(target) or b"{}")
    except (OSError, Unreadable, ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _contents(doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    """One record of the manifest's `contents` (None: an older manifest)."""
    contents = doc.get("contents")
    found = contents.get(key) if isinstance(contents, dict) else None
    return found if isinstance(found, dict) else None


REGENERATE = "the manifest does not record it: regenerate the output with this ghafgen"


def read_meta(target: Path) -> dict[str, str]:
    """board, dt_flavor and kernel_series from the manifest ({} if it has none)."""
    host = read_manifest(target).get("host")
    if not isinstance(host, dict):
        return {}
    keys = ("board", "dt_flavor", "kernel_series")
    return {k: str(host[k]) for k in keys if k in host}


class _Bases:
    """Base trees, resolved once per run: given ones, or built from linux-source."""

    def __init__(self, inputs: CheckInputs, cat: Catalog) -> None:
        self.inputs = inputs
        self.cat = cat
        self._kernels: dict[str, Path | str] = {}

    def kernel(self, version: str) -> Path | str:
        """The unpacked linux-source-`version`, or why there is none."""
        if version not in self._kernels:
            try:
                tar = basetrees.tarball(version, self.inputs.kernel_sources)
            except ValueError as e:
                self._kernels[version] = str(e)
                return self._kernels[version]
            where = basetrees.sources_dir(self.inputs.kernel_sources)
            self._kernels[version] = (
                basetrees.kernel_subset(tar)
                if tar
                else f"no linux-source-{version}.tar.xz in {where}"
            )
        return self._kernels[version]

    def host(self, meta: dict[str, str]) -> HostBase | str:
        """The host base tree for a target's overlays, or why there is none."""
        if self.inputs.base_dtb is not None:
            tree = self.kernel(L4T_STANDIN)
            return HostBase(
                self.inputs.base_dtb,
                f"{self.inputs.base_dtb.name} (--base-dtb)",
                tree if isinstance(tree, Path) else None,
            )
        name = meta.get("board")
        if not name:
            return (
                "the manifest names no board (regenerate the output); pass --base-dtb"
            )
        flavor = meta.get("dt_flavor", "l4t")
        version = L4T_STANDIN if flavor == "l4t" else meta.get("kernel_series", "")
        try:
            board = self.cat.board(name)
        except ProfileError:
            return f"board {name!r} is not in the catalog; pass --base-dtb"
        if not board.dts:
            return f"the catalog names no DTS for {name}; pass --base-dtb"
        tree = self.kernel(version)
        standin = ", stand-in for the L4T tree" if flavor == "l4t" else ""
        if isinstance(tree, str) and flavor == "mainline":
            found = self._mainline_standin(name, version)
            if found is not None:
                version, standin = found
                tree = self.kernel(version)
        if isinstance(tree, str):
            return (
                f"no base tree; pass --base-dtb or install linux-source-{version} "
                f"({tree})"
            )
        try:
            dtb = basetrees.board_dtb(tree, board.dts)
        except FileNotFoundError:
            return f"linux-source-{version} has no {board.dts}; pass --base-dtb"
        return HostBase(
            dtb, f"{Path(board.dts).stem} (linux-source-{version}{standin})", tree
        )

    def _mainline_standin(self, name: str, wanted: str) -> tuple[str, str] | None:
        """An installed series whose mainline tree the catalog keys with the same
        node paths and labels as `wanted`'s on this board (the host overlays
        apply alike), newest first, and what to say of it; None if there is none."""
        from ghafgen.catalog import series

        for other in reversed(list(self.cat.mainline_series)):
            if other == wanted or not isinstance(self.kernel(other), Path):
                continue
            try:
                seen = series.compare(self.cat, name, wanted, other)
            except GhafgenError:  # a series the catalog does not key
                return None
            if seen.layout:
                continue
            ids = "; ".join(seen.resources) or "none"
            return other, (
                f", stand-in for mainline {wanted}, whose tree is not installed: the "
                f"catalog keys the same node paths and labels for both; BPMP IDs that "
                f"differ: {ids}"
            )
        return None


def _skip_all(target: Path, sub: str, check: str, why: str) -> list[Result]:
    """Say which trees were not checked, rather than saying nothing."""
    return [
        Result(target.name, check, str(f.relative_to(target)), True, why, skipped=True)
        for f in sorted(regular((target / sub).glob("*.dts")))
    ]


def _schema_results(
    job: _Job, found: list[bindings.Finding], tree: str, in_base: set[str], data: Path
) -> list[Result]:
    failed: dict[str, list[str]] = {}
    departed: dict[str, set[str]] = {}
    for f in found:
        left, used = bindings.undocumented(f, job.kind, data)
        # The file(s) whose nodes the finding is on; the whole set if none alone.
        for subject in job.by_node.get(f.node) or job.files:
            departed.setdefault(subject, set()).update(used)
            if left is not None:
                failed.setdefault(subject, []).append(left.render())
    out = []
    for subject in job.files:
        if subject in failed:
            continue
        note = f"dt-validate, {tree} bindings: nothing added"
        if departed.get(subject):
            note += f" beyond documented departures ({', '.join(sorted(departed[subject]))})"
        if in_base:
            note += f"; the base tree's own: {', '.join(sorted(in_base))}"
        out.append(Result(job.target, "schema", subject, True, note))
    for subject, messages in failed.items():
        out += [Result(job.target, "schema", subject, False, m) for m in messages]
    return out


def _validated_pairs(
    jobs: list[_Job], folder: Path, whole: bool, data: Path
) -> list[tuple[Path, Path]]:
    """(base, tree) as dt-validate is to see them, for each job: cut down to what
    the job's files touch (toolchain/prune.py) unless `whole`; equal trees
    are one file, validated once."""
    written: dict[bytes, Path] = {}

    def write(data: bytes) -> Path:
        if data not in written:
            written[data] = folder / f"{len(written)}.dtb"
            written[data].write_bytes(data)
        return written[data]

    out: list[tuple[Path, Path]] = []
    for n, job in enumerate(jobs):
        base, tree = folder / f"{n}.base.stable", folder / f"{n}.tree.stable"
        bindings.stable_copy(job.base, base)
        bindings.stable_copy(job.dtb, tree)
        pair = base.read_bytes(), tree.read_bytes()
        if not whole:
            # The nodes whose base findings `check` names beside the tree.
            own = [
                d.node
                for d in bindings.departures(data)
                if d.in_base and d.tree == job.kind
            ]
            pair = prune.pair(*pair, also=own)
        out.append((write(pair[0]), write(pair[1])))
        base.unlink()
        tree.unlink()
    return out


def _run_schemas(
    schemas: _Schemas, bases: _Bases, inputs: CheckInputs, tmp: Path
) -> list[Result]:
    out = list(schemas.skipped)
    why = "" if inputs.schemas else "--no-schemas"
    tool = bindings.dtschema()
    if not why and tool is None:
        why = bindings.NOT_INSTALLED
    standin = bases.kernel(L4T_STANDIN)
    groups: dict[Path, list[_Job]] = {}
    for job in schemas.jobs:
        kernel = job.kernel or standin
        if why or isinstance(kernel, str):
            reason = why or f"no kernel bindings: install linux-source-{L4T_STANDIN}"
            out += [
                Result(job.target, "schema", f, True, reason, skipped=True)
                for f in job.files
            ]
            continue
        groups.setdefault(kernel, []).append(job)
    for n, (kernel, jobs) in enumerate(sorted(groups.items())):
        assert tool is not None
        folder = tmp / f"schemas-{n}"
        folder.mkdir()
        pairs = _validated_pairs(jobs, folder, inputs.whole_trees, bases.cat.data)
        copies = sorted({p for pair in pairs for p in pair})
        # Only the schemas these trees can use: minutes fewer on a first check.
        bindings_dir = kernel / "Documentation/devicetree/bindings"
        used = schemaset.trees(copies)
        wanted = schemaset.remembered(
            bindings_dir, used, kernel.parent / "schemas" / "selections"
        )
        schema = basetrees.processed_schemas(kernel, tool, wanted)
        found = bindings.validate(tool, copies, schema, cache_root() / "dt-validate")
        data = bases.cat.data
        for job, (base_dtb, dtb) in zip(jobs, pairs, strict=True):
            base = found[base_dtb]
            added = bindings.added(found[dtb], base)
            in_base = bindings.base_departures(base, job.kind, data)
            out += _schema_results(job, added, kernel.name, in_base, data)
    return out


def check_with_real_tools(
    folder: Path, inputs: CheckInputs, cat: Catalog
) -> list[Result]:
    """Every check of `folder`'s targets, the boards and pins from `cat`.

    Raises NotADeviceTree when a given base tree is not a DTB."""
    for given in (inputs.base_dtb, inputs.qemu_dtb):
        if given is not None:
            FdtView(given.read_bytes(), str(given))  # one clear error, up front
    results: list[Result] = []
    known = kconfig_symbols(inputs.kernel_src) if inputs.kernel_src else None
    version = kernel_version(inputs.kernel_src) if inputs.kernel_src else ""
    bases = _Bases(inputs, cat)
    schemas = _Schemas()
    with tempfile.TemporaryDirectory(prefix="ghafgen-check-") as tmpname:
        tmp = Path(tmpname)
        for target in targets(folder):
            results += _manifest(target)
            results += _nix(target)
            results += _dtc(target, tmp)
            host = bases.host(read_meta(target))
            if isinstance(host, HostBase):
                if inputs.base_dtb is not None:
                    results += _base_flavor(target, inputs.base_dtb, cat)
                    results += _base_series(target, inputs.base_dtb, cat)
                results += _overlays(target, host, tmp, schemas)
            else:
                results += _skip_all(
                    target, "overlays", "overlay", f"host overlays not applied: {host}"
                )
                schemas.skipped += _skip_all(
                    target,
                    "overlays",
                    "schema",
                    "binding schemas not run on the host tree: no base tree",
                )
            if inputs.qemu_dtb is not None:
                results += _guests(target, inputs.qemu_dtb, tmp, schemas, cat)
            else:
                results += _skip_all(
                    target,
                    "vms",
                    "guest-tree",
                    "guest tree not merged: no QEMU virt tree "
                    "(install qemu-system-arm or pass --qemu-dtb)",
                )
            results += _patches(target, inputs.kernel_src, inputs.qemu_src)
            if known is not None:
                results += _kconfig(target, known, version)
            else:
                results.append(
                    Result(
                        target.name,
                        "kconfig",
                        "*.nix",
                        True,
                        "kernel symbols not checked: no --kernel-src",
                        skipped=True,
                    )
                )
        results += _run_schemas(schemas, bases, inputs, tmp)
    return results


def as_json(results: list[Result]) -> list[dict[str, object]]:
    return [asdict(r) for r in results]
