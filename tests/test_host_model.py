"""The host is the unit of checking (issue 25, items 1-7; issue 29's double claim).

Each profile of these hosts is valid alone; given together they run on one
machine, and the rules that keep VMs apart run on all of them at once
(ghafgen/rules/hostview.py). The host cases live in tests/bad-profiles/<case>/
and test_bad_profiles.py checks each one's rule and line; here each numbered
item of the issue is reproduced and shown refused, with what the finding says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.cli.pipeline import generate
from ghafgen.findings import Finding, Severity
from ghafgen.profile.parse import load
from ghafgen.rules.engine import validate
from ghafgen.rules.hostview import files_of, first_claims, host_view
from tests.conftest import ROOT, require
from tests.trees import Tree, run

BAD = ROOT / "tests" / "bad-profiles"

# From Linux 6.12's include/dt-bindings (Debian linux-source-6.12), written
# here by hand, never computed by ghafgen:
#   clock/tegra234-clock.h   TEGRA234_CLK_UARTA               155
#   reset/tegra234-reset.h   TEGRA234_RESET_UARTA             100
#   reset/tegra234-reset.h   TEGRA234_RESET_MGBE0_PCS/MAC/MACSEC  45 46 47
#   power/tegra234-powergate.h  TEGRA234_POWER_DOMAIN_MGBEB   18 (the domain
#     the 6.12 tree's ethernet@6800000, MGBE0, names)
CLK_UARTA = 155
RESET_UARTA = 100
RESETS_MGBE0 = {45, 46, 47}
PD_MGBE0 = 18


def host(case: str) -> list[Path]:
    return sorted((BAD / case).glob("*.toml"))


def errors(paths: list[Path]) -> list[Finding]:
    return [
        f
        for f in validate(paths, catalog.load()).findings
        if f.severity is Severity.ERROR
    ]


def each_valid_alone(paths: list[Path]) -> None:
    for path in paths:
        assert validate([path], catalog.load()).exit_code == 0, path


def test_item1_bpmp_devices_of_two_profiles_are_refused_naming_both(tmp_path: Path):
    a, b = host("bpmp-devices-in-two-profiles")
    each_valid_alone([a, b])
    found = errors([a, b])
    assert [f.rule_id for f in found] == ["GG309"]
    f = found[0]
    assert (f.src.file, f.src.line) == (str(b), 10)  # b's [passthroughs.mgbe0]
    assert str(a) in f.message and "'uarta'" in f.message and "'mgbe0'" in f.message
    assert str(a) in f.hint and str(b) in f.hint and "bpmp_per_vm" in f.hint
    # Nothing is generated for that host.
    result = generate([a, b], tmp_path / "out", catalog.load())
    assert result.report.exit_code == 1 and not result.outcomes
    assert not (tmp_path / "out").exists()


def test_item1_one_profile_with_both_vms_and_enforcement_validates(tmp_path: Path):
    """The fix the hint names: both VMs in one profile, each its own proxy node."""
    one = tmp_path / "one.toml"
    one.write_text(
        '[target]\nname = "ab"\nboard = "jetson-agx-orin-devkit"\nhost = "h1"\n'
        "[hardware.nvidia.virtualization]\nenable = true\nbpmp_per_vm = true\n"
        '[hardware.nvidia.passthroughs.uarta]\nvm = "uart-vm"\n'
        '[hardware.nvidia.passthroughs.mgbe0]\nvm = "net-vm"\n'
        '[vms.uart-vm]\nvcpus = 1\nmemory = "1G"\n'
        '[vms.net-vm]\nvcpus = 2\nmemory = "1G"\n'
    )
    report = validate([one], catalog.load())
    assert report.exit_code == 0, [f.render() for f in report.findings]


@pytest.mark.real_tools
def test_item1_why_two_proxy_overlays_cannot_share_a_host(
    orin_dtb_612: Path, tmp_path: Path
):
    """Each profile generated alone, both targets' proxy overlays applied to the
    6.12 tree with fdtoverlay: the node keeps one list per property, so the
    UART guest's own IDs are gone and MGBE0's resets and domain are what remain.
    This is what GG309 refuses."""
    require("fdtoverlay")
    a, b = host("bpmp-devices-in-two-profiles")
    dtbos = []
    for path, target in ((a, "a"), (b, "b")):
        result = generate([path], tmp_path / f"out-{target}", catalog.load())
        assert result.report.exit_code == 0
        dts = tmp_path / f"out-{target}" / target / "overlays" / "bpmp-host-proxy.dts"
        dtbo = tmp_path / f"{target}.dtbo"
        run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(dts)])
        dtbos.append(str(dtbo))
    out = tmp_path / "host.dtb"
    run(["fdtoverlay", "-i", str(orin_dtb_612), "-o", str(out), *dtbos])
    tree = Tree(out)
    node = "/bpmp_host_proxy"
    clocks = set(tree.cells(node, "allowed-clocks"))
    resets = set(tree.cells(node, "allowed-resets"))
    domains = set(tree.cells(node, "allowed-power-domains"))
    assert CLK_UARTA not in clocks and RESET_UARTA not in resets
    assert resets >= RESETS_MGBE0 and PD_MGBE0 in domains
    # Alone, A's overlay does allow the UART's own clock and reset.
    alone = tmp_path / "a.dtb"
    run(["fdtoverlay", "-i", str(orin_dtb_612), "-o", str(alone), dtbos[0]])
    assert CLK_UARTA in set(Tree(alone).cells(node, "allowed-clocks"))
    assert RESET_UARTA in set(Tree(alone).cells(node, "allowed-resets"))


def test_item2_pci_functions_of_one_card_in_two_profiles():
    a, b = host("pcie-functions-split-across-profiles")
    each_valid_alone([a, b])
    found = errors([a, b])
    assert [(f.rule_id, f.src.file, f.src.line) for f in found] == [
        ("GG201", str(b), 10)
    ]
    assert "'0005:01:00'" in found[0].message and str(a) in found[0].message


def test_item2_uarta_and_uarti_in_two_profiles():
    a, b = host("uarta-uarti-split-across-profiles")
    each_valid_alone([a, b])
    found = errors([a, b])
    assert [(f.rule_id, f.src.file, f.src.line) for f in found] == [
        ("GG205", str(b), 10)
    ]
    assert "'uarta'" in found[0].message and "'uarti'" in found[0].message


def test_item3_two_vms_that_are_one_ghaf_vm(tmp_path: Path):
    a, b = host("ghaf-name-across-profiles")
    each_valid_alone([a, b])
    found = errors([a, b])
    assert [(f.rule_id, f.src.file, f.src.line) for f in found] == [
        ("GG107", str(b), 7)
    ]
    assert "'net-vm'" in found[0].message and "'netvm'" in found[0].message
    result = generate([a, b], tmp_path / "out", catalog.load(), layout="ghaf")
    assert result.report.exit_code == 1 and not result.outcomes


def test_item3_in_one_profile_too(tmp_path: Path):
    a, b = host("ghaf-name-across-profiles")
    one = tmp_path / "one.toml"
    one.write_text(a.read_text() + b.read_text().split("\n\n", 1)[1])
    assert [f.rule_id for f in errors([one])] == ["GG107"]


def test_item4_pinning_onto_another_profiles_isolated_core():
    a, b = host("pin-on-other-profiles-isolated-core")
    each_valid_alone([a, b])
    found = errors([a, b])
    assert [(f.rule_id, f.src.file, f.src.line) for f in found] == [
        ("GG507", str(b), 10)
    ]
    # The real-time VM and where it is pinned, in the other file.
    assert "'rt-vm'" in found[0].message and f"{a}:11" in found[0].message


def test_ram_counts_the_gpu_carveouts_of_another_profile():
    """GG505 sums the host's VMs; GG804 adds the GPU's carve-outs, whichever
    profile passes the GPU: 31G + 31G + 2G reserve fit 64G, the 768M do not."""
    a, b = host("gpu-carveouts-across-profiles")
    each_valid_alone([a, b])
    found = errors([a, b])
    assert [(f.rule_id, f.src.file, f.src.line) for f in found] == [
        ("GG804", str(a), 23)
    ]


def test_volumes_of_two_profiles_share_one_host_disk(tmp_path: Path):
    """Each profile's volumes fit the 64G nvme; together (40G + 30G) they do not."""
    a, b = host("volumes-across-profiles")
    each_valid_alone([a, b])
    found = errors([a, b])
    assert [(f.rule_id, f.src.file, f.src.line) for f in found] == [
        ("GG604", str(b), 15)
    ]
    assert "70G across 2 profiles" in found[0].message and f"{a}:7" in found[0].message
    # A disk only the other profile declares is not this profile's to use.
    c = tmp_path / "c.toml"
    c.write_text(
        '[target]\nname = "c"\nboard = "jetson-agx-orin-devkit"\nhost = "h1"\n'
        '[vms.log-vm]\nvcpus = 1\nmemory = "1G"\n'
        '[vms.log-vm.volumes.logs]\nsize = "1G"\nmount = "/logs"\ndisk = "nvme"\n'
    )
    found = errors([a, c])
    assert [(f.rule_id, f.src.file) for f in found] == [("GG604", str(c))]
    assert f"only at {a}:7" in found[0].message


def test_item5_a_vm_named_by_hand_is_refused_and_cannot_hide_gg307(tmp_path: Path):
    path = BAD / "vm-named-by-hand.toml"
    assert [f.rule_id for f in errors([path])] == ["GG106"]
    # The same profile with the VM renamed: the hand-started MGBE0 and the
    # UART VM share /dev/bpmp-host, which GG307 reports for each of them.
    renamed = tmp_path / "renamed.toml"
    renamed.write_text(path.read_text().replace("by-hand", "uart-vm"))
    assert [f.rule_id for f in errors([renamed])] == ["GG307", "GG307"]


def test_item6_allow_all_with_per_vm_enforcement_is_an_error():
    path = BAD / "bpmp-allow-all-per-vm.toml"
    report = validate([path], catalog.load())
    assert report.exit_code == 1
    assert [f.rule_id for f in errors([path])] == ["GG310"]
    assert "'uart-vm', 'net-vm'" in errors([path])[0].message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("path", "/var/lib/microvms/../../../dev"),
        ("path", "/srv/./x"),
        ("path", "/.."),
        ("mount", "/mnt/../etc"),
        ("mount", "/data/."),
    ],
)
def test_item7_dot_components_in_disk_paths_and_mounts(
    key: str, value: str, tmp_path: Path
):
    text = (
        '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\n'
        '[disks.data]\nsize = "8G"\npath = "/srv/volumes"\n'
        '[vms.a]\nvcpus = 1\nmemory = "1G"\n'
        '[vms.a.volumes.v]\nsize = "1G"\nmount = "/data"\ndisk = "data"\n'
    )
    good = tmp_path / "good.toml"
    good.write_text(text)
    assert validate([good], catalog.load()).exit_code == 0
    line = {"path": 6, "mount": 12}[key]
    old = {"path": 'path = "/srv/volumes"', "mount": 'mount = "/data"'}[key]
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, f'{key} = "{value}"'))
    found = errors([bad])
    assert [(f.rule_id, f.src.line) for f in found] == [("GG007", line)]
    assert "'..'" in found[0].hint


@pytest.mark.parametrize("value", ["/srv/..x", "/srv/.hidden", "/a/b.c", "/..."])
def test_item7_names_with_dots_are_still_paths(value: str, tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text(
        '[target]\nname = "t"\nboard = "jetson-agx-orin-devkit"\n'
        f'[disks.data]\nsize = "8G"\npath = "{value}"\n'
        '[vms.a]\nvcpus = 1\nmemory = "1G"\n'
        '[vms.a.volumes.v]\nsize = "1G"\nmount = "/data"\ndisk = "data"\n'
    )
    assert validate([path], catalog.load()).exit_code == 0


def test_issue29_a_device_given_twice_is_one_finding():
    """GG101 alone: no GG205 about the device's 'two owners', no GG307 saying a
    VM could reach 'nothing more' and asking for bpmp_per_vm."""
    path = BAD / "device-owned-twice.toml"
    found = errors([path])
    assert [(f.rule_id, f.src.line) for f in found] == [("GG101", 10)]
    assert not [
        f for f in validate([path], catalog.load()).findings if f.rule_id == "GG307"
    ]


def test_issue29_the_same_across_two_profiles():
    a, b = host("device-in-two-profiles")
    assert [(f.rule_id, f.src.file) for f in errors([a, b])] == [("GG101", str(b))]


def test_a_profile_alone_is_its_own_host():
    path = BAD / "two-bpmp-vms-shared-proxy.toml"
    result = load(path)
    assert result.profile is not None
    p = result.profile
    assert host_view([(p, catalog.load().board(p.target.board))]) is p
    assert first_claims(p) is p
    assert files_of(p) == [str(path)]


def test_the_host_view_points_into_each_file():
    a, b = host("pin-on-other-profiles-isolated-core")
    pa, pb = load(a).profile, load(b).profile
    assert pa is not None and pb is not None
    board = catalog.load().board(pa.target.board)
    view = host_view([(pa, board), (pb, board)])
    assert files_of(view) == [str(a), str(b)]
    assert set(view.vms) == {"rt-vm", "busy-vm"}
    assert view.vms["busy-vm"].at("pinning").file == str(b)
    # isolated_cores is set in a only: the host's key points there.
    assert view.target.isolated_cores == (10, 11)
    assert view.target.at("isolated_cores") == pa.target.at("isolated_cores")
