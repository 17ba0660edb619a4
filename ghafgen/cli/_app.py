"""The Typer app and what every command shares: options, error reporting, formats."""

from __future__ import annotations

import contextlib
import enum
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ghafgen import __version__
from ghafgen.errors import GhafgenError, ToolError

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


# Fixed choices as enums: Typer refuses any other value and lists these in --help.
class TextJson(enum.StrEnum):
    text = "text"
    json = "json"


class ShowFormat(enum.StrEnum):
    text = "text"
    json = "json"
    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"
    markdown = "markdown"  # show --devices only (docs/devices.md)


class RulesFormat(enum.StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class Layout(enum.StrEnum):  # render.plan.LAYOUTS (tested)
    default = "default"
    ghaf = "ghaf"


class Flavor(enum.StrEnum):  # catalog.model.FLAVORS (tested)
    l4t = "l4t"
    mainline = "mainline"


Format = Annotated[TextJson, typer.Option("--format", help="Output format.")]


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Turn ghafgen's own errors into one line on stderr and exit 2 (3 for tool failures)."""
    try:
        yield
    except ToolError as e:
        typer.echo(f"error: {_shown(e)}", err=True)
        raise typer.Exit(3) from None
    except GhafgenError as e:
        typer.echo(f"error: {_shown(e)}", err=True)
        raise typer.Exit(2) from None


def _shown(e: Exception) -> str:
    """A message may quote a file's or a tool's text: its control characters are
    shown escaped (a tool's multi-line stderr keeps its newlines)."""
    from ghafgen.findings import printable

    return printable(str(e), keep_newlines=True)


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


def interactive() -> bool:
    """Ask questions only on a terminal, never in a pipe or in CI."""
    import os

    # CI=true (or 1, yes) means a pipeline; CI=false or CI=0 is a person's shell.
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return sys.stdin.isatty() and sys.stdout.isatty() and not ci
