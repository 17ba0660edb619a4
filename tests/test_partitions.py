"""Partitions: CPU, memory, channels, volumes, shared devices, one profile for all,
and the diagram of them."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, require, run_ghafgen

TARGET = ROOT / "nix" / "modules" / "nvidia-jetson-orin-agx-partitions"
PROFILE = "profiles/orin-agx-partitions.toml"


ghafgen = run_ghafgen


def test_cpu_partitions_on_the_host():
    text = (TARGET / "partitions.nix").read_text()
    # gui-vm's 8G on huge pages: 4096 pages of 2M reserved at boot.
    params = (
        "isolcpus=10,11",
        "nohz_full=10,11",
        "rcu_nocbs=10,11",
        "hugepagesz=2M",
        "hugepages=4096",
    )
    for param in params:
        assert f'"{param}"' in text
    assert (
        'systemd.services."microvm@rt-vm".serviceConfig = {\n    CPUAffinity = "10 11";'
        in text
    )
    assert 'CPUSchedulingPolicy = "fifo";\n    CPUSchedulingPriority = 50;' in text
    net = text[text.index('systemd.services."microvm@net-vm"') :]
    net = net[: net.index("};")]
    assert 'CPUAffinity = "2 3";' in net and "CPUWeight = 200;" in net
    assert 'ExecStartPost = "${pinVcpus} $MAINPID " + "2 3";' in net
    assert "./partitions.nix" in (TARGET / "default.nix").read_text()


def test_channels_reach_exactly_their_members():
    def args(vm: str) -> str:
        return (TARGET / "vms" / f"{vm}.nix").read_text()

    gui, net, rt = args("gui-vm"), args("net-vm"), args("rt-vm")
    shm = "mem-path=/dev/shm/ghafgen.nvidia-jetson-orin-agx-partitions"
    share = f"{shm}.gui-net,size=2097152,share=on"
    assert share in gui and share in net and share not in rt
    tele = f"{shm}.rt-telemetry,size=65536,share=on"
    assert tele in gui and tele in rt and tele not in net
    assert '"ivshmem-plain,memdev=ivshmem-gui-net"' in net


def test_memory_volumes_vsock_and_shared_devices():
    gui = (TARGET / "vms" / "gui-vm.nix").read_text()
    assert "hugepageMem = true;" in gui and "vsock.cid = 4;" in gui
    image = "/var/lib/vm-volumes/nvidia-jetson-orin-agx-partitions.gui-vm/home.img"
    assert f'image = "{image}";' in gui
    assert 'mountPoint = "/home";\n        size = 65536;' in gui
    rt = (TARGET / "vms" / "rt-vm.nix").read_text()
    assert 'type = "user";' in rt and 'mac = "02:' in rt
    assert "qemu.serialConsole = true;" in (TARGET / "vms" / "net-vm.nix").read_text()


def test_show_names_every_device_mode():
    out = ghafgen("show", PROFILE).stdout
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isalpha()}
    assert "passthrough" in rows["mgbe0"] and "passthrough" in rows["pcie-x8"]
    assert "shared (virtio)" in rows["virtio-net"] and "rt-vm" in rows["virtio-net"]
    assert "host" in rows["uarta"].split()[2]


def test_mermaid_diagram():
    out = ghafgen("show", "--format", "mermaid", PROFILE).stdout
    assert out.startswith("flowchart LR\n")
    for vm in ("net_dvm", "gui_dvm", "rt_dvm"):
        assert f"subgraph vm_{vm}[" in out
    assert 'vm_gui_dvm <-- "gui-net 2M" --> vm_net_dvm' in out
    assert "2 vCPUs on cores 10,11, SCHED_FIFO 50" in out


def test_svg_diagram_renders(tmp_path: Path):
    require("dot")
    require("rsvg-convert")
    done = ghafgen("show", "--format", "svg", PROFILE)
    assert done.returncode == 0, done.stderr
    svg = tmp_path / "p.svg"
    svg.write_text(done.stdout)
    png = tmp_path / "p.png"
    subprocess.run(["rsvg-convert", "-o", str(png), str(svg)], check=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10000
    shown = html.unescape(done.stdout)  # Graphviz writes "-" as "&#45;"
    for text in ("rt-telemetry 64K", "6800000.ethernet", "SCHED_FIFO 50"):
        assert text in shown


VCPU_PROCESS = """
import threading, time, pathlib
ready = []
def vcpu(n):
    pathlib.Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(f"CPU {n}/KVM")
    ready.append(n)
    time.sleep(30)
for n in range(2):
    threading.Thread(target=vcpu, args=(n,), daemon=True).start()
while len(ready) < 2:
    time.sleep(0.01)
print("ready", flush=True)
time.sleep(30)
"""


def test_pin_vcpus_pins_each_vcpu_thread_to_its_core():
    """The generated script against threads named as QEMU names vCPUs, with real taskset."""
    require("taskset")
    script = TARGET / "pin-vcpus.sh"
    proc = subprocess.Popen(
        [sys.executable, "-c", VCPU_PROCESS], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        done = subprocess.run(
            ["bash", str(script), str(proc.pid), "1", "0"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        pinned = {}
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            name = (task / "comm").read_text().strip()
            if name.endswith("/KVM"):
                status = (task / "status").read_text()
                pinned[name] = next(
                    line.split(":")[1].strip()
                    for line in status.splitlines()
                    if line.startswith("Cpus_allowed_list")
                )
        assert pinned == {"CPU 0/KVM": "1", "CPU 1/KVM": "0"}
        missing = subprocess.run(
            ["bash", str(script), str(proc.pid), "0", "1", "0"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PIN_VCPUS_TRIES": "3"},
        )
        assert missing.returncode == 1
        assert "found 2 of 3 vCPU threads" in missing.stderr
    finally:
        proc.kill()
        proc.wait()
