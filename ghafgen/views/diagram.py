"""Partition diagrams: VMs with their cores, memory, devices and channels.

Entry points: `mermaid(p, b)`, `dot(p, b)` (a profile and its board) and `svg(...)`
(Graphviz's `dot -Tsvg`). The same graph feeds all three, so they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ghafgen.catalog.model import Board
from ghafgen.profile.model import Profile
from ghafgen.units import format_size


@dataclass(frozen=True)
class Box:
    id: str
    label: list[str]
    parent: str = ""  # a VM's id for its devices


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    label: str


def _id(text: str) -> str:
    """A Mermaid/Graphviz ID, one per name: `_` doubles and other characters are
    `_` plus a code (`-` is `_d`), so `ser-a` and `ser_a` stay two nodes."""

    def code(m: re.Match[str]) -> str:
        c = m.group()
        return {"_": "__", "-": "_d"}.get(c, f"_x{ord(c):x}_")

    return re.sub(r"[^A-Za-z0-9]", code, text)


def _cores(cores: tuple[int, ...] | list[int]) -> str:
    """`0-9,11`: runs of three or more cores as a range."""
    runs: list[list[int]] = []
    for c in sorted(set(cores)):
        if runs and c == runs[-1][-1] + 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return ",".join(
        f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs
    )


def _vcpus(n: int, pinning: tuple[int, ...]) -> str:
    count = f"{n} vCPU{'s' if n != 1 else ''}"
    # Unpinned vCPUs run wherever the host scheduler puts them (no CPUAffinity).
    return f"{count} on cores {_cores(pinning)}" if pinning else f"{count}, not pinned"


def graph(p: Profile, b: Board) -> tuple[list[Box], list[Link]]:
    boxes: list[Box] = []
    pinned = {c for vm in p.vms.values() for c in vm.pinning} | set(
        p.target.isolated_cores
    )
    host = sorted(set(p.target.host_cores) or set(range(b.cpu_cores)) - pinned)
    boxes.append(
        Box(
            "host",
            [
                f"host: {b.name}",
                f"cores {_cores(host)}",
                f"reserve {format_size(b.host_reserve_mib << 20)}",
            ],
        )
    )
    for vm in p.vms.values():
        rt = f", SCHED_FIFO {vm.rt_priority}" if vm.rt_priority else ""
        label = [
            vm.name,
            f"{_vcpus(vm.vcpus, vm.pinning)}{rt}",
            f"{format_size(vm.memory)}{' hugepages' if vm.hugepages else ''}",
        ]
        label += [
            f"volume {v.name} {format_size(v.size)} on {v.disk}" for v in vm.volumes
        ]
        label += [f"shared {s} (virtio)" for s in vm.shared]
        boxes.append(Box(f"vm_{_id(vm.name)}", label))
    for pt in p.enabled:
        dev = b.devices.get(pt.device)
        what = dev.dt_name if dev else " ".join(f.bdf for f in pt.functions)
        parent = f"vm_{_id(pt.vm)}" if pt.vm else "host"
        boxes.append(
            Box(f"dev_{_id(pt.name)}", [pt.device, what, "passthrough"], parent)
        )
    links = []
    for ch in p.channels.values():
        members = [f"vm_{_id(v)}" for v in ch.vms]
        for other in members[1:]:
            links.append(Link(members[0], other, f"{ch.name} {format_size(ch.size)}"))
    return boxes, links


def mermaid(p: Profile, b: Board) -> str:
    boxes, links = graph(p, b)
    out = ["flowchart LR"]
    for box in boxes:
        if box.id == "host" or box.id.startswith("vm_"):
            out.append(f'  subgraph {box.id}["{"<br/>".join(box.label)}"]')
            out += [
                f'    {d.id}["{"<br/>".join(d.label)}"]'
                for d in boxes
                if d.parent == box.id
            ]
            out.append("  end")
    out += [f'  {ln.a} <-- "{ln.label}" --> {ln.b}' for ln in links]
    return "\n".join(out) + "\n"


def _dot_label(lines: list[str]) -> str:
    return "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)


def dot(p: Profile, b: Board) -> str:
    boxes, links = graph(p, b)
    out = [
        f'digraph "{_id(p.target.name)}" {{',
        "  rankdir=LR;",
        "  compound=true;",
        '  node [shape=box, fontname="sans-serif"];',
    ]
    for box in boxes:
        if box.id == "host" or box.id.startswith("vm_"):
            out.append(f"  subgraph cluster_{box.id} {{")
            out.append(f'    label="{_dot_label(box.label)}";')
            inside = [d for d in boxes if d.parent == box.id]
            out += [f'    {d.id} [label="{_dot_label(d.label)}"];' for d in inside]
            if not inside:  # an empty cluster is not drawn; give it an anchor
                out.append(f'    {box.id}_anchor [label="", shape=point, style=invis];')
            out.append("  }")
    for ln in links:
        out.append(
            f"  {_anchor(boxes, ln.a)} -> {_anchor(boxes, ln.b)} [dir=both, "
            f'label="{_dot_label([ln.label])}", ltail=cluster_{ln.a}, '
            f"lhead=cluster_{ln.b}];"
        )
    out.append("}")
    return "\n".join(out) + "\n"


def _anchor(boxes: list[Box], cluster: str) -> str:
    inside = [d.id for d in boxes if d.parent == cluster]
    return inside[0] if inside else f"{cluster}_anchor"


def svg(p: Profile, b: Board) -> str:
    """SVG from Graphviz.

    Raises:
        ToolMissing: Graphviz is not installed.
        ToolError: dot failed.
    """
    from ghafgen.tools import run

    return run(["dot", "-Tsvg"], input=dot(p, b)).or_raise().stdout
