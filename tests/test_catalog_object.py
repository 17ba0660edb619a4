"""The catalog is one object handed down the pipeline: a catalog with one fact
changed, built in this process, changes the generated files, and nothing else
(no module global, no second process) is needed for it.

Each test generates a reference profile through the API `ghafgen generate`
calls (cli.pipeline.generate) once with the shipped catalog and once with a
changed one. The shipped values are written here with the catalog entry and
the outside source they come from, so a test does not take the value it
checks from the code under test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ghafgen import catalog
from ghafgen.cli.pipeline import generate
from tests.conftest import ROOT

UARTA = ROOT / "profiles" / "orin-agx-uarta.toml"
TARGET = "nvidia-jetson-orin-agx-uarta"

# catalog/data/runtime.toml [qemu.platform] version and url: the QEMU Ghaf
# builds for vfio-platform (ghaf 9a37dc8c packages/pkgs-by-name/ghaf-qemu-bpmp/
# package.nix, "10.1.5 is the last release that has it").
SHIPPED_QEMU = "10.1.5"
SHIPPED_QEMU_URL = "https://download.qemu.org/qemu-10.1.5.tar.xz"
# catalog/data/runtime.toml [qemu.platform.virt] platform_bus_first_spi: QEMU
# hw/arm/virt.c a15irqmap, [VIRT_PLATFORM_BUS] = 112.
SHIPPED_FIRST_SPI = 112
# catalog/data/runtime.toml [drivers] vfio_platform: Linux
# drivers/vfio/platform/vfio_platform.c, the platform_driver's .name.
SHIPPED_VFIO_PLATFORM = "vfio-platform"
# catalog/data/t234.toml [soc] passthrough_sid: Linux
# include/dt-bindings/memory/tegra234-mc.h, TEGRA234_SID_PASSTHROUGH 0x7f.
SHIPPED_PASSTHROUGH_SID = "0x7f"


def generated(cat: catalog.Catalog, out: Path, rel: str) -> str:
    result = generate([UARTA], out, cat)
    assert result.report.exit_code == 0, [f.render() for f in result.report.findings]
    return (out / TARGET / rel).read_text(encoding="utf-8")


def test_the_qemu_pin_follows_the_catalog_it_is_given(tmp_path: Path) -> None:
    shipped = catalog.load()
    assert shipped.qemu_build.version == SHIPPED_QEMU
    newer = shipped._replace(
        qemu_build=shipped.qemu_build._replace(
            version="10.1.6", url="https://download.qemu.org/qemu-10.1.6.tar.xz"
        )
    )
    before = generated(shipped, tmp_path / "shipped", "qemu.nix")
    after = generated(newer, tmp_path / "newer", "qemu.nix")
    assert f'version = "{SHIPPED_QEMU}";' in before
    assert f'url = "{SHIPPED_QEMU_URL}";' in before
    assert 'version = "10.1.6";' in after
    assert 'url = "https://download.qemu.org/qemu-10.1.6.tar.xz";' in after
    assert SHIPPED_QEMU not in after
    # The shipped catalog is untouched: it is immutable, and the board the
    # changed one handed out carries the changed one.
    assert catalog.load().qemu_build.version == SHIPPED_QEMU
    board = newer.board("jetson-agx-orin-devkit")
    assert board.catalog is newer
    assert catalog.load().board("jetson-agx-orin-devkit").catalog is shipped


def test_the_guest_tree_follows_the_platform_bus_lines(tmp_path: Path) -> None:
    shipped = catalog.load()
    moved = shipped._replace(
        qemu_virt=shipped.qemu_virt._replace(platform_bus_first_spi=120)
    )
    before = generated(shipped, tmp_path / "shipped", "vms/uart-vm.dts")
    after = generated(moved, tmp_path / "moved", "vms/uart-vm.dts")
    # The first device on QEMU's platform bus gets the bus's first SPI.
    assert f"interrupts = <0 {SHIPPED_FIRST_SPI} 4>;" in before
    assert "interrupts = <0 120 4>;" in after
    assert f"<0 {SHIPPED_FIRST_SPI} 4>" not in after


def test_the_runtime_record_names_the_catalogs_driver(tmp_path: Path) -> None:
    """What verify looks for on the board is the catalog's driver name."""
    shipped = catalog.load()
    renamed = shipped._replace(
        drivers=shipped.drivers._replace(vfio_platform="vfio-platform-renamed")
    )
    rel = "ghafgen-manifest.json"
    before = json.loads(generated(shipped, tmp_path / "shipped", rel))
    after = json.loads(generated(renamed, tmp_path / "renamed", rel))
    drivers = [d["driver"] for d in before["contents"]["runtime"]["bindings"]]
    assert drivers == [SHIPPED_VFIO_PLATFORM]
    runtime = after["contents"]["runtime"]
    assert [d["driver"] for d in runtime["bindings"]] == ["vfio-platform-renamed"]
    assert {"bus": "platform", "name": "vfio-platform-renamed"} in runtime["kernel"][
        "drivers"
    ]
    assert SHIPPED_VFIO_PLATFORM not in [
        d["name"] for d in runtime["kernel"]["drivers"]
    ]


def test_a_catalog_folder_with_one_stream_id_changed(tmp_path: Path) -> None:
    """`load(data)` reads another folder; the passthrough stream ID UARTA's host
    overlay marks it with follows that folder's t234.toml."""
    data = shutil.copytree(catalog.load().data, tmp_path / "data")
    soc = data / "t234.toml"
    text = soc.read_text(encoding="utf-8")
    line = f"passthrough_sid = {SHIPPED_PASSTHROUGH_SID}"
    assert text.count(line) == 1
    soc.write_text(text.replace(line, "passthrough_sid = 0x7e"), encoding="utf-8")
    other = catalog.load(data)
    assert other.data == data
    rel = "overlays/uarta-passthrough.dts"
    before = generated(catalog.load(), tmp_path / "shipped", rel)
    after = generated(other, tmp_path / "other", rel)
    assert f"iommus = <&smmu_niso0 {SHIPPED_PASSTHROUGH_SID}>;" in before
    assert "iommus = <&smmu_niso0 0x7e>;" in after
    assert SHIPPED_PASSTHROUGH_SID not in after


def _copy_with(tmp_path: Path, file: str, old: str, new: str) -> Path:
    data = shutil.copytree(catalog.load().data, tmp_path / "data")
    path = data / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return data


@pytest.mark.parametrize(
    ("file", "old", "new", "said"),
    [
        # A required key gone: the table and the key are named.
        (
            "t234.toml",
            'dt_name = "3100000.serial"\n',
            "",
            "t234.toml [devices.uarta] has no 'dt_name' (PlatformDevice.dt_name)",
        ),
        # A value of the wrong shape.
        (
            "t234.toml",
            "interrupts = [112]\n",
            'interrupts = "112"\n',
            "t234.toml [devices.uarta] interrupts is '112', not an array",
        ),
        # A key read from a path below the record's table.
        (
            "runtime.toml",
            "base = 0x090d0000\n",
            "",
            "runtime.toml [qemu.platform] has no 'bridge.base' "
            "(QemuVirt.bpmp_bridge_base)",
        ),
        # The size check the converter calls keeps its words.
        (
            "boards/jetson-agx-orin-devkit.toml",
            'host_reserve = "2G"',
            'host_reserve = "1500K"',
            "size '1500K' in catalog is not a whole number of MiB",
        ),
    ],
)
def test_bad_catalog_data_is_one_clear_error(
    tmp_path: Path, file: str, old: str, new: str, said: str
) -> None:
    data = _copy_with(tmp_path, file, old, new)
    with pytest.raises(catalog.CatalogError) as e:
        catalog.load(data).board("jetson-agx-orin-devkit")
    assert said in str(e.value)
    assert str(data) in str(e.value)
