"""Every generated module evaluates with nixpkgs' lib.evalModules.

nixpkgs' lib and microvm.nix (the revision Ghaf pins has `microvm.qemu.package`)
are the pinned trees of tests/pinned.py: a checkout the environment names, else
shared/third_party's tarballs; CI runs these tests. Host modules
are checked against NixOS option types declared in tests/data/eval, guests
against microvm.nix's own option declarations; a misspelled option fails.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.render.plan import plan
from ghafgen.rules.engine import validate
from tests import pinned
from tests.conftest import PROFILES, ROOT, require
from tests.facts import GHAF_PROFILES

EVAL = ROOT / "tests" / "data" / "eval" / "eval-module.nix"
MODULES = ROOT / "nix" / "modules"
# NixOS reads these keys of a boot.kernelPatches entry; any other is ignored silently.
PATCH_KEYS = {"name", "patch", "structuredExtraConfig", "extraConfig", "features"}

# The trees, found (or the test skipped with why) before eval_argv reads them.
pytestmark = pytest.mark.usefixtures("nixpkgs_lib", "microvm_src")


def eval_argv(
    module: Path, kind: str, layout: str = "default", host_series: str = "6.6"
) -> list[str]:
    return [
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        str(EVAL),
        "--argstr",
        "libPath",
        str(pinned.tree("nixpkgs.lib")),
        "--argstr",
        "microvmSrc",
        str(pinned.tree("microvm.nix")),
        "--arg",
        "module",
        str(module),
        "--argstr",
        "kind",
        kind,
        "--argstr",
        "layout",
        layout,
        # The host kernel the module asserts for: the target's series.
        "--argstr",
        "hostKernel",
        f"{host_series}.50",
    ]


def evaluate(
    module: Path, kind: str, layout: str = "default", host_series: str = "6.6"
) -> dict[str, object]:
    require("nix-instantiate")
    done = subprocess.run(
        eval_argv(module, kind, layout, host_series),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(json.loads(done.stdout))
    return result


def planned(path: Path, layout: str = "default"):  # type: ignore[no-untyped-def]
    report = validate([path], catalog.load())
    profile, board = report.usable[0]
    return plan(profile, board, path.name, layout)


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_host_module_evaluates_and_sets_what_was_planned(path: Path):
    p = planned(path)
    got = evaluate(
        MODULES / p.name / "default.nix", "host", host_series=p.kernel_version
    )
    # Modules merge in import order; the set is what the kernel gets.
    # The DCE relay's host module adds Ghaf's headless-host parameters
    # (dce-probe-host.nix; catalog/data/t234-display.toml [host.headless]).
    relay = p.relay.host.kernel_params if p.relay and not p.relay.ghaf_host else ()
    assert sorted(got["kernelParams"]) == sorted(
        p.host_params + p.partition_params + relay
    )
    assert got["assertions"] == [True] * len(got["assertions"])  # type: ignore[arg-type]
    patches = got["kernelPatches"]
    assert isinstance(patches, list)
    for entry in patches:
        assert set(entry["keys"]) <= PATCH_KEYS, entry
    config = patches[0]["config"]
    assert {k for k, _v in p.kernel_configs[0].symbols} == set(config)
    wanted = [o.nix_name for b in p.bindings if b.overlay for o in [b.overlay]]
    if p.proxy_overlay is not None:
        wanted.append(p.proxy_overlay.nix_name)
    if p.relay is not None and not p.relay.ghaf_host:
        wanted.append(p.relay.host.overlay.nix_name)
    assert sorted(got["overlays"]) == sorted(wanted)  # type: ignore[arg-type]
    services = got["services"]
    assert isinstance(services, dict)
    for b in p.bindings:
        unit = services[b.unit]
        assert unit["ExecStart"].endswith(" " + b.exec_args)
        assert unit["before"] == list(b.before) == unit["requiredBy"]
    assert got["vms"] == sorted(vm.name for vm in p.vms)
    # Where `ghafgen verify` looks for the target on the board.
    assert got["etc"] == {
        f"ghafgen/{p.name}/ghafgen-manifest.json": "ghafgen-manifest.json"
    }
    for cpu in p.cpus:
        assert services[cpu.unit]["CPUAffinity"] == (cpu.affinity_text or None)
    assert_device_access(p, services)
    assert_own_users(p, got)


def assert_own_users(p, got: dict) -> None:  # type: ignore[no-untyped-def, type-arg]
    """Each VM's QEMU runs as a user of its own (microvm.nix runs all as
    microvm:kvm, nixos-modules/host/default.nix), a system user whose group is
    its own; its state directory and booted link go to it too."""
    services, users = got["services"], got["users"]
    runs_as = {vm.name: services[f"microvm@{vm.name}"]["User"] for vm in p.vms}
    assert len(set(runs_as.values())) == len(runs_as), runs_as
    for vm, user in runs_as.items():
        assert user not in (None, "microvm", "root"), (vm, user)
        assert services[f"microvm@{vm}"]["Group"] == user
        assert users[user]["isSystemUser"] and users[user]["group"] == user
        assert user in got["groups"] and "kvm" not in users[user]["extraGroups"]
        booted = services[f"microvm-set-booted@{vm}"]
        assert (booted["User"], booted["overrideStrategy"]) == (user, "asDropin")
        # lib.escapeShellArg quotes only what needs it.
        script = services[f"install-microvm-{vm}"]["postStart"].replace("'", "")
        assert f"/bin/chown -hR {user}:{user} /var/lib/microvms/{vm}\n" in script
        assert f"/bin/chmod 0700 /var/lib/microvms/{vm}\n" in script
    # microvm.nix's pci-setup chowns a passed PCI function's group node to
    # microvm:kvm (nixos-modules/microvm/pci-devices.nix); it must come back.
    for vm in p.vms:
        if vm.pci_functions:
            unit = services[f"microvm-pci-devices@{vm.name}"]
            user = runs_as[vm.name]
            links = " ".join(f"/dev/ghafgen/vfio-{f}" for f in vm.pci_functions)
            assert unit["overrideStrategy"] == "asDropin"
            assert unit["ExecStartPost"][-1].endswith(
                f"/bin/chown {user}:{user} {links}"
            )


def assert_device_access(p, services: dict) -> None:  # type: ignore[no-untyped-def, type-arg]
    """Each microvm@ unit allows exactly its planned devices and none of another VM's."""
    shared = {"/dev/kvm rw", "/dev/vfio/vfio rw", "/dev/vhost-vsock rw"}
    for a in p.access:
        unit = services[f"microvm@{a.vm}"]
        assert unit["DevicePolicy"] == "closed"
        assert unit["DeviceAllow"] == [f"{d} rw" for d in a.devices]
        for b in p.access:
            if b.vm != a.vm:
                theirs = {f"{d} rw" for d in b.devices} - shared
                assert not theirs & set(unit["DeviceAllow"]), (a.vm, b.vm)
        assert unit["InaccessiblePaths"] == (
            [f"-{f}" for f in a.shm_denied] if a.shm_denied else None
        )


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_guest_modules_evaluate_against_microvm_options(path: Path):
    p = planned(path)
    for vm in p.vms:
        got = evaluate(MODULES / p.name / "vms" / f"{vm.name}.nix", "guest")
        assert (got["vcpu"], got["mem"], got["hypervisor"]) == (
            vm.vcpus,
            vm.mem_mib,
            "qemu",
        )
        assert got["extraArgs"] == list(vm.qemu_args)
        assert got["assertions"] == [True] * len(got["assertions"])  # type: ignore[arg-type]
        assert got["kernelParams"] == list(vm.kernel_params)
        # The GPU guest also points EGL at its platforms (test_gpu_guest_eval.py).
        egl = {"egl/egl_external_platform.d": "egl_external_platform.d"}
        assert got["etc"] == {
            f"ghafgen/{p.name}/ghafgen-manifest.json": "ghafgen-manifest.json"
        } | (egl if vm.gpu is not None else {})
        assert got["devices"] == [{"bus": "pci", "path": f} for f in vm.pci_functions]
        if vm.custom_qemu:
            # A VM given a platform device runs the pinned QEMU, still with vfio-platform.
            version = tuple(int(x) for x in str(got["qemuVersion"]).split("."))
            assert version < (10, 2), got["qemuVersion"]
            patches = " ".join(got["qemuPatches"])  # type: ignore[arg-type]
            assert ("0001-nvidia-bpmp-guest-hooks.patch" in patches) == vm.bpmp
            assert "0006-vfio-platform-rearm-automasked-lines.patch" in patches
            if vm.fdt_bindings is not None:
                assert vm.fdt_bindings.file.split("/")[-1] in patches
        if vm.guest_tree is not None:
            assert "dumpdtb=ghafgen-base.dtb" in str(got["preStart"])
            assert "fdtoverlay -i ghafgen-base.dtb -o ghafgen-guest.dtb" in str(
                got["preStart"]
            )
            # guest-tree.nix names the bridge's /bpmp only for a VM with a bridge.
            assert ("/__symbols__" in str(got["preStart"])) == vm.bpmp
            drops = vm.gpu is not None and bool(vm.gpu.memory_node)
            assert ("fdtput -r ghafgen-base.dtb" in str(got["preStart"])) == drops
        if vm.guest_kernel:
            assert str(got["kernelPackages"]).startswith(vm.guest_kernel + ".")
        for entry in got["kernelPatches"]:  # type: ignore[union-attr]
            assert set(entry["keys"]) <= PATCH_KEYS, entry


def test_a_misspelled_option_fails(tmp_path: Path):
    bad = tmp_path / "bad.nix"
    bad.write_text("{ ... }: { microvm.vcpus = 2; }\n")
    done = subprocess.run(
        eval_argv(bad, "guest"), capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "microvm.vcpus' does not exist" in done.stderr


@pytest.mark.parametrize("name", GHAF_PROFILES)
def test_ghaf_layout_evaluates_with_ghaf_option_stubs(name: str, tmp_path: Path):
    from ghafgen.cli.pipeline import generate

    path = ROOT / "profiles" / f"{name}.toml"
    generate([path], tmp_path, catalog.load(), layout="ghaf")
    p = planned(path, "ghaf")
    host = evaluate(tmp_path / p.name / "default.nix", "host", "ghaf")
    assert host["vms"] == []
    assert host["ghafVms"] == {vm.ghaf_key: 1 for vm in p.vms}
    assert host["sysvms"] == {
        vm.ghaf_key: {"mem": vm.mem_mib, "vcpu": vm.vcpus} for vm in p.vms
    }
    for vm in p.vms:
        got = evaluate(tmp_path / p.name / "vms" / f"{vm.name}.nix", "guest", "ghaf")
        assert got["extraArgs"] == list(vm.qemu_args)
        if vm.bpmp:
            assert got["qemuPackage"] == "ghaf-qemu-bpmp"


def test_per_vm_bpmp_evaluates_with_own_devices_and_patches(tmp_path: Path):
    """The two-VM profile with per-VM enforcement: each unit its own devices, each
    VM's QEMU its own proxy device, the host the proxy patch after the drivers."""
    from tests.test_isolation import ENFORCED

    profile_path = tmp_path / "two.toml"
    profile_path.write_text(ENFORCED)
    from ghafgen.cli.pipeline import generate

    generate([profile_path], tmp_path / "out", catalog.load())
    p = planned(profile_path)
    host = evaluate(tmp_path / "out" / p.name / "default.nix", "host")
    services = host["services"]
    assert isinstance(services, dict)
    assert_device_access(p, services)
    assert_own_users(p, host)
    # Each VM's QEMU its own user, and each VM's device nodes that user's alone.
    assert services["microvm@net-vm"]["User"] == "microvm-net-vm"
    assert services["microvm@uart-vm"]["User"] == "microvm-uart-vm"
    udev = str(host["udev"])
    assert (
        'KERNEL=="bpmp-host-net-vm", OWNER:="microvm-net-vm", '
        'GROUP:="microvm-net-vm", MODE:="0600"'
    ) in udev
    assert (
        'SYMLINK+="ghafgen/vfio-3100000.serial", OWNER:="microvm-uart-vm", '
        'GROUP:="microvm-uart-vm", MODE:="0600"'
    ) in udev
    assert services["microvm@net-vm"]["DeviceAllow"] == [
        "/dev/kvm rw",
        "/dev/vfio/vfio rw",
        "/dev/ghafgen/vfio-6800000.ethernet rw",
        "/dev/bpmp-host-net-vm rw",
    ]
    names = [e["name"] for e in host["kernelPatches"]]  # type: ignore[union-attr, index]
    assert names.index("bpmp-host-proxy-per-vm") > names.index(
        "bpmp-virt-proxy-drivers"
    )
    assert 'SYMLINK+="ghafgen/vfio-3100000.serial"' in str(host["udev"])
    for vm in p.vms:
        got = evaluate(tmp_path / "out" / p.name / "vms" / f"{vm.name}.nix", "guest")
        assert got["extraArgs"] == list(vm.qemu_args)
        assert (
            f"nvidia_bpmp_guest.host-device=/dev/bpmp-host-{vm.name}"
            in got["extraArgs"]
        )
        # virtiofsd's sockets for this VM's QEMU user, not microvm.nix's kvm.
        assert got["virtiofsdGroup"] == f"microvm-{vm.name}"
        post = str(got["qemuPostPatch"])
        # The bridge patch runs after Ghaf's source is copied in.
        assert post.index("qemu-bpmp-guest-host-device.patch") > post.index(
            "nvidia_bpmp_guest.c hw/misc/"
        )


def test_microvm_nix_s_runner_builds_each_guest_s_command(
    nixpkgs_lib: Path, microvm_src: Path
):
    """microvm.nix's own QEMU runner (lib/runners/qemu.nix, with its guest
    modules' defaults) evaluates for every generated VM module, and its command
    runs the module's QEMU with the module's shape and extraArgs in order (the
    guest boot test runs these commands)."""
    from tests.guestboot import options, reference_guests, runner_commands

    require("nix-instantiate")
    guests = reference_guests()
    commands = runner_commands(guests, nixpkgs_lib, microvm_src)
    assert sorted(commands) == sorted(g.id for g in guests)
    for g in guests:
        opts = options(commands[g.id])
        given = dict(o for o in opts[1:] if len(o) == 2 and o[0] in ("-m", "-smp"))
        assert given == {"-m": f"{g.vm.mem_mib}M", "-smp": str(g.vm.vcpus)}, g.id
        flat = [w for o in opts[1:] for w in o]
        extra = list(g.vm.qemu_args)
        if extra:  # the runner puts microvm.qemu.extraArgs last
            assert flat[-len(extra) :] == extra, (g.id, extra, flat[-12:])
