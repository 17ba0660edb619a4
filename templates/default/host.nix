# This machine's own NixOS configuration, added to the system of every
# generated target (flake.nix). ghafgen's reference defaults for these
# (its nix/lib.nix, referenceMachine) are only enough for a build; set what
# your board really has, and add users, SSH and the rest here.
{ ... }:
{
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  boot.loader.systemd-boot.enable = true;
  system.stateVersion = "26.05";
}
