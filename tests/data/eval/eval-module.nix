# Evaluate one generated module with nixpkgs' lib.evalModules and print what it
# sets, as JSON. Used by tests/test_nixos_eval.py (opt-in: it needs checkouts of
# nixpkgs' lib and microvm.nix, named by GHAFGEN_NIXPKGS_LIB/GHAFGEN_MICROVM_SRC).
#
# lib.evalModules alone has no NixOS options, so the ones the generated host
# modules set are declared in stubs.nix with NixOS's types; an option that does not
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

  stubs = import ./stubs.nix { inherit lib hostKernel; };
  inherit (stubs)
    fake
    pkgs
    common
    hostOptions
    microvmHost
    guestOptions
    ghafHost
    ghafGuest
    ;

  evaluated = lib.evalModules {
    modules = [
      common
      { _module.args.pkgs = pkgs; }
      module
    ]
    ++ (
      if kind == "host" then
        [
          hostOptions
          microvmHost
        ]
        ++ lib.optional (layout == "ghaf") ghafHost
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
      kernelModules = c.boot.kernelModules;
      extraModulePackages = map name c.boot.extraModulePackages;
      extraModulePostPatch = map (p: p.postPatch or "") c.boot.extraModulePackages;
      deviceTree = c.hardware.deviceTree.enable;
      overlays = map (o: o.name) c.hardware.deviceTree.overlays;
      services = builtins.mapAttrs (_: s: {
        inherit (s) before requiredBy wantedBy;
        ExecStart = s.serviceConfig.ExecStart or null;
        Type = s.serviceConfig.Type or null;
        CPUAffinity = s.serviceConfig.CPUAffinity or null;
        ExecStartPost = s.serviceConfig.ExecStartPost or null;
        DevicePolicy = s.serviceConfig.DevicePolicy or null;
        DeviceAllow = s.serviceConfig.DeviceAllow or null;
        InaccessiblePaths = s.serviceConfig.InaccessiblePaths or null;
        User = s.serviceConfig.User or null;
        inherit (s) environment;
        Group = s.serviceConfig.Group or null;
        inherit (s) postStart overrideStrategy;
      }) c.systemd.services;
      users = builtins.mapAttrs (_: u: { inherit (u) isSystemUser group extraGroups; }) c.users.users;
      groups = builtins.attrNames c.users.groups;
      tmpfiles = c.systemd.tmpfiles.rules;
      udev = c.services.udev.extraRules;
      etc = builtins.mapAttrs (_: e: baseNameOf e.source) c.environment.etc;
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
      virtiofsdGroup = c.microvm.virtiofsd.group;
      qemuPackage = name (
        if layout == "ghaf" then c.ghaf.virtualization.qemu.package else c.microvm.qemu.package
      );
      assertions = map (a: a.assertion) c.assertions;
      qemuVersion = c.microvm.qemu.package.version or "";
      qemuPatches = map toString (c.microvm.qemu.package.patches or [ ]);
      qemuPostPatch = c.microvm.qemu.package.postPatch or "";
      preStart = c.microvm.preStart;
      kernelParams = c.boot.kernelParams;
      kernelPackages = c.boot.kernelPackages.kernel.version;
      etc = builtins.mapAttrs (_: e: baseNameOf e.source) c.environment.etc;
      kernelPatches = map (p: {
        keys = builtins.attrNames p;
        inherit (p) name;
        config = p.structuredExtraConfig or { };
      }) c.boot.kernelPatches;
      # The GPU guest: NVIDIA's modules and userspace, by the names the
      # packages (stand-ins, stubs.nix and jetpack-nixos-standin.nix) carry.
      kernelModules = c.boot.kernelModules;
      extraModulePackages = map name c.boot.extraModulePackages;
      firmware = map name c.hardware.firmware;
      oot =
        let
          m = c.boot.kernelPackages.nvidia-oot-modules or null;
        in
        if m == null then
          null
        else
          {
            inherit (m) version postPatch;
            patches = map (x: baseNameOf (toString x)) m.patches;
          };
      graphics = {
        inherit (c.hardware.graphics) enable;
        packages = map (p: {
          inherit (p) name;
          postBuild = p.postBuild or "";
          paths = map (q: {
            inherit (q) name;
            patches = map (x: baseNameOf (toString x)) (q.patches or [ ]);
          }) (p.paths or [ ]);
        }) c.hardware.graphics.extraPackages;
      };
      variables = c.environment.variables;
      etcSources = builtins.mapAttrs (_: e: toString e.source) c.environment.etc;
      services = builtins.mapAttrs (_: s: {
        inherit (s) wantedBy after script;
        Type = s.serviceConfig.Type or null;
      }) c.systemd.services;
    }
)
