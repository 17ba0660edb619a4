"""tests/pinned.py: where the pinned trees come from, checked, and safe to race.

The pins themselves are held to the sources that set them: flake.lock and the
catalog (ghafgen's own pins) and shared/third_party's README (the tarballs).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from ghafgen import catalog
from tests import pinned
from tests.conftest import ROOT


def _tarball(folder: Path, name: str, files: dict[str, str]) -> Path:
    """A `git archive`-like tarball: every file under the top folder `name`."""
    out = folder / f"{name}-000000000000.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _pin(tarball: Path, name: str) -> pinned.Pin:
    sha = hashlib.sha256(tarball.read_bytes()).hexdigest()
    return pinned.Pin(name, tarball.name, "owner/repo", "0" * 40, sha)


def _readme(folder: Path, pin: pinned.Pin) -> None:
    (folder / "README.md").write_text(
        "| file | repository | revision | licence |\n|---|---|---|---|\n"
        f"| `{pin.tarball}` | {pin.repo} (a note) | {pin.rev} | MIT |\n\n"
        f"sha256:\n    {pin.sha256}  {pin.tarball}\n"
    )


def _offline(pin: pinned.Pin, cache: Path) -> Path:
    raise pinned.Unavailable("no network here")


MARKER = "nixos-modules/microvm/options.nix"


def test_a_named_checkout_comes_first(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / MARKER).parent.mkdir(parents=True)
    (checkout / MARKER).write_text("{}")
    env = {"GHAFGEN_MICROVM_SRC": str(checkout)}
    got = pinned.locate("microvm.nix", env, tmp_path / "none", tmp_path, fetch=_offline)
    assert got == checkout
    with pytest.raises(pinned.Unavailable, match=r"not a microvm\.nix checkout"):
        pinned.locate(
            "microvm.nix", {"GHAFGEN_MICROVM_SRC": str(tmp_path)}, tmp_path, tmp_path
        )


def test_a_tarball_is_checked_then_unpacked_once(tmp_path: Path) -> None:
    shared, cache = tmp_path / "third_party", tmp_path / "cache"
    shared.mkdir()
    cache.mkdir()
    tarball = _tarball(shared, "microvm.nix", {MARKER: "{ }\n"})
    pin = _pin(tarball, "microvm.nix")
    _readme(shared, pin)
    table = {"microvm.nix": pin}
    got = pinned.locate("microvm.nix", {}, shared, cache, table, _offline)
    assert (got / MARKER).read_text() == "{ }\n"
    assert got.parent.parent == cache
    stamp = got.parent.stat().st_mtime_ns
    again = pinned.locate("microvm.nix", {}, shared, cache, table, _offline)
    assert again == got and got.parent.stat().st_mtime_ns == stamp
    assert [p.name for p in cache.iterdir()] == [got.parent.name]  # no temp left


def test_a_tarball_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    shared, cache = tmp_path / "third_party", tmp_path / "cache"
    shared.mkdir()
    cache.mkdir()
    tarball = _tarball(shared, "microvm.nix", {MARKER: "{ }\n"})
    pin = _pin(tarball, "microvm.nix")
    _readme(shared, pin)
    tarball.write_bytes(tarball.read_bytes() + b"\0")  # changed after hashing
    with pytest.raises(pinned.Unavailable, match=r"sha256 .*, not the "):
        pinned.locate("microvm.nix", {}, shared, cache, {"microvm.nix": pin}, _offline)
    assert list(cache.iterdir()) == []
    # A README that lists another revision than the tests want is refused too.
    other = pinned.Pin(pin.name, pin.tarball, pin.repo, "1" * 40, pin.sha256)
    with pytest.raises(pinned.Unavailable, match="not the Pin"):
        pinned.locate(
            "microvm.nix", {}, shared, cache, {"microvm.nix": other}, _offline
        )


def test_without_tarball_it_fetches_and_says_why_it_could_not(tmp_path: Path) -> None:
    tried: list[str] = []

    def fetch(pin: pinned.Pin, cache: Path) -> Path:
        tried.append(pin.rev)
        raise pinned.Unavailable("no network here")

    with pytest.raises(pinned.Unavailable) as e:
        pinned.locate("ghaf", {}, tmp_path, tmp_path, fetch=fetch)
    assert tried == [pinned.PINS["ghaf"].rev]
    message = str(e.value)
    assert "set GHAFGEN_GHAF_SRC" in message
    assert f"{tmp_path / pinned.PINS['ghaf'].tarball} is missing" in message
    assert "no network here" in message


def test_the_pins_are_ghafgens_own_and_the_readmes() -> None:
    lock = json.loads((ROOT / "flake.lock").read_text())["nodes"]
    revs = {node["locked"].get("rev") for node in lock.values() if "locked" in node}
    assert pinned.PINS["ghaf"].rev == catalog.load().sources["ghaf"].rev
    assert pinned.PINS["ghaf"].rev in revs
    assert pinned.PINS["microvm.nix"].rev in revs
    for pin in pinned.PINS.values():
        assert pin.tarball == f"{pin.name}-{pin.rev[:12]}.tar.gz"


@pytest.mark.real_tools
def test_shared_third_party_lists_the_same_pins() -> None:
    """CI has shared/third_party beside the clone; its README is the record."""
    readme = pinned.third_party() / "README.md"
    if not readme.is_file():
        pytest.skip(f"{readme} is missing (set GHAFGEN_THIRD_PARTY to the folder)")
    assert pinned.pins(readme) == pinned.PINS


def test_the_qemu_build_object_has_a_compile_command(qemu_build: Path) -> None:
    """What the bridge test relies on: the build folder's compile command for
    hw/misc/unimp.c, whose object ninja built, for the aarch64 target only."""
    commands = json.loads((qemu_build / "compile_commands.json").read_text())
    (unimp,) = [c for c in commands if c["file"].endswith("hw/misc/unimp.c")]
    assert f"-o {pinned.QEMU_OBJECT}" in unimp["command"]
    assert (qemu_build / pinned.QEMU_OBJECT).is_file()
    done = subprocess.run(
        ["ninja", "-t", "targets", "all"],
        cwd=qemu_build,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "qemu-system-aarch64:" in done.stdout
    assert "qemu-system-x86_64:" not in done.stdout
