"""Commands on profiles: validate, show, generate, schema, rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ghafgen.cli._app import Format, Profiles, app, check_format, reported
from ghafgen.findings import Severity


@app.command()
def validate(profiles: Profiles, fmt: Format = "text") -> None:
    """Check profiles against every rule; exit 1 on errors, 2 on unreadable input."""
    from ghafgen.validate import validate as run

    check_format(fmt)
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
    from ghafgen import show as table
    from ghafgen.validate import validate as run

    if devices:
        from ghafgen import devicedoc

        check_format(fmt, ("text", "json", "markdown"))
        with reported():
            typer.echo(devicedoc.render(board, fmt))
        return

    check_format(fmt, ("text", "json", "mermaid", "dot", "svg"))
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

    check_format(fmt, ("text", "json", "markdown"))
    typer.echo(ruledoc.render(fmt), nl=False)
