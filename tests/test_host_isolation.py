"""Profiles on one host cannot meet in a shared resource (issue: cross-profile isolation).

Shared-memory files and volume images carry the target and a separator no
name may contain; GG706 checks shm files and images across the profiles of
one host, and GG603 vsock CIDs over the host's profiles together.
"""

from __future__ import annotations

from pathlib import Path

from ghafgen import catalog
from ghafgen.cli.pipeline import generate
from ghafgen.derive.resources import channel_shm, volume_image
from ghafgen.rules.engine import validate

HEAD = '[target]\nname = "{name}"\nboard = "jetson-agx-orin-devkit"\nhost = "box"\n'


def two_vms(vm1: str, vm2: str, extra: str = "") -> str:
    return (
        f'[vms.{vm1}]\nvcpus = 1\nmemory = "512M"\n{extra}'
        f'[vms.{vm2}]\nvcpus = 1\nmemory = "512M"\n'
        f'[channels.telemetry]\nvms = ["{vm1}", "{vm2}"]\nsize = "64K"\n'
    )


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(HEAD.format(name=name) + body)
    return path


def test_same_channel_name_in_two_profiles_maps_two_files(tmp_path: Path):
    a = write(tmp_path, "first", two_vms("a1", "a2"))
    b = write(tmp_path, "second", two_vms("b1", "b2"))
    result = generate([a, b], tmp_path / "out", catalog.load())
    assert result.report.exit_code == 0, [f.render() for f in result.report.findings]
    one = (tmp_path / "out/first/vms/a1.nix").read_text()
    two = (tmp_path / "out/second/vms/b1.nix").read_text()
    assert "mem-path=/dev/shm/ghafgen.first.telemetry," in one
    assert "mem-path=/dev/shm/ghafgen.second.telemetry," in two
    assert "ghafgen.second" not in one and "ghafgen.first" not in two


def test_names_cannot_be_split_two_ways():
    # VM `a` + volume `b-c` and VM `a-b` + volume `c` were both `a-b-c.img`.
    assert volume_image("/d", "t", "a", "b-c") != volume_image("/d", "t", "a-b", "c")
    assert channel_shm("a", "b-c") != channel_shm("a-b", "c")
    assert volume_image("", "t", "v", "x") == "t.v.x.img"


def test_volumes_split_two_ways_get_two_images(tmp_path: Path):
    disk = '[disks.nvme]\nsize = "64G"\npath = "/var/lib/vm-volumes"\n'

    def vm(name: str, vol: str) -> str:
        return (
            f'[vms.{name}]\nvcpus = 1\nmemory = "512M"\n'
            f'[vms.{name}.volumes.{vol}]\nsize = "1G"\nmount = "/data"\ndisk = "nvme"\n'
        )

    p = write(tmp_path, "t", vm("a", "b-c") + vm("a-b", "c") + disk)
    result = generate([p], tmp_path / "out", catalog.load())
    assert result.report.exit_code == 0, [f.render() for f in result.report.findings]
    a = (tmp_path / "out/t/vms/a.nix").read_text()
    ab = (tmp_path / "out/t/vms/a-b.nix").read_text()
    # Each in its VM's own folder, which only that VM's QEMU user may enter.
    assert 'image = "/var/lib/vm-volumes/t.a/b-c.img";' in a
    assert 'image = "/var/lib/vm-volumes/t.a-b/c.img";' in ab
    iso = (tmp_path / "out/t/isolation.nix").read_text()
    assert '"d /var/lib/vm-volumes/t.a 0700 microvm-a microvm-a -"' in iso
    assert '"d /var/lib/vm-volumes/t.a-b 0700 microvm-a-b microvm-a-b -"' in iso


def test_equal_vsock_cids_across_profiles_on_one_host_are_refused(tmp_path: Path):
    a = write(tmp_path, "first", two_vms("a1", "a2", "vsock_cid = 7\n"))
    b = write(tmp_path, "second", two_vms("b1", "b2", "vsock_cid = 7\n"))
    report = validate([a, b], catalog.load())
    # GG603, the one-profile rule, run over the host's profiles together.
    hits = [f for f in report.findings if f.rule_id in ("GG603", "GG706")]
    assert [f.rule_id for f in hits] == ["GG603"] and report.exit_code == 1
    assert "vsock_cid 7" in hits[0].message and str(a) in hits[0].message
    assert hits[0].src.file == str(b) and hits[0].src.line == 8
    assert hits[0].hint
    # On two hosts the same CID is fine.
    b.write_text(b.read_text().replace('host = "box"', 'host = "other"'))
    assert not [
        f for f in validate([a, b], catalog.load()).findings if f.rule_id == "GG603"
    ]


def test_one_target_twice_on_a_host_clashes_on_every_resource(tmp_path: Path):
    disk = '[disks.nvme]\nsize = "64G"\npath = "/srv"\n'
    vol = '[vms.a1.volumes.data]\nsize = "1G"\nmount = "/d"\ndisk = "nvme"\n'
    (tmp_path / "x").mkdir()
    a = write(tmp_path, "same", two_vms("a1", "a2") + vol + disk)
    b = write(tmp_path / "x", "same", two_vms("a1", "a2") + vol + disk)
    found = {
        f.message.split(" /")[0]
        for f in validate([a, b], catalog.load()).findings
        if f.rule_id == "GG706"
    }
    assert found == {"shared-memory file", "volume image"}
