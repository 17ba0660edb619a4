# SPDX-FileCopyrightText: 2026 ghafgen contributors
# SPDX-License-Identifier: Apache-2.0
{
  description = "ghafgen: checked Jetson Orin passthrough configuration for Ghaf and microvm.nix";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";
    microvm = {
      url = "github:astro/microvm.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    { self, nixpkgs, ... }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      modulesDir = ./nix/modules;
      targets =
        if builtins.pathExists modulesDir then
          nixpkgs.lib.filterAttrs (_: type: type == "directory") (builtins.readDir modulesDir)
        else
          { };
    in
    {
      packages = forAllSystems (pkgs: rec {
        ghafgen = pkgs.python3Packages.buildPythonApplication {
          pname = "ghafgen";
          version = "0.1.0";
          pyproject = true;
          src = ./.;
          build-system = [ pkgs.python3Packages.setuptools ];
          dependencies = with pkgs.python3Packages; [
            typer
            jinja2
          ];
        };
        default = ghafgen;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.system}.ghafgen}/bin/ghafgen";
        };
      });

      nixosModules = builtins.mapAttrs (name: _: import (modulesDir + "/${name}")) targets;
    };
}
