"""`ghafgen build`: run `nix build` on a flake output and explain common failures.

Entry points: `build_argv(...)`, `nix_options(...)` (pure) and `build(...)`.
A bare TARGET names the NixOS system the flake builds for it,
`nixosConfigurations.<TARGET>.config.system.build.toplevel` (the flake's own
outputs, and the template's, define one per generated target).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ghafgen.errors import ToolError
from ghafgen.fileio import Unreadable
from ghafgen.render.output import MANIFEST, read_manifest_bytes
from ghafgen.tools import NIX_FEATURES, ToolResult, run


@dataclass(frozen=True)
class BuildOptions:
    flake: str = "."
    builders: str | None = None
    max_jobs: str | None = None
    store: str | None = None
    options: tuple[tuple[str, str], ...] = field(default=())
    # None: no result symlink (--no-link); a path: nix build --out-link PATH.
    out_link: str | None = None


def toplevel_attr(target: str) -> str:
    return f"nixosConfigurations.{target}.config.system.build.toplevel"


def flake_ref(flake: str, target: str) -> str:
    """TARGET as given when it is `flake#attr`, else its system's toplevel in `flake`."""
    return target if "#" in target else f"{flake}#{toplevel_attr(target)}"


# NUL never occurs in an argv string, so it cannot clash with a name or value.
_PAIR = "\0"


def nix_options(args: list[str]) -> tuple[list[str], int]:
    """Rewrite Nix's two-value `--option NAME VALUE` into one token per option.

    Click gives an option a fixed number of values, and the older ghafgen form
    `--option NAME=VALUE` takes one; a NAME never contains "=", so the token
    after `--option` tells the forms apart. Returns the rewritten arguments and
    how many options used the old form. Arguments after `--` are left alone.
    """
    out: list[str] = []
    old = 0
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out += args[i:]
            break
        name: str | None = None
        if arg == "--option" and i + 1 < len(args):
            name, i = args[i + 1], i + 2
        elif arg.startswith("--option="):
            name, i = arg.removeprefix("--option="), i + 1
        else:
            out.append(arg)
            i += 1
            continue
        if "=" in name:
            old += 1
            out += ["--option", name]
        elif i < len(args):
            out += ["--option", name + _PAIR + args[i]]
            i += 1
        else:
            out += ["--option", name]  # no value: left for the command to reject
    return out, old


def option_pair(token: str) -> tuple[str, str] | None:
    """(NAME, VALUE) of one `--option` token after `nix_options`, None if malformed."""
    name, sep, value = token.partition(_PAIR)
    if not sep:
        name, sep, value = token.partition("=")
    return (name, value) if sep and name else None


def build_argv(target: str, opts: BuildOptions) -> list[str]:
    # --show-trace: evaluation errors then carry the file and line they come from.
    argv = [
        "nix",
        *NIX_FEATURES,
        "build",
        "--json",
        *(["--no-link"] if opts.out_link is None else ["--out-link", opts.out_link]),
        "--print-build-logs",
        "--show-trace",
    ]
    if opts.builders is not None:
        argv += ["--builders", opts.builders]
    if opts.max_jobs is not None:
        argv += ["--max-jobs", opts.max_jobs]
    if opts.store is not None:
        argv += ["--store", opts.store]
    for name, value in opts.options:
        argv += ["--option", name, value]
    # `--`: a target or flake path that starts with "-" stays an installable.
    argv += ["--", flake_ref(opts.flake, target)]
    return argv


@dataclass(frozen=True)
class Cause:
    pattern: str
    explain: Callable[[re.Match[str]], str]


def _manifest_of(path: Path) -> Path | None:
    """The manifest of the ghafgen output that holds `path`, if any."""
    for parent in path.parents:
        if (parent / MANIFEST).is_file():
            return parent / MANIFEST
    return None


def _generated_origin(m: re.Match[str]) -> str:
    """Point an evaluation error in a generated file back at the profile table."""
    path = Path(m.group(1))
    where = f"{path}:{m.group(2)}" if m.group(2) else str(path)
    manifest = _manifest_of(path)
    if manifest is None:
        return f"evaluation failed in {where}"
    try:
        doc = json.loads(read_manifest_bytes(manifest.parent) or b"{}")
    except (OSError, Unreadable, ValueError, RecursionError):
        doc = {}
    profile = doc.get("profile", "?") if isinstance(doc, dict) else "?"
    rel = path.relative_to(manifest.parent)
    table = {"vms": "vms", "devices": "hardware.nvidia.passthroughs"}.get(rel.parts[0])
    key = f"[{table}.{path.stem}]" if table and len(rel.parts) == 2 else "[target]"
    return f"evaluation failed in {where}, generated from {profile} {key}"


CAUSES = (
    Cause(
        r"experimental Nix feature '(flakes|nix-command)' is disabled",
        lambda m: (
            f"Nix has '{m.group(1)}' disabled; add 'experimental-features = "
            "nix-command flakes' to nix.conf"
        ),
    ),
    Cause(
        r"does not provide attribute '([^']+)'",
        lambda m: (
            f"the flake has no attribute '{m.group(1)}'; check the target name "
            "(`nix flake show`) or pass flake#attribute"
        ),
    ),
    Cause(
        r"a '([\w-]+)' with features \{[^}]*\} is required to build",
        lambda m: (
            f"no builder for {m.group(1)} here: pass --builders 'ssh://host "
            f"{m.group(1)}' or enable binfmt emulation (boot.binfmt.emulatedSystems)"
        ),
    ),
    Cause(
        r"error: the group '(\w+)' specified in 'build-users-group' does not exist",
        lambda m: (
            f"Nix is configured for build users in group '{m.group(1)}', which does "
            "not exist; run nix-daemon, or pass --option build-users-group ''"
        ),
    ),
    Cause(
        r"error: (?:unable to download|.*Couldn't resolve host)",
        lambda m: (
            "Nix tried the network; offline, pass --option substituters '' and make "
            "sure every input is in the store"
        ),
    ),
    # Nix 2.8 names a file either by position or as "while evaluating the file".
    Cause(
        r"(?:at |while evaluating the file ')(/[^\s:']+\.nix)(?::(\d+):\d+)?",
        _generated_origin,
    ),
)


def explain(stderr: str) -> str | None:
    for cause in CAUSES:
        matches = list(re.finditer(cause.pattern, stderr))
        if matches:
            # A trace names several files; prefer one that ghafgen generated.
            generated = [
                m
                for m in matches
                if cause.explain is _generated_origin and _manifest_of(Path(m.group(1)))
            ]
            return cause.explain((generated or matches)[0])
    return None


@dataclass(frozen=True)
class Built:
    argv: tuple[str, ...]
    out_paths: tuple[str, ...]


def build(
    target: str,
    opts: BuildOptions,
    *,
    on_line: Callable[[str], None],
    cwd: Path | None = None,
) -> Built:
    """Run the build, streaming Nix's log to `on_line`.

    Raises:
        ToolMissing: Nix is not installed.
        ToolError: the build failed; the message leads with the plain cause.
    """
    result: ToolResult = run(build_argv(target, opts), cwd=cwd, on_line=on_line)
    if result.returncode != 0:
        # Nix's own log has been streamed already; add only the plain cause.
        raise ToolError(
            explain(result.stderr) or f"nix build failed (exit {result.returncode})"
        )
    outs = [
        path
        for item in json.loads(result.stdout or "[]")
        for path in item.get("outputs", {}).values()
    ]
    return Built(result.argv, tuple(outs))
