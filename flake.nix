# SPDX-FileCopyrightText: ghafgen contributors
# SPDX-License-Identifier: Apache-2.0
{
  description = "ghafgen: checked Jetson Orin passthrough configuration for Ghaf and microvm.nix";

  # nixpkgs, microvm.nix and jetpack-nixos are pinned in flake.lock to the
  # revisions Ghaf pins (tiiuae/ghaf 9a37dc8 flake.lock), so generated modules
  # are evaluated against what Ghaf builds with.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    microvm = {
      url = "github:microvm-nix/microvm.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    # The Orin BSP (firmware, flashing, the upstream 6.6 kernel option) for
    # hosts booting an L4T tree: the fork and branch Ghaf's flake.nix takes,
    # since anduril's has no 6.6 kernel for Orin. Locked as Ghaf locks it.
    jetpack-nixos = {
      url = "github:tiiuae/jetpack-nixos/august-rebase";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    # Ghaf's tree: the BPMP virtualization series and QEMU patches generated
    # modules build from. Locked to the revision of the catalog's pin
    # (ghafgen/catalog/data/sources.toml); a Ghaf user sets
    # `inputs.ghafgen.inputs.ghaf.follows = "ghaf"`.
    ghaf = {
      url = "github:tiiuae/ghaf";
      flake = false;
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      microvm,
      jetpack-nixos,
      ghaf,
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      deps = import ./nix/python-deps.nix;
      pythonWith = pkgs: names: pkgs.python3.withPackages (ps: map (name: ps.${name}) names);
      # Every test dependency: pyproject's runtime and test Python packages and
      # the tools the tests run. Nix itself is only in the dev shell: inside a
      # build sandbox it has no store to use, so the checks' Nix tests skip.
      testTools = pkgs: [
        (pythonWith pkgs (deps.runtime ++ deps.test))
        pkgs.dtc # dtc, fdtoverlay
        pkgs.git
        pkgs.graphviz # dot
        pkgs.librsvg # rsvg-convert
        pkgs.util-linux # taskset
        pkgs.qemu # qemu-system-aarch64
      ];
    in
    {
      lib = import ./nix/lib.nix {
        inherit lib microvm jetpack-nixos;
        inherit (nixpkgs.lib) nixosSystem;
        overlay = self.overlays.default;
      };

      overlays.default = final: prev: {
        ghafgen = final.callPackage ./nix/package.nix { };
        # The QEMU VMs given platform devices run (Ghaf's 10.1.5 with its BPMP
        # bridge patches), with the values the runtime catalog pins: what a
        # generated qemu.nix builds for a BPMP VM, less a target's own patches.
        ghafgen-qemu-platform =
          let
            pin = (builtins.fromTOML (builtins.readFile ./ghafgen/catalog/data/runtime.toml)).qemu.platform;
          in
          final.callPackage ./ghafgen/render/static/qemu-platform.nix {
            ghafSrc = final.ghafgenSources.ghaf;
            inherit (pin) version url hash;
            packageDir = pin.package_dir;
            bridgePatches = pin.bridge_patches;
            irqfdPatches = pin.irqfd_patches;
            droppedBasePatches = pin.dropped_base_patches;
          };
        # The one place that picks this flake's `ghaf` input over the pin in a
        # generated bpmp-virt.nix (catalog or ghafgen.lock): a system built
        # with this overlay uses the input, one without it fetches the pin.
        ghafgenSources = (prev.ghafgenSources or { }) // {
          inherit ghaf;
        };
      };

      packages = forAllSystems (pkgs: {
        ghafgen = pkgs.callPackage ./nix/package.nix { };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.ghafgen;
        # `nix build .#qemu-platform`: the QEMU platform VMs run, for a look.
        qemu-platform = (pkgs.extend self.overlays.default).ghafgen-qemu-platform;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.ghafgen;
        };
      });

      # default: what any system importing a generated target needs beside it;
      # one module per reference target: that, the target and its host kernel.
      nixosModules = builtins.mapAttrs (_: self.lib.targetModule) (self.lib.targets ./nix/modules) // {
        default = self.lib.baseModule;
        microvm-host = microvm.nixosModules.host;
      };

      # A complete aarch64-linux host per reference target, which
      # `ghafgen build TARGET` builds.
      nixosConfigurations = self.lib.nixosConfigurations { dir = ./nix/modules; };

      templates.default = {
        path = ./templates/default;
        description = "An Orin host flake: a ghafgen profile, `nix run .#generate`, a NixOS system per target";
        welcomeText = ''
          Edit profiles/orin.toml and host.nix, then `nix run .#generate`,
          `git add nix/modules` and build: see README.md.
        '';
      };

      checks = forAllSystems (
        pkgs:
        let
          ghafgen = self.packages.${pkgs.stdenv.hostPlatform.system}.ghafgen;
        in
        {
          inherit ghafgen;
          # nix/modules is exactly what the profiles generate.
          generated-up-to-date = pkgs.runCommand "ghafgen-generate-check" { } ''
            cd ${./.}
            ${lib.getExe ghafgen} generate --check profiles/*.toml -o nix/modules
            touch $out
          '';
          # The test suite with the Python test dependencies. The sandbox has
          # no network and none of the set-up scripts/test.sh does (Debian's
          # Linux and QEMU sources, the guest kernel, the pinned Ghaf,
          # microvm.nix and nixpkgs lib of ../shared/third_party), so the tests
          # that need those skip here. CI runs `bash scripts/test.sh` with
          # CI=true instead, where such a skip fails unless tests/ci_skips.py
          # lists it.
          tests = pkgs.runCommand "ghafgen-tests" { nativeBuildInputs = testTools pkgs; } ''
            cp -r ${./.} src && chmod -R u+w src && cd src
            HOME=$TMPDIR python -m pytest -q -p no:cacheprovider tests
            touch $out
          '';
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell { packages = testTools pkgs ++ [ pkgs.nix ]; };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
