# SPDX-FileCopyrightText: ghafgen contributors
# SPDX-License-Identifier: Apache-2.0
#
# A VM's guest tree: QEMU's own virt tree for this VM plus ghafgen's additions
# (the VM's .dts), built where and when the VM starts, so the two cannot
# drift. QEMU dumps its tree with the machine, CPU, memory and vCPUs that
# microvm.nix gives it on aarch64; the VM passes the result with
# `-dtb ghafgen-guest.dtb`. microvm@ runs preStart in the VM's state directory.
#   qemu         the VM's QEMU
#   dts          the VM's additions, an overlay source
#   overlayName  the store name of the compiled overlay
#   bpmpNode     the /bpmp node the QEMU's bridge emits, named in /__symbols__
#                so the overlay's &bpmp resolves; null: no bridge
#   dropNode     a node of QEMU's tree to remove first (a QEMU that keeps the
#                -dtb's /memory nodes refuses to find its own RAM node there);
#                null: none
#   dcb          a second overlay that includes a file into a node: { file
#                (the included file), name (the name the overlay includes it
#                by), dts (the overlay), bytes, sha256 (of the property
#                nvidia,dcb-image it gives) }; null: none
# Every value comes from the VM module ghafgen generates, so this file holds
# no fact of its own.
{
  config,
  lib,
  pkgs,
}:
{
  qemu,
  dts,
  overlayName,
  bpmpNode ? null,
  dropNode ? null,
  dcb ? null,
}:
let
  overlay = pkgs.runCommand overlayName {
    nativeBuildInputs = [ pkgs.buildPackages.dtc ];
  } ''dtc -@ -I dts -O dtb -o "$out" ${dts}'';
  # The DCB is NVIDIA's blob: checked by what it is (its length and hash), as
  # Ghaf's own build does, never by its version string. fdtget prints bytes as
  # bare hex; bash's printf turns each back into a byte.
  dcbOverlay = pkgs.runCommand "${overlayName}-dcb" {
    nativeBuildInputs = [ pkgs.buildPackages.dtc ];
  } ''
    ln -s ${dcb.file} ${lib.escapeShellArg dcb.name}
    dtc -@ -i . -I dts -O dtb -o "$out" ${dcb.dts}
    for b in $(fdtget -t bx "$out" /fragment@0/__overlay__ nvidia,dcb-image); do
      printf "\\x$b"
    done > dcb.bin
    size=$(wc -c < dcb.bin)
    hash=$(sha256sum dcb.bin | cut -d' ' -f1)
    if [ "$size" != ${toString dcb.bytes} ] || [ "$hash" != ${lib.escapeShellArg dcb.sha256} ]; then
      echo "DCB image: $size bytes, sha256 $hash; want ${toString dcb.bytes}, ${dcb.sha256}" >&2
      exit 1
    fi
  '';
  overlays = [ overlay ] ++ lib.optional (dcb != null) dcbOverlay;
  machineOpts =
    if config.microvm.qemu.machineOpts != null then
      config.microvm.qemu.machineOpts
    else
      {
        accel = "kvm:tcg";
        gic-version = "max";
      };
  machine = lib.concatStringsSep "," (
    [ config.microvm.qemu.machine ] ++ lib.mapAttrsToList (n: v: "${n}=${v}") machineOpts
  );
  cpuArgs =
    if config.microvm.cpu == null then
      [
        "-cpu"
        "host"
        "-enable-kvm"
      ]
    else
      [
        "-cpu"
        config.microvm.cpu
      ];
in
{
  # What preStart applies to QEMU's tree, in order (built with the system).
  inherit overlays;
  preStart = ''
    ${qemu}/bin/qemu-system-aarch64 ${
      lib.escapeShellArgs (
        [
          "-M"
          machine
          "-m"
          (toString config.microvm.mem)
          "-smp"
          (toString config.microvm.vcpu)
          "-nodefaults"
          "-no-user-config"
          "-display"
          "none"
        ]
        ++ cpuArgs
        ++ [
          "-machine"
          "dumpdtb=ghafgen-base.dtb"
        ]
      )
    }
    ${lib.optionalString (bpmpNode != null) ''
      ${pkgs.dtc}/bin/fdtput ${
        lib.escapeShellArgs [
          "-p"
          "-t"
          "s"
          "ghafgen-base.dtb"
          "/__symbols__"
          "bpmp"
          bpmpNode
        ]
      }
    ''}
    ${lib.optionalString (dropNode != null) ''
      ${pkgs.dtc}/bin/fdtput -r ghafgen-base.dtb ${lib.escapeShellArg dropNode}
    ''}
    ${pkgs.dtc}/bin/fdtoverlay -i ghafgen-base.dtb -o ghafgen-guest.dtb ${lib.concatStringsSep " " overlays}
  '';
}
