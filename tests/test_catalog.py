"""Catalog integrity: every reference resolves, IDs are consistent, facts have sources."""

from __future__ import annotations

import pytest

from ghafgen import catalog
from ghafgen.catalog.model import RESOURCE_KINDS
from ghafgen.derive.allowlist import ancestors
from ghafgen.errors import ProfileError

T234 = catalog.load().soc("t234")
GPU_GROUP = {"gpu", "host1x", "vic", "nvdec", "nvjpg"}


def test_boards_load():
    names = catalog.load().board_names()
    assert {n for n in names if "+" not in n} == {
        "jetson-agx-orin-devkit",
        "jetson-orin-nx-devkit",
    }
    assert {n.partition("+")[2] for n in names if "+" in n} == {
        "p3701-0000",
        "p3701-0004",
        "p3701-0005",
        "p3701-0008",
        "p3767-0000",
        "p3767-0001",
        "p3767-0003",
        "p3767-0004",
        "p3767-0005",
    }
    agx = catalog.load().board("jetson-agx-orin-devkit")
    assert set(agx.devices) == {
        "uarta",
        "uarti",
        "mgbe0",
        "i2c1",
        "display",
        *GPU_GROUP,
    }
    assert {k: s.controller.domain for k, s in agx.slots.items()} == {
        "pcie-m2e": 1,
        "pcie-nvme": 4,
        "pcie-x8": 5,
    }
    assert agx.slots["pcie-x8"].power_max_w == 40
    assert agx.slots["pcie-m2e"].max_lanes == 2
    with pytest.raises(ProfileError):
        catalog.load().board("no-such-board")


@pytest.mark.parametrize(
    ("name", "cores", "ram_gib", "compatible"),
    [
        ("jetson-agx-orin-devkit", 12, 64, "nvidia,p3737-0000+p3701-0000"),
        ("jetson-agx-orin-devkit+p3701-0000", 12, 32, "nvidia,p3737-0000+p3701-0000"),
        ("jetson-agx-orin-devkit+p3701-0004", 8, 32, "nvidia,p3737-0000+p3701-0004"),
        ("jetson-agx-orin-devkit+p3701-0005", 12, 64, "nvidia,p3737-0000+p3701-0005"),
        ("jetson-agx-orin-devkit+p3701-0008", 12, 64, "nvidia,p3737-0000+p3701-0008"),
        ("jetson-orin-nx-devkit", 8, 16, "nvidia,p3768-0000+p3767-0000"),
        ("jetson-orin-nx-devkit+p3767-0001", 6, 8, "nvidia,p3768-0000+p3767-0001"),
        ("jetson-orin-nx-devkit+p3767-0003", 6, 8, "nvidia,p3768-0000+p3767-0003"),
        ("jetson-orin-nx-devkit+p3767-0004", 6, 4, "nvidia,p3768-0000+p3767-0004"),
        ("jetson-orin-nx-devkit+p3767-0005", 6, 8, "nvidia,p3768-0000+p3767-0005"),
    ],
)
def test_every_sku_has_its_own_facts_with_a_source(name, cores, ram_gib, compatible):
    b = catalog.load().board(name)
    assert (b.cpu_cores, b.ram_mib, b.dt_compatible) == (
        cores,
        ram_gib * 1024,
        compatible,
    )
    assert b.module is not None and b.module.fact.source
    assert b.fact.source


def test_an_sku_resolves_to_its_carrier():
    assert catalog.load().resolve("p3701-0008") == "jetson-agx-orin-devkit+p3701-0008"
    assert catalog.load().resolve("P3767-0005") == "jetson-orin-nx-devkit+p3767-0005"
    assert catalog.load().resolve("jetson-orin-nx-devkit") == "jetson-orin-nx-devkit"
    assert catalog.load().resolve("p9999-0000") is None


def test_device_resources_exist_in_every_flavour():
    for dev in T234.devices.values():
        for flavor in dev.flavors:
            for kind in RESOURCE_KINDS:
                for name in dev.resources(flavor, kind):
                    assert name in T234.table(kind), (dev.key, flavor, name)
        for name in dev.guest.guest_clocks:
            assert name in T234.clocks


def test_clock_tree_is_closed_and_acyclic():
    for clk in T234.clocks.values():
        for parent in clk.parents:
            assert parent in T234.clocks, (clk.name, parent)
        board = catalog.load().board("jetson-agx-orin-devkit")
        assert clk not in ancestors(board, clk.name)


def test_ids_are_unique_unless_flagged_uncertain():
    for kind in RESOURCE_KINDS:
        by_id: dict[int, list[str]] = {}
        for r in T234.table(kind).values():
            by_id.setdefault(r.id, []).append(r.name)
        for rid, names in by_id.items():
            if len(names) > 1:
                assert any(T234.table(kind)[n].fact.uncertain for n in names), (
                    kind,
                    rid,
                )


def test_every_fact_names_its_source():
    for kind in RESOURCE_KINDS:
        for r in T234.table(kind).values():
            assert r.fact.source, r.name
    for dev in T234.devices.values():
        assert dev.fact.source and dev.guest.fact.source, dev.key
    for ctl in T234.pcie.values():
        assert ctl.fact.source, ctl.key
    for name in catalog.load().board_names():
        b = catalog.load().board(name)
        assert b.fact.source
        for s in b.slots.values():
            assert s.fact.source, s.key


def test_mainline_facts_match_the_6_1_bindings():
    # Values typed from include/dt-bindings/*/tegra234-*.h in linux-source-6.1;
    # issue "real device trees" re-derives them from the built tree.
    assert T234.clocks["UARTA"].id == 155
    assert T234.resets["UARTA"].id == 100
    assert T234.power_domains["MGBEA"].id == 17
    assert [T234.clocks[c].id for c in T234.devices["mgbe0"].clocks] == [
        380,
        377,
        376,
        381,
        357,
        248,
        374,
        379,
        369,
        361,
        373,
        375,
    ]
    assert T234.devices["mgbe0"].iommu_sid == 0x06
    assert T234.devices["uarta"].interrupts == (112,)


def test_protected_clocks_are_the_host_proxys_roots_and_the_gbe_chain():
    protected = {c.id for c in T234.clocks.values() if c.protected}
    # bpmp-host-proxy.c protected_clk_roots[] in Ghaf's bpmp-virt sources, and
    # the GBE PLL chain Ghaf's mgbe0 module allows for MGBE0's 'tx' (319 PLLGBE,
    # 320 PLLGBE_HPS, 366 MGBES_APP, 367/368 the GBE UPHY PLL2; clk.h names one
    # of each for the four MGBEs, the host keeps MGBE1-3). Of the display's
    # clocks: 40 FUSE, which linux 6.12's tegra234.dtsi gives the host's
    # fuse@3810000, and 471 PLLHUB, "EMC PLLHUB output" in tegra234-clock.h.
    assert protected == {14, 102, 103, 292, 91, 288, 327} | {
        319,
        320,
        366,
        367,
        368,
    } | {40, 471}


def test_resource_kinds_reject_an_unknown_kind() -> None:
    board = catalog.load().board("jetson-agx-orin-devkit")
    with pytest.raises(ValueError):
        board.soc.table("clk")
