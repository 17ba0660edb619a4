"""Facts read from Ghaf that several tests check ghafgen against (tiiuae/ghaf 9a37dc8c)."""

from __future__ import annotations

# passthrough/mgbe0-net-vm/default.nix: the allow list Ghaf reads from the live
# L4T tree, plus the clock chains it found on hardware.
GHAF_MGBE0 = {
    "clocks": {
        357,
        361,
        369,
        373,
        374,
        375,
        376,
        377,
        378,
        379,
        380,
        381,
        248,
        319,
        320,
        366,
        367,
        368,
        103,
        292,
        91,
        14,
        288,
        327,
    },
    "resets": {45, 46, 47},
    "power-domains": {18},
}

# Reference profiles with a Ghaf counterpart (docs/ghaf-parity.md) or a Ghaf VM name.
GHAF_PROFILES = [
    "orin-agx-uarta-host",
    "orin-agx-uarti-net-vm",
    "orin-agx-mgbe0-net-vm",
    "orin-agx-wifi-net-vm",
    "orin-agx-gpu-gui-vm",
]

# The kernel command line each reference guest's generated module promises
# (boot.kernelParams), by guest (target/vm). Where each parameter comes from:
# - a guest with a BPMP-backed device: Ghaf's guests boot with both, or they
#   can power off clocks and domains the host still uses (tiiuae/ghaf
#   9a37dc8c, modules/reference/hardware/jetpack/nvidia-jetson-orin/
#   virtualization/passthrough/payload/guest-module.nix:158-159, and
#   passthrough/mgbe0-net-vm/default.nix:145-146);
# - a guest given PCI functions: MSIs of passed PCI devices do not reach an
#   aarch64 QEMU guest (same Ghaf, docs/src/content/docs/ghaf/dev/
#   technologies/nvidia_agx_pt_pcie.mdx:137, and its -append at :151);
# - the UARTI guest: its profile's own console=ttyAMA0
#   (profiles/orin-agx-uarti-net-vm.toml:19) and console=ttyS0, QEMU's PCI
#   serial card (8250 driver) on the VM's stdio, because the passed UART
#   takes the pl011 driver's names.
BPMP_GUEST_PARAMS = ("clk_ignore_unused", "pd_ignore_unused")
PCI_GUEST_PARAMS = ("pci=nomsi",)
# - the GPU guest, every role: Ghaf's guest module adds the NVIDIA DRM and
#   vblank parameters to the two (guest-module.nix:157-163).
GPU_GUEST_PARAMS = (*BPMP_GUEST_PARAMS, "nvidia-drm.modeset=1", "drm.vblankoffdelay=0")
GUEST_KERNEL_PARAMS = {
    "nvidia-jetson-orin-agx-gpu-gui-vm/gui-vm": PCI_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-gpu-vm/gpu-vm": GPU_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-gpu-vm/disp-vm": GPU_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-gpu-gui-accel/gui-vm": GPU_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-i2c/sensor-vm": BPMP_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-industrial-i2c-uarta/fieldbus-vm": BPMP_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-mgbe0-net-vm/net-vm": BPMP_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-partitions/net-vm": BPMP_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-partitions/gui-vm": PCI_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-partitions/rt-vm": (),
    "nvidia-jetson-orin-agx-uarta/uart-vm": BPMP_GUEST_PARAMS,
    "nvidia-jetson-orin-agx-uarti-net-vm/net-vm": ("console=ttyAMA0", "console=ttyS0"),
    "nvidia-jetson-orin-agx-wifi-net-vm/net-vm": PCI_GUEST_PARAMS,
    "nvidia-jetson-orin-nano-uarte-i2c/io-vm": BPMP_GUEST_PARAMS,
    "nvidia-jetson-orin-nx-8gb-uarts/uart-vm": BPMP_GUEST_PARAMS,
    "nvidia-jetson-orin-nx-uarte/uart-vm": BPMP_GUEST_PARAMS,
}
# Guests whose console is not QEMU's pl011 (microvm.qemu.serialConsole off):
# the UARTI guest, whose passed UART is ttyAMA0 (above).
NO_SERIAL_CONSOLE = frozenset({"nvidia-jetson-orin-agx-uarti-net-vm/net-vm"})
# What microvm.nix and NixOS add around boot.kernelParams (microvm.nix
# 71beea00): lib/runners/qemu.nix:229 gives -append "${kernelConsole}
# reboot=t panic=-1 ${kernelParams}", kernelConsole "console=ttyAMA0" on
# aarch64 with qemu.serialConsole (qemu.nix:147-153);
# nixos-modules/microvm/optimization.nix:35 adds "8250.nr_uarts=1"; NixOS's
# boot.consoleLogLevel (default 4) adds "loglevel=4".
MICROVM_CONSOLE = "console=ttyAMA0"
MICROVM_RUNNER_PARAMS = ("reboot=t", "panic=-1")
NIXOS_ADDED_PARAMS = ("loglevel=4", "8250.nr_uarts=1")
# nixos-modules/microvm/system.nix:42 adds "init=${toplevel}/init" to the
# kernel parameters; the test evaluation's toplevel is the stub store path
# tests/data/eval/runner-argv.nix:76 gives (busybox's /init runs instead).
MICROVM_INIT = "init=/nix/store/00000000000000000000000000000000-nixos-system/init"

# Where the variant's QEMU maps each GPU group member's first region in the
# guest, as Ghaf measured it with `info mtree -f` (tiiuae/ghaf 9a37dc8c,
# modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization/
# passthrough/gpu-vm/tegra234-gpuvm-base.dtsi, the platform bus's ranges).
GHAF_GPU_GUEST_ADDRESS = {
    "gpu": 0x64000000,  # :27, VFIO 17000000.gpu region 0
    "host1x": 0x66010000,  # :47, VFIO 13e00000.host1x_pt region 0
    "vic": 0x66040000,  # :51, VFIO 15340000.vic region 0
    "nvdec": 0x66100000,  # :52, VFIO 15480000.nvdec region 0
    "nvjpg": 0x66140000,  # :53, VFIO 15540000.nvjpg region 0
}
# Where the guest sees the display's nvdisplay window (same file, :37), and
# the reserved regions each GPU or display guest's tree sets up, by node name
# (passthrough/gpu-vm/tegra234-gpuvm-memory.dtsi:28-109, the scanout pool only
# with the display; passthrough/disp-vm/tegra234-dispvm-memory.dtsi:34-78).
GHAF_DISPLAY_GUEST_ADDRESS = 0x66200000
_GPU_RESERVED = {
    "linux,cma@88000000",
    "nvgpu_dma_carveout@80000000",
    "vpr-carveout@8e000000",
    "fsi-carveout@8f000000",
    "generic_carveout@98000000",
    "vidmem-carveout@90000000",
}
GHAF_GUEST_RESERVED = {
    "nvidia-jetson-orin-agx-gpu-vm/gpu-vm": _GPU_RESERVED,
    "nvidia-jetson-orin-agx-gpu-gui-accel/gui-vm": _GPU_RESERVED
    | {"dce_scanout@b0000000"},
    "nvidia-jetson-orin-agx-gpu-vm/disp-vm": {
        "linux,cma@e2000000",
        "generic_carveout@200000000",
        "vpr-carveout@218000000",
        "fsi-carveout@219000000",
        "dce_scanout@b0000000",
    },
}

# passthrough/payload/default.nix:101-114, guestKernelModules per capability
# set, in order: host1x's four, then the display's five (gui-vm has both, so
# Ghaf's list names nvmap twice).
GHAF_GUEST_MODULES = {
    "gpu": ["nvmap", "host1x", "nvhost", "nvgpu"],
    "display": [
        "nvmap",
        "tegra-dce",
        "dce-guest-proxy",
        "nvidia-modeset",
        "nvidia-drm",
    ],
    "gui": ["nvmap", "host1x", "nvhost", "nvgpu"]
    + ["nvmap", "tegra-dce", "dce-guest-proxy", "nvidia-modeset", "nvidia-drm"],
}
