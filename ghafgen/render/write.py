"""Render and write (or compare) the targets of profiles that passed validation.

Entry point: `write_all(profiles, outdir, compare_only=..., force=..., layout=...)`.
Every target is planned and rendered before the first file is written.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ghafgen.catalog.model import Board
from ghafgen.errors import ProfileError
from ghafgen.fileio import Unreadable
from ghafgen.profile.model import Profile
from ghafgen.render.files import render_target
from ghafgen.render.output import (
    MANIFEST,
    Outcome,
    locked,
    preflight,
    read_manifest_bytes,
    write_target,
)
from ghafgen.render.plan import TargetPlan, plan
from ghafgen.render.runtime_facts import runtime_facts


@dataclass(frozen=True)
class Written:
    outcomes: tuple[Outcome, ...]
    orphans: tuple[str, ...] = ()  # folders of a renamed target, left as they are


def display_name(path: Path, outdir: Path) -> str:
    """The profile as generated files name it: relative to the nearest folder it
    shares with the output (`profiles/x.toml` for `-o nix/modules`), so neither
    the working directory nor the spelling of either path changes a file."""
    profile, out = path.resolve(), outdir.resolve()
    base = Path(os.path.commonpath([profile.parent, out]))
    return profile.relative_to(base).as_posix()


def orphans(outdir: Path, written: dict[str, str]) -> list[str]:
    """Target folders in `outdir` that one of these profiles wrote under another
    target name (target.name was renamed): `written` maps profile -> target."""
    found = []
    for manifest in sorted(outdir.glob(f"*/{MANIFEST}")):
        folder = manifest.parent
        if folder.name.startswith(".") or folder.name in written.values():
            continue
        try:
            data = read_manifest_bytes(folder)
            doc = json.loads(data or b"")
        except (OSError, Unreadable, ValueError, RecursionError):
            continue
        if isinstance(doc, dict) and doc.get("profile") in written:
            found.append(folder.name)
    return found


def _one_ghaf_name_each(target: TargetPlan, profile: str) -> None:
    """Ghaf names VMs without dashes; two VMs must not meet in one attribute."""
    seen: dict[str, str] = {}
    for vm in target.vms:
        first = seen.setdefault(vm.ghaf_key, vm.name)
        if first != vm.name:
            raise ProfileError(
                f"{profile}: VMs '{first}' and '{vm.name}' both become Ghaf's "
                f"'{vm.ghaf_key}' in --layout ghaf; rename one of them"
            )


def host_facts(p: TargetPlan) -> dict[str, object]:
    """What a NixOS host configuration around the module needs: the kernel
    series the module is generated for, the tree flavour that picks how it is
    booted (nixpkgs' kernel, or jetpack-nixos for L4T), and jetpack-nixos's
    SoM and carrier board for the board."""
    return {
        "board": p.board.name,
        "dt_flavor": p.flavor,
        "kernel_series": ".".join(p.kernel_version.split(".")[:2]),
        "jetpack": {
            "som": p.board.jetpack_som,
            "carrierBoard": p.board.jetpack_carrier_board,
        },
    }


def contents_facts(p: TargetPlan) -> dict[str, object]:
    """What `ghafgen check` compares the real tools' view against, so that it
    need not read it back out of the generated text: each VM's passed platform
    devices (its guest tree's bus nodes), and per Nix file the kernel symbols
    it sets and the kernel series it pins ("" when it pins none)."""
    config: dict[str, object] = {
        "host.nix": {
            "pinned_series": "",
            "symbols": [sym for kc in p.kernel_configs for sym, _v in kc.symbols],
        }
    }
    for vm in p.vms:
        if vm.guest_config:
            config[f"vms/{vm.name}.nix"] = {
                "pinned_series": vm.guest_kernel,
                "symbols": [sym for sym, _v in vm.guest_config],
            }
    return {
        "vms": {
            vm.name: {"platform_devices": list(vm.vfio_platform_hosts)} for vm in p.vms
        },
        "kernel_config": config,
        "runtime": runtime_facts(p),
    }


def write_all(
    profiles: list[tuple[Path, Profile, Board]],
    outdir: Path,
    *,
    compare_only: bool = False,
    force: bool = False,
    layout: str = "default",
) -> Written:
    """Plan and render every valid profile; only then write them (or, `compare_only`, compare).

    Raises:
        ProfileError: a profile does not fit the layout.
        OutputError: hand-edited files, or an unwritable output directory.
    """
    rendered = []
    for path, profile, board in profiles:
        name = display_name(path, outdir)
        target = plan(profile, board, name, layout)
        if layout == "ghaf":
            _one_ghaf_name_each(target, name)
        rendered.append(
            (
                profile,
                name,
                render_target(target),
                host_facts(target),
                contents_facts(target),
            )
        )
    outcomes = []
    preflight(outdir, [profile.target.name for profile, *_rest in rendered])
    with contextlib.nullcontext() if compare_only else locked(outdir):
        for profile, name, files, host, contents in rendered:
            outcomes.append(
                write_target(
                    outdir,
                    profile.target.name,
                    files,
                    profile=name,
                    profile_sha256=profile.sha256,
                    host=host,
                    contents=contents,
                    compare_only=compare_only,
                    force=force,
                )
            )
    written = {name: profile.target.name for profile, name, *_rest in rendered}
    return Written(tuple(outcomes), tuple(orphans(outdir, written)))
