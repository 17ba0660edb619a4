"""The pinned third-party trees and the QEMU build that the tests read.

Entry points: `tree(name)` (name: "ghaf", "microvm.nix", "nixpkgs.lib") and
`qemu_build()`; conftest.py's session fixtures `ghaf_src`, `microvm_src`,
`nixpkgs_lib` and `qemu_build` call them through `need()`.

A tree comes from the first of these that has it:
1. a checkout named by the environment (GHAFGEN_GHAF_SRC, GHAFGEN_MICROVM_SRC,
   GHAFGEN_NIXPKGS_LIB), taken as it is;
2. the `git archive` tarball in shared/third_party (beside the project root, or
   the folder GHAFGEN_THIRD_PARTY names), checked against the sha256 its README
   lists, unpacked once into the user cache;
3. the same revision fetched with git into the cache, the archive made from it
   as the README says and checked against the same sha256 (only where the
   network reaches the repository; it normally does not here).
Where none has it, `Unavailable` says why; the test skips with that reason,
and under CI fails unless tests/ci_skips.py lists it.

`qemu_build()` configures Debian's QEMU 10.0 source (scripts/fetch-qemu-source.sh
keeps its tarball) for aarch64-softmmu with every optional feature off, and
builds the one object whose compile command the bridge test reuses.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ghafgen.fileio import cache_root
from ghafgen.toolchain import basetrees

ROOT = Path(__file__).resolve().parent.parent

# name -> (the environment variable naming a checkout, a file every tree has)
TREES = {
    "ghaf": ("GHAFGEN_GHAF_SRC", "flake.nix"),
    "microvm.nix": ("GHAFGEN_MICROVM_SRC", "nixos-modules/microvm/options.nix"),
    "nixpkgs.lib": ("GHAFGEN_NIXPKGS_LIB", "lib/default.nix"),
}
# How long a fetch may try before the tree counts as unreachable.
FETCH_SECONDS = 120


class Unavailable(Exception):
    """A real part the test needs is not here; the message says why and how to get it."""


@dataclass(frozen=True)
class Pin:
    """One row of shared/third_party/README.md."""

    name: str
    tarball: str
    repo: str
    rev: str
    sha256: str


# The revisions the tests are written against (ghaf and microvm.nix: the ones
# flake.lock and the catalog pin; nixpkgs.lib: the lib the evaluation stubs
# were written for), and the sha256 of each `git archive` tarball, as
# shared/third_party/README.md lists them (a test checks the two agree).
PINS = {
    "ghaf": Pin(
        "ghaf",
        "ghaf-9a37dc8c2ed1.tar.gz",
        "tiiuae/ghaf",
        "9a37dc8c2ed13fffb81a77e836bd97d72898acc6",
        "0db3f9d774bb83e755e95fc5132fe0d30b70d71a080c33db03d3cd4e54978609",
    ),
    "microvm.nix": Pin(
        "microvm.nix",
        "microvm.nix-71beea0076cd.tar.gz",
        "microvm-nix/microvm.nix",
        "71beea0076cd46dafcee97a5a2e7d00cbba5bd2f",
        "5b120a89725bf9e3179866dadd0d6f43bec5258a35030fe4abb6580db4a949b4",
    ),
    "nixpkgs.lib": Pin(
        "nixpkgs.lib",
        "nixpkgs.lib-de42d44212d2.tar.gz",
        "nix-community/nixpkgs.lib",
        "de42d44212d207476489bce163375d8306a26d59",
        "74d49b44b19e7f5ef5bfaa13c4e7508b804f9232a74b63a0913e5427a550267f",
    ),
}


def third_party() -> Path:
    """The folder of pinned tarballs: GHAFGEN_THIRD_PARTY, else ../shared/third_party."""
    if env := os.environ.get("GHAFGEN_THIRD_PARTY"):
        return Path(env)
    return ROOT.parent / "shared" / "third_party"


ROW = re.compile(
    r"^\| `(?P<file>[^`]+)` \| (?P<repo>[\w.-]+/[\w.-]+)\b.*?\| (?P<rev>[0-9a-f]{40}) \|"
)
HASH = re.compile(r"^\s+(?P<sha>[0-9a-f]{64})\s+(?P<file>\S+)$")


def pins(readme: Path) -> dict[str, Pin]:
    """The README's table and sha256 list: tree name -> Pin.

    The tarball's top folder is the tree's name (`ghaf-9a37dc8c2ed1.tar.gz`
    holds `ghaf/`), as the README says.
    """
    rows: dict[str, tuple[str, str]] = {}
    hashes: dict[str, str] = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        if m := ROW.match(line):
            rows[m["file"]] = (m["repo"], m["rev"])
        elif m := HASH.match(line):
            hashes[m["file"]] = m["sha"]
    out = {}
    for file, (repo, rev) in rows.items():
        name = file.rsplit("-", 1)[0]
        if file in hashes and name in TREES:
            out[name] = Pin(name, file, repo, rev, hashes[file])
    return out


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack_checked(tarball: Path, pin: Pin, cache: Path) -> Path:
    """`tarball` unpacked into `cache` once, if its sha256 is the pinned one."""
    got = sha256(tarball)
    if got != pin.sha256:
        raise Unavailable(
            f"{tarball}: sha256 {got}, not the {pin.sha256} "
            f"{tarball.parent / 'README.md'} lists"
        )

    def unpack(into: Path) -> None:
        with tarfile.open(tarball) as archive:
            archive.extractall(into, filter="data")

    dest = basetrees.publish(
        unpack, cache / f"{pin.tarball.removesuffix('.tar.gz')}-{got[:12]}"
    )
    top = dest / pin.name
    if not top.is_dir():
        raise Unavailable(f"{tarball} has no top folder {pin.name}/")
    return top


def fetched(pin: Pin, cache: Path) -> Path:
    """The pinned revision fetched with git, archived as the README says
    (`git archive --prefix=NAME/ REV | gzip -9n`), checked and unpacked."""
    git, gzip = shutil.which("git"), shutil.which("gzip")
    if git is None or gzip is None:
        raise Unavailable("git and gzip are needed to fetch it")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        repo = Path(tmp) / "repo"
        steps = [
            [git, "init", "-q", str(repo)],
            [git, "-C", str(repo), "fetch", "-q", "--depth", "1",
             f"https://github.com/{pin.repo}", pin.rev],
        ]  # fmt: skip
        for argv in steps:
            try:
                done = subprocess.run(
                    argv, env=env, capture_output=True, text=True,
                    timeout=FETCH_SECONDS, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise Unavailable(
                    f"fetching {pin.repo} took over {FETCH_SECONDS} s"
                ) from None
            if done.returncode != 0:
                raise Unavailable(
                    f"cannot fetch {pin.repo} {pin.rev}: {done.stderr.strip()[-300:]}"
                )
        archive = Path(tmp) / pin.tarball
        with archive.open("wb") as out:
            git_archive = subprocess.Popen(
                [git, "-C", str(repo), "archive", "--format=tar",
                 f"--prefix={pin.name}/", pin.rev],
                stdout=subprocess.PIPE,
            )  # fmt: skip
            subprocess.run(
                [gzip, "-9n"], stdin=git_archive.stdout, stdout=out, check=True
            )
            assert git_archive.stdout is not None
            git_archive.stdout.close()
            if git_archive.wait() != 0:
                raise Unavailable(f"git archive of {pin.repo} {pin.rev} failed")
        return unpack_checked(archive, pin, cache)


def locate(
    name: str,
    environ: dict[str, str],
    folder: Path,
    cache: Path,
    table: dict[str, Pin] = PINS,
    fetch: Callable[[Pin, Path], Path] = fetched,
) -> Path:
    """Where the tree `name` is, by the order in the module docstring.

    Raises:
        Unavailable: none of the three has it; the message says what was tried.
    """
    env, marker = TREES[name]
    if given := environ.get(env):
        path = Path(given)
        if not (path / marker).exists():
            raise Unavailable(f"{env}={given} has no {marker}: not a {name} checkout")
        return path
    pin = table[name]
    readme = folder / "README.md"
    if readme.is_file():
        listed = pins(readme).get(name)
        if listed != pin:
            raise Unavailable(
                f"{readme} lists {listed}, not the {pin} tests/pinned.py wants"
            )
    tarball = folder / pin.tarball
    if tarball.is_file():
        return unpack_checked(tarball, pin, cache)
    tried = f"{tarball} is missing"
    try:
        return fetch(pin, cache)
    except Unavailable as e:
        raise Unavailable(
            f"{name} at {pin.rev[:12]}: set {env} to a checkout; {tried}; {e}"
        ) from None


@functools.cache
def tree(name: str) -> Path:
    """The pinned tree `name` (cached for the session). For nixpkgs.lib the
    folder `lib` (what `import` takes), for the others the tree's root.

    Raises:
        Unavailable: see `locate`.
    """
    cache = cache_root() / "pinned"
    cache.mkdir(parents=True, exist_ok=True)
    root = locate(name, dict(os.environ), third_party(), cache)
    if name == "nixpkgs.lib":
        return root / "lib" if (root / "lib" / "default.nix").exists() else root
    return root


def need(get: Callable[[], Path]) -> Path:
    """`get()`, or a skip with its reason (tests/ci_skips.py turns that into a
    failure under CI unless the test is listed there)."""
    try:
        return get()
    except Unavailable as e:
        pytest.skip(str(e))


# --- The QEMU build for the bridge-compile test -----------------------------

# scripts/fetch-qemu-source.sh keeps the upstream tarball of Debian's source
# package qemu (bookworm-backports) here.
QEMU_SOURCE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "ghafgen"
    / "qemu-source"
)
# The object whose compile command tests/test_isolation.py reuses for the bridge.
QEMU_OBJECT = "libcommon.a.p/hw_misc_unimp.c.o"
# configure: the one target, every optional feature and device off, nothing
# downloaded (the +ds tarball has no wheels or subprojects: Debian's meson and
# libfdt stand in), no firmware installed.
QEMU_CONFIGURE = (
    "--target-list=aarch64-softmmu",
    "--without-default-features",
    "--without-default-devices",
    "--enable-fdt=system",
    "--disable-download",
    "--disable-docs",
    "--disable-install-blobs",
)


def qemu_tarball() -> Path:
    found = sorted(QEMU_SOURCE.glob("qemu_10.0*.orig.tar.xz"))
    if not found:
        raise Unavailable(
            f"no QEMU 10.0 source in {QEMU_SOURCE} (bash scripts/fetch-qemu-source.sh)"
        )
    return found[-1]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """One process at a time (pytest-xdist workers) past this point."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@functools.cache
def qemu_build() -> Path:
    """A configured QEMU build folder with QEMU_OBJECT built: the one
    GHAFGEN_QEMU_BUILD names, else QEMU 10.0 built once into the cache (about
    a minute on two cores) and kept.

    Built in place under a lock, not renamed: the compile commands hold
    absolute paths of the source tree. A `done` stamp marks a finished build.

    Raises:
        Unavailable: the source tarball, Debian's python3 with meson, ninja or
        a C compiler is missing, or the build failed (its log is named).
    """
    if given := os.environ.get("GHAFGEN_QEMU_BUILD"):
        build = Path(given)
        for wanted in ("compile_commands.json", QEMU_OBJECT):
            if not (build / wanted).exists():
                raise Unavailable(f"GHAFGEN_QEMU_BUILD={given} has no {wanted}")
        return build
    tarball = qemu_tarball()
    python = Path("/usr/bin/python3")  # Debian's, which has Debian's meson
    for tool in ("ninja", "cc", "pkg-config"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is missing (scripts/test.sh installs it)")
    meson = subprocess.run(
        [str(python), "-c", "import mesonbuild"], capture_output=True, check=False
    )
    if not python.exists() or meson.returncode != 0:
        raise Unavailable(
            "Debian's meson (bookworm-backports, >= 1.5) is missing for /usr/bin/python3 "
            "(scripts/test.sh installs it)"
        )
    st = tarball.stat()
    home = (
        cache_root()
        / "qemu-build"
        / f"{tarball.name.removesuffix('.tar.xz')}-{st.st_size}"
    )
    top = tarball.name.split("_")[1].split("+")[0]  # qemu_10.0.2+ds -> 10.0.2
    src = home / f"qemu-{top}"
    build = src / "build"
    stamp = home / "done"
    with locked(home.parent / f"{home.name}.lock"):
        if stamp.exists():
            return build
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(home, filter="fully_trusted")
        if not src.is_dir():
            raise Unavailable(f"{tarball} has no top folder {src.name}/")
        _stand_in_firmware(src)
        build.mkdir()
        log = home / "build.log"
        with log.open("w") as out:
            for argv in (
                [str(src / "configure"), f"--python={python}", *QEMU_CONFIGURE],
                ["ninja", QEMU_OBJECT],
            ):
                out.write(f"$ {' '.join(argv)}\n")
                out.flush()
                done = subprocess.run(
                    argv, cwd=build, stdout=out, stderr=subprocess.STDOUT, check=False
                )
                if done.returncode != 0:
                    raise Unavailable(f"QEMU build failed: {argv[0]} (log: {log})")
        if not (build / QEMU_OBJECT).is_file():
            raise Unavailable(f"ninja did not build {QEMU_OBJECT} (log: {log})")
        stamp.write_text(f"{tarball.name}\n")
    return build


def _stand_in_firmware(src: Path) -> None:
    """Empty stand-ins for the EDK2 firmware images Debian's +ds tarball drops.

    pc-bios/meson.build declares a target per image (decompressed when bzip2 is
    found), and meson refuses an input file that does not exist; only the one
    object is built, so these are never read.
    """
    text = (src / "pc-bios" / "meson.build").read_text()
    for name in re.findall(r"'(edk2-[\w-]+\.fd)'", text):
        image = src / "pc-bios" / f"{name}.bz2"
        if not image.exists():
            image.touch()
