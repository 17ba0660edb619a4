#!/usr/bin/env bash
# Test set-up: Debian's QEMU 10.0 source (bookworm-backports), the closest
# source to the pinned QEMU 10.1.5 that a Debian mirror serves. The tests read
# its hw/arm/virt.c memory map and apply ghafgen's QEMU patches to it. Only the
# upstream tarball is kept, in ~/.cache/ghafgen; nothing is installed.
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ghafgen/qemu-source"
if compgen -G "$cache/qemu_10.0*.orig.tar.xz" >/dev/null; then
  exit 0
fi
grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null || exit 0
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
cd "$(dirname "$0")/.."
# shellcheck source=scripts/backports.sh
. scripts/backports.sh
add_backports deb-src /etc/apt/sources.list.d/ghafgen-backports-src.sources || exit 0
mkdir -p "$cache"
# The Debian part of the source package may be gone from the mirror while the
# upstream tarball is there; only the tarball is needed.
(cd "$cache" && apt-get source -q --download-only qemu/bookworm-backports >/dev/null 2>&1) || true
compgen -G "$cache/qemu_10.0*.orig.tar.xz" >/dev/null || {
  echo "fetch-qemu-source: no QEMU 10.0 source tarball from the mirror" >&2
  exit 0
}
