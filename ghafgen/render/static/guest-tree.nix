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
}:
let
  overlay = pkgs.runCommand overlayName {
    nativeBuildInputs = [ pkgs.buildPackages.dtc ];
  } ''dtc -@ -I dts -O dtb -o "$out" ${dts}'';
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
    ${pkgs.dtc}/bin/fdtoverlay -i ghafgen-base.dtb -o ghafgen-guest.dtb ${overlay}
  '';
}
