# Evaluate flake.nix's `outputs` function with stand-in inputs and print, as
# JSON, what `nix flake show` would list plus what each NixOS configuration
# sets. Used by tests/test_flake.py (opt-in, like eval-module.nix: it needs a
# nixpkgs lib checkout and a microvm.nix checkout).
#
# Stand-ins, since nixpkgs itself is not available offline:
# - nixpkgs: the real nixpkgs lib; `lib.nixosSystem` is lib.evalModules over
#   the stubbed NixOS options of stubs.nix (not NixOS's module set), with a
#   `pkgs` of stand-in packages that the configuration's nixpkgs.overlays
#   (ghafgen's overlays.default among them) are applied to.
# - microvm: the checkout's path; its host module is stubs.nix's microvmHost.
# - jetpack-nixos: a module declaring hardware.nvidia-jetpack.{enable,som,
#   carrierBoard} with the types jetpack-nixos declares (anduril/jetpack-nixos
#   4d857d6 modules/default.nix) and kernel.version, the option of Ghaf's fork
#   (tiiuae/jetpack-nixos august-rebase; its revision could not be fetched
#   here, so the option is known from Ghaf's use of it, tiiuae/ghaf 9a37dc8
#   nvidia-jetson-orin/jetson-orin.nix). Enabled, it sets a 6.6 kernel for
#   "upstream-6-6" and else the L4T 5.15.185 of JetPack 6
#   (anduril pkgs/kernels/r36/default.nix).
# - ghaf: a store-path-like source, so the test sees which Ghaf tree a
#   generated module takes.
{
  libPath,
  microvmSrc,
  root, # the flake's folder
  template ? null, # an instantiated template folder, evaluated with this flake as `ghafgen`
}:
let
  lib = import libPath;
  inherit (lib) mkOption types;
  stubs = import ./stubs.nix { inherit lib; };
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  pkgsModule =
    { config, ... }:
    {
      _module.args.pkgs = lib.fix (
        final: lib.foldl' (prev: overlay: prev // overlay final prev) stubs.pkgs config.nixpkgs.overlays
      );
    };
  nixosSystem =
    { modules, ... }:
    lib.evalModules {
      modules = modules ++ [
        stubs.common
        stubs.hostOptions
        stubs.systemOptions
        pkgsModule
      ];
    };

  nixpkgs = {
    outPath = toString libPath;
    lib = lib.extend (_final: _prev: { inherit nixosSystem; });
    legacyPackages = lib.genAttrs systems (system: stubs.pkgs // { inherit system; });
  };
  microvm = {
    outPath = microvmSrc;
    nixosModules.host = stubs.microvmHost;
  };
  jetpack-nixos = {
    outPath = "/nix/store/00000000000000000000000000000000-jetpack-nixos";
    nixosModules.default =
      { config, ... }:
      {
        options.hardware.nvidia-jetpack = {
          enable = lib.mkEnableOption "NVIDIA Jetson device support";
          som = mkOption {
            type = types.enum [
              "generic"
              "orin-agx"
              "orin-agx-industrial"
              "orin-nx"
              "orin-nano"
            ];
            default = "generic";
          };
          carrierBoard = mkOption {
            type = types.enum [
              "generic"
              "devkit"
              "xavierNxDevkit"
            ];
            default = "generic";
          };
          kernel.version = mkOption {
            type = types.str;
            default = "bsp-default";
          };
        };
        config = lib.mkIf config.hardware.nvidia-jetpack.enable {
          boot.kernelPackages.kernel.version =
            if config.hardware.nvidia-jetpack.kernel.version == "upstream-6-6" then "6.6.50" else "5.15.185";
        };
      };
  };
  ghaf = {
    outPath = "/nix/store/11111111111111111111111111111111-ghaf-input";
  };

  flakeOf =
    folder: inputs:
    let
      outputs = (import (folder + "/flake.nix")).outputs (inputs // { self = outputs // { outPath = folder; }; });
    in
    outputs;
  ghafgen = flakeOf root {
    inherit
      nixpkgs
      microvm
      jetpack-nixos
      ghaf
      ;
  };

  system =
    name: sys:
    let
      c = sys.config;
      jetpack = c.hardware.nvidia-jetpack or { enable = false; };
    in
    {
      hostName = c.networking.hostName;
      platform = c.nixpkgs.hostPlatform;
      kernel = c.boot.kernelPackages.kernel.version;
      jetpack =
        if jetpack.enable then
          {
            inherit (jetpack) som carrierBoard;
            kernel = jetpack.kernel.version;
          }
        else
          null;
      failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
      allowUnfree = c.nixpkgs.config.allowUnfree or false;
      root = c.fileSystems."/".fsType;
      vms = builtins.attrNames c.microvm.vms;
      overlays = builtins.length c.nixpkgs.overlays;
      patches = map (p: {
        inherit (p) name;
        patch = if p.patch == null then null else toString (p.patch.name or p.patch);
      }) c.boot.kernelPatches;
    };
  names = builtins.mapAttrs (_: builtins.attrNames);

  # nix/package.nix called with stand-in packages; buildPythonApplication
  # hands back what it was given, which the test reads.
  package =
    let
      python3Packages = lib.genAttrs (import (root + "/nix/python-deps.nix")).runtime stubs.fake // {
        setuptools = stubs.fake "setuptools";
        buildPythonApplication = args: args;
      };
    in
    lib.callPackageWith (
      stubs.pkgs
      // {
        inherit python3Packages;
        installShellFiles = stubs.fake "installShellFiles";
        graphviz = stubs.fake "graphviz";
        git = stubs.fake "git";
        nix = stubs.fake "nix";
        stdenv = stubs.pkgs.stdenv // {
          buildPlatform.canExecute = _: true;
        };
      }
    ) (root + "/nix/package.nix") { };
in
builtins.toJSON (
  {
    outputs = builtins.attrNames ghafgen;
    overlays = builtins.attrNames ghafgen.overlays;
    overlayAdds = builtins.attrNames (ghafgen.overlays.default stubs.pkgs stubs.pkgs);
    ghafgenSourcesGhaf = toString (ghafgen.overlays.default stubs.pkgs stubs.pkgs).ghafgenSources.ghaf;
    qemuPlatform =
      let
        withOverlay = lib.fix (final: stubs.pkgs // ghafgen.overlays.default final stubs.pkgs);
        q = withOverlay.ghafgen-qemu-platform;
      in
      {
        inherit (q) pname version;
        patches = map toString q.patches;
      };
    nixosModules = builtins.attrNames ghafgen.nixosModules;
    package = {
      inherit (package) pname version makeWrapperArgs postFixup;
      dependencies = map (d: d.name) package.dependencies;
    };
    templates = builtins.mapAttrs (_: t: {
      path = toString t.path;
      inherit (t) description;
    }) ghafgen.templates;
    nixosConfigurations = builtins.mapAttrs system ghafgen.nixosConfigurations;
    packages = names ghafgen.packages;
    apps = names ghafgen.apps;
    checks = names ghafgen.checks;
    devShells = names ghafgen.devShells;
    formatter = builtins.attrNames ghafgen.formatter;
    lib = builtins.attrNames ghafgen.lib;
  }
  // lib.optionalAttrs (template != null) {
    template =
      let
        user = flakeOf template {
          inherit ghafgen nixpkgs;
        };
      in
      {
        outputs = builtins.attrNames user;
        apps = names user.apps;
        checks = names user.checks;
        nixosConfigurations = builtins.mapAttrs system user.nixosConfigurations;
      };
  }
)
