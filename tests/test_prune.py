"""What `check` keeps of a tree and its base for dt-validate (toolchain/prune.py).

The trees are written here in DTS, compiled with the real dtc and the overlay
applied with the real fdtoverlay; what is kept is read back with libfdt. The
expected node sets are written out below from the DTS text, not computed.
"""

from __future__ import annotations

import pytest

from ghafgen.catalog.fdtview import FdtView
from ghafgen.toolchain import prune
from tests.conftest import require
from tests.trees import run

BASE = """/dts-v1/;
/ {
	compatible = "vendor,board";
	#address-cells = <1>;
	#size-cells = <1>;
	interrupt-parent = <&gic>;
	gic: interrupt-controller@1000 {
		compatible = "arm,gic-400";
		reg = <0x1000 0x100>;
		#interrupt-cells = <3>;
		interrupt-controller;
	};
	chosen { bootargs = "console=ttyS0"; };
	bus@0 {
		compatible = "simple-bus";
		#address-cells = <1>;
		#size-cells = <1>;
		ranges;
		clk: clock-controller@2000 {
			compatible = "vendor,clk";
			reg = <0x2000 0x100>;
			#clock-cells = <1>;
			clocks = <&osc>;
		};
		uart: serial@3000 {
			compatible = "vendor,uart";
			reg = <0x3000 0x100>;
			clocks = <&clk 7>;
			interrupts = <0 12 4>;
			status = "disabled";
			port { label = "p"; };
		};
		serial@4000 {
			compatible = "vendor,uart";
			reg = <0x4000 0x100>;
		};
	};
	osc: oscillator {
		compatible = "fixed-clock";
		#clock-cells = <0>;
		clock-frequency = <38400000>;
	};
};
"""

OVERLAY = """/dts-v1/;
/plugin/;
&uart { status = "okay"; };
/ {
	fragment@1 {
		target-path = "/";
		__overlay__ {
			proxy { compatible = "vendor,proxy"; };
		};
	};
};
"""


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    require("dtc")
    require("fdtoverlay")
    d = tmp_path_factory.mktemp("prune")
    (d / "base.dts").write_text(BASE)
    (d / "overlay.dts").write_text(OVERLAY)
    for src, out in (("base.dts", "base.dtb"), ("overlay.dts", "overlay.dtbo")):
        done = run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", out, src], d)
        assert done.returncode == 0, done.stderr
    done = run(
        ["fdtoverlay", "-i", "base.dtb", "-o", "tree.dtb", "overlay.dtbo"], cwd=d
    )
    assert done.returncode == 0, done.stderr
    return (d / "base.dtb").read_bytes(), (d / "tree.dtb").read_bytes()


def _nodes(blob: bytes) -> dict[str, set[str]]:
    view = FdtView(blob)
    return {path: set(view.props(off)) for off, path in view.nodes()}


def test_what_the_overlay_changed(trees: tuple[bytes, bytes]):
    assert prune.changed(*trees) == {"/bus@0/serial@3000", "/proxy"}


def test_the_changed_nodes_are_kept_whole_with_their_ancestors_and_children(
    trees: tuple[bytes, bytes],
):
    kept = prune.keep(*trees)
    assert kept.whole == {
        "/",
        "/bus@0",
        "/bus@0/serial@3000",
        "/bus@0/serial@3000/port",
        "/proxy",
    }
    # The root's interrupt-parent and the UART's clocks; not what the clock
    # provider refers to in turn (a stub has no references), not the other UART.
    assert kept.stubs == {"/interrupt-controller@1000", "/bus@0/clock-controller@2000"}


def test_a_stub_keeps_only_what_reading_the_references_needs(
    trees: tuple[bytes, bytes],
):
    base, tree = prune.pair(*trees)
    got = _nodes(tree)
    assert set(got) == {
        "/",
        "/interrupt-controller@1000",
        "/bus@0",
        "/bus@0/clock-controller@2000",
        "/bus@0/serial@3000",
        "/bus@0/serial@3000/port",
        "/proxy",
    }
    assert got["/bus@0/clock-controller@2000"] == {"reg", "#clock-cells", "phandle"}
    assert got["/interrupt-controller@1000"] == {"reg", "#interrupt-cells", "phandle"}
    assert got["/bus@0/serial@3000"] == {
        "compatible",
        "reg",
        "clocks",
        "interrupts",
        "status",
        "phandle",
    }
    assert got["/"] == {
        "compatible",
        "#address-cells",
        "#size-cells",
        "interrupt-parent",
    }
    # The base keeps the same nodes where it has them (it lacks the proxy).
    assert set(_nodes(base)) == set(got) - {"/proxy"}
    view = FdtView(tree)
    assert view.strings(view.offset("/bus@0/serial@3000"), "status") == ["okay"]


def test_nodes_named_by_also_are_kept_whole_in_both(trees: tuple[bytes, bytes]):
    kept = prune.keep(*trees, also=["/chosen"])
    assert "/chosen" in kept.whole
    base, _tree = prune.pair(*trees, also=["/chosen"])
    assert _nodes(base)["/chosen"] == {"bootargs"}


def test_the_same_input_gives_the_same_bytes(trees: tuple[bytes, bytes]):
    assert prune.pair(*trees) == prune.pair(*trees)


def test_a_tree_without_changes_keeps_its_root_alone(trees: tuple[bytes, bytes]):
    base = trees[0]
    kept = prune.keep(base, base)
    assert kept.whole == {"/"}
    assert kept.stubs == {"/interrupt-controller@1000"}
