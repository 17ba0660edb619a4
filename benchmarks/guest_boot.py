"""Time one guest boot (or each, with --all) the way tests/test_guest_boot.py runs it.

Run: python3 benchmarks/guest_boot.py [--guest TARGET/VM | --all]
Needs scripts/guest-boot-deps.sh's cache (bash scripts/test.sh fetches it). The
time is QEMU's start to the guest's power-off under TCG with Debian's kernel:
a figure for this machine, printed, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python3 benchmarks/guest_boot.py` from a checkout

from tests.guestboot import (  # noqa: E402 - after the path set-up above
    Guest,
    base_tree,
    gpu_boot_argv,
    merged_tree,
    qemu_argv,
    reference_guests,
    tree_to_boot,
)
from tests.guestinit import (  # noqa: E402 - after the path set-up above
    boot,
    initramfs,
    stand_ins,
)

DEFAULT = "nvidia-jetson-orin-agx-uarta/uart-vm"


def boot_seconds(guest: Guest, folder: Path) -> tuple[float, bool, str]:
    """(seconds, reached userspace, variant) of one boot of the tree the test boots."""
    found = stand_ins()
    if found is None:
        sys.exit("no cached kernel/busybox: run bash scripts/guest-boot-deps.sh")
    initrd = initramfs(found.busybox, folder / "init.cpio")
    if guest.vm.gpu is not None:
        argv, _tree = gpu_boot_argv(guest, found.kernel, initrd, folder)
        result = boot(argv, folder)
        return result.seconds, result.userspace, "as generated (GPU stand-in memory)"
    base = base_tree(guest, folder)
    generated = merged_tree(guest, base, folder) if guest.dts else None
    tree, variant = tree_to_boot(guest, base, generated, folder)
    if tree is not None:
        shutil.copy(tree, folder / "ghafgen-guest.dtb")
    result = boot(qemu_argv(guest, found.kernel, initrd, folder), folder)
    return result.seconds, result.userspace, variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--guest", default=DEFAULT)
    parser.add_argument("--all", action="store_true", help="every reference guest")
    args = parser.parse_args()
    guests = reference_guests()
    chosen = guests if args.all else [g for g in guests if g.id == args.guest]
    if not chosen:
        sys.exit(f"no guest {args.guest}; one of: {', '.join(g.id for g in guests)}")
    print(f"{'guest':55} {'s':>6}  userspace  tree")
    for guest in chosen:
        with tempfile.TemporaryDirectory(prefix="ghafgen-boot-") as tmp:
            seconds, ok, variant = boot_seconds(guest, Path(tmp))
        print(f"{guest.id:55} {seconds:6.1f}  {ok!s:9}  {variant}")


if __name__ == "__main__":
    main()
