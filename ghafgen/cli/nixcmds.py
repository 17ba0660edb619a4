"""Commands that run Nix and the device-tree tools: build, check, prefetch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from ghafgen.cli._app import Format, Profiles, app, check_format, reported


class _NixOptionCommand(TyperCommand):
    """Accepts Nix's own `--option NAME VALUE` (two values) besides NAME=VALUE."""

    # Any: Typer's Command is typed with its vendored click's Context.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from ghafgen.nixbuild import nix_options

        args, old = nix_options(args)
        if old:
            typer.echo(
                "warning: --option NAME=VALUE is deprecated; write --option NAME "
                "VALUE, as nix does",
                err=True,
            )
        return super().parse_args(ctx, args)


@app.command(cls=_NixOptionCommand)
def build(
    target: Annotated[
        str,
        typer.Argument(
            help="Target name (builds nixosConfigurations.TARGET's toplevel), "
            "or flake#attribute."
        ),
    ],
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
        typer.Option(
            help="NAME VALUE, passed as nix --option NAME VALUE; repeatable "
            "(NAME=VALUE still works, deprecated).",
            metavar="NAME VALUE",
        ),
    ] = None,
    out_link: Annotated[
        str | None,
        typer.Option(
            help="Symlink to the result, as nix build --out-link (default: none)."
        ),
    ] = None,
    print_command: Annotated[
        bool,
        typer.Option(
            "--print-command",
            "--dry-run",
            help="Print the nix build command and run nothing.",
        ),
    ] = False,
) -> None:
    """Run nix build on a target's NixOS system, streaming Nix's log; print the out paths."""
    import shlex

    from ghafgen import nixbuild

    pairs = [nixbuild.option_pair(item) for item in option or []]
    if None in pairs:
        raise typer.BadParameter("write --option NAME VALUE", param_hint="--option")
    opts = nixbuild.BuildOptions(
        flake, builders, max_jobs, store, tuple(p for p in pairs if p), out_link
    )
    if print_command:
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
    from ghafgen.guestbase import dump_qemu_virt

    check_format(fmt)
    with reported(), tempfile.TemporaryDirectory(prefix="ghafgen-qemu-") as tmp:
        if qemu_dtb is None:
            qemu_dtb = dump_qemu_virt(Path(tmp))
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
