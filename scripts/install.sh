#!/usr/bin/env bash
# Install everything ghafgen and its tests use on a fresh Debian machine:
# the real tools (Nix, dtc, QEMU, the Linux 6.1 sources) and the Python package.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  device-tree-compiler   # dtc, fdtoverlay
  nix-bin                # nix-instantiate, nix build
  qemu-system-arm        # qemu-system-aarch64 -machine virt,dumpdtb=
  linux-source-6.1       # mainline tegra234 device trees and dt-bindings
  cpp                    # device-tree preprocessing
  graphviz               # show --format svg
  librsvg2-bin           # rsvg-convert: tests render the SVG
  git
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if [ ${#missing[@]} -gt 0 ]; then
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
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
