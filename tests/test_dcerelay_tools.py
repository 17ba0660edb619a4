"""The DCE relay with real tools: the host overlay on Linux 6.12's AGX Orin tree
(fdtoverlay, pylibfdt, dt-validate), Ghaf's relay sources and patches against
linux-source-6.12 (arm64 cross builds), and Ghaf's QEMU DCE bridge against
the QEMU source the tests build.

Expected values come from Ghaf's files and the kernel tree, with file:line
(V = modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization of
the pinned Ghaf, D = V/common/dce-virt-common).
"""

from __future__ import annotations

from pathlib import Path

import libfdt
import pytest

from ghafgen import catalog
from ghafgen.render.dcerelay import dce_relay, relay_files
from ghafgen.render.files import render_target
from ghafgen.render.plan import TargetPlan
from ghafgen.render.write import contents_facts, host_facts
from tests import trees
from tests.conftest import ROOT, require
from tests.test_isolation import planned

CAT = catalog.load()

GPU_PROFILE = ROOT / "profiles" / "orin-agx-gpu-vm.toml"
AGX_612 = "tegra234-p3737-0000+p3701-0000"
# binding_departures.toml entries only the relay's host overlay needs.
RELAY_DEPARTURES = ("dce-host-proxy", "chosen-framebuffer-dummy")


@pytest.fixture(scope="module")
def gpu_plan() -> TargetPlan:
    return planned(GPU_PROFILE.read_text())


def _prop(fdt: libfdt.Fdt, path: str, name: str) -> str:
    return str(fdt.getprop(fdt.path_offset(path), name).as_str())


def test_host_overlay_applies_to_the_6_12_agx_tree(
    kernel_src_612: Path, gpu_plan: TargetPlan, tmp_path: Path
):
    """dtc -@ and fdtoverlay on the devkit tree of linux-source-6.12, read back
    with pylibfdt."""
    require("fdtoverlay")
    base = trees.build_board_dtb(kernel_src_612, AGX_612)
    before = libfdt.Fdt(base.read_bytes())
    # tegra234-p3737-0000+p3701-0000.dts:116-119: HDA is on on the devkit, and
    # :19 has /chosen; 6.12 has no proxy node of its own.
    assert _prop(before, "/bus@0/hda@3510000", "status") == "okay"
    assert before.path_offset("/dce_host_proxy", libfdt.QUIET_NOTFOUND) < 0
    files = relay_files(gpu_plan, dce_relay("disp-vm", CAT))
    dts = tmp_path / "relay.dts"
    dts.write_bytes(files["overlays/dce-relay-host.dts"])
    dtbo, out = tmp_path / "relay.dtbo", tmp_path / "host.dtb"
    trees.run(
        [require("dtc"), "-@", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(dts)]
    )
    trees.run(["fdtoverlay", "-i", str(base), "-o", str(out), "--", str(dtbo)])
    fdt = libfdt.Fdt(out.read_bytes())
    # D/dce-probe-host.nix:39-41
    assert _prop(fdt, "/dce_host_proxy", "compatible") == "nvidia,dce-host-proxy"
    assert _prop(fdt, "/dce_host_proxy", "status") == "okay"
    # V/passthrough/gpu-vm/gpu_passthrough_overlay.dts:294-296
    assert _prop(fdt, "/bus@0/hda@3510000", "status") == "disabled"
    # gpu_passthrough_overlay.dts:132-136
    assert _prop(fdt, "/chosen/framebuffer", "compatible") == "dummy"
    # Nothing else of the node changed: the controller is only switched off.
    assert _prop(fdt, "/bus@0/hda@3510000", "compatible") == "nvidia,tegra234-hda"
    # The label, for overlays applied after this one.
    assert fdt.get_alias("dce_host_proxy") is None
    symbols = fdt.path_offset("/__symbols__")
    assert fdt.getprop(symbols, "dce_host_proxy").as_str() == "/dce_host_proxy"


def _target_with_relay(plan: TargetPlan, outdir: Path) -> Path:
    """The GPU target as `generate` writes it (manifest included), plus the
    relay's files, as a target passing the display will have them."""
    from ghafgen.render.output import write_target

    files = render_target(plan) | relay_files(plan, dce_relay("disp-vm", CAT))
    write_target(
        outdir,
        plan.name,
        files,
        profile=GPU_PROFILE.name,
        profile_sha256="0" * 64,
        host=host_facts(plan),
        contents=contents_facts(plan),
    )
    return outdir / plan.name


@pytest.mark.slow
@pytest.mark.real_tools
def test_dt_validate_adds_nothing_but_the_relays_departures(
    kernel_src_612: Path, virt_dtb, gpu_plan: TargetPlan, tmp_path: Path
):
    """`check` over the target with the relay: the host tree with every overlay
    applied, dt-validate against 6.12's bindings; the relay's two nodes have no
    binding and are covered by its documented departures, nothing else is added."""
    from ghafgen.toolchain.realtools import CheckInputs, check_with_real_tools
    from tests.conftest import require_dtschema

    require_dtschema()
    require("fdtoverlay")
    target = _target_with_relay(gpu_plan, tmp_path)
    results = check_with_real_tools(tmp_path, CheckInputs(qemu_dtb=virt_dtb()), CAT)
    relay = [r for r in results if r.subject == "overlays/dce-relay-host.dts"]
    assert [(r.check, r.ok) for r in relay][:2] == [("dtc", True), ("overlay", True)]
    schema = [r for r in results if r.check == "schema"]
    assert schema and not [r.render() for r in schema if not r.ok or r.skipped]
    said = " ".join(r.message for r in relay if r.check == "schema")
    for departure in RELAY_DEPARTURES:
        assert departure in said, said
    assert (target / "dce-relay.nix").is_file()


# ------------------------------------------------------------ Linux 6.12

MAKE = ["make", "-j2", "ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"]
OOT = "drivers/platform/tegra/dce"
# The files Ghaf's two tegra-dce patches change, from their headers:
# D/patches/0001-dce-virt-hooks.patch:18-19, :86-87, :103-104, :190-191 and
# D/patches/0002-dce-client-ipc-inject.patch:19-20, :153-154.
PATCHED = {
    "0001-dce-virt-hooks.patch": [
        f"{OOT}/dce-ipc.c",
        f"{OOT}/dce-init-deinit.c",
        f"{OOT}/dce-module.c",
        f"{OOT}/include/dce-ipc.h",
    ],
    "0002-dce-client-ipc-inject.patch": [
        f"{OOT}/dce-client-ipc.c",
        "include/linux/platform/tegra/dce/dce-client-ipc.h",
    ],
}


def _prepared(factory: pytest.TempPathFactory, series: str) -> Path:
    """Debian's whole `series` tree, arm64 defconfig with OF_OVERLAY (the iso
    anchor applies an overlay at load), prepared for out-of-tree modules
    (about two minutes to unpack, two to prepare, on two cores)."""
    import subprocess
    import tarfile

    for tool in ("aarch64-linux-gnu-gcc", "make", "flex", "bison", "bc"):
        require(tool)
    tarball = trees.tarball(series)
    if not tarball.exists():
        pytest.skip(f"{tarball} missing (Debian linux-source-{series})")
    dest = factory.mktemp(f"linux-{series}-dce")
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    tree = dest / f"linux-source-{series}"
    for argv in (
        [*MAKE, "defconfig"],
        ["scripts/config", "--enable", "OF_OVERLAY"],
        [*MAKE, "olddefconfig"],
        [*MAKE, "modules_prepare"],
    ):
        subprocess.run(argv, cwd=tree, check=True, capture_output=True)
    return tree


@pytest.fixture(scope="module")
def linux_612_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's 6.12 tree, arm64 defconfig, prepared for out-of-tree modules."""
    return _prepared(tmp_path_factory, "6.12")


def _module_dir(tmp: Path, src: Path, obj: str) -> Path:
    """An out-of-tree module folder: Ghaf's source files and a one-line Kbuild."""
    import shutil

    folder = tmp / src.name
    shutil.copytree(src, folder)
    (folder / "Kbuild").write_text(f"obj-m := {obj}\n")
    return folder


DEMOTE_REMOVE = "KCFLAGS=-Wno-error=incompatible-pointer-types"


def _build(tree: Path, folder: Path, *extra: str):  # type: ignore[no-untyped-def]
    import subprocess

    # No Module.symvers: modpost's missing-symbol errors become warnings.
    argv = [*MAKE, "-C", str(tree), f"M={folder}", "KBUILD_MODPOST_WARN=1", *extra]
    return subprocess.run(
        [*argv, "modules"],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.usefixtures("ghaf_src")
@pytest.mark.parametrize("patch", sorted(PATCHED))
def test_ghafs_tegra_dce_patches_need_nvidias_tree_not_6_12(
    linux_612_prepared: Path, patch: str
):
    """The two patches change NVIDIA's out-of-tree tegra-dce driver, which no
    mainline tree has: on linux-source-6.12 every file they touch is missing,
    and that is the only reason they do not apply."""
    import subprocess

    tree = linux_612_prepared
    assert not (tree / "drivers/platform/tegra").exists()
    assert not (tree / "include/linux/platform").exists()
    s = CAT.dce_relay.sources
    path = trees_ghaf() / s.path(f"patches/{patch}")
    done = subprocess.run(
        [require("git"), "apply", "--check", "-v", str(path)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {f}: No such file or directory" for f in PATCHED[patch]]


def trees_ghaf() -> Path:
    from tests import pinned

    return pinned.tree("ghaf")


@pytest.mark.slow
@pytest.mark.usefixtures("ghaf_src")
@pytest.mark.parametrize(
    ("folder", "obj"),
    [("dce-host-proxy", "dce-host-proxy.o"), ("dce-guest-proxy", "dce-guest-proxy.o")],
)
def test_the_proxies_need_nvidias_dce_client_header(
    linux_612_prepared: Path, tmp_path: Path, folder: str, obj: str
):
    """Ghaf builds both proxies inside nvidia-oot (D/dce-probe-host.nix:90-94,
    V/passthrough/payload/guest-module.nix:149-151): built against plain 6.12
    for arm64, the first and only fatal error is NVIDIA's client header
    (dce-host-proxy.c:19, dce-guest-proxy.c:25)."""

    s = CAT.dce_relay.sources
    src = trees_ghaf() / s.dir / "sources/drivers/platform/tegra" / folder
    done = _build(linux_612_prepared, _module_dir(tmp_path, src, obj))
    assert done.returncode != 0
    fatal = [line for line in done.stderr.splitlines() if "fatal error:" in line]
    assert len(fatal) == 1, done.stderr[-3000:]
    assert fatal[0].endswith(
        "fatal error: linux/platform/tegra/dce/dce-client-ipc.h: "
        "No such file or directory"
    ), fatal


# NVIDIA's out-of-tree tree (linux-nv-oot), which neither ../shared/third_party
# nor Debian nor PyPI carries: a checkout named here, else the tests skip.
NVOOT_ENV = "GHAFGEN_NVOOT_SRC"
NVOOT_DCE = (OOT, "include/linux/platform/tegra/dce")


@pytest.fixture(scope="module")
def nvoot_dce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tegra-dce's driver and public headers from the linux-nv-oot checkout
    GHAFGEN_NVOOT_SRC names, with Ghaf's two tegra-dce patches applied, as Ghaf's
    build applies them to nvidia-oot (D/dce-probe-host.nix)."""
    import os
    import shutil
    import subprocess

    given = os.environ.get(NVOOT_ENV)
    if not given:
        pytest.skip(
            f"{NVOOT_ENV} names no linux-nv-oot checkout (NVIDIA's out-of-tree "
            "tree is in neither ../shared/third_party nor Debian nor PyPI)"
        )
    dest = tmp_path_factory.mktemp("nvoot")
    for sub in NVOOT_DCE:
        shutil.copytree(Path(given) / sub, dest / sub)
    s = CAT.dce_relay.sources
    for patch in sorted(PATCHED):
        done = subprocess.run(
            [
                require("git"),
                "apply",
                "-v",
                str(trees_ghaf() / s.path(f"patches/{patch}")),
            ],
            cwd=dest,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return dest


def _tegra_dce_imports(ko: Path) -> set[str]:
    """The tegra-dce symbols a built module leaves to be linked at load."""
    done = trees.run([require("aarch64-linux-gnu-nm"), "-u", str(ko)])
    return {
        line.split()[-1]
        for line in done.stdout.splitlines()
        if line.split()[-1].startswith("tegra_dce_")
    }


def _exported(dce: Path, symbol: str) -> bool:
    import re

    pattern = re.compile(rf"EXPORT_SYMBOL(_GPL)?\({symbol}\)")
    return any(pattern.search(f.read_text()) for f in (dce / OOT).glob("*.c"))


def _modinfo(ko: Path, folder: Path) -> list[bytes]:
    """A built module's .modinfo fields (alias=, license=, vermagic=, ...)."""
    info = folder / "modinfo"
    trees.run(
        [require("aarch64-linux-gnu-objcopy"), "-O", "binary",
         "--only-section=.modinfo", str(ko), str(info)]
    )  # fmt: skip
    return info.read_bytes().split(b"\0")


def _diagnostics(stderr: str, source: str) -> list[str]:
    """The compiler's errors and warnings about `source`, without the column."""
    import re

    out = []
    for line in stderr.splitlines():
        m = re.match(rf".*/{re.escape(source)}:(\d+):\d+: (error|warning): (.*)", line)
        if m:
            out.append(f"{source}:{m[1]}: {m[2]}: {m[3]}")
    return out


# dce-host-proxy keeps an int-returning `.remove` (dce-host-proxy.c:284, :608),
# which 6.12's platform_driver no longer takes (include/linux/platform_device.h
# :240, void): demoted from error to warning, as tests/test_isolation.py does
# for Ghaf's BPMP proxy. Ghaf builds it for the 6.6 host only.
REMOVE_WARNING = (
    "dce-host-proxy.c:608: warning: initialization of "
    "‘void (*)(struct platform_device *)’ from incompatible pointer type "
    "‘int (*)(struct platform_device *)’ [-Wincompatible-pointer-types]"
)


@pytest.mark.slow
@pytest.mark.usefixtures("ghaf_src")
@pytest.mark.parametrize(
    ("folder", "imports", "warnings"),
    [
        # Ghaf's 0001 exports the send hook, its 0002 the inject and event calls.
        (
            "dce-guest-proxy",
            {
                "tegra_dce_client_ipc_inject",
                "tegra_dce_ipc_send_redirect",
                "tegra_dce_virt_event_start",
                "tegra_dce_virt_event_stop",
            },
            [],
        ),
        # tegra-dce's own client API (dce-client-ipc.c).
        (
            "dce-host-proxy",
            {
                "tegra_dce_client_ipc_send_recv",
                "tegra_dce_register_ipc_client",
                "tegra_dce_unregister_ipc_client",
            },
            [REMOVE_WARNING],
        ),
    ],
)
def test_the_proxies_build_for_arm64_on_6_12_with_nvidias_patched_tree(
    nvoot_dce: Path,
    linux_612_prepared: Path,
    tmp_path: Path,
    folder: str,
    imports: set[str],
    warnings: list[str],
):
    """With tegra-dce's public header as Ghaf's patches leave it, each proxy
    builds for arm64 against 6.12 with no diagnostic of its own but the host
    proxy's `.remove` (above), matches its node's compatible, and every
    tegra-dce symbol it links at load is one the patched driver exports."""
    s = CAT.dce_relay.sources
    src = trees_ghaf() / s.dir / "sources/drivers/platform/tegra" / folder
    module = _module_dir(tmp_path, src, f"{folder}.o")
    kbuild = module / "Kbuild"
    kbuild.write_text(kbuild.read_text() + f"ccflags-y += -I{nvoot_dce / 'include'}\n")
    done = _build(linux_612_prepared, module, DEMOTE_REMOVE)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _diagnostics(done.stderr, f"{folder}.c") == warnings
    ko = module / f"{folder}.ko"
    got = _tegra_dce_imports(ko)
    assert got == imports
    for symbol in got:
        assert _exported(nvoot_dce, symbol), symbol
    fields = _modinfo(ko, tmp_path)
    assert f"alias=of:N*T*Cnvidia,{folder}".encode() in fields
    assert any(f.startswith(b"vermagic=6.12") for f in fields)


@pytest.mark.slow
@pytest.mark.usefixtures("ghaf_src")
def test_the_iso_anchor_builds_for_arm64_on_6_12(
    linux_612_prepared: Path, tmp_path: Path
):
    """dce-iso-anchor uses mainline interfaces only: its overlay compiled with
    dtc -@ and embedded with xxd -i as Ghaf's host build does
    (D/dce-probe-host.nix:96-101), the module builds against 6.12 for arm64
    with no diagnostic of its own, and matches the compatible its overlay adds
    (dce-iso-anchor.c:102, dce-iso-anchor.dts:13)."""

    s = CAT.dce_relay.sources
    src = trees_ghaf() / s.path(s.iso_anchor)
    folder = _module_dir(tmp_path, src, "dce-iso-anchor.o")
    dtbo = tmp_path / "dce-iso-anchor.dtbo"
    trees.run([require("dtc"), "-@", "-I", "dts", "-O", "dtb", "-o", str(dtbo),
               str(folder / "dce-iso-anchor.dts")])  # fmt: skip
    header = trees.run(
        [require("xxd"), "-i", "-n", "dce_iso_anchor_dtbo", dtbo.name], cwd=tmp_path
    ).stdout
    (folder / "dce-iso-anchor-dtbo.h").write_text(header)
    done = _build(linux_612_prepared, folder)
    assert done.returncode == 0, done.stderr[-3000:]
    own = [
        line
        for line in done.stderr.splitlines()
        if "dce-iso-anchor.c" in line and ("warning:" in line or "error:" in line)
    ]
    assert own == []
    ko = folder / "dce-iso-anchor.ko"
    fields = _modinfo(ko, tmp_path)
    assert b"alias=of:N*T*Cnvidia,dce-iso-anchor" in fields
    assert b"license=GPL" in fields
    assert any(f.startswith(b"vermagic=6.12") for f in fields)


# ------------------------------------------------------------------- QEMU

# The files Ghaf's ghaf-qemu-bpmp 0001 and 0002 patch.
QEMU_FILES = (
    "hw/arm/Kconfig",
    "hw/arm/virt.c",
    "hw/misc/Kconfig",
    "hw/misc/meson.build",
    "include/hw/arm/virt.h",
    "hw/core/sysbus-fdt.c",
)


@pytest.fixture
def qemu_10_0_files(tmp_path: Path) -> Path:
    """Those files of Debian's QEMU 10.0.2 source (scripts/fetch-qemu-source.sh),
    copied into a fresh folder to patch."""
    import shutil

    from ghafgen.toolchain import basetrees
    from tests import pinned

    tarball = pinned.need(pinned.qemu_tarball)
    into = basetrees.unpacked(
        tarball, "qemu-dce-files", lambda n: n.partition("/")[2] in QEMU_FILES
    )
    src = next(into.iterdir())
    shutil.copytree(src, tmp_path / "qemu")
    return tmp_path / "qemu"


@pytest.mark.usefixtures("ghaf_src")
def test_ghafs_bridge_patches_fail_on_10_0_only_where_10_1_differs(
    qemu_10_0_files: Path,
):
    """Ghaf's 0001 (BPMP bridge) and then 0002 (DCE bridge), as its package
    applies them (ghaf-qemu-bpmp/package.nix:80-81), on QEMU 10.0.2: the pinned
    10.1.5 source is not here. Every hunk applies but the same two of
    hw/arm/virt.c in each, whose context holds lines 10.1 added (the CXL
    includes, VIRT_ACPI_PCIHP in the memory map)."""
    import subprocess

    tree = qemu_10_0_files
    package = trees_ghaf() / CAT.qemu_build.package_dir
    virt = (tree / "hw/arm/virt.c").read_text()
    assert '#include "hw/cxl/cxl.h"' not in virt
    assert "[VIRT_ACPI_PCIHP]" not in virt
    for patch in CAT.qemu_build.bridge_patches:
        done = subprocess.run(
            [
                require("patch"),
                "-p1",
                "--forward",
                "--batch",
                "-i",
                str(package / patch),
            ],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        failed = [line for line in done.stdout.splitlines() if " FAILED at " in line]
        assert [line.split(" at ")[0] for line in failed] == [
            "Hunk #1 FAILED",
            "Hunk #2 FAILED",
        ], done.stdout
        assert "saving rejects to file hw/arm/virt.c.rej" in done.stdout
        rejects = (tree / "hw/arm/virt.c.rej").read_text()
        assert ' #include "hw/cxl/cxl.h"' in rejects
        assert (
            "     [VIRT_ACPI_PCIHP] =         { 0x090c0000, ACPI_PCIHP_SIZE },"
            in rejects
        )
        (tree / "hw/arm/virt.c.rej").unlink()
    # What 0002 adds elsewhere is in: the Kconfig select, the build rule, the
    # machine's device index (0002-nvidia-dce-guest-hooks.patch:13, :101, :111).
    assert "    select NVIDIA_DCE_GUEST" in (tree / "hw/arm/Kconfig").read_text()
    assert "files('nvidia_dce_guest.c')" in (tree / "hw/misc/meson.build").read_text()
    assert "    VIRT_NVIDIA_DCE_GUEST," in (tree / "include/hw/arm/virt.h").read_text()
    assert "    create_nvidia_dce_guest(vms);" in (tree / "hw/arm/virt.c").read_text()


@pytest.mark.usefixtures("ghaf_src")
def test_ghafs_dce_bridge_compiles_with_qemus_own_flags(
    qemu_build: Path, tmp_path: Path
):
    """Ghaf's DCE bridge device (copied in by its package's postPatch,
    ghaf-qemu-bpmp/package.nix:94-95), compiled with the command QEMU 10.0.2's
    build uses for hw/misc/unimp.c, defines the constructor 0002's virt.c calls
    (0002-nvidia-dce-guest-hooks.patch: `dev = nvidia_dce_guest_create(base);`)."""
    import json
    import shlex
    import subprocess

    package = trees_ghaf() / CAT.qemu_build.package_dir
    commands = json.loads((qemu_build / "compile_commands.json").read_text())
    (unimp,) = [c for c in commands if c["file"].endswith("hw/misc/unimp.c")]
    words = shlex.split(unimp["command"])
    argv = [words[0], "-I", str(package / "sources/include")]
    skip = False
    for w in words[1:]:
        if skip:
            skip = False
        elif w in ("-o", "-MQ", "-MF"):
            skip = True
        elif w != "-MD" and not w.endswith("hw/misc/unimp.c"):
            argv.append(w)
    obj = tmp_path / "dce.o"
    source = package / CAT.dce_relay.qemu.source_file
    argv += ["-o", str(obj), str(source)]
    done = subprocess.run(
        argv, cwd=qemu_build, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    own = [
        line
        for line in done.stderr.splitlines()
        if "nvidia_dce_guest" in line and ("warning:" in line or "error:" in line)
    ]
    assert own == []
    symbols = trees.run([require("nm"), "--defined-only", str(obj)]).stdout.split()
    assert symbols[symbols.index("nvidia_dce_guest_create") - 1] == "T"
    patch = (package / CAT.dce_relay.qemu.patch).read_text()
    assert "+    dev = nvidia_dce_guest_create(base);" in patch.splitlines()


# ------------------------------------------------ parity with Ghaf's host


def _ghaf_host_tree(kernel: Path, base: Path, tmp: Path) -> libfdt.Fdt:
    """6.12's AGX tree with Ghaf's own host overlays applied: the GPU/display
    passthrough overlay (cpp over 6.12's dt-bindings, with the split pair's
    -DGHAF_INCLUDE_DISPVM_RAM, V/passthrough/gpu-vm/default.nix:129) and the
    proxy overlay text of D/dce-probe-host.nix:31-45, read from the pinned file."""
    import re

    ghaf = trees_ghaf()
    v = "modules/reference/hardware/jetpack/nvidia-jetson-orin/virtualization"
    gpu_dts = tmp / "ghaf-gpu.dts"
    trees.run(
        [require("cpp"), "-nostdinc", "-undef", "-D__DTS__", "-x",
         "assembler-with-cpp", "-I", str(kernel / "include"),
         "-DGHAF_INCLUDE_DISPVM_RAM", "-o", str(gpu_dts),
         str(ghaf / v / "passthrough/gpu-vm/gpu_passthrough_overlay.dts")]
    )  # fmt: skip
    nix = (ghaf / v / "common/dce-virt-common/dce-probe-host.nix").read_text()
    text = re.search(r"writeText \"dce_host_overlay.dts\" ''\n(.*?)\n  '';", nix, re.S)
    assert text is not None
    proxy_dts = tmp / "ghaf-proxy.dts"
    proxy_dts.write_text(text.group(1) + "\n")
    dtbos = []
    for dts in (gpu_dts, proxy_dts):
        dtbo = dts.with_suffix(".dtbo")
        trees.run([require("dtc"), "-@", "-I", "dts", "-O", "dtb", "-o", str(dtbo),
                   str(dts)])  # fmt: skip
        dtbos.append(str(dtbo))
    out = tmp / "ghaf-host.dtb"
    trees.run([require("fdtoverlay"), "-i", str(base), "-o", str(out), "--", *dtbos])
    return libfdt.Fdt(out.read_bytes())


def _props(fdt: libfdt.Fdt, path: str) -> dict[str, bytes]:
    node = fdt.path_offset(path)
    out = {}
    offset = fdt.first_property_offset(node, libfdt.QUIET_NOTFOUND)
    while offset >= 0:
        prop = fdt.get_property_by_offset(offset)
        out[prop.name] = bytes(prop)
        offset = fdt.next_property_offset(offset, libfdt.QUIET_NOTFOUND)
    return out


def _cells(fdt: libfdt.Fdt, path: str, name: str) -> list[int]:
    raw = bytes(fdt.getprop(fdt.path_offset(path), name))
    return [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), 4)]


def test_the_relays_host_nodes_are_ghafs(
    kernel_src_612: Path, gpu_plan: TargetPlan, tmp_path: Path
):
    """Ghaf's own host overlays and ghafgen's, each applied to 6.12's AGX
    tree: the nodes the relay writes, the GPU node's memory clients and the
    display's carve-out and keyhole nodes come out the same."""

    base = trees.build_board_dtb(kernel_src_612, AGX_612)
    ghaf = _ghaf_host_tree(kernel_src_612, base, tmp_path)
    dts = tmp_path / "relay.dts"
    dts.write_bytes(
        relay_files(gpu_plan, dce_relay("disp-vm", CAT))["overlays/dce-relay-host.dts"]
    )
    dtbo, out = tmp_path / "relay.dtbo", tmp_path / "relay.dtb"
    trees.run(
        [require("dtc"), "-@", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(dts)]
    )
    trees.run(["fdtoverlay", "-i", str(base), "-o", str(out), "--", str(dtbo)])
    ours = libfdt.Fdt(out.read_bytes())
    for path in ("/bus@0/hda@3510000", "/chosen/framebuffer"):
        assert _props(ours, path) == _props(ghaf, path), path
    # fdtoverlay gives Ghaf's labelled node a phandle of its own numbering.
    mine = {k: v for k, v in _props(ours, "/dce_host_proxy").items() if k != "phandle"}
    theirs = {
        k: v for k, v in _props(ghaf, "/dce_host_proxy").items() if k != "phandle"
    }
    assert mine == theirs
    # ghafgen's own host overlays of the split pair on the same tree: the GPU
    # node's memory clients and every display carve-out and keyhole node are
    # Ghaf's, property by property.
    theirs_ours = (ghaf, _target_host_tree(base, tmp_path))
    gpu = "/bus@0/gpu@17000000"
    for name in ("interconnects", "interconnect-names"):
        got = [bytes(t.getprop(t.path_offset(gpu), name)) for t in theirs_ours]
        assert got[0] == got[1], name
    for path in (
        "/reserved-memory/scanout@b0000000",
        "/reserved-memory/dispram_lo@b8000000",
        "/reserved-memory/dispram_hi@200000000",
        "/scanout_p@b0000000",
        "/dispram_lo_p@b8000000",
        "/dispram_hi_p@200000000",
        "/disp_caps_pt@13830000",
        "/disp_chan_pt@13870000",
        "/disp_cursor_pt@138c8000",
    ):
        theirs, ours = (
            {k: v for k, v in _props(t, path).items() if k != "phandle"}
            for t in theirs_ours
        )
        assert ours == theirs, path


def _target_host_tree(base: Path, tmp: Path) -> libfdt.Fdt:
    """6.12's AGX tree with the split reference target's GPU and display host
    overlays (committed; test_golden holds them to the generator)."""
    folder = ROOT / "nix/modules/nvidia-jetson-orin-agx-gpu-vm/overlays"
    dtbos = []
    for name in ("gpu-passthrough", "display-passthrough"):
        dtbo = tmp / f"{name}.dtbo"
        trees.run([require("dtc"), "-@", "-I", "dts", "-O", "dtb", "-o", str(dtbo),
                   str(folder / f"{name}.dts")])  # fmt: skip
        dtbos.append(str(dtbo))
    out = tmp / "ghafgen-host.dtb"
    trees.run([require("fdtoverlay"), "-i", str(base), "-o", str(out), "--", *dtbos])
    return libfdt.Fdt(out.read_bytes())
