#!/usr/bin/env bash
# Test set-up for the guest boot test (tests/test_guest_boot.py): Debian's arm64
# kernel and busybox, unpacked into a cache directory. Enables the arm64 foreign
# architecture for apt (a user's install does not need it: scripts/install.sh
# leaves it alone); installs nothing into the host system. Quick when cached.
set -euo pipefail

cache="${GHAFGEN_GUEST_CACHE:-$HOME/.cache/ghafgen/guest-boot}"
if [ -s "$cache/vmlinuz" ] && [ -s "$cache/busybox" ] && [ -s "$cache/versions" ]; then
  exit 0
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
# Several sessions may share dpkg on one machine: one apt/dpkg at a time.
apt_locked() { "${sudo_cmd[@]}" flock /tmp/apt.lock "$@"; }

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  apt_locked dpkg --add-architecture arm64
fi
apt_locked apt-get update -q

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# The newest arm64 kernel the machine's sources offer (bookworm-backports: 6.12,
# the guest kernel series Ghaf runs). linux-image-arm64 is a metapackage: its
# one dependency is the versioned image.
meta_version="$(apt-cache madison linux-image-arm64:arm64 | awk 'NR == 1 { print $3 }')"
if [ -z "$meta_version" ]; then
  echo "guest-boot-deps: apt offers no linux-image-arm64:arm64 (is arm64 in the sources?)" >&2
  exit 1
fi
apt_locked apt-get download -q "linux-image-arm64:arm64=$meta_version"
depends="$(dpkg-deb -f linux-image-arm64_*_arm64.deb Depends)"
image="${depends%% (*}"
image_version="$(sed -n 's/.*(= \(.*\)).*/\1/p' <<<"$depends")"
apt_locked apt-get download -q "$image:arm64=$image_version" busybox-static:arm64

mkdir -p kernel busybox
dpkg-deb -x "${image}"_*_arm64.deb kernel
dpkg-deb -x busybox-static_*_arm64.deb busybox
mkdir -p "$cache"
cp kernel/boot/vmlinuz-* "$cache/vmlinuz"
cp busybox/bin/busybox "$cache/busybox"
{
  echo "$image $image_version"
  dpkg-deb -f busybox-static_*_arm64.deb Package Version | paste -sd' ' | sed 's/Package: //; s/ Version: / /'
} >"$cache/versions"
echo "guest boot stand-ins in $cache:"
cat "$cache/versions"
