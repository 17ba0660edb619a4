"""The BPMP allow list: the passed devices' resources, their clock ancestors, nothing else."""

from __future__ import annotations

from ghafgen import catalog
from ghafgen.derive.allowlist import allow_list
from tests.conftest import AGX
from tests.facts import GHAF_MGBE0

BOARD = catalog.load().board("jetson-agx-orin-devkit")
V = "[hardware.nvidia.virtualization]\nenable = true\n"
VM = '\n[vms.a]\nvcpus = 1\nmemory = "1G"\n'

GHAF_MGBE0_CLOCKS = GHAF_MGBE0["clocks"]


def test_uarta_matches_bpmp_virt(parse):
    p = parse(AGX + V + '[hardware.nvidia.passthroughs.uarta]\nvm = "a"\n' + VM)
    a = allow_list(p, BOARD)
    # bpmp-virt README: allowed-clocks <UARTA PLLP_OUT0>, allowed-resets <UARTA>;
    # clk_prepare() walks on to PLLP_OUT0's roots CLK_M and OSC, as in Ghaf's
    # display list, never to PLLP (101, not a protected root).
    assert a.ids("clock") == [14, 91, 102, 155]
    assert 101 not in a.ids("clock")
    assert a.ids("reset") == [100]
    assert a.ids("power-domain") == []
    assert [x.protected for x in a.clocks] == [True, True, True, False]


def test_mgbe0_on_l4t_matches_ghaf(parse):
    p = parse(AGX + V + '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n' + VM)
    a = allow_list(p, BOARD)
    assert set(a.ids("clock")) == GHAF_MGBE0_CLOCKS
    assert a.ids("reset") == [45, 46, 47]
    assert a.ids("power-domain") == [18]


def test_mgbe0_on_mainline_uses_mainline_ids(parse):
    p = parse(
        AGX
        + 'dt_flavor = "mainline"\n'
        + V
        + '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n'
        + VM
    )
    a = allow_list(p, BOARD)
    assert set(a.ids("clock")) == GHAF_MGBE0_CLOCKS - {378}
    assert a.ids("reset") == [45, 46]
    assert a.ids("power-domain") == [17]


def test_no_sibling_or_host_critical_resource_is_ever_allowed(parse):
    for flavor in ("l4t", "mainline"):
        p = parse(
            AGX
            + f'dt_flavor = "{flavor}"\n'
            + V
            + '[hardware.nvidia.passthroughs.mgbe0]\nvm = "a"\n'
            + VM
        )
        a = allow_list(p, BOARD)
        for sib in BOARD.soc.siblings.values():
            assert not set(a.ids("clock")) & sib.clocks
            assert not set(a.ids("reset")) & sib.resets
            if flavor == "mainline":
                assert not set(a.ids("power-domain")) & sib.power_domains
        critical = {r.id for r in BOARD.soc.clocks.values() if r.host_critical}
        assert not set(a.ids("clock")) & critical


def test_extras_are_added_and_named(parse):
    p = parse(
        AGX
        + V
        + "extra_allowed_clocks = [319, 9999]\n"
        + '[hardware.nvidia.passthroughs.uarta]\nvm = "a"\n'
        + VM
    )
    a = allow_list(p, BOARD)
    extra = {x.id: x.name for x in a.clocks if x.why == "extra"}
    assert extra == {319: "PLLGBE", 9999: "#9999"}


def test_pcie_only_profile_has_empty_list(parse):
    p = parse(
        AGX + '[hardware.nvidia.passthroughs.pcie-m2e]\nvm = "a"\n'
        'functions = ["0001:01:00.0"]\n' + VM
    )
    assert allow_list(p, BOARD).empty
