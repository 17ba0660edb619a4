# Stubbed NixOS for evaluating ghafgen's Nix without nixpkgs (tests only):
# NixOS option declarations with NixOS's types for the options ghafgen's
# modules and flake set, and a `pkgs` whose packages are store-path-like
# stand-ins, so nothing is built. This is not NixOS's module set: an option
# declared here is checked for its name and type, nothing more.
# Used by eval-module.nix (one generated module) and flake-outputs.nix (the
# flake's outputs with stand-in inputs).
{
  lib,
  # The kernel version a host module sees when nothing sets boot.kernelPackages.
  hostKernel ? "6.6.50",
}:
let
  inherit (lib) mkOption types;
in
rec {
  # Stand-ins for the few pkgs attributes the modules use: store-path-like
  # derivations, so that nothing is built and nothing needs nixpkgs.
  fake = name: fakeVersioned name "";
  fakeVersioned = fakeWith { };
  fakeWith = extra: name: version: {
    type = "derivation";
    inherit name version;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    patches = [ ];
    postPatch = "";
    # As nixpkgs' overrideAttrs: `old: { }` or `final: prev: { }`; the result
    # keeps what the override set, so the tests can read version and patches.
    overrideAttrs =
      f:
      let
        prev = fakeWith extra name version;
        once = f prev;
        new = prev // (if builtins.isFunction once then f new prev else once);
        patched = new // {
          name = "${name}-patched";
          override = _f: patched;
        };
      in
      patched;
    # As nixpkgs' makeOverridable `override` (microvm.nix's qemu runner calls
    # it with nixosTestRunner): the package called again with other arguments,
    # what overrideAttrs set kept. The stand-in takes none, so it is itself.
    override = _f: fakeWith extra name version;
  } // extra;
  # nixpkgs' qemu (pkgs/applications/virtualization/qemu/default.nix):
  # seccompSupport defaults to stdenv.hostPlatform.isLinux and adds
  # --enable-seccomp, which microvm.nix's runner reads to add `-sandbox on`.
  fakeQemu = name: fakeWith { configureFlags = [ "--enable-seccomp" ]; } name "";
  # A kernel package set with nixpkgs' `extend` (an overlay over the set).
  kernelSet =
    attrs:
    let
      self = attrs // {
        extend = f: kernelSet (self // f self self);
      };
    in
    self;
  # jetpack-nixos's overlay is a stand-in of its own (jetpack-nixos-standin.nix).
  pkgs = basePkgs // import ./jetpack-nixos-standin.nix { inherit fake fakeVersioned; } pkgs basePkgs;
  basePkgs = {
    _type = "pkgs"; # what lib.types.pkgs (microvm.vmHostPackages) checks for
    fetchFromGitHub = _args: fake "source";
    fetchgit = _args: fake "source";
    # The script kept, so a test can run it with the real tools.
    runCommand = name: _env: script: fakeWith { inherit script; } name "";
    writeShellScript = name: _text: fake name;
    writeText = name: _text: fake name;
    dtc = fake "dtc";
    coreutils = fake "coreutils";
    buildPackages.dtc = fake "dtc";
    buildPackages.unixtools.xxd = fake "xxd";
    qemu_kvm = fakeQemu "qemu";
    qemu-bpmp = fake "qemu-bpmp";
    ghaf-qemu-bpmp = fake "ghaf-qemu-bpmp";
    ghaf-qemu-bpmp-gpu = fake "ghaf-qemu-bpmp-gpu";
    # nixpkgs' pkgs/build-support/trivial-builders (symlinkJoin): the
    # stand-in keeps what it joins and its postBuild, for the tests to read.
    symlinkJoin =
      {
        name,
        paths,
        postBuild ? "",
      }:
      fakeWith { inherit paths postBuild; } name "";
    # nixpkgs' pkgs/build-support/add-driver-runpath: where NixOS links the
    # hardware.graphics packages.
    addDriverRunpath.driverLink = "/run/opengl-driver";
    egl-gbm = fake "egl-gbm";
    egl-wayland = fake "egl-wayland";
    # `extend` as nixpkgs' kernel package sets have it (the GPU guest extends
    # 6.12 with jetpack-nixos's overlay of NVIDIA's out-of-tree modules).
    linuxPackages_6_12 = kernelSet { kernel.version = "6.12.40"; };
    linuxPackages_6_6.kernel.version = "6.6.50";
    # nixpkgs lib's own callPackageWith: the file is imported and called, and
    # an argument neither given nor in this pkgs fails the evaluation.
    callPackage = lib.callPackageWith pkgs;
    inherit lib;
    qemu = fakeQemu "qemu";
    fetchurl = _args: fake "tarball";
    stdenv.system = "aarch64-linux";
    stdenv.hostPlatform = {
      system = "aarch64-linux";
      isLinux = true;
    };
    system = "aarch64-linux";
  };

  # NixOS: nixos/modules/system/boot/kernel.nix
  kernelParam = types.strMatching ''([^"[:space:]]|"[^"]*")+'';
  # NixOS: nixos/lib/systemd-unit-options.nix (unitOption, unit name lists):
  # a value several modules define as lists is their concatenation (two
  # modules may each add DeviceAllow= entries); other values must be equal.
  unitOption =
    types.oneOf [
      types.bool
      types.int
      types.str
      types.path
      (types.listOf types.str)
    ]
    // {
      merge =
        loc: defs:
        let
          defs' = lib.filterOverrides defs;
        in
        if lib.any (d: builtins.isList d.value) defs' then
          lib.concatMap (d: lib.toList d.value) defs'
        else
          lib.mergeEqualOption loc defs';
    };
  service = types.submodule {
    options = {
      description = mkOption { type = types.str; default = ""; };
      wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
      requiredBy = mkOption { type = types.listOf types.str; default = [ ]; };
      before = mkOption { type = types.listOf types.str; default = [ ]; };
      after = mkOption { type = types.listOf types.str; default = [ ]; };
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
      # NixOS: nixos/lib/systemd-unit-options.nix (environment)
      environment = mkOption {
        type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
        default = { };
      };
      unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
      # NixOS: nixos/lib/systemd-unit-options.nix (postStart: ExecStartPost
      # script; overrideStrategy "asDropin" writes a drop-in for a template's
      # instance instead of a whole unit).
      postStart = mkOption { type = types.lines; default = ""; };
      # NixOS: the unit's ExecStart as a shell script (systemd-unit-options.nix).
      script = mkOption { type = types.lines; default = ""; };
      overrideStrategy = mkOption {
        type = types.enum [ "asDropinIfExists" "asDropin" ];
        default = "asDropinIfExists";
      };
    };
  };
  # NixOS: nixos/modules/config/users-groups.nix (the fields ghafgen sets).
  user = types.submodule {
    options = {
      isSystemUser = mkOption { type = types.bool; default = false; };
      description = mkOption { type = types.str; default = ""; };
      group = mkOption { type = types.str; default = ""; };
      extraGroups = mkOption { type = types.listOf types.str; default = [ ]; };
    };
  };
  group = types.submodule { options.gid = mkOption { type = types.nullOr types.int; default = null; }; };
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
      # NixOS: nixos/modules/system/boot/kernel.nix, hardware/firmware (all-firmware.nix)
      boot.extraModulePackages = mkOption { type = types.listOf types.package; default = [ ]; };
      boot.kernelModules = mkOption { type = types.listOf types.str; default = [ ]; };
      hardware.firmware = mkOption { type = types.listOf types.package; default = [ ]; };
      assertions = mkOption { type = types.listOf assertion; default = [ ]; };
      # NixOS: nixos/modules/system/etc/etc.nix (environment.etc.<name>.source)
      environment.etc = mkOption {
        type = types.attrsOf (types.submodule { options.source = mkOption { type = types.path; }; });
        default = { };
      };
    };
  };

  hostOptions = {
    options = {
      boot.blacklistedKernelModules = mkOption { type = types.listOf types.str; default = [ ]; };
      boot.kernelPackages = mkOption {
        type = types.raw;
        default = kernelSet { kernel.version = hostKernel; };
      };
      hardware.deviceTree.enable = mkOption { type = types.bool; default = false; };
      hardware.deviceTree.overlays = mkOption { type = types.listOf overlay; default = [ ]; };
      systemd.services = mkOption { type = types.attrsOf service; default = { }; };
      services.udev.extraRules = mkOption { type = types.lines; default = ""; };
      # NixOS: nixos/modules/system/boot/systemd/tmpfiles.nix, systemd.nix
      systemd.tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; };
      systemd.package = mkOption { type = types.package; default = fake "systemd"; };
      users.users = mkOption { type = types.attrsOf user; default = { }; };
      users.groups = mkOption { type = types.attrsOf group; default = { }; };
    };
  };

  # microvm.nix's host option the generated host modules set (the real module,
  # nixos-modules/host, needs the whole of NixOS): nixos-modules/host/options.nix
  # declares each VM's config as a NixOS module.
  microvmHost = {
    options.microvm.vms = mkOption {
      type = types.attrsOf (types.submodule {
        options.config = mkOption { type = types.deferredModule; };
      });
      default = { };
    };
    # nixos-modules/host/options.nix
    options.microvm.stateDir = mkOption {
      type = types.path;
      default = "/var/lib/microvms";
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
      # What the GPU guest sets besides: NixOS's nixos/modules/hardware/graphics.nix,
      # config/shells-environment.nix (environment.variables) and systemd.nix.
      hardware.graphics.enable = mkOption { type = types.bool; default = false; };
      hardware.graphics.extraPackages = mkOption { type = types.listOf types.package; default = [ ]; };
      environment.variables = mkOption {
        type = types.attrsOf (types.oneOf [
          (types.listOf (types.oneOf [ types.int types.str types.path ]))
          types.int
          types.str
          types.path
        ]);
        default = { };
      };
      systemd.services = mkOption { type = types.attrsOf service; default = { }; };
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


  # What the flake's host configurations set beyond the generated modules
  # (nix/lib.nix referenceMachine, baseModule); NixOS declares these in
  # nixos/modules/misc/nixpkgs.nix, tasks/network-interfaces.nix,
  # system/boot/loader/systemd-boot, tasks/filesystems.nix, misc/version.nix.
  systemOptions = {
    options = {
      nixpkgs.hostPlatform = mkOption { type = types.either types.str types.attrs; };
      nixpkgs.overlays = mkOption { type = types.listOf types.unspecified; default = [ ]; };
      nixpkgs.config = mkOption { type = types.attrs; default = { }; };
      networking.hostName = mkOption { type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$"; };
      boot.loader.systemd-boot.enable = mkOption { type = types.bool; default = false; };
      fileSystems = mkOption {
        type = types.attrsOf (types.submodule {
          options.device = mkOption { type = types.str; };
          options.fsType = mkOption { type = types.str; };
        });
        default = { };
      };
      system.stateVersion = mkOption { type = types.str; };
    };
  };
}
