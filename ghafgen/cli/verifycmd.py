"""`ghafgen verify`: check a deployed board, or a capture of one, against its target."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ghafgen.cli._app import Format, TextJson, reported

# This group's command; cli/__init__.py joins the groups into one app.
app = typer.Typer()


@app.command()
def verify(
    target: Annotated[
        Path | None,
        typer.Argument(
            help="Generated target folder or its ghafgen-manifest.json "
            "(default: the one the running system installed in /etc/ghafgen).",
            exists=True,
            show_default=False,
        ),
    ] = None,
    guest: Annotated[
        bool, typer.Option("--guest", help="Check a guest (run inside the VM).")
    ] = False,
    vm: Annotated[
        str | None,
        typer.Option(
            help="With --guest: the VM this is (default: its only one, or the host name)."
        ),
    ] = None,
    root: Annotated[
        Path,
        typer.Option(
            help="Read a captured tree (folder or .tar.gz) instead of /.", exists=True
        ),
    ] = Path("/"),
    capture_to: Annotated[
        Path | None,
        typer.Option(
            "--capture",
            help="Save exactly the files read, as a .tar.gz, for a bug report.",
            dir_okay=False,
        ),
    ] = None,
    fmt: Format = TextJson.text,
) -> None:
    """Check that the running board (or a guest) does what the target asked; reads only."""
    from ghafgen.findings import printable
    from ghafgen.verify import run
    from ghafgen.verify.report import exit_code, render_json, render_text
    from ghafgen.verify.source import write_capture

    with reported():
        done = run.verify(target, root, guest=guest, vm=vm)
        for refused in done.source.refused:
            # The link's target is the capture's text: shown escaped.
            typer.echo(f"note: {printable(refused)}; read as absent", err=True)
        if capture_to is not None:
            count = write_capture(done.source, capture_to)
            typer.echo(f"captured {count} entries into {capture_to}", err=True)
    render = render_json if fmt == "json" else render_text
    typer.echo(render(done.checks, done.name), nl=False)
    raise typer.Exit(exit_code(done.checks))
