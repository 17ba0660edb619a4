"""`ghafgen verify --guest` on the guests the boot tests boot: run it on a boot's
capture, and what each check should come to under the stand-ins.

Entry points: `verify_guest(guest, capture)` -> `Verdict` and
`stand_in_outcomes(guest, booted, disabled, kernel)` -> `Outcomes`.

The spec is the committed target (its ghafgen-manifest.json, read here as
JSON, and the tree the guest booted, built from the committed vms/<vm>.dts);
what the stand-ins cannot do is written here as facts with their source:
- Debian's arm64 kernel has no BPMP driver (`BPMP_COMPATIBLE` is not in its
  image; Linux builds tegra-bpmp in or not at all), so the BPMP node and every
  passed node its clocks, resets or power domains come from cannot bind:
  verify reports them not provable, from the guest's own driver list.
- No device is passed here and Debian's QEMU has no MGBE0 binding: the node
  the pinned QEMU writes for a passed MGBE0 (ghaf-qemu-bpmp 0001,
  add_tegra_mgbe_fdt_node: from the realized vfio-platform device and the
  host's own tree) is absent, which verify cannot tell from a VM started
  without its device: a failure.
- A node the test disables (nothing behind its region here) is not the
  generated one: its status and its binding fail.
- Debian's kernel carries none of NVIDIA's out-of-tree modules (jetpack-nixos
  builds nvidia-oot for the GPU guest's own kernel), so a GPU or display
  role's modules are not loaded and nvgpu's node is absent: failures, as on a
  board whose guest runs another kernel.
- Debian's QEMU writes the RAM node from -m (hw/arm/boot.c arm_load_dtb ->
  fdt_add_memory_node, QEMU 10.0.2), where the pinned QEMU keeps a predefined
  one (Ghaf's ghaf-qemu-bpmp 0003-nop-predefined-dtb-memory): a generated RAM
  node of more than one bank (the display role's) fails its reg check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ghafgen.catalog.fdtview import FdtView
from ghafgen.cli import app
from tests.guestboot import MODULES, Guest

# The guest /bpmp's compatible, as the pinned QEMU's bridge writes it
# (ghaf-qemu-bpmp 0001, create_nvidia_bpmp_guest), and the driver that matches
# it: Linux 6.12 drivers/firmware/tegra/bpmp.c (of_match "nvidia,tegra186-bpmp",
# driver name "tegra-bpmp", builtin_platform_driver; TEGRA_BPMP is a bool).
BPMP_COMPATIBLE = "nvidia,tegra186-bpmp"
BPMP_DRIVER = "tegra-bpmp"
# verify's exit codes (README: 0 all hold, 1 a check failed, 4 none failed but
# some are not provable on the system read).
HELD, FAILED, UNPROVEN = 0, 1, 4
# What ties a passed node to the BPMP (devicetree bindings of clocks, resets,
# power domains); a BPMP specifier is <&bpmp id> (ghaf-qemu-bpmp 0001:
# "for BPMP all of these are 2 (phandle + id)").
SUPPLIES = ("clocks", "resets", "power-domains")


@dataclass(frozen=True)
class Verdict:
    code: int
    checks: dict[str, dict[str, Any]]  # subject -> the check, as --format json

    def subjects(self, outcome: str) -> set[str]:
        """ "held", "failed" or "unproven"."""
        return {s for s, c in self.checks.items() if _outcome(c) == outcome}


def _outcome(check: dict[str, Any]) -> str:
    if check["ok"]:
        return "held"
    return "unproven" if check["unproven"] else "failed"


@dataclass
class Outcomes:
    """What the stand-ins make of a guest's checks: subject -> why."""

    failed: dict[str, str] = field(default_factory=dict)
    unproven: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> int:
        return FAILED if self.failed else UNPROVEN if self.unproven else HELD


def verify_guest(guest: Guest, capture: Path) -> Verdict:
    """`ghafgen verify <committed target> --guest --vm <vm> --root <capture>`."""
    res = CliRunner().invoke(
        app,
        [
            "verify",
            str(MODULES / guest.target),
            "--guest",
            "--vm",
            guest.vm.name,
            "--root",
            str(capture),
            "--format",
            "json",
        ],
    )
    assert res.exit_code in (HELD, FAILED, UNPROVEN), res.output
    doc = json.loads(res.stdout)
    assert {c["link"] for c in doc["checks"]} == {"guest"}
    checks = {c["subject"]: c for c in doc["checks"]}
    assert len(checks) == len(doc["checks"]), "two checks with one subject"
    return Verdict(res.exit_code, checks)


def manifest_guest(guest: Guest) -> dict[str, Any]:
    """The VM's guest record in the committed manifest, read as plain JSON."""
    doc = json.loads((MODULES / guest.target / "ghafgen-manifest.json").read_text())
    vm: dict[str, Any] = doc["contents"]["runtime"]["vms"][guest.vm.name]
    return vm


def kernel_has_bpmp(kernel: Path) -> bool:
    """A built-in driver's of_match strings are plain in the image."""
    return BPMP_COMPATIBLE.encode() + b"\0" in kernel.read_bytes()


def stand_in_outcomes(
    guest: Guest, booted: Path | None, disabled: list[str], kernel: Path
) -> Outcomes:
    """Which of verify's checks the stand-ins leave failed or not provable,
    each with why, for the guest booted with `booted` (None: QEMU's own tree)
    with the nodes at `disabled` disabled by the test. Every other check holds."""
    vm = manifest_guest(guest)
    spec = vm["guest"]
    out = Outcomes()
    no_bpmp = spec["bpmp"] and not kernel_has_bpmp(kernel)
    if spec["bpmp"]:
        subject = f"BPMP ({spec['bpmp_node']}) bound to {spec['bpmp_driver']}"
        if no_bpmp:
            out.unproven[subject] = f"Debian's kernel has no {BPMP_DRIVER}"
    for module in spec.get("modules", ()):
        out.failed[f"guest module {module} loaded"] = (
            "Debian's kernel has none of NVIDIA's out-of-tree modules"
        )
    node = spec.get("gpu_node")
    if node:
        out.failed[f"{node['path']} group {node['group']}, group read-write"] = (
            "nvgpu makes it, and Debian's kernel has no nvgpu"
        )
    view = FdtView(booted.read_bytes()) if booted is not None else None
    nodes = [p for _o, p in view.nodes()] if view is not None else []
    for path in nodes:
        if view is not None and path.startswith("/memory@"):
            reg = view.fdt.getprop(view.offset(path), "reg")
            if len(reg) > 16:  # two address and two size cells a bank
                out.failed[f"{path} reg"] = (
                    "Debian's QEMU rewrites the RAM node from -m; the pinned "
                    "QEMU keeps a predefined one"
                )
    bpmp_ph = _phandle(view, spec["bpmp_node"]) if view and spec["bpmp"] else None
    bus = spec["platform_bus"]
    for dev, compatible in spec["compatibles"].items():
        assert view is not None, f"{guest.id}: a passed device and no tree given"
        on_bus = [p for p in nodes if p.startswith(bus + "/")]
        where = sorted(p for p in on_bus if compatible[0] in _strings(view, p))
        if not where:
            out.failed[f"{dev}'s node on {bus}"] = (
                "the pinned QEMU writes it from the passed device; "
                "Debian's QEMU has no such binding and nothing is passed here"
            )
            continue
        path = where[0]
        bound = f"{dev} ({path}) bound to a driver"
        if path in disabled:
            out.failed[bound] = "disabled by the test: nothing behind its region"
            out.failed[f"{path} status"] = "disabled by the test"
        elif no_bpmp and _takes_from(view, path, bpmp_ph):
            out.unproven[bound] = f"its BPMP supplier has no driver ({BPMP_DRIVER})"
    return out


def _strings(view: FdtView, path: str) -> list[str]:
    return view.strings(view.offset(path), "compatible")


def _phandle(view: FdtView, path: str) -> int | None:
    got = view.cells(view.offset(path), "phandle")
    return got[0] if got else None


def _takes_from(view: FdtView | None, path: str, phandle: int | None) -> bool:
    """The node's first clock, reset or power domain is the node at `phandle`."""
    if view is None or phandle is None:
        return False
    off = view.offset(path)
    return any(view.cells(off, p)[:1] == [phandle] for p in SUPPLIES)
