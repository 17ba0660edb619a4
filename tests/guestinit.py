"""The guest side of a boot here: the busybox initramfs, QEMU's run, and what /init said.

Entry points: `stand_ins()` (the kernel and busybox scripts/guest-boot-deps.sh
cached), `initramfs(busybox, dest)` and `boot(argv, cwd)` -> `Boot`. /init prints
lines starting "@@ " that `Boot` parses, and a capture of what `ghafgen verify
--guest` reads (`Boot.capture`).
"""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Where scripts/guest-boot-deps.sh puts Debian's arm64 kernel and busybox.
CACHE = Path(
    os.environ.get("GHAFGEN_GUEST_CACHE", Path.home() / ".cache/ghafgen/guest-boot")
)

INIT = r"""#!/bin/busybox sh
# ghafgen guest boot probe: say what the kernel did with the tree, then power off.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug
# Keep kernel messages off the console from here on: dmesg is printed below.
echo 1 > /proc/sys/kernel/printk
echo "@@ userspace"
echo "@@ cmdline $(cat /proc/cmdline)"
while read -r line; do echo "@@ deferred $line"; done < /sys/kernel/debug/devices_deferred
for d in /sys/bus/platform/devices/* /sys/bus/amba/devices/*; do
  [ -e "$d/of_node" ] || continue
  of=$(readlink -f "$d/of_node")
  drv=none
  [ -e "$d/driver" ] && drv=$(basename "$(readlink -f "$d/driver")")
  echo "@@ device ${d##*/} ${of#/sys/firmware/devicetree/base} $drv"
done
echo "@@ console-active $(cat /sys/class/tty/console/active)"
for t in $(cat /sys/class/tty/console/active); do
  dev=$(readlink -f "/sys/class/tty/$t/device")
  # A PCI serial card: the vendor:device of the PCI function above the port.
  p=$dev id=-
  while [ "${#p}" -gt 12 ]; do
    [ -e "$p/vendor" ] && { id="$(cat "$p/vendor"):$(cat "$p/device")"; break; }
    p=${p%/*}
  done
  echo "@@ tty $t $dev $id"
done
while read -r line; do echo "@@ consoles $line"; done < /proc/consoles
dmesg | while read -r line; do echo "@@ dmesg $line"; done
# What ghafgen verify --guest reads, in a folder laid out as the guest's root:
# the tree, each platform device's of_node and driver links, the platform
# drivers the kernel has, /proc/cmdline. Tree property files are binary
# attributes of their exact size, so cp keeps their bytes (procfs and most
# sysfs files report no true size: no tar of /sys itself).
mkdir -p /cap/proc /cap/sys/firmware/devicetree /cap/sys/bus/platform/devices
cat /proc/cmdline > /cap/proc/cmdline
cp -r /sys/firmware/devicetree/base /cap/sys/firmware/devicetree/base
for d in /sys/bus/platform/drivers/*; do
  mkdir -p "/cap/sys/bus/platform/drivers/${d##*/}"
done
for d in /sys/bus/platform/devices/*; do
  n=/cap/sys/bus/platform/devices/${d##*/}
  mkdir -p "$n"
  [ -e "$d/of_node" ] && ln -s "$(readlink -f "$d/of_node")" "$n/of_node"
  [ -e "$d/driver" ] && ln -s "$(readlink -f "$d/driver")" "$n/driver"
done
echo "@@ capture-begin"
tar -c -C /cap . | gzip | base64
echo "@@ capture-end"
echo "@@ end"
poweroff -f
"""
# The lines around the capture's base64 tar.gz.
CAPTURE_BEGIN = "@@ capture-begin"
CAPTURE_END = "@@ capture-end"


@dataclass(frozen=True)
class StandIns:
    kernel: Path
    busybox: Path
    versions: str  # "package version" lines, as the set-up script recorded them


def stand_ins() -> StandIns | None:
    """Debian's arm64 kernel and busybox from the cache, or None when not fetched."""
    kernel, busybox, versions = (
        CACHE / "vmlinuz",
        CACHE / "busybox",
        CACHE / "versions",
    )
    if not (kernel.is_file() and busybox.is_file() and versions.is_file()):
        return None
    return StandIns(kernel, busybox, versions.read_text().strip())


def _cpio_entry(
    name: str, mode: int, data: bytes, ino: int, rdev: tuple[int, int] = (0, 0)
) -> bytes:
    """One `newc` record; every field fixed but the name, mode and data (deterministic)."""
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(encoded), 0]
    head = b"070701" + b"".join(f"{f:08x}".encode() for f in fields) + encoded
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def initramfs(busybox: Path, dest: Path, init: str = INIT) -> Path:
    """A cpio archive with busybox and `init` as /init (the probe's by default);
    same input, same bytes."""
    entries = [
        ("bin", stat.S_IFDIR | 0o755, b"", (0, 0)),
        ("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes(), (0, 0)),
        ("dev", stat.S_IFDIR | 0o755, b"", (0, 0)),
        # The kernel opens /dev/console (5:1) for init's stdio before anything mounts.
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
        ("init", stat.S_IFREG | 0o755, init.encode(), (0, 0)),
        ("proc", stat.S_IFDIR | 0o755, b"", (0, 0)),
        ("sys", stat.S_IFDIR | 0o755, b"", (0, 0)),
    ]
    out = b"".join(
        _cpio_entry(name, mode, data, ino, rdev)
        for ino, (name, mode, data, rdev) in enumerate(entries, start=1)
    )
    out += _cpio_entry("TRAILER!!!", 0, b"", 0)
    dest.write_bytes(out)
    return dest


@dataclass(frozen=True)
class Device:
    name: str  # the kernel's device name, e.g. c000000.serial
    node: str  # its device-tree path
    driver: str  # "none" when unbound


@dataclass(frozen=True)
class Boot:
    """What the guest's /init printed on the VM's stdio (plus QEMU's exit)."""

    output: str
    returncode: int
    seconds: float

    def _lines(self, tag: str) -> list[str]:
        prefix = f"@@ {tag}"
        return [
            ln[len(prefix) :].strip()
            for ln in self.output.splitlines()
            if ln.startswith(prefix + " ") or ln == prefix
        ]

    @property
    def userspace(self) -> bool:
        return bool(self._lines("userspace")) and bool(self._lines("end"))

    @property
    def cmdline(self) -> str:
        got = self._lines("cmdline")
        return got[0] if got else ""

    @property
    def deferred(self) -> dict[str, str]:
        """device -> reason, from /sys/kernel/debug/devices_deferred."""
        out = {}
        for ln in self._lines("deferred"):
            name, _, reason = ln.partition("\t")
            out[name.strip()] = reason.strip()
        return out

    @property
    def devices(self) -> dict[str, Device]:
        """node path -> device, for every platform and AMBA device with a node."""
        out = {}
        for ln in self._lines("device"):
            name, node, driver = ln.split(" ")
            out[node] = Device(name, node, driver)
        return out

    @property
    def console(self) -> str:
        """The tty behind /dev/console: the /proc/consoles entry flagged C."""
        for ln in self._lines("consoles"):
            m = re.match(r"(\S+)\s+\S+\s+\(([^)]*)\)", ln)
            if m and "C" in m.group(2):
                return m.group(1)
        return ""

    def tty(self, name: str) -> tuple[str, str]:
        """(sysfs device path, PCI vendor:device or "-") of a console tty."""
        for ln in self._lines("tty"):
            tty, path, pci_id = ln.split(" ")
            if tty == name:
                return path, pci_id
        return "", ""

    def dmesg(self, needle: str) -> list[str]:
        return [ln for ln in self._lines("dmesg") if needle in ln]

    def capture(self, dest: Path) -> Path | None:
        """The capture /init printed, written to `dest` as the .tar.gz verify
        reads (None: it printed none)."""
        lines = self.output.splitlines()
        if CAPTURE_BEGIN not in lines or CAPTURE_END not in lines:
            return None
        body = lines[lines.index(CAPTURE_BEGIN) + 1 : lines.index(CAPTURE_END)]
        dest.write_bytes(base64.b64decode("".join(ln.strip() for ln in body)))
        return dest


def boot(argv: list[str], cwd: Path, timeout: float = 300) -> Boot:
    """Run one guest to its power-off (or panic: -no-reboot, panic=-1) and collect stdio."""
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        out, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        out, code = (e.stdout or b"") + (e.stderr or b""), -1
    text = out.decode(errors="replace").replace("\r\n", "\n")
    return Boot(text, code, time.monotonic() - start)
