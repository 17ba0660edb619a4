# STAND-IN for jetpack-nixos's overlay (anduril/jetpack-nixos overlay.nix and
# pkgs/l4t/default.nix), tests only. The real overlay builds NVIDIA's L4T
# debs and kernel modules; evaluating a GPU guest needs only their names, so
# each package here is a trivial store-path-like derivation named as
# jetpack-nixos names it. Nothing is built, and nothing here says what the
# real packages contain. Applied over stubs.nix's `pkgs` as an overlay is.
{ fake, fakeVersioned }:
_final: _prev: {
  nvidia-jetpack = {
    # nvidia-jetpack6 (overlay.nix): nvidia-oot-modules is versioned by its
    # L4T release, 36.5.0.
    kernelPackagesOverlay = _kfinal: _kprev: {
      nvidia-oot-modules = fakeVersioned "nvidia-oot-modules" "36.5.0";
    };
    # pkgs/l4t/default.nix: the debs of the L4T BSP, by attribute name.
    l4t-3d-core = fake "l4t-3d-core";
    l4t-core = fake "l4t-core";
    l4t-cuda = fake "l4t-cuda";
    l4t-firmware = fake "l4t-firmware";
    l4t-gbm = fake "l4t-gbm";
    l4t-nvsci = fake "l4t-nvsci";
    l4t-tools = fake "l4t-tools";
    l4t-wayland = fake "l4t-wayland";
  };
}
