{
  description = "A Jetson Orin host with passthrough VMs, configured by a ghafgen profile";

  inputs = {
    # ghafgen, through the flake registry: run `nix registry add ghafgen <where
    # ghafgen is, e.g. a checkout's path>` once, or write that reference here.
    ghafgen.url = "flake:ghafgen";
    nixpkgs.follows = "ghafgen/nixpkgs";
    # In a Ghaf-based flake, build against your own Ghaf:
    #   ghaf.url = "github:tiiuae/ghaf";
    #   ghafgen.inputs.ghaf.follows = "ghaf";
  };

  outputs =
    {
      self,
      ghafgen,
      nixpkgs,
    }:
    let
      forAllSystems = nixpkgs.lib.genAttrs [
        "x86_64-linux"
        "aarch64-linux"
      ];
      ghafgenExe = system: nixpkgs.lib.getExe ghafgen.packages.${system}.ghafgen;
    in
    {
      apps = forAllSystems (system: {
        # `nix run .#generate`: profiles/*.toml -> nix/modules/<target>/.
        # Then `git add nix/modules`: a flake in git sees tracked files only.
        generate = {
          type = "app";
          program = toString (
            nixpkgs.legacyPackages.${system}.writeShellScript "ghafgen-generate" ''
              exec ${ghafgenExe system} generate profiles/*.toml -o nix/modules "$@"
            ''
          );
        };
        # `nix run . -- validate profiles/orin.toml`, `nix run . -- show ...`
        default = ghafgen.apps.${system}.default;
      });

      # One aarch64-linux system per generated target: the generated module,
      # microvm.nix's host module, the Orin kernel its tree needs, and host.nix.
      # Build one with `ghafgen build TARGET` or
      # `nix build .#nixosConfigurations.TARGET.config.system.build.toplevel`.
      nixosConfigurations = nixpkgs.lib.optionalAttrs (builtins.pathExists ./nix/modules) (
        ghafgen.lib.nixosConfigurations {
          dir = ./nix/modules;
          modules = [ ./host.nix ];
        }
      );

      # `nix flake check`: nix/modules is what the profiles generate.
      checks = forAllSystems (system: {
        generated-up-to-date = nixpkgs.legacyPackages.${system}.runCommand "generated-up-to-date" { } ''
          cd ${self}
          ${ghafgenExe system} generate --check profiles/*.toml -o nix/modules
          touch $out
        '';
      });
    };
}
