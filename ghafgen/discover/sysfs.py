"""`ghafgen discover`: read a live or captured sysfs/procfs tree into a Discovery.

Entry points: `discover(root, cat)` -> `Discovery`, `capture(reader, out)`; the
draft profile is `discover.draft.from_discovery`. Every file read goes through `SysfsReader`, which
remembers it, so `--capture` saves exactly what was read and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ghafgen.catalog import Catalog
from ghafgen.confined import Escapes, Folder, Taken, Unopenable, pack, save_new
from ghafgen.errors import GhafgenError
from ghafgen.fileio import Unreadable
from ghafgen.profile.spec import BDF


class DiscoverError(GhafgenError):
    """A file discovery needs is missing or unreadable."""


class SysfsReader:
    """Reads files under `root` as if it were `/`; records what it touched.

    Every read goes through confined.Folder: regular files and folders only,
    never more than confined.MAX_FILE of one, never through a link that
    leaves `root`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.read_paths: list[str] = []
        self.files: dict[str, bytes] = {}  # what `capture` saves: the bytes read
        self.links: dict[str, str] = {}
        self._tree = Folder(root)

    def _path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def text(self, rel: str, *, required: bool = True) -> str | None:
        try:
            _, data = self._tree.read(rel)
        except FileNotFoundError:
            if required:
                where = (
                    "is this a Jetson's live /sys and /proc? On another machine give "
                    "--root a captured tree (ghafgen discover --capture)"
                    if self.root == Path("/")
                    else "is --root a captured /sys and /proc tree "
                    "(ghafgen discover --capture)?"
                )
                raise DiscoverError(f"{self._path(rel)}: missing; {where}") from None
            return None
        except (Escapes, Unreadable) as e:
            raise DiscoverError(str(e)) from None
        except OSError as e:
            raise DiscoverError(
                f"{self._path(rel)}: cannot read ({e.strerror or e})"
            ) from None
        # Saved under the name it was read by: a capture needs no link to reach it.
        self.read_paths.append(rel.lstrip("/"))
        self.files[rel.lstrip("/")] = data
        return data.decode("utf-8", errors="replace")

    def link(self, rel: str) -> str | None:
        """Basename of a symlink's target (`driver`, `iommu_group`), or None."""
        try:
            _, target = self._tree.readlink(rel)
        except Escapes as e:
            raise DiscoverError(str(e)) from None
        except OSError:
            return None
        if target is None:
            return None
        self.read_paths.append(rel.lstrip("/"))
        self.links[rel.lstrip("/")] = target
        return target.rstrip("/").rsplit("/", 1)[-1]

    def listdir(self, rel: str) -> list[str]:
        base = rel.strip("/")
        try:
            _, entries = self._tree.listdir(rel)
        except FileNotFoundError:
            return []
        except Escapes as e:
            raise DiscoverError(str(e)) from None
        except OSError as e:
            raise DiscoverError(
                f"{self._path(rel)}: cannot list ({e.strerror or e})"
            ) from None
        links = {f"{base}/{n}": e.target for n, e in entries.items() if e.target}
        self.read_paths.append(base + "/")
        # The names are what was read: symlinks (IOMMU group members) are kept as such.
        self.read_paths += list(links)
        self.links.update(links)
        return list(entries)

    def taken(self) -> Taken:
        """What was read, for a capture: a listing keeps its folder when it
        holds nothing else that was read (an empty IOMMU group)."""
        paths = set(self.read_paths)
        kept = {p for p in paths if not p.endswith("/")}
        return Taken(
            files={p: self.files[p] for p in kept if p not in self.links},
            links={p: self.links[p] for p in kept if p in self.links},
            folders={
                d
                for d in (p.rstrip("/") for p in paths if p.endswith("/"))
                if not any(k.startswith(d + "/") for k in kept)
            },
        )


@dataclass(frozen=True)
class SysfsPciFunction:
    """A PCI function as the running machine's sysfs shows it."""

    bdf: str
    vendor: str
    device: str
    pci_class: int
    driver: str | None
    iommu_group: str | None
    bars: tuple[int, ...]

    @property
    def kind(self) -> str:
        base = self.pci_class >> 16
        sub = (self.pci_class >> 8) & 0xFF
        return {0x03: "gpu", 0x06: "bridge"}.get(base) or {
            (0x02, 0x80): "wifi",
            (0x02, 0x00): "nic",
            (0x01, 0x08): "nvme",
            (0x04, 0x03): "audio",
        }.get((base, sub), "other")

    @property
    def id(self) -> str:
        return f"{self.vendor}:{self.device}"


@dataclass(frozen=True)
class SysfsPlatformDevice:
    """A platform device as sysfs shows it (not the catalog's PlatformDevice)."""

    name: str
    driver: str | None
    compatible: tuple[str, ...]
    iommu_group: str | None


@dataclass(frozen=True)
class Discovery:
    model: str
    compatible: tuple[str, ...]
    board: str | None
    cpus: int
    mem_kib: int
    pci: tuple[SysfsPciFunction, ...]
    platform: tuple[SysfsPlatformDevice, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    carrier: str | None = None  # "p3737-0000", when the compatible names one
    sku: str | None = None  # "p3701-0005", the module the compatible names

    def group_of(self, name: str) -> tuple[str, ...]:
        for members in self.groups.values():
            if name in members:
                return members
        return ()


def _hex(text: str, where: Path) -> int:
    """A sysfs hex number ("0x030000"); anything else names the file."""
    try:
        return int(text.strip(), 16)
    except ValueError:
        raise DiscoverError(
            f"{where}: {text.strip()[:40]!r} is not a hex number; is this a real "
            "or captured sysfs tree?"
        ) from None


def _bars(resource: str, where: Path) -> tuple[int, ...]:
    sizes = []
    for line in resource.splitlines()[:6]:  # BAR0-5; then the ROM and bridge windows
        parts = line.split()
        if len(parts) >= 2:
            start, end = _hex(parts[0], where), _hex(parts[1], where)
            if end > start:
                sizes.append(end - start + 1)
    return tuple(sizes)


def _checked(value: str, pattern: str, where: Path, what: str) -> str:
    """A sysfs name or ID that goes into a draft profile: it must look like one."""
    if not re.fullmatch(pattern, value):
        raise DiscoverError(f"{where}: {value[:40]!r} is not {what}")
    return value


def discover(root: Path, cat: Catalog, reader: SysfsReader | None = None) -> Discovery:
    """Read the tree under `root`; `cat` names the boards and devices it knows.

    Raises:
        DiscoverError: a required file is missing or unreadable, naming it.
    """
    r = reader or SysfsReader(root)
    model = (r.text("proc/device-tree/model") or "").rstrip("\0")
    compatible = tuple(
        c for c in (r.text("proc/device-tree/compatible") or "").split("\0") if c
    )
    cpus = len(
        re.findall(r"^processor\s*:", r.text("proc/cpuinfo") or "", re.MULTILINE)
    )
    mem = re.search(
        r"^MemTotal:\s+(\d+) kB", r.text("proc/meminfo") or "", re.MULTILINE
    )
    groups = {}
    for g in r.listdir("sys/kernel/iommu_groups"):
        # The kernel numbers its groups; the report sorts them as numbers.
        where = root / "sys/kernel/iommu_groups" / g
        _checked(g, r"[0-9]{1,9}", where, "an IOMMU group number")
        groups[g] = tuple(r.listdir(f"sys/kernel/iommu_groups/{g}/devices"))
    pci = []
    for bdf in r.listdir("sys/bus/pci/devices"):
        base = f"sys/bus/pci/devices/{bdf}"
        at = root / base
        _checked(bdf, BDF, at, "a PCI address (domain:bus:device.function)")
        pci.append(
            SysfsPciFunction(
                bdf=bdf,
                vendor=_checked(
                    (r.text(f"{base}/vendor") or "").strip().removeprefix("0x"),
                    r"[0-9a-f]{4}",
                    at / "vendor",
                    "a PCI vendor ID",
                ),
                device=_checked(
                    (r.text(f"{base}/device") or "").strip().removeprefix("0x"),
                    r"[0-9a-f]{4}",
                    at / "device",
                    "a PCI device ID",
                ),
                pci_class=_hex(r.text(f"{base}/class") or "0", at / "class"),
                driver=r.link(f"{base}/driver"),
                iommu_group=r.link(f"{base}/iommu_group"),
                bars=_bars(
                    r.text(f"{base}/resource", required=False) or "", at / "resource"
                ),
            )
        )
    known = {
        d.dt_name
        for name in cat.board_names()
        for d in cat.board(name).devices.values()
    }
    known |= {
        s.controller.dt_name
        for name in cat.board_names()
        for s in cat.board(name).slots.values()
    }
    platform = []
    for name in r.listdir("sys/bus/platform/devices"):
        if name not in known:
            continue  # only what the catalog can pass (and PCIe controllers)
        base = f"sys/bus/platform/devices/{name}"
        compat = r.text(f"{base}/of_node/compatible", required=False) or ""
        platform.append(
            SysfsPlatformDevice(
                name,
                r.link(f"{base}/driver"),
                tuple(c for c in compat.split("\0") if c),
                r.link(f"{base}/iommu_group"),
            )
        )
    board, carrier, sku = identify(compatible, cat)
    return Discovery(
        model,
        compatible,
        board,
        cpus,
        int(mem.group(1)) if mem else 0,
        tuple(pci),
        tuple(platform),
        groups,
        carrier,
        sku,
    )


_PART = re.compile(r"nvidia,(p\d{4})-(\d{4})")
_CARRIER_MODULE = re.compile(r"nvidia,(p\d{4}-\d{4})\+(p\d{4})-(\d{4})")


def identify(
    compatible: tuple[str, ...], cat: Catalog
) -> tuple[str | None, str | None, str | None]:
    """(board name, carrier, module SKU) from the root compatible list.

    The carrier comes from "nvidia,<carrier>+<module>"; the SKU from the
    module's own entry ("nvidia,p3701-0005"), which L4T trees set to the
    fitted module even where the first entry names the tree's base SKU, and
    otherwise from the "+" entry. The board is None when ghafgen does not
    know the carrier or the SKU.
    """
    carrier = family = plus_sku = None
    for c in compatible:
        m = _CARRIER_MODULE.fullmatch(c)
        if m:
            carrier, family, plus_sku = (
                m.group(1),
                m.group(2),
                f"{m.group(2)}-{m.group(3)}",
            )
            break
    if carrier is None:
        exact = [
            b for b in cat.board_names() if cat.board(b).dt_compatible in compatible
        ]
        return (exact[0] if exact else None), None, None
    own = [
        f"{m.group(1)}-{m.group(2)}"
        for c in compatible
        if (m := _PART.fullmatch(c)) and m.group(1) == family
    ]
    sku = own[0] if own else plus_sku
    for name in cat.board_names():
        b = cat.board(name)
        if b.carrier != carrier or "+" in name:
            continue
        if sku == (b.module.sku if b.module else None):
            return name, carrier, sku
        if sku in b.modules:
            return f"{name}+{sku}", carrier, sku
    return None, carrier, sku


def capture(reader: SysfsReader, out: Path) -> int:
    """A tar.gz of exactly the files `reader` read, as it read them (nothing is
    read again); returns how many entries."""
    taken = reader.taken()
    try:
        save_new(pack(taken), out)
    except Unopenable as e:
        raise DiscoverError(str(e)) from None
    return taken.count()
