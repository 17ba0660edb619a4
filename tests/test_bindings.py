"""Binding schemas: dt-validate over the trees ghafgen's files make.

The bindings are linux-source-6.12's, for the host tree (the stand-in for
JetPack 6's) and for the guest trees (the stand-in for the guest kernel's).
The guest base is Debian's QEMU dump, not the pinned QEMU with the BPMP
bridge. check processes only the schemas the trees can use (seconds, cached
per selection; every schema took about two minutes).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.toolchain import bindings
from ghafgen.toolchain.realtools import CheckInputs, Result, check_with_real_tools
from tests.conftest import ROOT, require, require_dtschema, run_ghafgen

MODULES = ROOT / "nix" / "modules"
DTS = sorted(MODULES.glob("*/overlays/*.dts")) + sorted(MODULES.glob("*/vms/*.dts"))


def _finding(node: str, message: str, path: tuple[str, ...] = ()) -> bindings.Finding:
    return bindings.Finding(
        node, message, "http://devicetree.org/schemas/x.yaml", path or ()
    )


def test_a_property_the_base_already_lacked_is_not_added():
    base = [_finding("/n", "'gpio-ranges' do not match any of the regexes: 'x'")]
    base = [
        bindings.Finding(f.node, f.message, f.schema, ("gpio-ranges",)) for f in base
    ]
    tree = [
        bindings.Finding(
            "/n",
            "'gpio-ranges', 'iommus' do not match any of the regexes: 'x'",
            base[0].schema,
            ("gpio-ranges", "iommus"),
        )
    ]
    got = bindings.added(tree, base)
    assert [f.cited for f in got] == [("iommus",)]
    assert bindings.added(base, base) == []


def test_a_departure_covers_only_the_properties_it_names():
    proxy = next(
        d
        for d in bindings.departures(catalog.load().data)
        if d.id == "pcie-empty-iommus"
    )
    assert proxy.covers(bindings.Finding("/bus@0/pcie@14100000", "m", "s", ("iommus",)))
    assert not proxy.covers(
        bindings.Finding("/bus@0/pcie@14100000", "m", "s", ("iommus", "reg-names"))
    )
    assert not proxy.covers(
        bindings.Finding("/bus@0/serial@3100000", "m", "s", ("iommus",))
    )


def test_every_departure_has_a_reason_and_a_source():
    for d in bindings.departures(catalog.load().data):
        assert d.tree in ("host", "guest") and d.reason and d.source, d.id
        assert d.compatible or d.properties, d.id


@pytest.fixture(scope="module")
def reference_results(kernel_src_612: Path, virt_dtb) -> list[Result]:
    require_dtschema()
    require("fdtoverlay")
    return check_with_real_tools(
        MODULES, CheckInputs(qemu_dtb=virt_dtb()), catalog.load()
    )


@pytest.mark.slow
@pytest.mark.real_tools
def test_dt_validate_finds_nothing_added_outside_the_departures(
    reference_results: list[Result],
):
    schema = [r for r in reference_results if r.check == "schema"]
    failed = [r.render() for r in schema if not r.ok]
    assert failed == []
    assert not [r.render() for r in schema if r.skipped]
    # One verdict per committed overlay and guest tree: none went unvalidated.
    assert {f"{r.target}/{r.subject}" for r in schema} == {
        str(p.relative_to(MODULES)) for p in DTS
    }


@pytest.mark.slow
@pytest.mark.real_tools
def test_every_documented_departure_is_needed(reference_results: list[Result]):
    """A departure no reference tree needs any more is stale: drop it."""
    from tests.test_dcerelay_tools import RELAY_DEPARTURES

    used = " ".join(r.message for r in reference_results if r.check == "schema")
    for d in bindings.departures(catalog.load().data):
        if d.id in RELAY_DEPARTURES and d.id not in used:
            # Needed by the relay's host tree (tests/test_dcerelay_tools.py
            # shows it) until a reference target passes the display.
            continue
        assert f"{d.id}" in used, f"{d.id} covers nothing in the reference trees"


def _plant(tmp_path: Path, target: str, rel: str, after: str, line: str) -> Path:
    folder = tmp_path / target
    shutil.copytree(MODULES / target, folder)
    f = folder / rel
    text = f.read_text()
    assert after in text
    f.write_text(text.replace(after, after + "\n" + line, 1))
    return folder


@pytest.mark.slow
@pytest.mark.real_tools
def test_a_planted_guest_binding_error_is_named_with_file_and_node(
    tmp_path: Path, kernel_src_612: Path
):
    require_dtschema()
    folder = _plant(
        tmp_path,
        "nvidia-jetson-orin-agx-uarta",
        "vms/uart-vm.dts",
        'reset-names = "serial";',
        '\t\t\t\treg-names = "uart";',
    )
    # Another Python's dtschema first on PATH (here: scripts that fail) is not
    # the one `check` runs, as require_dtschema, which decided to run this, says.
    other = tmp_path / "other-python-bin"
    other.mkdir()
    for name in ("dt-validate", "dt-mk-schema"):
        (other / name).write_text("#!/bin/sh\necho not this one >&2\nexit 1\n")
        (other / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{other}{os.pathsep}{os.environ['PATH']}"}
    done = run_ghafgen("check", str(folder), env=env)
    assert done.returncode == 1
    fails = [ln for ln in done.stdout.splitlines() if ln.startswith("FAIL")]
    assert fails == [
        "FAIL manifest   nvidia-jetson-orin-agx-uarta/vms/uart-vm.dts: differs from "
        "what ghafgen wrote (sha256 not as in ghafgen-manifest.json)",
        "FAIL schema     nvidia-jetson-orin-agx-uarta/vms/uart-vm.dts: "
        "/platform-bus@c000000/serial@0: Unevaluated properties are not allowed "
        "('reg-names' was unexpected) [serial/nvidia,tegra20-hsuart.yaml]",
    ]


@pytest.mark.slow
@pytest.mark.real_tools
def test_a_planted_host_binding_error_is_named_with_file_and_node(
    tmp_path: Path, kernel_src_612: Path
):
    require_dtschema()
    folder = _plant(
        tmp_path,
        "nvidia-jetson-orin-agx-uarta",
        "overlays/uarta-passthrough.dts",
        "dma-coherent;",
        '\t\t\treg-names = "uart";',
    )
    done = run_ghafgen("check", str(folder))
    fails = [ln for ln in done.stdout.splitlines() if ln.startswith("FAIL")]
    assert done.returncode == 1
    assert len(fails) == 2, done.stdout
    assert fails[0] == (
        "FAIL manifest   nvidia-jetson-orin-agx-uarta/overlays/uarta-passthrough.dts: "
        "differs from what ghafgen wrote (sha256 not as in ghafgen-manifest.json)"
    )
    fails = fails[1:]
    assert fails[0].startswith(
        "FAIL schema     nvidia-jetson-orin-agx-uarta/overlays/uarta-passthrough.dts: "
        "/bus@0/serial@3100000: "
    )
    # Only the planted name is reported; iommus and dma-coherent are departures.
    assert fails[0].endswith("(added and undocumented: reg-names)")


@pytest.mark.real_tools
def test_two_qemu_dumps_validate_as_one_tree(tmp_path: Path):
    """QEMU seeds /chosen afresh per dump; zeroed, dt-validate's cache can hit."""
    require("qemu-system-aarch64")
    from ghafgen.toolchain.guestbase import dump_qemu_virt

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = dump_qemu_virt(tmp_path / "a"), dump_qemu_virt(tmp_path / "b")
    assert a is not None and b is not None
    assert a.read_bytes() != b.read_bytes()
    bindings.stable_copy(a, tmp_path / "a.dtb")
    bindings.stable_copy(b, tmp_path / "b.dtb")
    assert (tmp_path / "a.dtb").read_bytes() == (tmp_path / "b.dtb").read_bytes()


# One validated pair: the whole base and tree `check` made, and what
# dt-validate found on the base and on the tree it was given for them.
_Pair = tuple[bytes, bytes, set[bindings.Finding], set[bindings.Finding]]


def _check_recorded(
    monkeypatch: pytest.MonkeyPatch, folder: Path, virt: Path, whole: bool
) -> tuple[list[Result], list[_Pair]]:
    """check's schema results and its validated pairs (the real functions,
    recorded on the way through)."""
    from ghafgen.toolchain import realtools

    made: list[tuple[bytes, bytes, Path, Path]] = []
    found: dict[Path, set[bindings.Finding]] = {}
    real_pairs, real_validate = realtools._validated_pairs, bindings.validate

    def recorded_pairs(jobs, where, whole_trees, data):  # type: ignore[no-untyped-def]
        out = real_pairs(jobs, where, whole_trees, data)
        for job, (base, tree) in zip(jobs, out, strict=True):
            made.append((job.base.read_bytes(), job.dtb.read_bytes(), base, tree))
        return out

    def recorded_validate(tool, dtbs, *rest):  # type: ignore[no-untyped-def]
        got = real_validate(tool, dtbs, *rest)
        found.update({p: set(v) for p, v in got.items()})
        return got

    with monkeypatch.context() as m:
        m.setattr(realtools, "_validated_pairs", recorded_pairs)
        m.setattr(bindings, "validate", recorded_validate)
        results = check_with_real_tools(
            folder, CheckInputs(qemu_dtb=virt, whole_trees=whole), catalog.load()
        )
    pairs = [(b, t, found[bp], found[tp]) for b, t, bp, tp in made]
    return [r for r in results if r.check == "schema"], pairs


@pytest.mark.slow
@pytest.mark.real_tools
@pytest.mark.parametrize(
    "target",
    [
        # BPMP host proxy, a passed UART, a guest tree on the BPMP bridge's base
        "nvidia-jetson-orin-agx-uarta",
        # a PCIe controller put in its own IOMMU group, no proxy
        "nvidia-jetson-orin-agx-wifi-net-vm",
    ],
)
def test_validating_what_the_overlays_touch_finds_what_the_whole_trees_do(
    target: str, kernel_src_612: Path, virt_dtb, monkeypatch: pytest.MonkeyPatch
):
    """check validates the trees cut down to what the overlays touch; the
    whole trees, each with the schemas it selects, give the same findings on
    every touched node and the same results."""
    require_dtschema()
    require("fdtoverlay")
    from ghafgen.toolchain import prune

    virt = virt_dtb()
    cut, cut_pairs = _check_recorded(monkeypatch, MODULES / target, virt, False)
    whole, whole_pairs = _check_recorded(monkeypatch, MODULES / target, virt, True)
    assert cut == whole
    assert [r.subject for r in cut] == sorted(
        str(p.relative_to(MODULES / target))
        for p in DTS
        if p.is_relative_to(MODULES / target)
    )
    # The host tree, and the guest tree of each VM that has one.
    guests = len(list((MODULES / target).glob("vms/*.dts")))
    assert len(cut_pairs) == len(whole_pairs) == 1 + guests
    seen = 0
    for (base, tree, cut_base, cut_tree), (base2, tree2, all_base, all_tree) in zip(
        cut_pairs, whole_pairs, strict=True
    ):
        assert (base, tree) == (base2, tree2)
        touched = prune.changed(base, tree)
        assert touched
        assert {f for f in cut_tree if f.node in touched} == {
            f for f in all_tree if f.node in touched
        }
        seen += len([f for f in all_tree if f.node in touched])
        assert {f for f in cut_base if f.node in touched} == {
            f for f in all_base if f.node in touched
        }
        # What check reports: the tree's findings its base does not have.
        assert set(bindings.added(list(cut_tree), list(cut_base))) == set(
            bindings.added(list(all_tree), list(all_base))
        )
    assert seen  # the departures' findings at least: the comparison saw some
