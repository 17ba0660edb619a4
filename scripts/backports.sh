# shellcheck shell=bash
# Sourced by install.sh and fetch-qemu-source.sh: add Debian bookworm-backports
# with the mirror URI this machine's Debian source already names.
# add_backports TYPE FILE: write FILE (a deb822 source of TYPE "deb" or
# "deb-src") unless it exists, then update apt; returns 1 where this machine
# names no Debian mirror. Needs the caller's sudo_cmd array.
# shellcheck disable=SC2154 # sudo_cmd is the caller's
add_backports() {
  local type=$1 list=$2 uri
  [ -f "$list" ] && return 0
  uri=$(grep -rhsoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/debian.sources \
    /etc/apt/sources.list 2>/dev/null | grep -v security | head -n 1 | awk '{print $2}' || true)
  [ -n "$uri" ] || return 1
  printf 'Types: %s\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$type" "$uri" | "${sudo_cmd[@]}" tee "$list" >/dev/null
  "${sudo_cmd[@]}" apt-get update -q
}
