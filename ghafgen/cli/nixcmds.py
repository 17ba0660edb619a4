"""Commands that run Nix and the device-tree tools: build, check, prefetch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from ghafgen.cli._app import Format, Profiles, TextJson, reported

# This group's commands; cli/__init__.py joins the groups into one app.
app = typer.Typer()


class _NixOptionCommand(TyperCommand):
    """Accepts Nix's own `--option NAME VALUE` (two values) besides NAME=VALUE."""

    # Any: Typer's Command is typed with its vendored click's Context.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from ghafgen.toolchain.nixbuild import nix_options

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

    from ghafgen.toolchain import nixbuild

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
        Path,
        typer.Argument(
            help="Generated output: DIR or DIR/<target>.",
            exists=True,
            file_okay=False,
        ),
    ],
    base_dtb: Annotated[
        Path | None,
        typer.Option(
            help="Host base tree (.dtb) the overlays must apply to.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    qemu_dtb: Annotated[
        Path | None,
        typer.Option(
            help="QEMU virt tree for guest trees (default: dumped with QEMU if present).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    kernel_src: Annotated[
        Path | None,
        typer.Option(
            help="Unpacked kernel tree (a folder): patches must apply, symbols must exist.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    qemu_src: Annotated[
        Path | None,
        typer.Option(
            help="Unpacked QEMU tree for QEMU patches.", exists=True, file_okay=False
        ),
    ] = None,
    kernel_sources: Annotated[
        Path | None,
        typer.Option(
            help="Folder holding linux-source-X.Y.tar.xz, to build base trees and "
            "binding schemas from (default: $GHAFGEN_KERNEL_SOURCES or /usr/src)."
        ),
    ] = None,
    schemas: Annotated[
        bool,
        typer.Option(
            "--schemas/--no-schemas",
            help="Run dt-validate with the kernel's binding schemas.",
        ),
    ] = True,
    fmt: Format = TextJson.text,
) -> None:
    """Check generated files with the real tools: Nix, dtc, fdtoverlay, dt-validate,
    git apply, Kconfig. Checks that cannot run are listed as skipped, with why."""
    import json
    import tempfile

    from ghafgen.catalog import load
    from ghafgen.toolchain import realtools
    from ghafgen.toolchain.guestbase import dump_qemu_virt

    with reported(), tempfile.TemporaryDirectory(prefix="ghafgen-qemu-") as tmp:
        if qemu_dtb is None:
            qemu_dtb = dump_qemu_virt(Path(tmp))
        inputs = realtools.CheckInputs(
            base_dtb, qemu_dtb, kernel_src, qemu_src, kernel_sources, schemas
        )
        results = realtools.check_with_real_tools(folder, inputs, load())
    failed = [r for r in results if not r.ok]
    skipped = [r for r in results if r.skipped]
    ran = len(results) - len(skipped)
    if fmt == "json":
        typer.echo(
            json.dumps(
                {
                    "results": realtools.as_json(results),
                    "ran": ran,
                    "failed": len(failed),
                    "skipped": len(skipped),
                },
                indent=2,
            )
        )
    else:
        for r in results:
            if not r.ok or r.skipped or r.message:
                typer.echo(r.render())
        summary = f"{ran} checks ran, {len(failed)} failed"
        if skipped:
            summary += f"; {len(skipped)} not run (listed as skip, with why)"
        typer.echo(summary, err=True)
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
    from ghafgen.profile.parse import load
    from ghafgen.toolchain.prefetch import prefetch as run

    by_folder: dict[Path, dict[str, tuple[str, str | None]]] = {}
    named_in: dict[tuple[Path, str], Path] = {}
    for path in dict.fromkeys(profiles):
        result = load(path)
        for f in result.findings:
            typer.echo(f.render(), err=True)
        if result.profile is None:
            raise typer.Exit(2)
        # One lock per folder, however the folder is spelled.
        folder = path.parent.resolve()
        wanted = by_folder.setdefault(folder, {})
        for src in result.profile.sources.values():
            want = (src.url, src.rev)
            first = named_in.setdefault((folder, src.name), path)
            if wanted.get(src.name, want) != want:
                url, rev = wanted[src.name]
                typer.echo(
                    f"error: source '{src.name}' is {url} @ {rev or 'HEAD'} in {first} "
                    f"but {src.url} @ {src.rev or 'HEAD'} in {path}; the lock in "
                    f"{folder} holds one pin per name: rename one source",
                    err=True,
                )
                raise typer.Exit(2)
            wanted[src.name] = want
    if not any(by_folder.values()):
        typer.echo(
            "nothing to pin: the profiles have no [sources] (no lock file written)",
            err=True,
        )
        return
    with reported():
        for folder, sources in sorted(by_folder.items()):
            if not sources:
                continue
            done = run(sources, folder, update=update)
            for name, pin in sorted(done.pinned.items()):
                typer.echo(
                    f"{name}: {pin.url} @ {pin.rev or '-'} {pin.hash} ({pin.method})"
                )
            for name in sorted(done.kept):
                typer.echo(f"{name}: kept")
            typer.echo(f"wrote {done.lock}", err=True)
