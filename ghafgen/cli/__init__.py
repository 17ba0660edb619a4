"""The `ghafgen` command line: parse arguments, call one function, print, exit.

Exit codes: 0 ok, 1 findings (errors), 2 unusable input or missing tool,
3 a tool failed while running, 130 interrupted. Commands live by concern in
profiles.py, nixcmds.py and board.py, each with its own Typer app that
this module joins; heavy imports stay inside the commands.
"""

from __future__ import annotations

import contextlib
import sys

import typer

from ghafgen.cli import board, nixcmds, profiles
from ghafgen.cli._app import app
from ghafgen.errors import GhafgenError, ToolError

# The order here is the order `ghafgen --help` lists the commands in.
app.add_typer(profiles.app)  # validate, show, generate, schema, rules
app.add_typer(nixcmds.app)  # build, check, prefetch
app.add_typer(board.app)  # discover, new-target, catalog

__all__ = ["app", "main"]


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
    except OSError as e:
        # A file outside ghafgen's own error handling (the shell's rc file that
        # --install-completion edits), or stdout itself (`schema > /dev/full`).
        if e.filename:
            typer.echo(f"error: cannot write {e.filename}: {e.strerror or e}", err=True)
        else:
            _drop_stdout()
            typer.echo(f"error: cannot write the output: {e.strerror or e}", err=True)
        sys.exit(2)


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
