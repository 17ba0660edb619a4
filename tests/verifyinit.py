"""A guest /init that captures what `ghafgen verify --guest` reads, for the guest
boots of test_verify_guest.py.

Entry points: `capture_initramfs(busybox, dest)` and `capture_of(output, dest)`.
The init copies the guest's /sys/firmware/devicetree/base, its platform devices'
`driver` and `of_node` links and /proc/cmdline into a folder laid out as the
guest's own root, and prints it as a base64 tar.gz between two marker lines on
the VM's console; the host side writes it to a .tar.gz verify reads.
"""

from __future__ import annotations

import base64
from pathlib import Path

from tests.guestinit import initramfs

BEGIN = "@@ capture-begin"
END = "@@ capture-end"

INIT = r"""#!/bin/busybox sh
# ghafgen verify capture: the guest's tree, driver links and command line.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /cap/proc /cap/sys/firmware/devicetree /cap/sys/bus/platform/devices
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo 1 > /proc/sys/kernel/printk
cat /proc/cmdline > /cap/proc/cmdline
# Device-tree property files are binary attributes of their exact size: cp keeps
# their bytes (procfs and most sysfs files report no true size, so no tar of /sys).
cp -r /sys/firmware/devicetree/base /cap/sys/firmware/devicetree/base
for d in /sys/bus/platform/devices/*; do
  n=/cap/sys/bus/platform/devices/${d##*/}
  mkdir -p "$n"
  [ -e "$d/of_node" ] && ln -s "$(readlink -f "$d/of_node")" "$n/of_node"
  [ -e "$d/driver" ] && ln -s "$(readlink -f "$d/driver")" "$n/driver"
done
echo "@@ capture-begin"
tar -c -C /cap . | gzip | base64
echo "@@ capture-end"
poweroff -f
"""


def capture_initramfs(busybox: Path, dest: Path) -> Path:
    """A cpio archive with busybox and the capture /init (guestinit's layout)."""
    return initramfs(busybox, dest, init=INIT)


def capture_of(output: str, dest: Path) -> Path | None:
    """The capture the guest printed, written to `dest` (None: it printed none)."""
    lines = output.splitlines()
    if BEGIN not in lines or END not in lines:
        return None
    body = lines[lines.index(BEGIN) + 1 : lines.index(END)]
    dest.write_bytes(base64.b64decode("".join(ln.strip() for ln in body)))
    return dest
