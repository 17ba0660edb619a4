# SPDX-FileCopyrightText: ghafgen contributors
# SPDX-License-Identifier: Apache-2.0
#
# The QEMU a VM runs when it is given a platform device (vfio-platform).
# QEMU removed `-device vfio-platform` in 10.2 and nixpkgs ships newer
# releases, so this builds the release ghafgen pins from nixpkgs' own qemu,
# with Ghaf's patches taken from the pinned Ghaf tree (never copied):
#   bpmpBridge  the BPMP guest bridge, which opens /dev/bpmp-host and emits
#               the guest's /bpmp node, and the nvidia,tegra234-mgbe binding;
#               only VMs given a BPMP-backed device get it.
#   irqfd       vfio-platform's interrupt fast path on GICv3 and the
#               `startup-rearm` device option.
#   extraPatches  ghafgen's own (the vfio-platform FDT bindings of the
#               devices whose guest node ghafgen writes).
#   bridgeSourcePatches  ghafgen's patches to the bridge's own source files
#               (per-VM BPMP device). Those files are copied in by postPatch,
#               after the patch phase has applied `patches`, so these are
#               applied right after the copy instead.
# Every pinned value comes from the caller (ghafgen's runtime catalog), so
# this file holds no fact of its own. qemu.nix imports it (see there why).
{
  lib,
  qemu,
  fetchurl,
  ghafSrc,
  version,
  url,
  hash,
  packageDir,
  bridgePatches,
  irqfdPatches,
  droppedBasePatches,
  bpmpBridge ? true,
  irqfd ? true,
  extraPatches ? [ ],
  bridgeSourcePatches ? [ ],
}:
let
  fromGhaf = path: "${ghafSrc}/${packageDir}/${path}";
  sources = "${ghafSrc}/${packageDir}/sources";
in
qemu.overrideAttrs (
  _final: prev: {
    pname = "qemu-platform" + lib.optionalString bpmpBridge "-bpmp";
    inherit version;
    src = fetchurl { inherit url hash; };
    patches =
      (lib.filter (
        p: !(lib.any (dropped: lib.hasInfix dropped (baseNameOf p)) droppedBasePatches)
      ) (prev.patches or [ ]))
      ++ lib.optionals bpmpBridge (map fromGhaf bridgePatches)
      ++ lib.optionals irqfd (map fromGhaf irqfdPatches)
      ++ extraPatches;
    postPatch =
      (prev.postPatch or "")
      + lib.optionalString bpmpBridge ''
        # The bridges' sources are files in the Ghaf tree, not diff hunks.
        cp ${sources}/hw/misc/nvidia_bpmp_guest.c hw/misc/
        cp ${sources}/include/hw/misc/nvidia_bpmp_guest.h include/hw/misc/
        cp ${sources}/hw/misc/nvidia_dce_guest.c hw/misc/
        cp ${sources}/include/hw/misc/nvidia_dce_guest.h include/hw/misc/
        chmod u+w hw/misc/nvidia_*_guest.c include/hw/misc/nvidia_*_guest.h
        printf '\nconfig NVIDIA_DCE_GUEST\n    bool\n' >> hw/misc/Kconfig
      ''
      + lib.concatMapStrings (p: ''
        patch -p1 --forward --batch < ${p}
      '') (lib.optionals bpmpBridge bridgeSourcePatches);
  }
)
