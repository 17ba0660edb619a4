#!/usr/bin/env bash
# Test set-up (not a user's install): what the compile tests build with.
# - the bpmp-virt proxy cross-compiled for arm64 on Debian's 6.12 tree
#   (tests/test_isolation.py): Debian's arm64 cross compiler and what
#   configuring a kernel tree needs;
# - the DCE relay's iso-anchor module built against Debian's 6.12 tree
#   (tests/test_dcerelay_tools.py): the same, and xxd for its embedded overlay;
# - the QEMU 10.0 build folder whose compile command the bridge test reuses
#   (tests/pinned.py qemu_build): QEMU's configure for aarch64-softmmu with
#   every optional feature off needs meson >= 1.5 and pycotap (both from
#   bookworm-backports, for Debian's /usr/bin/python3), ninja, glib and libfdt.
# Quick when everything is there; otherwise apt-get update, then install.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  gcc-aarch64-linux-gnu make flex bison bc patch libssl-dev libelf-dev
  gcc pkg-config ninja-build python3-venv libglib2.0-dev libfdt-dev xxd
)
BACKPORTS_PACKAGES=(meson python3-pycotap)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
# Several sessions may share dpkg on one machine: one apt/dpkg at a time.
apt_locked() { "${sudo_cmd[@]}" flock /tmp/apt.lock "$@"; }
install() {
  DEBIAN_FRONTEND=noninteractive apt_locked apt-get install -y -q --no-install-recommends "$@"
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# meson from bookworm proper is 1.0, too old for QEMU 10.0's configure.
meson_ok() {
  /usr/bin/python3 -c 'import sys, mesonbuild.coredata as c, pycotap
sys.exit(0 if tuple(map(int, c.version.split(".")[:2])) >= (1, 5) else 1)' 2>/dev/null
}
if [ ${#missing[@]} -eq 0 ] && meson_ok; then
  exit 0
fi
apt_locked apt-get update -q
[ ${#missing[@]} -eq 0 ] || install "${missing[@]}"
if ! meson_ok; then
  if grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
    # shellcheck source=scripts/backports.sh
    . scripts/backports.sh
    add_backports deb /etc/apt/sources.list.d/ghafgen-backports.sources || true
    install -t bookworm-backports "${BACKPORTS_PACKAGES[@]}"
  else
    install "${BACKPORTS_PACKAGES[@]}"
  fi
fi
