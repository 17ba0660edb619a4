# Evaluate one generated module with nixpkgs' lib.evalModules and print what it
# sets, as JSON. Used by tests/test_nixos_eval.py (opt-in: it needs checkouts of
# nixpkgs' lib and microvm.nix, named by GHAFGEN_NIXPKGS_LIB/GHAFGEN_MICROVM_SRC).
#
# lib.evalModules alone has no NixOS options, so the ones the generated host
# modules set are declared here with NixOS's types; an option that does not
# exist fails the evaluation. Guests use microvm.nix's own option declarations.
{
  libPath,
  microvmSrc,
  module,
  kind, # "host" or "guest"
  layout ? "default", # "ghaf": stub the Ghaf options generated modules set
  hostKernel ? "6.6.50",
}:
let
  lib = import libPath;
  inherit (lib) mkOption types;

  # Stand-ins for the few pkgs attributes the modules use: store-path-like
  # derivations, so that nothing is built and nothing needs nixpkgs.
  fake = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    version = "";
    patches = [ ];
    postPatch = "";
    # As nixpkgs' overrideAttrs: `old: { }` or `final: prev: { }`; the result
    # keeps what the override set, so the tests can read version and patches.
    overrideAttrs =
      f:
      let
        prev = fake name;
        once = f prev;
        new = prev // (if builtins.isFunction once then f new prev else once);
      in
      new // { name = "${name}-patched"; };
  };
  # nixpkgs' callPackage: the function's arguments from pkgs, then overrides.
  callPackage =
    path: overrides:
    let
      f = import path;
    in
    f (builtins.intersectAttrs (builtins.functionArgs f) (pkgs // { inherit lib; }) // overrides);
  pkgs = {
    _type = "pkgs"; # what lib.types.pkgs (microvm.vmHostPackages) checks for
    inherit callPackage;
    fetchurl = _args: fake "tarball";
    qemu = fake "qemu";
    fetchFromGitHub = _args: fake "source";
    fetchgit = _args: fake "source";
    runCommand = name: _env: _script: fake name;
    writeShellScript = name: _text: fake name;
    dtc = fake "dtc";
    buildPackages.dtc = fake "dtc";
    qemu_kvm = fake "qemu";
    ghaf-qemu-bpmp = fake "ghaf-qemu-bpmp";
    linuxPackages_6_12.kernel.version = "6.12.40";
    stdenv.system = "aarch64-linux";
    stdenv.hostPlatform = {
      system = "aarch64-linux";
      isLinux = true;
    };
    system = "aarch64-linux";
  };

  # NixOS: nixos/modules/system/boot/kernel.nix
  kernelParam = types.strMatching ''([^"[:space:]]|"[^"]*")+'';
  # NixOS: nixos/lib/systemd-unit-options.nix (unitOption, unit name lists)
  unitOption = types.oneOf [
    types.bool
    types.int
    types.str
    types.path
    (types.listOf types.str)
  ];
  service = types.submodule {
    options = {
      description = mkOption { type = types.str; default = ""; };
      wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
      requiredBy = mkOption { type = types.listOf types.str; default = [ ]; };
      before = mkOption { type = types.listOf types.str; default = [ ]; };
      after = mkOption { type = types.listOf types.str; default = [ ]; };
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
      unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
    };
  };
  assertion = types.submodule {
    options = {
      assertion = mkOption { type = types.bool; };
      message = mkOption { type = types.str; };
    };
  };
  # NixOS: nixos/modules/hardware/device-tree.nix
  overlay = types.submodule {
    options = {
      name = mkOption { type = types.str; };
      dtsFile = mkOption { type = types.nullOr types.path; default = null; };
      dtsText = mkOption { type = types.nullOr types.str; default = null; };
      dtboFile = mkOption { type = types.nullOr types.path; default = null; };
      filter = mkOption { type = types.nullOr types.str; default = null; };
    };
  };

  common = {
    options = {
      boot.kernelParams = mkOption { type = types.listOf kernelParam; default = [ ]; };
      boot.kernelPatches = mkOption { type = types.listOf types.attrs; default = [ ]; };
      assertions = mkOption { type = types.listOf assertion; default = [ ]; };
    };
  };

  hostOptions = {
    options = {
      boot.blacklistedKernelModules = mkOption { type = types.listOf types.str; default = [ ]; };
      boot.kernelPackages = mkOption {
        type = types.raw;
        default.kernel.version = hostKernel;
      };
      hardware.deviceTree.enable = mkOption { type = types.bool; default = false; };
      hardware.deviceTree.overlays = mkOption { type = types.listOf overlay; default = [ ]; };
      systemd.services = mkOption { type = types.attrsOf service; default = { }; };
      services.udev.extraRules = mkOption { type = types.lines; default = ""; };
      # microvm.nix: nixos-modules/host/options.nix declares config as a NixOS module.
      microvm.vms = mkOption {
        type = types.attrsOf (types.submodule {
          options.config = mkOption { type = types.deferredModule; };
        });
        default = { };
      };
    };
  };

  # What microvm.nix's guest options.nix reads from NixOS.
  guestOptions = {
    options = {
      networking.hostName = mkOption { type = types.str; default = "guest"; };
      boot.kernelPackages = mkOption {
        type = types.raw;
        default.kernel.version = "6.6.50";
      };
      system.build = mkOption { type = types.lazyAttrsOf types.unspecified; default = { }; };
      system.boot.loader.initrdFile = mkOption { type = types.str; default = "initrd"; };
    };
    config.system.build.initialRamdisk = fake "initrd";
  };

  # Stubs of the Ghaf options --layout ghaf sets, with the types Ghaf declares
  # (modules/hardware/definition.nix, modules/microvm/vm-config.nix,
  # modules/common/virtualization/qemu.nix).
  ghafHost = {
    options.ghaf.hardware.definition = mkOption {
      type = types.attrsOf (types.submodule {
        options.extraModules = mkOption { type = types.listOf types.unspecified; default = [ ]; };
      });
      default = { };
    };
    options.ghaf.virtualization.vmConfig.sysvms = mkOption {
      type = types.attrsOf (types.submodule {
        options.mem = mkOption { type = types.nullOr types.int; default = null; };
        options.vcpu = mkOption { type = types.nullOr types.int; default = null; };
      });
      default = { };
    };
  };
  ghafGuest = {
    options.ghaf.virtualization.qemu.package = mkOption {
      type = types.package;
      default = fake "ghaf-qemu";
    };
  };

  evaluated = lib.evalModules {
    modules = [
      common
      { _module.args.pkgs = pkgs; }
      module
    ]
    ++ (
      if kind == "host" then
        [ hostOptions ] ++ lib.optional (layout == "ghaf") ghafHost
      else
        [
          guestOptions
          "${microvmSrc}/nixos-modules/microvm/options.nix"
        ]
        ++ lib.optional (layout == "ghaf") ghafGuest
    );
  };
  c = evaluated.config;
  name = d: d.name or (toString d);
in
builtins.toJSON (
  if kind == "host" then
    {
      kernelParams = c.boot.kernelParams;
      kernelPatches = map (p: {
        keys = builtins.attrNames p;
        inherit (p) name;
        patch = if p.patch == null then null else name p.patch;
        config = p.structuredExtraConfig or { };
      }) c.boot.kernelPatches;
      blacklist = c.boot.blacklistedKernelModules;
      deviceTree = c.hardware.deviceTree.enable;
      overlays = map (o: o.name) c.hardware.deviceTree.overlays;
      services = builtins.mapAttrs (_: s: {
        inherit (s) before requiredBy wantedBy;
        ExecStart = s.serviceConfig.ExecStart or null;
        Type = s.serviceConfig.Type or null;
        CPUAffinity = s.serviceConfig.CPUAffinity or null;
      }) c.systemd.services;
      udev = c.services.udev.extraRules;
      vms = builtins.attrNames c.microvm.vms;
      assertions = map (a: a.assertion) c.assertions;
    }
    // lib.optionalAttrs (layout == "ghaf") {
      ghafVms = builtins.mapAttrs (_: d: builtins.length d.extraModules) c.ghaf.hardware.definition;
      sysvms = builtins.mapAttrs (_: v: { inherit (v) mem vcpu; }) c.ghaf.virtualization.vmConfig.sysvms;
    }
  else
    {
      inherit (c.microvm) hypervisor vcpu mem;
      extraArgs = c.microvm.qemu.extraArgs;
      devices = map (d: { inherit (d) bus path; }) c.microvm.devices;
      qemuPackage = name (
        if layout == "ghaf" then c.ghaf.virtualization.qemu.package else c.microvm.qemu.package
      );
      assertions = map (a: a.assertion) c.assertions;
      qemuVersion = c.microvm.qemu.package.version or "";
      qemuPatches = map toString (c.microvm.qemu.package.patches or [ ]);
      preStart = c.microvm.preStart;
      kernelParams = c.boot.kernelParams;
      kernelPackages = c.boot.kernelPackages.kernel.version;
      kernelPatches = map (p: {
        keys = builtins.attrNames p;
        inherit (p) name;
        config = p.structuredExtraConfig or { };
      }) c.boot.kernelPatches;
    }
)
