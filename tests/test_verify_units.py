"""The parts of `ghafgen verify` that need no board and no tool: reading the
values render.dt prints, reading a capture without leaving it, and refusing a
target it cannot use (exit 2, one line)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ghafgen.cli import app
from ghafgen.render.runtime_facts import dts_value
from ghafgen.verify.expect import Value
from ghafgen.verify.livetree import LiveTree
from ghafgen.verify.source import capture_bytes, open_source

# (DTS value text as render.dt prints it, the value as data)
VALUES = [
    (None, {"empty": True}),
    ('"okay"', {"strings": ["okay"]}),
    (
        '"nvidia,tegra194-hsuart", "nvidia,tegra20-uart"',
        {"strings": ["nvidia,tegra194-hsuart", "nvidia,tegra20-uart"]},
    ),
    ('"a\\"b"', {"strings": ['a"b']}),
    ("<14 91 102 155>", {"cells": [14, 91, 102, 155]}),
    ("<&smmu_niso0 0x7f>", {"cells": ["&smmu_niso0", 127]}),
    ("<0x0 0x10000>, <0x10000 0x100>", {"cells": [0, 0x10000, 0x10000, 0x100]}),
    ("<>", {"cells": []}),
]


@pytest.mark.parametrize(("text", "data"), VALUES)
def test_dts_values_read_back(text: str | None, data: dict[str, object]) -> None:
    assert dts_value(text) == data


@pytest.mark.parametrize("text", ["<1 2", '"a" "b"', "/bits/ 64 <1>", '"a", <1>'])
def test_an_unknown_dts_value_form_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="unreadable"):
        dts_value(text)


def _tar(entries: list[tuple[str, bytes | str]]) -> bytes:
    """bytes: a file; str: a symlink to it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, value in entries:
            info = tarfile.TarInfo(name)
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return buf.getvalue()


def test_a_capture_resolves_links_inside_itself(tmp_path: Path) -> None:
    cap = tmp_path / "c.tar.gz"
    cap.write_bytes(
        _tar(
            [
                ("sys/devices/x/name", b"x\0"),
                ("sys/bus/platform/devices/x", "../../../devices/x"),
                ("etc/abs", "/sys/devices/x/name"),
                ("etc/up", "../../../../../../sys/devices/x/name"),
                ("etc/loop", "loop"),
            ]
        )
    )
    src = open_source(cap)
    assert src.raw("sys/bus/platform/devices/x/name") == b"x\0"
    # An absolute or climbing link stays in the capture, as under chroot.
    assert src.raw("etc/abs") == b"x\0"
    assert src.raw("etc/up") == b"x\0"
    assert src.raw("etc/loop") is None
    assert src.link("sys/bus/platform/devices/x") == "../../../devices/x"
    with tarfile.open(fileobj=io.BytesIO(capture_bytes(src))) as tar:
        names = sorted(tar.getnames())
    assert names == [
        "etc/abs",
        "etc/loop",
        "etc/up",
        "sys/bus/platform/devices/x",
        "sys/devices/x/name",
    ]


def test_a_folder_link_out_of_the_root_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (tmp_path / "secret").write_text("outside\n")
    (root / "proc/cmdline").symlink_to(tmp_path / "secret")
    (root / "proc/up").symlink_to("../../secret")
    src = open_source(root)
    assert src.raw("proc/cmdline") is None
    assert src.raw("proc/up") is None
    # Each refusal is named once (the command prints it as a note).
    assert src.raw("proc/cmdline") is None
    assert src.refused == [
        f"{root}/proc/cmdline: a link to {str(tmp_path / 'secret')!r}, outside "
        "--root; ghafgen reads only files inside the tree it is given",
        f"{root}/proc/up: a link to '../../secret' leads above --root; ghafgen "
        "reads only files inside the tree it is given",
    ]


def test_labels_and_phandles_resolve_in_the_live_tree(tmp_path: Path) -> None:
    base = tmp_path / "sys/firmware/devicetree/base"
    (base / "__symbols__").mkdir(parents=True)
    (base / "__symbols__/smmu").write_bytes(b"/bus@0/iommu@12000000\0")
    node = base / "bus@0/iommu@12000000"
    node.mkdir(parents=True)
    (node / "phandle").write_bytes((0x8A).to_bytes(4, "big"))
    tree = LiveTree(open_source(tmp_path))
    assert tree.encode(Value("cells", ("&smmu", 0x7F))) == bytes.fromhex(
        "0000008a0000007f"
    )
    assert tree.encode(Value("strings", ("okay",))) == b"okay\0"
    assert tree.encode(Value("empty")) == b""
    assert (
        tree.encode(Value("cells", ("&gone",)))
        == "no phandle for &gone in /__symbols__"
    )


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("not json", "not JSON"),
        ('{"generator": "other"}', "not a ghafgen manifest"),
        (
            '{"generator": "ghafgen", "contents": {}}',
            "the manifest has no runtime record",
        ),
        (
            '{"generator": "ghafgen", "contents": {"runtime": {"kernel": 1}}}',
            "malformed runtime record",
        ),
    ],
)
def test_a_target_verify_cannot_use_exits_2(
    tmp_path: Path, manifest: str, message: str
) -> None:
    (tmp_path / "ghafgen-manifest.json").write_text(manifest)
    res = CliRunner().invoke(app, ["verify", str(tmp_path), "--root", str(tmp_path)])
    assert res.exit_code == 2
    assert res.output.startswith(f"error: {tmp_path}/ghafgen-manifest.json: {message}")


def test_guest_needs_a_vm_name_when_the_target_has_several(tmp_path: Path) -> None:
    target = (
        Path(__file__).resolve().parents[1]
        / "nix/modules/nvidia-jetson-orin-agx-partitions"
    )
    vms = sorted(
        json.loads((target / "ghafgen-manifest.json").read_text())["contents"][
            "runtime"
        ]["vms"]
    )
    assert len(vms) > 1
    res = CliRunner().invoke(
        app, ["verify", str(target), "--guest", "--root", str(tmp_path)]
    )
    assert res.exit_code == 2
    assert (
        f"the target has VMs {', '.join(vms)}; name the one this is with --vm"
        in res.output
    )


def test_guest_picks_the_vm_its_host_name_names(tmp_path: Path) -> None:
    """microvm.nix names each declarative VM's host after the VM
    (nixos-modules/host/options.nix: networking.hostName = lib.mkDefault name)."""
    target = (
        Path(__file__).resolve().parents[1]
        / "nix/modules/nvidia-jetson-orin-agx-partitions"
    )
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/hostname").write_text("net-vm\n")
    res = CliRunner().invoke(
        app,
        ["verify", str(target), "--guest", "--root", str(tmp_path), "--format", "json"],
    )
    assert res.exit_code == 1, res.output
    assert (
        json.loads(res.stdout)["target"] == "nvidia-jetson-orin-agx-partitions/net-vm"
    )


def test_the_manifest_in_a_target_folder_is_read_as_a_file_ghafgen_finds(
    tmp_path: Path,
) -> None:
    """A FIFO in the folder is refused by its kind; a manifest named on the
    command line may still be a pipe (`verify <(ssh board cat ...)`)."""
    import os
    import threading

    from ghafgen.verify.expect import load_expected
    from ghafgen.verify.source import VerifyError

    committed = (
        Path(__file__).resolve().parents[1]
        / "nix/modules/nvidia-jetson-orin-agx-uarta/ghafgen-manifest.json"
    )
    os.mkfifo(tmp_path / "ghafgen-manifest.json")
    with pytest.raises(VerifyError) as refused:
        load_expected(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path}/ghafgen-manifest.json: cannot read (a FIFO, not a regular file)"
    )
    r, w = os.pipe()
    writer = threading.Thread(
        target=lambda: (os.write(w, committed.read_bytes()), os.close(w))
    )
    writer.start()
    try:
        named = load_expected(Path(f"/dev/fd/{r}"))
    finally:
        writer.join()
        os.close(r)
    assert named.target == "nvidia-jetson-orin-agx-uarta"


# The UARTA guest's passed node and the bridge's /bpmp (committed
# nix/modules/nvidia-jetson-orin-agx-uarta: vms/uart-vm.dts, manifest).
UARTA = Path(__file__).resolve().parents[1] / "nix/modules/nvidia-jetson-orin-agx-uarta"
UART_BOUND = "3100000.serial (/platform-bus@c000000/serial@0) bound to a driver"
BPMP_BOUND = "BPMP (/bpmp) bound to tegra-bpmp"


def _cells(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "big") for v in values)


def _guest_root(root: Path, clocks: bytes, drivers: list[str]) -> Path:
    """A guest's /sys as the kernel lays it out: the tree (a clock provider
    with two cells at phandle 7, the BPMP at 9), the UART's platform device,
    unbound, and the platform drivers `drivers`."""
    base = root / "sys/firmware/devicetree/base"
    nodes: dict[str, dict[str, bytes]] = {
        "": {"name": b"\0"},
        "bpmp": {
            "name": b"bpmp\0",
            "compatible": b"nvidia,tegra186-bpmp\0",
            "phandle": _cells(9),
            "#clock-cells": _cells(1),
        },
        "clk": {"name": b"clk\0", "phandle": _cells(7), "#clock-cells": _cells(2)},
        "platform-bus@c000000": {"name": b"platform-bus\0"},
        "platform-bus@c000000/serial@0": {
            "name": b"serial\0",
            "compatible": b"nvidia,tegra194-hsuart\0",
            "clocks": clocks,
        },
    }
    for path, props in nodes.items():
        (base / path).mkdir(parents=True, exist_ok=True)
        for name, value in props.items():
            (base / path / name).write_bytes(value)
    devices = root / "sys/bus/platform/devices"
    for dev, node in (
        ("c000000.serial", "platform-bus@c000000/serial@0"),
        ("bpmp", "bpmp"),
    ):
        (devices / dev).mkdir(parents=True)
        (devices / dev / "of_node").symlink_to(f"/sys/firmware/devicetree/base/{node}")
    for driver in drivers:
        (root / "sys/bus/platform/drivers" / driver).mkdir(parents=True)
    return root


def _guest_verdict(root: Path) -> tuple[int, dict[str, dict[str, object]], str]:
    res = CliRunner().invoke(
        app, ["verify", str(UARTA), "--guest", "--root", str(root), "--format", "json"]
    )
    text = CliRunner().invoke(
        app, ["verify", str(UARTA), "--guest", "--root", str(root)]
    )
    doc = json.loads(res.stdout)
    return res.exit_code, {c["subject"]: c for c in doc["checks"]}, text.stdout


def test_a_kernel_without_the_bpmp_driver_leaves_its_clients_not_provable(
    tmp_path: Path,
) -> None:
    """The UART's clocks name another provider first, then the BPMP: the
    specifiers are walked with each provider's #clock-cells."""
    root = _guest_root(tmp_path, _cells(7, 1, 2, 9, 155), ["serial-tegra"])
    code, checks, text = _guest_verdict(root)
    assert checks[BPMP_BOUND]["unproven"] and checks[UART_BOUND]["unproven"]
    assert "no tegra-bpmp driver" in str(checks[BPMP_BOUND]["hint"])
    assert str(checks[UART_BOUND]["hint"]).startswith("its clocks come from /bpmp")
    # The tree itself is not the generated one: those checks fail, exit 1.
    assert code == 1
    assert f"N/P   guest    {BPMP_BOUND} (not provable here)" in text
    assert text.splitlines()[-1].endswith(
        "checks failed and 2 are not provable here; the first broken link is 'guest'"
    )
    # A capture keeps the driver list, so its replay says the same.
    res = CliRunner().invoke(
        app,
        ["verify", str(UARTA), "--guest", "--root", str(root)]
        + ["--capture", str(tmp_path / "guest.tar.gz")],
    )
    assert res.exit_code == 1
    replayed = _guest_verdict(tmp_path / "guest.tar.gz")
    assert replayed[1] == checks


@pytest.mark.parametrize(
    ("clocks", "drivers", "why"),
    [
        (_cells(9, 155), ["serial-tegra", "tegra-bpmp"], "the kernel has the driver"),
        (_cells(9, 155), [], "no driver list: nothing shows the cause"),
        (_cells(7, 9, 155), ["serial-tegra"], "the UART's one clock is not the BPMP's"),
    ],
)
def test_an_unbound_node_fails_unless_the_guest_shows_why(
    tmp_path: Path, clocks: bytes, drivers: list[str], why: str
) -> None:
    _code, checks, _text = _guest_verdict(_guest_root(tmp_path, clocks, drivers))
    uart = checks[UART_BOUND]
    assert (uart["ok"], uart["unproven"]) == (False, False), why
    bpmp_unproven = bool(drivers) and "tegra-bpmp" not in drivers
    assert checks[BPMP_BOUND]["unproven"] is bpmp_unproven, why


def test_not_provable_checks_alone_exit_4_and_say_so() -> None:
    from ghafgen.verify.report import (
        exit_code,
        passed,
        render_json,
        render_text,
        unproven,
    )

    checks = [
        passed("guest", "console on ttyAMA0"),
        unproven(
            "guest",
            "BPMP (/bpmp) bound to tegra-bpmp",
            expected="tegra-bpmp",
            source="vms/uart-vm.nix",
            found="bpmp: no driver",
            why="no driver",
        ),
    ]
    assert exit_code(checks) == 4
    assert exit_code(checks[:1]) == 0
    assert render_text(checks, "t/vm").splitlines()[-1] == (
        "t/vm: no check failed; 1 of 2 are not provable on this system (N/P: each "
        "says why); run verify where they can hold"
    )
    doc = json.loads(render_json(checks, "t/vm"))
    assert (doc["ok"], doc["failed"], doc["unproven"]) == (False, 0, 1)
