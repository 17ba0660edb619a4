"""The `ghafgen` command line: parse arguments, call one function, print, exit.

Exit codes: 0 ok, 1 findings (errors), 2 unusable input or missing tool,
3 a tool failed while running, 130 interrupted. Commands live by concern in
profiles.py, nixcmds.py and board.py; heavy imports stay inside them.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Callable
from typing import Any

import typer
from typer.models import CommandInfo, TyperInfo

# isort: off
# Registration order is the order `ghafgen --help` lists the commands in.
from ghafgen.cli import profiles  # noqa: F401 - validate, show, generate, schema, rules
from ghafgen.cli import nixcmds  # noqa: F401 - build, check, prefetch
from ghafgen.cli import board  # noqa: F401 - discover, new-target, catalog

# isort: on
from ghafgen.cli._app import app
from ghafgen.errors import GhafgenError, ToolError

__all__ = ["app", "main"]


def main() -> None:
    try:
        for_args(sys.argv[1:])()
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


def for_args(args: list[str]) -> typer.Typer:
    """`app`, holding only what the command line `args` can run.

    Typer turns every command's signature into Click parameters before it
    parses anything, a third of its start-up; one command needs only its own.
    Help and errors print the same text: a command line that names no command
    (`--help`, `--version`, a typo) gets each command's name and docstring
    only, one that starts with a command gets that command alone, and any
    other (`--help validate`; shell completion, which reads its words from
    the environment) gets the whole app.
    """
    completing = any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ)
    names = {_name(c): c for c in app.registered_commands}
    groups = {g.name: g for g in app.registered_groups if g.name}
    if completing or len(names) + len(groups) != len(app.registered_commands) + len(
        app.registered_groups
    ):
        return app
    if not any(a in names or a in groups for a in args):
        return _listing(app)
    if args[0] in names:
        return _only(app, [names[args[0]]], [])
    if args[0] in groups:
        return _only(app, [], [groups[args[0]]])
    return app


def _name(info: CommandInfo) -> str | None:
    """A command's name as Typer derives it (typer.main.get_command_name)."""
    if info.name:
        return str(info.name)
    callback = info.callback
    return callback.__name__.lower().replace("_", "-") if callback else None


def _only(
    whole: typer.Typer, commands: list[CommandInfo], groups: list[TyperInfo]
) -> typer.Typer:
    part = copy.copy(whole)
    part.registered_commands = commands
    part.registered_groups = groups
    return part


def _listing(whole: typer.Typer) -> typer.Typer:
    """`whole` with each command's callback a stand-in that has its name and
    docstring and no parameters: enough for the command list of --help, and
    never run, since no command line given this app names a command."""
    commands = []
    for info in whole.registered_commands:
        stand_in = copy.copy(info)
        stand_in.callback = _stand_in(info.callback)
        commands.append(stand_in)
    groups = []
    for group in whole.registered_groups:
        listed = copy.copy(group)
        if group.typer_instance is not None:
            listed.typer_instance = _listing(group.typer_instance)
        groups.append(listed)
    return _only(whole, commands, groups)


def _stand_in(callback: Callable[..., Any] | None) -> Callable[..., Any] | None:
    if callback is None:
        return None

    def listed() -> None:
        raise AssertionError("a --help stand-in was run")  # pragma: no cover

    listed.__name__ = callback.__name__
    listed.__qualname__ = callback.__qualname__
    listed.__doc__ = callback.__doc__
    return listed


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
