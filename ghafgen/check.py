"""`ghafgen check DIR`: check generated output with the real tools.

Entry point: `check(folder, CheckInputs(...))` -> list of `Result`. Each target
folder (one holding ghafgen-manifest.json) gets: Nix parse, dtc, host overlays
on a base DTB, guest trees on QEMU's virt tree, patches on source trees, and
kernel symbols in the tree's Kconfig.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ghafgen.catalog.load import qemu_virt
from ghafgen.fdtview import FdtView
from ghafgen.guestbase import (
    add_bridge_node,
    name_bridge_node,
    refers_to_bridge,
)
from ghafgen.render.output import MANIFEST
from ghafgen.tools import run, which

# A guest overlay is compiled without QEMU's tree, so dtc cannot see the bus's
# interrupt-parent or the node an alias names; both hold once applied.
GUEST_WARNINGS = ("interrupts_property", "alias_paths")
_NIX_AT = re.compile(r"at (.+:\d+:\d+):?")
# Symbols the BPMP series adds itself (its Kconfig comes with the patch).
PATCH_SYMBOLS = {"TEGRA_BPMP_HOST_PROXY", "TEGRA_BPMP_GUEST_PROXY"}


@dataclass(frozen=True)
class Result:
    target: str
    check: str  # nix-parse | dtc | overlay | guest-tree | patch | kconfig
    subject: str
    ok: bool
    message: str = ""
    skipped: bool = False

    def render(self) -> str:
        state = "skip" if self.skipped else ("ok" if self.ok else "FAIL")
        text = f"{state:4} {self.check:10} {self.target}/{self.subject}"
        return text + (f": {self.message}" if self.message else "")


@dataclass(frozen=True)
class CheckInputs:
    base_dtb: Path | None = None
    qemu_dtb: Path | None = None
    kernel_src: Path | None = None
    qemu_src: Path | None = None


def targets(folder: Path) -> list[Path]:
    if (folder / MANIFEST).is_file():
        return [folder]
    # A writer's temp tree (.<target>.tmp-PID, .<target>.old) is not a target.
    return sorted(
        p.parent
        for p in folder.glob(f"*/{MANIFEST}")
        if not p.parent.name.startswith(".")
    )


def _nix(target: Path) -> list[Result]:
    which("nix-instantiate")
    files = sorted(target.rglob("*.nix"))
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


def _not_applied(target: Path, folder: str, check: str, why: str) -> list[Result]:
    """Say which trees were not checked, rather than saying nothing."""
    return [
        Result(target.name, check, str(f.relative_to(target)), True, why, skipped=True)
        for f in sorted((target / folder).glob("*.dts"))
    ]


def _dtc(target: Path, tmp: Path) -> list[Result]:
    which("dtc")
    out = []
    for f in sorted(target.rglob("*.dts")):
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


def _base_flavor(target: Path, base: Path) -> list[Result]:
    """The base tree's flavour against the profile's dt_flavor (the manifest's host facts).

    A flavour is recognised by the catalog's node paths for the target's board:
    the one whose paths the base tree has more of. No manifest facts, or no
    clear winner, says nothing.
    """
    from ghafgen import catalog
    from ghafgen.errors import GhafgenError

    try:
        doc = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        board = catalog.board(str(doc["host"]["board"]))
        wanted = str(doc["host"]["dt_flavor"])
    except (OSError, ValueError, KeyError, TypeError, GhafgenError):
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


def _overlays(target: Path, base: Path, tmp: Path) -> list[Result]:
    which("fdtoverlay")
    labels, paths = _symbols_and_paths(base)
    out = []
    for f in sorted((target / "overlays").glob("*.dts")):
        rel = str(f.relative_to(target))
        missing = [
            (k, n)
            for k, n in overlay_targets(f.read_text(errors="replace"))
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
                    f"targets {what}, which {base.name} lacks",
                )
            )
            continue
        dtbo = tmp / (f.stem + ".host.dtbo")
        ok, _w, err = compile_dts(f, dtbo)
        done = run(
            [
                "fdtoverlay",
                "-i",
                str(base),
                "-o",
                str(tmp / "applied.dtb"),
                "--",
                str(dtbo),
            ]
        )
        ok = ok and done.returncode == 0
        out.append(
            Result(
                target.name,
                "overlay",
                rel,
                ok,
                "" if ok else dtc_error(done.stderr or err),
            )
        )
    return out


def _guests(target: Path, qemu_dtb: Path, tmp: Path) -> list[Result]:
    bus_path = qemu_virt().platform_bus_path
    out = []
    for f in sorted((target / "vms").glob("*.dts")):
        rel = str(f.relative_to(target))
        dtbo = tmp / (f.stem + ".guest.dtbo")
        compile_dts(f, dtbo)
        applied = tmp / (f.stem + ".guest.dtb")
        base = qemu_dtb
        if refers_to_bridge(dtbo.read_bytes()):
            # The pinned QEMU emits /bpmp for this VM; the stand-in does not.
            base = tmp / (f.stem + ".base.dtb")
            base.write_bytes(name_bridge_node(add_bridge_node(qemu_dtb.read_bytes())))
        done = run(["fdtoverlay", "-i", str(base), "-o", str(applied), "--", str(dtbo)])
        if done.returncode != 0:
            out.append(
                Result(target.name, "guest-tree", rel, False, done.stderr.strip())
            )
            continue
        view = FdtView(applied.read_bytes(), str(applied))
        try:
            vm_nix = f.with_suffix(".nix").read_text(errors="replace")
        except OSError as e:
            msg = f"{f.with_suffix('.nix').name}: {e.strerror or e}"
            out.append(Result(target.name, "guest-tree", rel, False, msg))
            continue
        wanted = len(re.findall(r'"vfio-platform,host=[^"]+"', vm_nix))
        bus = view.offset(bus_path)
        have = len(list(view.children(bus))) if bus >= 0 else 0
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
    for f in sorted((target / "patches").glob("*.patch")):
        rel = str(f.relative_to(target))
        src = qemu if f.name.startswith("qemu-") else kernel
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
    out = []
    for f in sorted(target.rglob("*.nix")):
        rel = str(f.relative_to(target))
        text = f.read_text(errors="replace")
        pinned = re.search(r"linuxPackages_(\d+)_(\d+)", text)
        wants = f"{pinned.group(1)}.{pinned.group(2)}" if pinned else ""
        for sym in re.findall(
            r"^\s+([A-Z][A-Z0-9_]+) = (?:yes|no|module);", text, re.MULTILINE
        ):
            out.append(_symbol(target.name, f"{rel}:{sym}", sym, known, wants, tree))
    return out


def check(folder: Path, inputs: CheckInputs) -> list[Result]:
    """Raises NotADeviceTree when a given base tree is not a DTB."""
    for given in (inputs.base_dtb, inputs.qemu_dtb):
        if given is not None:
            FdtView(given.read_bytes(), str(given))  # one clear error, up front
    results: list[Result] = []
    known = kconfig_symbols(inputs.kernel_src) if inputs.kernel_src else None
    version = kernel_version(inputs.kernel_src) if inputs.kernel_src else ""
    with tempfile.TemporaryDirectory(prefix="ghafgen-check-") as tmpname:
        tmp = Path(tmpname)
        for target in targets(folder):
            results += _nix(target)
            results += _dtc(target, tmp)
            if inputs.base_dtb is not None:
                results += _base_flavor(target, inputs.base_dtb)
                results += _overlays(target, inputs.base_dtb, tmp)
            else:
                results += _not_applied(
                    target, "overlays", "overlay", "not applied: give --base-dtb"
                )
            if inputs.qemu_dtb is not None:
                results += _guests(target, inputs.qemu_dtb, tmp)
            else:
                results += _not_applied(
                    target,
                    "vms",
                    "guest-tree",
                    "not applied: no QEMU to dump its virt tree; give --qemu-dtb",
                )
            results += _patches(target, inputs.kernel_src, inputs.qemu_src)
            if known is not None:
                results += _kconfig(target, known, version)
    return results


def as_json(results: list[Result]) -> list[dict[str, object]]:
    return [asdict(r) for r in results]
