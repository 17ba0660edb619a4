"""The `ghafgen` command line: parse arguments, call one function, print, exit.

Exit codes: 0 ok, 1 findings (errors), 2 unusable input or missing tool,
3 a tool failed while running, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ghafgen import __version__
from ghafgen.errors import GhafgenError, ToolError
from ghafgen.findings import Severity

app = typer.Typer(
    name="ghafgen",
    help=(
        "Check Jetson Orin passthrough profiles against the hardware's rules and "
        "generate the NixOS, microvm.nix and device-tree files Ghaf needs."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    # Plain help: rich costs ~110 ms of imports, over the start-up budget.
    rich_markup_mode=None,
)

Profiles = Annotated[
    list[Path], typer.Argument(help="Profile TOML files.", show_default=False)
]
Format = Annotated[str, typer.Option("--format", help="Output format: text or json.")]


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Turn ghafgen's own errors into one line on stderr and exit 2 (3 for tool failures)."""
    try:
        yield
    except ToolError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(3) from None
    except GhafgenError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ghafgen {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Check Jetson Orin passthrough profiles and generate Ghaf configuration."""


def _check_format(fmt: str, allowed: tuple[str, ...] = ("text", "json")) -> None:
    if fmt not in allowed:
        raise typer.BadParameter(
            f"use one of: {', '.join(allowed)}", param_hint="--format"
        )


@app.command()
def validate(profiles: Profiles, fmt: Format = "text") -> None:
    """Check profiles against every rule; exit 1 on errors, 2 on unreadable input."""
    from ghafgen.validate import validate as run

    _check_format(fmt)
    report = run(profiles)
    if fmt == "json":
        typer.echo(
            json.dumps(
                {
                    "findings": [f.as_json() for f in report.findings],
                    "errors": report.errors,
                    "exit": report.exit_code,
                },
                indent=2,
            )
        )
    else:
        for f in report.findings:
            typer.echo(f.render())
        ok = sum(c.ok for c in report.checked)
        typer.echo(
            f"{len(report.checked)} profile(s), {ok} valid, {report.errors} error(s)",
            err=True,
        )
    raise typer.Exit(report.exit_code)


@app.command()
def show(
    profiles: Annotated[
        list[Path] | None,
        typer.Argument(help="Profile TOML files.", show_default=False),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="text, json, or a diagram: mermaid, dot, svg."),
    ] = "text",
    boards: Annotated[
        bool, typer.Option("--boards", help="List the catalog's boards.")
    ] = False,
) -> None:
    """Print who owns each device (VM, IOMMU group, BPMP IDs, slot, power), or a diagram."""
    from ghafgen import show as table
    from ghafgen.validate import validate as run

    _check_format(fmt, ("text", "json", "mermaid", "dot", "svg"))
    if boards:
        typer.echo(_boards_text())
        return
    if not profiles:
        raise typer.BadParameter("give at least one profile, or --boards")
    report = run(profiles)
    for f in report.findings:
        if f.severity is Severity.ERROR:
            typer.echo(f.render(), err=True)
    if fmt in ("mermaid", "dot", "svg"):
        from ghafgen import diagram

        draw = {"mermaid": diagram.mermaid, "dot": diagram.dot, "svg": diagram.svg}[fmt]
        with reported():
            typer.echo("".join(draw(p, b) for p, b in report.usable), nl=False)
    elif fmt == "json":
        typer.echo(
            json.dumps([table.as_json(p, b) for p, b in report.usable], indent=2)
        )
    else:
        typer.echo("\n\n".join(table.render_text(p, b) for p, b in report.usable))
    raise typer.Exit(report.exit_code)


def _boards_text() -> str:
    from ghafgen import catalog

    lines = []
    for name in catalog.board_names():
        b = catalog.board(name)
        lines.append(
            f"{name}: {b.description}; {b.cpu_cores} cores, {b.ram_mib // 1024} GiB"
        )
        lines.append(
            "  devices: "
            + ", ".join(f"{k} ({d.dt_name})" for k, d in b.devices.items())
        )
        lines.append(
            "  slots:   "
            + ", ".join(f"{k} ({s.description})" for k, s in b.slots.items())
        )
    return "\n".join(lines)


@app.command()
def generate(
    profiles: Profiles,
    out: Annotated[
        Path,
        typer.Option(
            "-o", "--out", help="Output folder; each target gets a subfolder."
        ),
    ],
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if any file would change."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that were edited by hand.")
    ] = False,
    layout: Annotated[
        str,
        typer.Option(
            help="default: NixOS + microvm.nix; ghaf: Ghaf's per-VM extension points."
        ),
    ] = "default",
) -> None:
    """Write NixOS/microvm.nix modules, overlays, guest trees and patches for each profile."""
    from ghafgen.generate import generate as run
    from ghafgen.render.plan import LAYOUTS

    if layout not in LAYOUTS:
        raise typer.BadParameter(
            f"use one of: {', '.join(LAYOUTS)}", param_hint="--layout"
        )
    with reported():
        result = run(profiles, out, check=check, force=force, layout=layout)
    for f in result.report.findings:
        if f.severity is not Severity.INFO or result.report.exit_code:
            typer.echo(f.render(), err=True)
    if result.report.exit_code:
        typer.echo("nothing written: fix the errors above first", err=True)
        raise typer.Exit(result.report.exit_code)
    drift = False
    for o in result.outcomes:
        if check:
            for rel in o.drifted:
                typer.echo(f"drift: {out / o.target / rel}")
            drift = drift or bool(o.drifted)
        else:
            typer.echo(
                f"{o.target}: {len(o.written)} written, {len(o.unchanged)} unchanged"
                + (f", {len(o.removed)} removed" if o.removed else "")
            )
    raise typer.Exit(1 if drift else 0)


@app.command()
def build(
    target: Annotated[str, typer.Argument(help="Target name, or flake#attribute.")],
    flake: Annotated[str, typer.Option(help="Flake to build from.")] = ".",
    builders: Annotated[
        str | None,
        typer.Option(help="Passed to nix --builders (remote aarch64 builders)."),
    ] = None,
    max_jobs: Annotated[
        str | None, typer.Option(help="Passed to nix --max-jobs.")
    ] = None,
    store: Annotated[str | None, typer.Option(help="Passed to nix --store.")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE, passed as nix --option NAME VALUE; repeatable."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the nix command and run nothing.")
    ] = False,
) -> None:
    """Run nix build on a target, streaming Nix's log, and print the out paths."""
    import shlex

    from ghafgen import nixbuild

    pairs = []
    for item in option or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(
                f"{item!r}: write NAME=VALUE", param_hint="--option"
            )
        pairs.append((name, value))
    opts = nixbuild.BuildOptions(flake, builders, max_jobs, store, tuple(pairs))
    if dry_run:
        typer.echo(shlex.join(nixbuild.build_argv(target, opts)))
        return
    with reported():
        built = nixbuild.build(
            target, opts, on_line=lambda line: typer.echo(line, err=True)
        )
    for path in built.out_paths:
        typer.echo(path)


@app.command()
def check(
    folder: Annotated[
        Path, typer.Argument(help="Generated output: DIR or DIR/<target>.")
    ],
    base_dtb: Annotated[
        Path | None, typer.Option(help="Host base tree the overlays must apply to.")
    ] = None,
    qemu_dtb: Annotated[
        Path | None,
        typer.Option(
            help="QEMU virt tree for guest trees (default: dumped with QEMU if present)."
        ),
    ] = None,
    kernel_src: Annotated[
        Path | None,
        typer.Option(help="Kernel tree: patches must apply, symbols must exist."),
    ] = None,
    qemu_src: Annotated[
        Path | None, typer.Option(help="QEMU tree for QEMU patches.")
    ] = None,
    fmt: Format = "text",
) -> None:
    """Check generated files with the real tools: Nix, dtc, fdtoverlay, git apply, Kconfig."""
    import tempfile

    from ghafgen import check as checks

    _check_format(fmt)
    with reported(), tempfile.TemporaryDirectory(prefix="ghafgen-qemu-") as tmp:
        if qemu_dtb is None:
            qemu_dtb = checks.dump_qemu_virt(Path(tmp))
        inputs = checks.CheckInputs(base_dtb, qemu_dtb, kernel_src, qemu_src)
        results = checks.check(folder, inputs)
    failed = [r for r in results if not r.ok]
    if fmt == "json":
        typer.echo(
            json.dumps(
                {"results": checks.as_json(results), "failed": len(failed)}, indent=2
            )
        )
    else:
        for r in results:
            if not r.ok or r.skipped or r.message:
                typer.echo(r.render())
        typer.echo(f"{len(results)} checks, {len(failed)} failed", err=True)
    if not results:
        typer.echo(f"error: no generated target under {folder}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(1 if failed else 0)


@app.command()
def prefetch(
    profiles: Profiles,
    update: Annotated[
        bool, typer.Option("--update", help="Re-pin every source, not only new ones.")
    ] = False,
) -> None:
    """Pin the sources profiles name into ghafgen.lock beside them (nix-prefetch-git or Nix)."""
    from ghafgen.prefetch import prefetch as run
    from ghafgen.profile.parse import load

    by_folder: dict[Path, dict[str, tuple[str, str | None]]] = {}
    for path in profiles:
        result = load(path)
        for f in result.findings:
            typer.echo(f.render(), err=True)
        if result.profile is None:
            raise typer.Exit(2)
        wanted = by_folder.setdefault(path.parent, {})
        for src in result.profile.sources.values():
            wanted[src.name] = (src.url, src.rev)
    with reported():
        for folder, sources in sorted(by_folder.items()):
            done = run(sources, folder, update=update)
            for name, pin in sorted(done.pinned.items()):
                typer.echo(
                    f"{name}: {pin.url} @ {pin.rev or '-'} {pin.hash} ({pin.method})"
                )
            for name in sorted(done.kept):
                typer.echo(f"{name}: kept")
            typer.echo(f"wrote {done.lock}", err=True)


catalog_app = typer.Typer(
    help="Hardware catalog: import facts from a vendor device tree, or compare them.",
    no_args_is_help=True,
)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("import")
def catalog_import(
    dtb: Annotated[
        Path | None, typer.Option(help="Vendor tree, compiled (.dtb).")
    ] = None,
    dts: Annotated[
        Path | None, typer.Option(help="Vendor tree as preprocessed source (.dts).")
    ] = None,
    board: Annotated[
        str, typer.Option(help="Catalog board to compare with.")
    ] = "jetson-agx-orin-devkit",
    flavor: Annotated[
        str, typer.Option(help="Device-tree flavour of the tree: l4t or mainline.")
    ] = "mainline",
    show_diff: Annotated[
        bool,
        typer.Option(
            "--diff", help="List every disagreement with the catalog; exit 1 if any."
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Write the TOML here.")
    ] = None,
) -> None:
    """Read passthrough-capable nodes (serial, ethernet, PCIe, display) from a vendor tree."""
    from ghafgen import catalog
    from ghafgen.catalog import dtimport

    source = dtb or dts
    if source is None or (dtb and dts):
        raise typer.BadParameter("give exactly one of --dtb or --dts")
    if flavor not in ("l4t", "mainline"):
        raise typer.BadParameter("use l4t or mainline", param_hint="--flavor")
    with reported():
        try:
            nodes = dtimport.read(source, dts=dts is not None)
        except Exception as e:  # libfdt's FdtException, a missing file
            raise GhafgenError(f"cannot read {source}: {e}") from e
        if not show_diff:
            text = dtimport.as_toml(nodes, source.name)
            if out is None:
                typer.echo(text, nl=False)
            else:
                out.write_text(text, encoding="utf-8")
            return
        found = dtimport.diff(nodes, catalog.board(board), flavor)
    for d in found:
        typer.echo(d.render())
    typer.echo(
        f"{len(nodes)} nodes read, {len(found)} disagreement(s) with the {board} "
        f"catalog ({flavor})",
        err=True,
    )
    raise typer.Exit(1 if found else 0)


@app.command()
def discover(
    root: Annotated[Path, typer.Option(help="Root of a live or captured tree.")] = Path(
        "/"
    ),
    profile: Annotated[
        Path | None,
        typer.Option(help="Write a draft profile here (guesses are marked)."),
    ] = None,
    name: Annotated[
        str, typer.Option(help="Target name for the draft profile.")
    ] = "discovered",
    capture_to: Annotated[
        Path | None,
        typer.Option(
            "--capture", help="Save exactly the files read, as a .tar.gz, for reports."
        ),
    ] = None,
    fmt: Format = "text",
) -> None:
    """Read IOMMU groups, PCI and platform devices of a board into a report or a draft profile."""
    from ghafgen import discover as disc
    from ghafgen.report import discovery_json, discovery_text

    _check_format(fmt)
    with reported():
        reader = disc.SysfsReader(root)
        found = disc.discover(root, reader)
        if capture_to is not None:
            count = disc.capture(reader, capture_to)
            typer.echo(f"captured {count} files into {capture_to}", err=True)
        if profile is not None:
            _write_new_profile(profile, found, name)
    typer.echo(
        json.dumps(discovery_json(found), indent=2)
        if fmt == "json"
        else discovery_text(found)
    )


def _write_new_profile(path: Path, found: object, name: str) -> None:
    """Write a draft profile; never over an existing file; validate it after."""
    from ghafgen.discover import DiscoverError, Discovery
    from ghafgen.draft import from_discovery

    assert isinstance(found, Discovery)
    if found.board is None:
        raise DiscoverError(
            "no catalog board matches compatible "
            f"{', '.join(found.compatible)}; see ghafgen show --boards"
        )
    _create(path, from_discovery(found, name).toml())


def _create(path: Path, text: str) -> None:
    from ghafgen.validate import validate as run

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise GhafgenError(
            f"{path} exists; ghafgen does not overwrite a profile"
        ) from None
    except OSError as e:
        raise GhafgenError(f"cannot write {path}: {e.strerror or e}") from None
    report = run([path])
    for f in report.findings:
        typer.echo(f.render(), err=True)
    if report.exit_code:
        raise GhafgenError(f"{path} was written but does not validate; fix it by hand")
    typer.echo(f"wrote {path}; next: ghafgen generate {path} -o nix/modules", err=True)


def _interactive() -> bool:
    """Ask questions only on a terminal, never in a pipe or in CI."""
    import os

    return sys.stdin.isatty() and sys.stdout.isatty() and not os.environ.get("CI")


@app.command("new-target")
def new_target(
    name: Annotated[
        str, typer.Argument(help="Target name; the profile is DIR/NAME.toml.")
    ],
    board: Annotated[str | None, typer.Option(help="Board from the catalog.")] = None,
    passthrough: Annotated[
        list[str] | None,
        typer.Option(help="DEVICE:VM, e.g. uarta:uart-vm; repeatable."),
    ] = None,
    vm: Annotated[
        list[str] | None,
        typer.Option(help="NAME:VCPUS:MEMORY, e.g. net-vm:2:1G; repeatable."),
    ] = None,
    from_discover: Annotated[
        Path | None,
        typer.Option(help="Draft from a captured tree (ghafgen discover --root)."),
    ] = None,
    folder: Annotated[Path, typer.Option("--dir", help="Where profiles live.")] = Path(
        "profiles"
    ),
) -> None:
    """Scaffold a profile for a board; asks on a terminal for what the flags leave out."""
    from ghafgen import newtarget

    path = folder / f"{name}.toml"
    with reported():
        if from_discover is not None:
            from ghafgen import discover as disc

            _write_new_profile(path, disc.discover(from_discover), name)
            return
        ask = newtarget.Prompter(typer.prompt) if _interactive() else None
        draft = newtarget.draft(name, board, passthrough or [], vm or [], ask)
        _create(path, draft.toml())


@app.command()
def schema() -> None:
    """Print the JSON Schema of the profile format."""
    from ghafgen.profile.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
def rules(
    fmt: Annotated[
        str, typer.Option("--format", help="Output format: text, json or markdown.")
    ] = "text",
) -> None:
    """List every rule ID with what it checks and how to fix it."""
    from ghafgen import ruledoc

    _check_format(fmt, ("text", "json", "markdown"))
    typer.echo(ruledoc.render(fmt), nl=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except ToolError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(3)
    except GhafgenError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
