"""The DCE relay's catalog (`data/t234-display.toml`) as typed records.

Entry point: `dce_relay_facts(doc)`, which `Catalog` calls. What giving
Tegra234's display to a VM through the DCE relay takes on the host (the proxy
node and device, the headless host, HDA off, the /chosen framebuffer dummy),
in the display-owner VM's QEMU and guest, and in the BPMP list, each with its
source.
"""

from typing import Any, NamedTuple

from ghafgen.catalog.model import Fact
from ghafgen.records import record


def _fact(d: dict[str, Any]) -> Fact:
    return record(Fact, d, "t234-display.toml")


class RelaySources(NamedTuple):
    """Where the relay's files are in the pinned Ghaf tree."""

    dir: str
    host_proxy: str
    guest_proxy: str
    iso_anchor: str
    oot_patches: tuple[str, ...]
    oot_dir: str
    fact: Fact

    def path(self, rel: str) -> str:
        """`rel` (a key's value above) relative to the Ghaf tree's root."""
        return f"{self.dir}/{rel}"


class HostProxy(NamedTuple):
    overlay_compatible: str
    node: str
    label: str
    parent: str
    compatible: str
    device: str
    references: tuple[str, ...]
    series: tuple[str, ...]
    ghaf_group: str
    ghaf_mode: str
    mode: str
    fact: Fact
    access_fact: Fact


class Headless(NamedTuple):
    blacklist: tuple[str, ...]
    modules: tuple[str, ...]
    kernel_params: tuple[str, ...]
    fact: Fact


class NodeStatus(NamedTuple):
    """A host node switched off (or a dummy added) by the relay's overlay."""

    path: str
    compatible: str
    status: str
    fact: Fact


class DceGuest(NamedTuple):
    env: str
    env_value: str
    modules: tuple[str, ...]
    proxy_compatible: str
    bridge_base: int
    bridge_size: int
    bridge_spi: int
    fact: Fact


class DceQemu(NamedTuple):
    patch: str  # relative to runtime.toml's [qemu.platform] package_dir
    after: str
    source_file: str
    fact: Fact


class DceRelayFacts(NamedTuple):
    sources: RelaySources
    proxy: HostProxy
    headless: Headless
    iso_anchor: Fact
    hda: NodeStatus
    framebuffer: NodeStatus
    guest: DceGuest
    qemu: DceQemu


def dce_relay_facts(doc: dict[str, Any]) -> DceRelayFacts:
    """The DCE relay's facts in `t234-display.toml`'s parsed text `doc`."""
    s, h, g, q = doc["sources"], doc["host"], doc["guest"], doc["qemu"]
    p, acc, hl = h["proxy"], h["proxy"]["access"], h["headless"]
    hda, fb = h["hda"], h["framebuffer"]
    return DceRelayFacts(
        sources=RelaySources(
            dir=s["dir"],
            host_proxy=s["host_proxy"],
            guest_proxy=s["guest_proxy"],
            iso_anchor=s["iso_anchor"],
            oot_patches=tuple(s["oot_patches"]),
            oot_dir=s["oot_dir"],
            fact=_fact(s),
        ),
        proxy=HostProxy(
            overlay_compatible=p["overlay_compatible"],
            node=p["node"],
            label=p["label"],
            parent=p["parent"],
            compatible=p["compatible"],
            device=p["device"],
            references=tuple(p["references"]),
            series=tuple(p["series"]),
            ghaf_group=acc["ghaf_group"],
            ghaf_mode=acc["ghaf_mode"],
            mode=acc["mode"],
            fact=_fact(p),
            access_fact=_fact(acc),
        ),
        headless=Headless(
            blacklist=tuple(hl["blacklist"]),
            modules=tuple(hl["modules"]),
            kernel_params=tuple(hl["kernel_params"]),
            fact=_fact(hl),
        ),
        iso_anchor=_fact(h["iso_anchor"]),
        hda=NodeStatus(hda["path"], "", hda["status"], _fact(hda)),
        framebuffer=NodeStatus(
            f"{fb['parent']}/{fb['node']}", fb["compatible"], fb["status"], _fact(fb)
        ),
        guest=DceGuest(
            env=g["env"],
            env_value=g["env_value"],
            modules=tuple(g["modules"]),
            proxy_compatible=g["proxy_compatible"],
            bridge_base=int(g["bridge_base"]),
            bridge_size=int(g["bridge_size"]),
            bridge_spi=int(g["bridge_spi"]),
            fact=_fact(g),
        ),
        qemu=DceQemu(q["patch"], q["after"], q["source_file"], _fact(q)),
    )
