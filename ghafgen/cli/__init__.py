"""The `ghafgen` command line: parse arguments, call one function, print, exit.

Exit codes: 0 ok, 1 findings (errors), 2 unusable input or missing tool,
3 a tool failed while running, 130 interrupted. Commands live by concern in
profiles.py, nixcmds.py and board.py, each with its own Typer app that
this module joins; heavy imports stay inside the commands.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import sys
from collections.abc import Callable
from typing import Any

import typer
from typer.models import CommandInfo

from ghafgen.cli import board, nixcmds, profiles, verifycmd
from ghafgen.cli._app import app
from ghafgen.errors import GhafgenError, ToolError

# The order here is the order `ghafgen --help` lists the commands in.
app.add_typer(profiles.app)  # validate, show, generate, schema, rules
app.add_typer(nixcmds.app)  # build, check, prefetch
app.add_typer(board.app)  # discover, new-target, catalog
app.add_typer(verifycmd.app)  # verify

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
    finally:
        # The process ends here. Shutdown's last collections would find and free
        # every class, function and module dict (each sits in a reference cycle),
        # 10-30 ms of `validate` here; frozen, they are left for the OS to
        # reclaim. atexit handlers and reference-count finalisers still run.
        gc.freeze()


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
    names = _names(app)
    if completing or None in names or len(set(names)) != len(names):
        return app
    if not any(a in names for a in args):
        return _listing(app)
    if args[0] in names:
        return _only(app, args[0])
    return app


def _name(info: CommandInfo) -> str | None:
    """A command's name as Typer derives it (typer.main.get_command_name)."""
    if info.name:
        return str(info.name)
    callback = info.callback
    return callback.__name__.lower().replace("_", "-") if callback else None


def _names(whole: typer.Typer) -> list[str | None]:
    """The names `whole` answers to: its commands, its named groups, and those
    of the groups without a name, which Typer merges into it."""
    names = [_name(c) for c in whole.registered_commands]
    for group in whole.registered_groups:
        if group.name:
            names.append(group.name)
        elif group.typer_instance is not None:
            names += _names(group.typer_instance)
        else:
            names.append(None)
    return names


def _only(whole: typer.Typer, name: str) -> typer.Typer:
    """`whole` with the one command or group called `name`."""
    part = copy.copy(whole)
    part.registered_commands = [
        c for c in whole.registered_commands if _name(c) == name
    ]
    part.registered_groups = []
    for group in whole.registered_groups:
        if group.name == name:
            part.registered_groups.append(group)
        elif (
            not group.name
            and group.typer_instance is not None
            and name in _names(group.typer_instance)
        ):
            merged = copy.copy(group)
            merged.typer_instance = _only(group.typer_instance, name)
            part.registered_groups.append(merged)
    return part


def _listing(whole: typer.Typer) -> typer.Typer:
    """`whole` with each command's callback a stand-in that has its name and
    docstring and no parameters: enough for the command list of --help, and
    never run, since no command line given this app names a command."""
    part = copy.copy(whole)
    part.registered_commands = []
    for info in whole.registered_commands:
        stand_in = copy.copy(info)
        stand_in.callback = _stand_in(info.callback)
        part.registered_commands.append(stand_in)
    part.registered_groups = []
    for group in whole.registered_groups:
        listed = copy.copy(group)
        if group.typer_instance is not None:
            listed.typer_instance = _listing(group.typer_instance)
        part.registered_groups.append(listed)
    return part


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
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
