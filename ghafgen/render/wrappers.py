"""Host regions handed to a VM whole through vfio-platform, as device-tree
nodes: carve-outs reserved in `/reserved-memory`, and a wrapper node per region
(carve-outs and register keyholes alike) that only vfio binds. The GPU group's
and the display's host overlays both write them this way, as Ghaf's
passthrough overlay does.

Entry points: `reg2(regions)`, `reserved_memory(children)`,
`carveout_nodes(carveouts)`, `wrapper(...)`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ghafgen.catalog.gpu import Carveout
from ghafgen.render.dt import Node, Prop, cell_list, cells, strings
from ghafgen.render.escape import Safe

DUMMY = "nvidia,dummy"  # keeps every host driver off the node (Ghaf's overlays)


def reg2(regions: Iterable[tuple[int, int]]) -> Safe:
    """`reg` with two address and two size cells, as the SoC's buses use."""
    return cell_list(
        [(a >> 32, a & 0xFFFFFFFF, s >> 32, s & 0xFFFFFFFF) for a, s in regions],
        hex_=True,
    )


def wrapper(name: str, base: int, size: int, smmu: str, sid: int) -> Node:
    """The node vfio-platform binds for one region: no host driver matches
    it, and it sits in the IOMMU group of its stream ID."""
    return Node(
        f"{name}@{base:x}",
        name,
        (
            Prop("compatible", strings(DUMMY)),
            Prop("reg", reg2([(base, size)])),
            Prop("iommus", cells(smmu, sid, hex_=True)),
            Prop("dma-coherent", None),
            Prop("status", strings("okay")),
        ),
    )


def carveout_nodes(carveouts: Iterable[Carveout]) -> tuple[Node, tuple[Node, ...]]:
    """`/reserved-memory` holding the carve-outs, and their wrappers."""
    held = tuple(carveouts)
    reserved = tuple(
        Node(
            f"{c.key}@{c.base:x}",
            c.key,
            (
                # No no-map: KVM then maps it into the guest as normal memory.
                Prop("compatible", strings("removed-dma-pool")),
                Prop("reg", reg2([(c.base, c.size)])),
                Prop("status", strings("okay")),
            ),
        )
        for c in held
    )
    wrappers = tuple(wrapper(c.wrapper, c.base, c.size, c.smmu, c.sid) for c in held)
    return reserved_memory(reserved), wrappers


def reserved_memory(children: tuple[Node, ...]) -> Node:
    """`/reserved-memory` holding `children`, written whole: mainline host trees
    and QEMU's have none, and its cells are those of the L4T tree's."""
    return Node(
        "reserved-memory",
        "",
        (
            Prop("#address-cells", cells(2)),
            Prop("#size-cells", cells(2)),
            Prop("ranges", None),
        ),
        children,
    )
