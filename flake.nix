# SPDX-FileCopyrightText: ghafgen contributors
# SPDX-License-Identifier: Apache-2.0
{
  description = "ghafgen: checked Jetson Orin passthrough configuration for Ghaf and microvm.nix";

  # Pinned in flake.lock to the revisions Ghaf pins (tiiuae/ghaf flake.lock),
  # so generated modules are evaluated against what Ghaf builds with.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    microvm = {
      url = "github:microvm-nix/microvm.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      microvm,
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # Every generated target in nix/modules is a NixOS module of this flake.
      targets = nixpkgs.lib.filterAttrs (_: type: type == "directory") (
        builtins.readDir ./nix/modules
      );
      pythonDeps =
        ps: with ps; [
          typer
          jinja2
          libfdt
        ];
      testDeps =
        ps: with ps; [
          pytest
          hypothesis
          jsonschema
        ];
    in
    {
      packages = forAllSystems (pkgs: rec {
        ghafgen = pkgs.python3Packages.buildPythonApplication {
          pname = "ghafgen";
          version = "0.1.0";
          pyproject = true;
          src = ./.;
          build-system = [ pkgs.python3Packages.setuptools ];
          dependencies = pythonDeps pkgs.python3Packages;
          # The test suite runs as checks.<system>.tests, with the real tools.
          doCheck = false;
        };
        default = ghafgen;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.ghafgen}/bin/ghafgen";
        };
      });

      nixosModules = builtins.mapAttrs (name: _: import (./nix/modules + "/${name}")) targets // {
        # microvm.nix's host module, which the generated host modules expect beside them.
        microvm-host = microvm.nixosModules.host;
      };

      checks = forAllSystems (
        pkgs:
        let
          ghafgen = self.packages.${pkgs.stdenv.hostPlatform.system}.ghafgen;
          python = pkgs.python3.withPackages (ps: pythonDeps ps ++ testDeps ps);
        in
        {
          # nix/modules is exactly what the profiles generate.
          generated-up-to-date = pkgs.runCommand "ghafgen-generate-check" { } ''
            cd ${./.}
            ${ghafgen}/bin/ghafgen generate --check profiles/*.toml -o nix/modules
            touch $out
          '';
          # The test suite; tools missing from the sandbox (QEMU's tree, the
          # Linux sources) make their tests skip, CI runs them for real.
          tests =
            pkgs.runCommand "ghafgen-tests"
              {
                nativeBuildInputs = [
                  python
                  pkgs.dtc
                  pkgs.git
                ];
              }
              ''
                cp -r ${./.} src && chmod -R u+w src && cd src
                HOME=$TMPDIR python -m pytest -q -p no:cacheprovider tests
                touch $out
              '';
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages (ps: pythonDeps ps ++ testDeps ps))
            pkgs.ruff
            pkgs.mypy
            pkgs.dtc
            pkgs.qemu
            pkgs.git
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
