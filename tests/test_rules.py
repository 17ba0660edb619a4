"""Every rule, both sides: a profile that trips it and a near one that does not."""

from __future__ import annotations

import re

import pytest

from ghafgen import catalog
from ghafgen.profile.parse import load_text
from ghafgen.rules import REGISTRY
from ghafgen.rules.engine import apply_rules
from tests.conftest import AGX, BAD, BAD_HOSTS

V = "[hardware.nvidia.virtualization]\nenable = true\n"
VM_A = '\n[vms.a]\nvcpus = 1\nmemory = "1G"\n'
VM_B = '\n[vms.b]\nvcpus = 1\nmemory = "1G"\n'


def gpu(power: int | str = 25, extra: str = "", slot: str = "pcie-x8") -> str:
    return (
        f'[hardware.nvidia.passthroughs.{slot}]\nvm = "a"\nkind = "gpu"\n'
        f'functions = ["0005:01:00.0", "0005:01:00.1"]\nmax_power_w = {power}\n{extra}'
    )


def uarta(vm: str = "a") -> str:
    return f'[hardware.nvidia.passthroughs.uarta]\nvm = "{vm}"\n'


GPU_GROUP = ("gpu", "host1x", "vic", "nvdec", "nvjpg")


def gpu_group(vm: str = "a", skip: str = "", other: str = "") -> str:
    """The integrated GPU group to `vm`, one member (`other`) to VM b, one skipped."""
    out = (
        '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\ndt_flavor = "l4t"\n'
        + V
    )
    for key in GPU_GROUP:
        if key != skip:
            out += f'[hardware.nvidia.passthroughs.{key}]\nvm = "{"b" if key == other else vm}"\n'
    return out


# rule -> (profile that trips it, profile just on the right side of it)
CASES: dict[str, tuple[str, str]] = {
    "GG101": (
        AGX
        + V
        + uarta()
        + '[hardware.nvidia.passthroughs.x]\ndevice = "uarta"\nvm = "a"\n'
        + VM_A,
        AGX + V + uarta() + VM_A,
    ),
    "GG102": (AGX + V + uarta() + VM_A + VM_B, AGX + V + uarta() + VM_A),
    "GG103": (AGX + V + uarta("b") + VM_A, AGX + V + uarta("a") + VM_A),
    "GG104": (
        AGX
        + gpu()
        + '[hardware.nvidia.passthroughs.g2]\ndevice = "pcie-nvme"\nvm = "b"\n'
        'kind = "gpu"\naudio_function = false\nfunctions = ["0004:01:00.0"]\n'
        + VM_A
        + VM_B,
        AGX
        + gpu()
        + '[hardware.nvidia.passthroughs.g2]\ndevice = "pcie-nvme"\nvm = "b"\n'
        'kind = "gpu"\naudio_function = false\ndisplay = false\nfunctions = ["0004:01:00.0"]\n'
        + VM_A
        + VM_B,
    ),
    "GG105": (
        AGX + V + "[hardware.nvidia.passthroughs.uarta]\n",
        AGX + V + uarta() + VM_A,
    ),
    "GG201": (
        AGX
        + '[hardware.nvidia.passthroughs.pcie-m2e]\nvm = "a"\nfunctions = ["0001:01:00.0"]\n'
        'iommu_group = ["0001:01:00.0", "0001:01:00.1"]\n' + VM_A,
        AGX + '[hardware.nvidia.passthroughs.pcie-m2e]\nvm = "a"\n'
        'functions = ["0001:01:00.0", "0001:01:00.1"]\n'
        'iommu_group = ["0001:01:00.0", "0001:01:00.1"]\n' + VM_A,
    ),
    "GG202": (
        AGX + gpu().replace(', "0005:01:00.1"', "") + VM_A,
        AGX + gpu().replace(', "0005:01:00.1"', "") + "audio_function = false\n" + VM_A,
    ),
    "GG203": (
        AGX + V + uarta() + 'functions = ["0001:01:00.0"]\n' + VM_A,
        AGX + V + uarta() + VM_A,
    ),
    "GG204": (AGX + gpu().replace("0005", "0004") + VM_A, AGX + gpu() + VM_A),
    "GG205": (
        AGX
        + V
        + uarta("a")
        + '[hardware.nvidia.passthroughs.uarti]\nvm = "b"\n'
        + VM_A
        + VM_B,
        AGX
        + V
        + uarta("a")
        + '[hardware.nvidia.passthroughs.uarti]\nvm = "a"\n'
        + VM_A,
    ),
    "GG301": (AGX + uarta() + VM_A, AGX + V + uarta() + VM_A),
    "GG302": (
        AGX + V + "bpmp_allow_all = true\n" + uarta() + VM_A,
        AGX + V + "bpmp_allow_all = false\n" + uarta() + VM_A,
    ),
    "GG303": (
        AGX + 'kernel_version = "6.5"\n' + V + uarta() + VM_A,
        AGX + 'kernel_version = "6.6"\n' + V + uarta() + VM_A,
    ),
    "GG304": (
        AGX + V + "extra_allowed_resets = [85]\n" + uarta() + VM_A,
        AGX + V + "extra_allowed_resets = [100]\n" + uarta() + VM_A,
    ),
    # MGBE0 -> a, UARTA -> b: one shared proxy device unless per-VM enforcement.
    "GG307": (
        AGX
        + V
        + '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n'
        + uarta("b")
        + VM_A
        + VM_B,
        AGX
        + V
        + "bpmp_per_vm = true\n"
        + '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n'
        + uarta("b")
        + VM_A
        + VM_B,
    ),
    # UARTA's clock 155 also given to a (an extra goes to every VM's node).
    "GG308": (
        AGX
        + V
        + "bpmp_per_vm = true\nextra_allowed_clocks = [155]\n"
        + '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n'
        + uarta("b")
        + VM_A
        + VM_B,
        AGX
        + V
        + "bpmp_per_vm = true\n"
        + '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n'
        + uarta("b")
        + VM_A
        + VM_B,
    ),
    "GG305": (
        # UARTI has no node in mainline 6.1's tree (6.6's and 6.12's have one).
        AGX
        + 'dt_flavor = "mainline"\nkernel_version = "6.1"\n'
        + V
        + '[hardware.nvidia.passthroughs.uarti]\nvm = "a"\n'
        + VM_A,
        AGX
        + 'dt_flavor = "l4t"\n'
        + V
        + '[hardware.nvidia.passthroughs.uarti]\nvm = "a"\n'
        + VM_A,
    ),
    "GG306": (AGX + V + VM_A.replace("[vms.a]", "[vms.z]"), AGX + V + uarta() + VM_A),
    "GG401": (AGX + gpu(41) + VM_A, AGX + gpu(25) + VM_A),
    "GG402": (AGX + gpu(31) + VM_A, AGX + gpu(30) + VM_A),
    "GG403": (
        AGX + '[hardware.nvidia.passthroughs.pcie-m2e]\nvm = "a"\nkind = "wifi"\n'
        'functions = ["0001:01:00.0"]\nlanes = 3\n' + VM_A,
        AGX + '[hardware.nvidia.passthroughs.pcie-m2e]\nvm = "a"\nkind = "wifi"\n'
        'functions = ["0001:01:00.0"]\nlanes = 2\n' + VM_A,
    ),
    "GG404": (
        AGX + 'rootfs = "nvme"\n[hardware.nvidia.passthroughs.pcie-nvme]\nvm = "a"\n'
        'kind = "nvme"\nfunctions = ["0004:01:00.0"]\n' + VM_A,
        AGX + 'rootfs = "emmc"\n[hardware.nvidia.passthroughs.pcie-nvme]\nvm = "a"\n'
        'kind = "nvme"\nfunctions = ["0004:01:00.0"]\n' + VM_A,
    ),
    "GG405": (
        AGX + gpu(25, 'bar_size = "1G"\n') + VM_A,
        AGX + gpu(25, 'bar_size = "512M"\n') + VM_A,
    ),
    "GG406": (
        AGX + gpu(25, 'bar_size = "6G"\n') + VM_A,
        AGX + gpu(25, 'bar_size = "8G"\n') + VM_A,
    ),
    "GG407": (
        AGX
        + gpu(extra="", slot="pcie-m2e")
        .replace("0005", "0001")
        .replace("max_power_w = 25\n", "")
        + VM_A,
        AGX + '[hardware.nvidia.passthroughs.pcie-m2e]\nvm = "a"\nkind = "wifi"\n'
        'functions = ["0001:01:00.0"]\n' + VM_A,
    ),
    "GG408": (
        AGX + '[hardware.nvidia.passthroughs.pcie-m2e]\nvm = "a"\nbinding = "ids"\n'
        'functions = ["0001:01:00.0"]\n' + VM_A,
        AGX + '[hardware.nvidia.passthroughs.pcie-m2e]\nvm = "a"\nbinding = "ids"\n'
        'ids = ["14e4:4433"]\nfunctions = ["0001:01:00.0"]\n' + VM_A,
    ),
    "GG501": (
        AGX + V + uarta() + VM_A.replace("vcpus = 1", "vcpus = 13"),
        AGX + V + uarta() + VM_A.replace("vcpus = 1", "vcpus = 12"),
    ),
    "GG502": (
        AGX + V + uarta() + VM_A + "pinning = [12]\n",
        AGX + V + uarta() + VM_A + "pinning = [11]\n",
    ),
    "GG503": (
        AGX + V + uarta() + VM_A + "pinning = [1, 2]\n",
        AGX + V + uarta() + VM_A + "pinning = [2]\n",
    ),
    "GG504": (
        AGX
        + V
        + uarta()
        + VM_A.replace("vcpus = 1", "vcpus = 12")
        + "pinning = [0,1,2,3,4,5,6,7,8,9,10,11]\n",
        AGX
        + V
        + uarta()
        + VM_A.replace("vcpus = 1", "vcpus = 11")
        + "pinning = [1,2,3,4,5,6,7,8,9,10,11]\n",
    ),
    "GG505": (
        AGX + V + uarta() + VM_A.replace('"1G"', '"63G"'),
        AGX + V + uarta() + VM_A.replace('"1G"', '"62G"'),
    ),
    "GG506": (
        AGX + V + uarta() + VM_A.replace('"1G"', '"128M"'),
        AGX + V + uarta() + VM_A.replace('"1G"', '"256M"'),
    ),
    "GG512": (
        AGX + V + uarta() + VM_A.replace('"1G"', '"1025M"') + "hugepages = true\n",
        AGX + V + uarta() + VM_A.replace('"1G"', '"1026M"') + "hugepages = true\n",
    ),
    "GG507": (
        AGX
        + "isolated_cores = [10]\n"
        + VM_A
        + "pinning = [10]\n"
        + VM_B
        + "pinning = [10]\n",
        AGX
        + "isolated_cores = [10]\n"
        + VM_A
        + "pinning = [10]\n"
        + VM_B
        + "pinning = [10]\n".replace("[10]", "[9]"),
    ),
    "GG508": (
        AGX + "host_cores = [0]\n" + VM_A + "pinning = [0]\n",
        AGX + "host_cores = [0]\n" + VM_A + "pinning = [1]\n",
    ),
    "GG509": (
        AGX + "isolated_cores = [9]\n" + VM_A + "pinning = [8]\nrt_priority = 10\n",
        AGX + "isolated_cores = [9]\n" + VM_A + "pinning = [9]\nrt_priority = 10\n",
    ),
    "GG510": (
        AGX + "isolated_cores = [9]\n" + VM_A + "pinning = [8]\n",
        AGX + "isolated_cores = [9]\n" + VM_A + "pinning = [9]\n",
    ),
    "GG511": (AGX + "host_cores = [12]\n", AGX + "host_cores = [11]\n"),
    "GG601": (
        AGX + '[channels.c]\nvms = ["a", "b"]\nsize = "2K"\n' + VM_A + VM_B,
        AGX + '[channels.c]\nvms = ["a", "b"]\nsize = "4K"\n' + VM_A + VM_B,
    ),
    "GG602": (
        AGX + '[channels.c]\nvms = ["a", "a"]\nsize = "4K"\n' + VM_A + VM_B,
        AGX + '[channels.c]\nvms = ["a", "b"]\nsize = "4K"\n' + VM_A + VM_B,
    ),
    "GG603": (
        AGX + VM_A + "vsock_cid = 7\n" + VM_B + "vsock_cid = 7\n",
        AGX + VM_A + "vsock_cid = 7\n" + VM_B + "vsock_cid = 8\n",
    ),
    "GG604": (
        AGX
        + '[disks.d]\nsize = "1G"\n'
        + VM_A
        + '[vms.a.volumes.v]\nsize = "2G"\nmount = "/v"\ndisk = "d"\n',
        AGX
        + '[disks.d]\nsize = "2G"\n'
        + VM_A
        + '[vms.a.volumes.v]\nsize = "2G"\nmount = "/v"\ndisk = "d"\n',
    ),
    "GG009": (
        AGX + V + uarta().replace("uarta", "uartb") + VM_A,
        AGX + V + uarta() + VM_A,
    ),
    "GG801": (gpu_group(other="nvjpg") + VM_A + VM_B, gpu_group() + VM_A + VM_B),
    "GG802": (gpu_group(skip="nvjpg") + VM_A, gpu_group() + VM_A),
    "GG803": (gpu_group() + uarta() + VM_A, gpu_group() + uarta("b") + VM_A + VM_B),
    "GG804": (
        gpu_group() + '\n[vms.a]\nvcpus = 1\nmemory = "62G"\n',
        gpu_group() + '\n[vms.a]\nvcpus = 1\nmemory = "61G"\n',
    ),
    "GG806": (
        gpu_group() + '\n[vms.a]\nvcpus = 1\nmemory = "1G"\nkernel = "6.6"\n',
        gpu_group() + '\n[vms.a]\nvcpus = 1\nmemory = "1G"\nkernel = "6.12"\n',
    ),
}


def rule_ids(text: str) -> set[str]:
    result = load_text(text, "p.toml")
    _board, found = apply_rules(result, catalog.load())
    return {f.rule_id for f in found}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_on_bad_side(rule_id: str):
    bad, _good = CASES[rule_id]
    assert rule_id in rule_ids(bad)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_quiet_on_good_side(rule_id: str):
    _bad, good = CASES[rule_id]
    assert rule_id not in rule_ids(good)


def test_every_rule_has_a_failing_case():
    covered = set(CASES)
    for path in [*BAD, *(f for host in BAD_HOSTS for f in host.glob("*.toml"))]:
        covered |= set(
            re.findall(r"GG\d{3}", path.read_bytes().split(b"\n", 1)[0].decode())
        )
    # tests/test_system.py; GG706: tests/test_host_isolation.py
    system_rules = {"GG701", "GG703", "GG704", "GG706"}
    # GG012 an unreadable file: tests/test_messages.py; GG013 a lock entry:
    # tests/test_hostile_prefetch.py
    file_rules = {"GG012", "GG013"}
    # GG805 checks the catalog's carve-outs: tests/test_gpu.py edits a copy.
    catalog_rules = {"GG805"}
    assert set(REGISTRY) - covered - system_rules - file_rules - catalog_rules == set()


def test_rule_ids_are_stable_and_unique():
    for rid, info in REGISTRY.items():
        assert re.fullmatch(r"GG\d{3}", rid)
        assert info.summary and info.fix and info.name
    names = [i.name for i in REGISTRY.values()]
    assert len(names) == len(set(names))
