"""Render a target plan into its files: relative path -> bytes.

Entry point: `render_target(plan)`. jinja2 is imported here only, so commands
that do not generate never pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup

from ghafgen import __version__
from ghafgen.render.dcerelay import relay_files
from ghafgen.render.escape import FILTERS
from ghafgen.render.plan import TargetPlan

TEMPLATES = Path(__file__).parent / "templates"
# Real Nix files, shipped as they are (nixfmt and nix-instantiate read them).
STATIC = Path(__file__).parent / "static"


def _only_escaped(value: object) -> object:
    """jinja2 `finalize`: print escaped text, numbers and whitespace, nothing else."""
    # Markup comes from the filters (Safe) and from macros built of their output.
    if isinstance(value, Markup | int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (value == "" or value.isspace()):
        return value
    if value is None:
        return ""
    raise TypeError(f"template printed {value!r} without an escaping filter")


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # only so macros return Markup; every value is escaped by FILTERS
        finalize=_only_escaped,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


_ENV: Any = None


def environment() -> Any:
    global _ENV  # noqa: PLW0603 - one environment per process; templates are cached in it
    if _ENV is None:
        _ENV = _environment()
    return _ENV


def _render(name: str, **values: object) -> bytes:
    text: str = environment().get_template(name).render(version=__version__, **values)
    return text.encode("utf-8")


def _static_nix(name: str, plan: TargetPlan) -> bytes:
    """A real Nix file shipped in render/static, under the generated-file header."""
    text = (STATIC / name).read_text(encoding="utf-8")
    body = "".join(
        line for line in text.splitlines(keepends=True) if "SPDX-" not in line
    )
    head = environment().from_string(
        '{% from "_header.j2" import nix_header %}{{ nix_header(name, plan, version) }}\n'
    )
    rendered: str = head.render(name=name, plan=plan, version=__version__)
    return (rendered + body).encode()


def render_target(plan: TargetPlan) -> dict[str, bytes]:
    """Every file of one target, keyed by its path inside the target folder."""
    files: dict[str, bytes] = {
        "default.nix": _render("default.nix.j2", plan=plan),
        "host.nix": _render("host.nix.j2", plan=plan),
        "assertions.nix": _render(
            "assertions.nix.j2",
            plan=plan,
            kernel_message=(
                f"ghafgen: profile {plan.profile_name} was generated for Linux "
                f"{plan.kernel_version} (target.kernel_version); the host kernel is "
            ),
        ),
    }
    if plan.needs_ghaf_source:
        files["bpmp-virt.nix"] = _render("bpmp-virt.nix.j2", plan=plan)
    if plan.has_partitions:
        files["partitions.nix"] = _render("partitions.nix.j2", plan=plan)
    if plan.access:
        files["isolation.nix"] = _render("isolation.nix.j2", plan=plan)
    for p in (plan.proxy_patch, plan.bridge_patch):
        if p is not None:
            files[p.file] = _render("patch.j2", plan=plan, p=p)
    if any(cpu.affinity for cpu in plan.cpus):
        files["pin-vcpus.sh"] = _render("pin-vcpus.sh.j2", plan=plan)
    if plan.proxy_overlay is not None:
        files["bpmp-host-proxy.nix"] = _render("bpmp-host-proxy.nix.j2", plan=plan)
    if plan.bindings:
        files["bind-vfio.sh"] = _render("bind-vfio.sh.j2", plan=plan)
    if plan.relay is not None:
        files |= relay_files(plan, plan.relay)
    for b in plan.bindings:
        files[f"devices/{b.name}.nix"] = _render("device.nix.j2", plan=plan, b=b)
    for ov in plan.overlays:
        files[ov.file] = _render("overlay.dts.j2", plan=plan, ov=ov)
    for p in plan.patches:
        files[p.file] = _render("patch.j2", plan=plan, p=p)
    if any(vm.guest_tree is not None for vm in plan.vms):
        files["guest-tree.nix"] = _static_nix("guest-tree.nix", plan)
    for vm in plan.vms:
        files[f"vms/{vm.name}.nix"] = _render("vm.nix.j2", plan=plan, vm=vm)
        if vm.guest_tree is not None:
            files[f"vms/{vm.name}.dts"] = _render(
                "overlay.dts.j2", plan=plan, ov=vm.guest_tree
            )
        if vm.fdt_bindings is not None:
            files[vm.fdt_bindings.file] = _render(
                "patch.j2", plan=plan, p=vm.fdt_bindings
            )
    if plan.platform_qemu and plan.layout != "ghaf":
        files["qemu.nix"] = _render("qemu.nix.j2", plan=plan)
        files["qemu-platform.nix"] = _static_nix("qemu-platform.nix", plan)
    return dict(sorted(files.items()))
