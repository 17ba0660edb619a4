# The QEMU command line microvm.nix's runner builds for generated VM modules,
# as JSON {name: command}. Used by tests/guestboot.py (the guest boot test runs
# that command, with the substitutions it lists).
#
# Each module is evaluated with nixpkgs' lib.evalModules and microvm.nix's own
# guest modules that shape the command: options.nix (the options and their
# defaults), system.nix (microvm.kernelParams: boot.kernelParams plus init=)
# and optimization.nix (its kernel parameter). Then microvm.nix's qemu runner
# (lib/runners/qemu.nix, or the copy `qemuRunner` names) is called as
# lib/runner.nix calls it, and its `command` is what the runner script execs.
#
# Stubbed (not NixOS): the NixOS options those modules set are declared here
# with loose types (nothing reads them back); stubs.nix's pkgs stands in for
# nixpkgs (store paths that are never built).
{
  libPath,
  microvmSrc,
  # JSON: {"<id>": {"name": "<vm name>", "path": "<absolute path of vms/<vm>.nix>"}}
  modulesJson,
  qemuRunner ? "${microvmSrc}/lib/runners/qemu.nix",
}:
let
  lib = import libPath;
  inherit (lib) mkOption types;
  stubs = import ./stubs.nix { inherit lib; };
  inherit (stubs) fake pkgs common guestOptions;
  microvmLib = import "${microvmSrc}/lib" { inherit lib; };

  loose = mkOption {
    type = types.anything;
    default = null;
  };
  # What microvm.nix's system.nix and optimization.nix set or read beyond
  # stubs.nix's guest options (NixOS declares these).
  nixosOptions = {
    options = {
      boot.loader.grub.enable = loose;
      boot.initrd.kernelModules = loose;
      boot.initrd.availableKernelModules = loose;
      boot.initrd.systemd.enable = loose;
      boot.initrd.systemd.tpm2.enable = loose;
      boot.swraid.enable = loose;
      boot.blacklistedKernelModules = loose;
      documentation.enable = loose;
      environment.etc = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
      networking.hostId = loose;
      networking.useNetworkd = loose;
      nixpkgs.overlays = loose;
      services.openssh.enable = mkOption {
        type = types.bool;
        default = false;
      };
      systemd.services = mkOption {
        type = types.attrsOf (types.attrsOf types.anything);
        default = { };
      };
      systemd.sockets = mkOption {
        type = types.attrsOf (types.attrsOf types.anything);
        default = { };
      };
      systemd.generators = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      systemd.network.wait-online.enable = loose;
      systemd.tpm2.enable = loose;
      # store-disk.nix declares it and builds it from the closure; a store path here.
      microvm.storeDisk = mkOption {
        type = types.path;
        default = "${fake "microvm-store-disk.erofs"}";
      };
    };
    config.system.build.toplevel = fake "nixos-system";
  };
  # NixOS's own kernel parameter (nixos/modules/system/boot/kernel.nix:
  # "loglevel=${toString config.boot.consoleLogLevel}", default 4).
  nixosKernelParams = {
    boot.kernelParams = [ "loglevel=4" ];
  };
  # The stub kernel package sets have no store path; the runner reads
  # "${kernel.out}/${linuxTarget}".
  kernel = {
    microvm.kernel = lib.mkForce (fake "linux" // { out = fake "linux"; });
  };

  command =
    _id: vm:
    let
      evaluated = lib.evalModules {
        modules = [
          common
          { _module.args.pkgs = pkgs; }
          guestOptions
          nixosOptions
          nixosKernelParams
          kernel
          # microvm.nix's host module names each VM's NixOS after its key.
          { networking.hostName = lib.mkDefault vm.name; }
          "${microvmSrc}/nixos-modules/microvm/options.nix"
          "${microvmSrc}/nixos-modules/microvm/system.nix"
          "${microvmSrc}/nixos-modules/microvm/optimization.nix"
          (/. + vm.path)
        ];
      };
      c = evaluated.config;
      # As lib/runner.nix imports the hypervisor's runner.
      runner = import qemuRunner {
        inherit pkgs;
        microvmConfig = c.microvm // {
          inherit (c.networking) hostName;
          hypervisor = "qemu";
        };
        # lib/macvtap.nix: no macvtap interface in any generated module.
        macvtapFds = { };
        inherit (microvmLib) withDriveLetters extractOptValues extractParamValue;
        # nixpkgs' stdenv.hostPlatform.linux-kernel.target on aarch64-linux.
        linuxTarget = "Image";
      };
      failed = builtins.filter (a: !a.assertion) c.assertions;
    in
    if failed != [ ] then throw (builtins.head failed).message else runner.command;
in
builtins.toJSON (builtins.mapAttrs command (builtins.fromJSON modulesJson))
