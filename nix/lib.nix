# SPDX-FileCopyrightText: ghafgen contributors
# SPDX-License-Identifier: Apache-2.0
#
# The flake's `lib`: NixOS modules and host configurations for the targets
# `ghafgen generate` wrote into a folder. flake.nix uses it for nix/modules,
# the template for the user's own folder. A target's manifest records what
# its host needs (ghafgen/render/write.py host_facts): the kernel series and the
# device-tree flavour, which pick the host kernel, and jetpack-nixos's SoM and
# carrier board.
{
  lib,
  nixosSystem,
  microvm,
  jetpack-nixos,
  overlay,
}:
rec {
  # Target name -> folder, for every folder under `dir` with a ghafgen manifest.
  targets =
    dir:
    lib.mapAttrs (name: _: dir + "/${name}") (
      lib.filterAttrs (
        name: type: type == "directory" && builtins.pathExists (dir + "/${name}/ghafgen-manifest.json")
      ) (builtins.readDir dir)
    );

  # What a generated target needs beside it in any NixOS system: microvm.nix's
  # host module and ghafgen's overlay (Ghaf's sources, the platform QEMU).
  baseModule = {
    key = "ghafgen#base"; # imported by every target module; the key keeps it once
    imports = [ microvm.nixosModules.host ];
    nixpkgs.overlays = [ overlay ];
  };

  # The `host` record of a target's manifest.
  hostOf =
    folder:
    let
      manifest = builtins.fromJSON (builtins.readFile (folder + "/ghafgen-manifest.json"));
    in
    manifest.host or (throw "${toString folder}: the manifest has no host record; regenerate the target with this ghafgen");

  # The Orin host kernel: the series the target is generated for (its
  # manifest's kernel_series, the profile's target.kernel_version; the
  # generated assertions check it), booted by the tree's flavour. A mainline
  # tree gets nixpkgs' kernel of that series (mkDefault: a generated host.nix
  # that pins one wins). An L4T tree boots through jetpack-nixos (the BSP:
  # firmware, flashing) for the board's SoM, with the upstream 6.6 kernel as
  # Ghaf's AGX reference does (tiiuae/ghaf 9a37dc8:
  # modules/reference/hardware/jetpack/agx/orin-agx.nix kernelVersion
  # "upstream-6-6", passed on as hardware.nvidia-jetpack.kernel.version by
  # nvidia-jetson-orin/jetson-orin.nix). That option is in Ghaf's
  # jetpack-nixos, not in anduril's, whose Orin kernel is L4T 5.15; "upstream-6-6"
  # is the only value ghafgen knows Ghaf to use, so another series is an error.
  kernelModule =
    host:
    if host.dt_flavor == "l4t" then
      if host.kernel_series == "6.6" then
        {
          imports = [ jetpack-nixos.nixosModules.default ];
          hardware.nvidia-jetpack = {
            enable = true;
            inherit (host.jetpack) som carrierBoard;
            kernel.version = "upstream-6-6";
          };
        }
      else
        throw "ghafgen: an L4T-tree host boots through jetpack-nixos, whose upstream kernel ghafgen knows for Linux 6.6 only; the target is generated for ${host.kernel_series}"
    else
      { pkgs, ... }:
      {
        boot.kernelPackages = lib.mkDefault pkgs."linuxPackages_${
          builtins.replaceStrings [ "." ] [ "_" ] host.kernel_series
        }";
      };

  # One target as a NixOS module: the base, the generated module, its kernel.
  targetModule = folder: {
    key = "ghafgen#target:${toString folder}";
    imports = [
      baseModule
      folder
      (kernelModule (hostOf folder))
    ];
  };

  # Just enough for a toplevel to build. A machine's own configuration (file
  # systems, boot loader, users) replaces these defaults.
  referenceMachine =
    name: host:
    { lib, ... }:
    {
      nixpkgs.hostPlatform = lib.mkDefault "aarch64-linux";
      # NVIDIA's L4T kernel, firmware and tools are unfree.
      nixpkgs.config = lib.optionalAttrs (host.dt_flavor == "l4t") { allowUnfree = true; };
      networking.hostName = lib.mkDefault name;
      boot.loader.systemd-boot.enable = lib.mkDefault true;
      fileSystems."/" = lib.mkDefault {
        device = "/dev/disk/by-label/nixos";
        fsType = "ext4";
      };
      system.stateVersion = lib.mkDefault "26.05";
    };

  # A NixOS system for every target under `dir`; `modules` go into each.
  nixosConfigurations =
    {
      dir,
      modules ? [ ],
    }:
    lib.mapAttrs (
      name: folder:
      nixosSystem {
        modules = [
          (targetModule folder)
          (referenceMachine name (hostOf folder))
        ]
        ++ modules;
      }
    ) (targets dir);
}
