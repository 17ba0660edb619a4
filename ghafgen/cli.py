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
    fmt: Format = "text",
    boards: Annotated[
        bool, typer.Option("--boards", help="List the catalog's boards.")
    ] = False,
) -> None:
    """Print who owns each device: VM, IOMMU group, BPMP IDs, slot and power."""
    from ghafgen import show as table
    from ghafgen.validate import validate as run

    _check_format(fmt)
    if boards:
        typer.echo(_boards_text())
        return
    if not profiles:
        raise typer.BadParameter("give at least one profile, or --boards")
    report = run(profiles)
    for f in report.findings:
        if f.severity is Severity.ERROR:
            typer.echo(f.render(), err=True)
    if fmt == "json":
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
) -> None:
    """Write NixOS/microvm.nix modules, overlays, guest trees and patches for each profile."""
    from ghafgen.generate import generate as run

    with reported():
        result = run(profiles, out, check=check, force=force)
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
def rules(fmt: Format = "text") -> None:
    """List every rule ID with what it checks and how to fix it."""
    import ghafgen.profile.parse  # noqa: F401  (registers the syntax rules)
    from ghafgen.rules import REGISTRY

    _check_format(fmt)
    infos = sorted(REGISTRY.values(), key=lambda r: r.id)
    if fmt == "json":
        typer.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "name": r.name,
                        "severity": r.severity.value,
                        "summary": r.summary,
                        "fix": r.fix,
                    }
                    for r in infos
                ],
                indent=2,
            )
        )
        return
    for r in infos:
        typer.echo(
            f"{r.id} {r.name} ({r.severity.value})\n  {r.summary}\n  fix: {r.fix}"
        )


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
