# A flake whose derivations need no nixpkgs, so `ghafgen build` is tested with
# the real Nix offline. `broken` fails evaluation inside a generated-looking
# file so the error mapping can point back at the profile.
{
  outputs =
    { self }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      other = system: if system == "x86_64-linux" then "aarch64-linux" else "x86_64-linux";
      forAll = f: builtins.listToAttrs (map (s: { name = s; value = f s; }) systems);
      drv =
        system: name: script:
        builtins.derivation {
          inherit name system;
          builder = "/bin/sh";
          args = [
            "-c"
            script
          ];
        };
    in
    {
      packages = forAll (system: {
        # `stamp` is rewritten by the test, so each run really builds.
        hello = drv system "hello" "echo building hello ${builtins.readFile ./stamp}; echo hello > $out";
        foreign = drv (other system) "foreign" "echo never > $out";
        broken = drv system (import ./gen/demo/vms/demo-vm.nix) "true";
      });
    };
}
