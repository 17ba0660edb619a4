"""Commands about boards: discover, new-target, catalog import."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ghafgen.cli._app import Flavor, Format, TextJson, interactive, reported
from ghafgen.errors import GhafgenError

if TYPE_CHECKING:
    from ghafgen.catalog import Catalog

# This group's commands; cli/__init__.py joins the groups into one app.
app = typer.Typer()

catalog_app = typer.Typer(
    help="Hardware catalog: import facts from a vendor device tree, or compare them.",
    no_args_is_help=True,
)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("import")
def catalog_import(
    dtb: Annotated[
        Path | None,
        typer.Option(
            help="Vendor tree, compiled (.dtb).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    dts: Annotated[
        Path | None,
        typer.Option(
            help="Vendor tree as preprocessed source (.dts).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    board: Annotated[
        str, typer.Option(help="Catalog board to compare with.")
    ] = "jetson-agx-orin-devkit",
    flavor: Annotated[
        Flavor, typer.Option(help="Device-tree flavour of the tree.")
    ] = Flavor.mainline,
    series: Annotated[
        str | None,
        typer.Option(
            help="Kernel series of a mainline tree (6.1, 6.6, 6.12); "
            "default: the pinned host kernel's."
        ),
    ] = None,
    show_diff: Annotated[
        bool,
        typer.Option(
            "--diff", help="List every disagreement with the catalog; exit 1 if any."
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Write the TOML here.", dir_okay=False),
    ] = None,
    whole_soc: Annotated[
        bool,
        typer.Option(
            "--soc",
            help="Every device node (reg plus clocks/resets/power-domains/iommus) "
            "with its passthrough class and why.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Replace the --out file if it exists.")
    ] = False,
) -> None:
    """Read passthrough-capable nodes (serial, ethernet, PCIe, display) from a vendor tree."""
    from ghafgen.catalog import dtimport, load
    from ghafgen.fileio import Unreadable

    source = dtb or dts
    if source is None or (dtb and dts):
        raise typer.BadParameter("give exactly one of --dtb or --dts")
    with reported():
        try:
            nodes = dtimport.read(source, dts=dts is not None)
            if whole_soc:
                from ghafgen.catalog import soc

                blob = dtimport.blob(source, dts=dts is not None)
                text = soc.as_toml(soc.scan(blob, load().board(board).soc), source.name)
        except (dtimport.BadTree, Unreadable):
            raise  # says which file and why itself (a refused /incbin/, a bad reg)
        except Exception as e:  # libfdt's FdtException, a missing file
            raise GhafgenError(f"cannot read {source}: {e}") from e
        if whole_soc or not show_diff:
            if not whole_soc:
                text = dtimport.as_toml(nodes, source.name)
            if out is None:
                typer.echo(text, nl=False)
            else:
                _write_once(out, text, "a catalog file", force=force)
            return
        known = load().board(board, series)
        found = dtimport.diff(nodes, known, flavor.value)
    for d in found:
        typer.echo(d.render())
    typer.echo(
        f"{len(nodes)} nodes read, {len(found)} disagreement(s) with the {board} "
        f"catalog ({known.tree(flavor.value)})",
        err=True,
    )
    raise typer.Exit(1 if found else 0)


@app.command()
def discover(
    root: Annotated[
        Path,
        typer.Option(
            help="Root of a live or captured tree.", exists=True, file_okay=False
        ),
    ] = Path("/"),
    profile: Annotated[
        Path | None,
        typer.Option(
            help="Write a draft profile here (guesses are marked).", dir_okay=False
        ),
    ] = None,
    name: Annotated[
        str, typer.Option(help="Target name for the draft profile.")
    ] = "discovered",
    capture_to: Annotated[
        Path | None,
        typer.Option(
            "--capture",
            help="Save exactly the files read, as a .tar.gz, for reports.",
            dir_okay=False,
        ),
    ] = None,
    fmt: Format = TextJson.text,
) -> None:
    """Read IOMMU groups, PCI and platform devices of a board into a report or a draft profile."""
    import json

    from ghafgen.catalog import load
    from ghafgen.discover import sysfs as disc
    from ghafgen.views.report import discovery_json, discovery_text

    with reported():
        cat = load()
        reader = disc.SysfsReader(root)
        found = disc.discover(root, cat, reader)
        if capture_to is not None:
            count = disc.capture(reader, capture_to)
            typer.echo(f"captured {count} files into {capture_to}", err=True)
        if profile is not None:
            _write_new_profile(profile, found, name, cat)
    typer.echo(
        json.dumps(discovery_json(found, cat), indent=2)
        if fmt == "json"
        else discovery_text(found, cat)
    )


def _write_once(path: Path, text: str, what: str, *, force: bool = False) -> None:
    """Write `text` to a new file at `path`; an existing one only with `force`
    (then atomically: a reader sees the old file or the new, never half)."""
    import contextlib
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not force:
            with open(path, "x", encoding="utf-8") as out:
                out.write(text)
            return
        # mkstemp: a fresh name no one can plant a link at in advance.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            mask = os.umask(0o022)
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)  # what open() would have given, not 0600
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except FileExistsError:
        raise GhafgenError(
            f"{path} exists; ghafgen does not overwrite {what}"
            + (" (--force replaces it)" if what == "a catalog file" else "")
        ) from None
    except OSError as e:
        raise GhafgenError(f"cannot write {path}: {e.strerror or e}") from None


def _write_new_profile(path: Path, found: object, name: str, cat: Catalog) -> None:
    """Write a draft profile; never over an existing file; validate it after."""
    from ghafgen.discover.draft import from_discovery
    from ghafgen.discover.sysfs import DiscoverError, Discovery
    from ghafgen.findings import printable

    assert isinstance(found, Discovery)
    if found.board is None:
        from ghafgen.discover.boarddraft import board_draft, missing_facts

        draft = path.with_name(path.stem + ".board.toml")
        _write_once(draft, board_draft(found, cat), "a draft")
        raise DiscoverError(
            "no catalog board matches compatible "
            f"{printable(', '.join(found.compatible)) or '(none)'}; wrote a board draft to "
            f"{draft}; missing: " + "; ".join(missing_facts(found, cat))
        )
    _create(path, from_discovery(found, name, cat).toml(), cat)


def _create(path: Path, text: str, cat: Catalog) -> None:
    from ghafgen.rules.engine import validate as run

    _write_once(path, text, "a profile")
    report = run([path], cat)
    for f in report.findings:
        typer.echo(f.render(), err=True)
    if report.exit_code:
        raise GhafgenError(f"{path} was written but does not validate; fix it by hand")
    typer.echo(f"wrote {path}; next: ghafgen generate {path} -o nix/modules", err=True)


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
        typer.Option(
            help="Draft from a captured tree (ghafgen discover --root).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where profiles live.", file_okay=False)
    ] = Path("profiles"),
) -> None:
    """Scaffold a profile for a board; asks on a terminal for what the flags leave out."""
    from ghafgen.catalog import load
    from ghafgen.discover import newtarget

    path = folder / f"{name}.toml"
    with reported():
        cat = load()
        if from_discover is not None:
            from ghafgen.discover import sysfs as disc

            if board or passthrough or vm:
                raise typer.BadParameter(
                    "--from-discover drafts everything from the captured tree; "
                    "leave out --board, --passthrough and --vm (edit the draft instead)"
                )

            _write_new_profile(path, disc.discover(from_discover, cat), name, cat)
            return
        ask = newtarget.Prompter(typer.prompt) if interactive() else None
        draft = newtarget.draft(name, board, passthrough or [], vm or [], ask, cat)
        _create(path, draft.toml(), cat)
