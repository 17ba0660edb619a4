"""Commands on profiles: validate, show, generate, schema, rules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ghafgen.cli._app import (
    Format,
    Layout,
    Profiles,
    RulesFormat,
    ShowFormat,
    TextJson,
    reported,
)

if TYPE_CHECKING:
    from ghafgen.catalog import Catalog

# This group's commands; cli/__init__.py joins the groups into one app.
app = typer.Typer()


@app.command()
def validate(profiles: Profiles, fmt: Format = TextJson.text) -> None:
    """Check profiles against every rule; exit 1 on errors, 2 on unreadable input."""
    from ghafgen.catalog import load
    from ghafgen.rules.engine import validate as run

    report = run(profiles, load())
    if fmt == "json":
        import json

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
        typer.echo(
            f"{len(report.checked)} profile(s), {report.valid} valid, "
            f"{report.errors} error(s)",
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
        ShowFormat,
        typer.Option("--format", help="text, json, or a diagram: mermaid, dot, svg."),
    ] = ShowFormat.text,
    boards: Annotated[
        bool, typer.Option("--boards", help="List the catalog's boards.")
    ] = False,
    devices: Annotated[
        bool,
        typer.Option(
            "--devices",
            help="Every device of the SoC, its passthrough class and why "
            "(--format text, json or markdown).",
        ),
    ] = False,
    board: Annotated[
        str | None,
        typer.Option(help="With --devices: one board (a name or a module SKU)."),
    ] = None,
) -> None:
    """Print who owns each device (VM, IOMMU group, BPMP IDs, slot, power), or a diagram."""
    import json

    from ghafgen.catalog import load
    from ghafgen.findings import Severity
    from ghafgen.rules.engine import validate as run
    from ghafgen.views import show as table

    cat = load()

    if devices:
        from ghafgen.views import devicedoc

        if fmt not in (ShowFormat.text, ShowFormat.json, ShowFormat.markdown):
            raise typer.BadParameter(
                "--devices prints text, json or markdown", param_hint="--format"
            )
        import shutil

        # A terminal's width (COLUMNS if set), else 100 for a pipe or a file.
        width = shutil.get_terminal_size((100, 24)).columns
        with reported():
            typer.echo(devicedoc.render(cat, board, fmt.value, width))
        return
    if fmt is ShowFormat.markdown:
        raise typer.BadParameter("markdown is for --devices", param_hint="--format")
    if boards:
        if fmt is ShowFormat.json:
            typer.echo(json.dumps(table.boards_data(cat), indent=2))
        elif fmt is ShowFormat.text:
            typer.echo(_boards_text(cat))
        else:
            raise typer.BadParameter(
                "--boards prints text or json", param_hint="--format"
            )
        return
    if not profiles:
        raise typer.BadParameter("give at least one profile, or --boards")
    if (
        fmt in (ShowFormat.mermaid, ShowFormat.dot, ShowFormat.svg)
        and len(profiles) > 1
    ):
        raise typer.BadParameter(
            f"{len(profiles)} profiles given; a diagram ({fmt.value}) is one "
            "document of one profile: run show once per profile",
            param_hint="'[profiles]...'",
        )
    report = run(profiles, cat)
    for f in report.findings:
        if f.severity is Severity.ERROR:
            typer.echo(f.render(), err=True)
    if fmt in ("mermaid", "dot", "svg"):
        from ghafgen.views import diagram

        draw = {"mermaid": diagram.mermaid, "dot": diagram.dot, "svg": diagram.svg}[
            fmt.value
        ]
        with reported():
            typer.echo("".join(draw(p, b) for p, b in report.usable), nl=False)
    elif fmt == "json":
        typer.echo(
            json.dumps([table.as_json(p, b) for p, b in report.usable], indent=2)
        )
    else:
        typer.echo("\n\n".join(table.render_text(p, b) for p, b in report.usable))
    raise typer.Exit(report.exit_code)


def _boards_text(cat: Catalog) -> str:
    lines = []
    for name in cat.board_names():
        b = cat.board(name)
        lines.append(
            f"{name}: {b.description}; {b.cpu_cores} cores, {b.ram_mib // 1024} GiB"
        )
        if b.module is not None and b.module.fused_off:
            lines.append("  fused off: " + ", ".join(b.module.fused_off))
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
            "-o",
            "--out",
            help="Output folder; each target gets a subfolder.",
            file_okay=False,
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
        Layout,
        typer.Option(
            help="default: NixOS + microvm.nix; ghaf: Ghaf's per-VM extension points."
        ),
    ] = Layout.default,
) -> None:
    """Write NixOS/microvm.nix modules, overlays, guest trees and patches for each profile."""
    from ghafgen.catalog import load
    from ghafgen.cli.pipeline import generate as run
    from ghafgen.findings import Severity

    with reported():
        result = run(
            profiles, out, load(), compare_only=check, force=force, layout=layout.value
        )
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
                # Not there at all (a first run, an empty folder) is not a change.
                path = out / o.target / rel
                typer.echo(f"{'drift' if path.exists() else 'missing'}: {path}")
            drift = drift or bool(o.drifted)
        else:
            typer.echo(
                f"{o.target}: {len(o.written)} written, {len(o.unchanged)} unchanged"
                + (f", {len(o.removed)} removed" if o.removed else "")
            )
            if o.kept:
                typer.echo(
                    f"{o.target}: kept what ghafgen did not write: {', '.join(o.kept)}",
                    err=True,
                )
    for name in result.orphans:
        # Not deleted: the folder may hold what a person added; say what to do.
        typer.echo(
            f"orphan: {out / name} was written from one of these profiles under "
            "an earlier target.name; delete it if it is no longer used",
            err=not check,
        )
    raise typer.Exit(1 if drift or (check and result.orphans) else 0)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the profile format."""
    import json

    from ghafgen.profile.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
def rules(
    fmt: Annotated[
        RulesFormat, typer.Option("--format", help="Output format.")
    ] = RulesFormat.text,
) -> None:
    """List every rule ID, where it applies (a profile, or all profiles of one host
    together), what it checks and how to fix it."""
    from ghafgen.rules import docs as ruledoc

    typer.echo(ruledoc.render(fmt.value), nl=False)
