#!/usr/bin/env bash
# Install everything ghafgen and its tests use on a fresh Debian machine:
# the real tools (Nix, dtc, QEMU, the Linux 6.1 and 6.12 sources) and the Python package.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  device-tree-compiler   # dtc, fdtoverlay
  nix-bin                # nix-instantiate, nix build
  qemu-system-arm        # qemu-system-aarch64 -machine virt,dumpdtb= (10.0 from backports)
  linux-source-6.1       # mainline tegra234 device trees and dt-bindings
  linux-source-6.12      # the guest kernel series; the L4T-layout stand-in tree; binding schemas
  cpp                    # device-tree preprocessing
  shellcheck             # lints the generated shell scripts and scripts/ (tests)
  graphviz               # show --format svg
  librsvg2-bin           # rsvg-convert: tests render the SVG
  git
  gcc-aarch64-linux-gnu  # tests: the patched BPMP proxy, built into an arm64 kernel
  make flex bison bc     # tests: configuring and building that kernel
)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

# QEMU 10.0 (bookworm-backports) still has vfio-platform and has the 10.x virt
# memory map the pinned QEMU 10.1 shares; bookworm's own is 7.2. Add the suite
# with the mirror URI this machine's Debian source already names; where there
# is none (another distribution), keep the distribution's QEMU.
backports=""
if grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
  # shellcheck source=scripts/backports.sh
  . scripts/backports.sh
  if ! grep -rqs --exclude='*-src.sources' 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    add_backports deb /etc/apt/sources.list.d/ghafgen-backports.sources || true
  fi
  grep -rqs --exclude='*-src.sources' 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && backports=yes
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
fi
if [ -n "$backports" ] && ! qemu-system-aarch64 --version | grep -q 'version 10\.'; then
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q \
    --no-install-recommends -t bookworm-backports qemu-system-arm
fi

# Debian's own python3 may come without pip, and marks its environment as
# externally managed (PEP 668); ghafgen installs beside it as a tool would.
if ! python3 -m pip --version >/dev/null 2>&1; then
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q python3-pip
fi
pip_flags=(-q --disable-pip-version-check)
if python3 -c 'import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
  pip_flags+=(--break-system-packages)
fi
# schemas: dtschema (dt-validate, dt-mk-schema), pure Python; the binding
# sources come from linux-source-6.12.
"${sudo_cmd[@]}" python3 -m pip install "${pip_flags[@]}" -e '.[test,schemas]'
