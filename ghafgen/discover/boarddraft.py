"""A catalog board draft for a board `discover` does not know: what was seen, what is missing.

Entry points: `missing_facts(discovery, cat)` and `board_draft(discovery, cat)`. The
draft is a starting point for `ghafgen/catalog/data/boards/<name>.toml`; each
fact ghafgen could not read from the board is a `# MISSING:` line, never a
guess.
"""

from __future__ import annotations

import json

from ghafgen.catalog import Catalog
from ghafgen.discover.sysfs import Discovery
from ghafgen.findings import printable


def _carrier_file(carrier: str | None, cat: Catalog) -> str | None:
    for name in cat.board_names():
        b = cat.board(name)
        if carrier and b.carrier == carrier and "+" not in name:
            return name
    return None


def missing_facts(discovery: Discovery, cat: Catalog) -> list[str]:
    """What the catalog needs before ghafgen can generate for this board."""
    known = _carrier_file(discovery.carrier, cat)
    if known is not None and discovery.sku:
        return [
            f"module {discovery.sku.upper()}: RAM, CPU cores and fused-off blocks, each with "
            f"its source ([modules.{discovery.sku}] in boards/{known}.toml)"
        ]
    carrier = discovery.carrier or "unknown (no 'nvidia,<carrier>+<module>' compatible)"
    elsewhere = cat.resolve(discovery.sku) if discovery.sku else None
    module = (
        f"module {discovery.sku.upper()}: catalogued on {elsewhere.partition('+')[0]}; copy "
        "its [modules] entry"
        if elsewhere and discovery.sku
        else "module SKU: RAM, CPU cores, fused-off blocks, with sources"
        + (f" (compatible names {discovery.sku.upper()})" if discovery.sku else "")
    )
    return [
        f"carrier {carrier}: a board file (boards/<name>.toml)",
        module,
        "which platform devices the carrier brings out (its mainline or L4T tree)",
        "PCIe slots: controller, lanes, form factor, power limit",
        "the host's root filesystem device and the memory it keeps",
        "mainline_dts: the board's mainline tree, for the whole-SoC catalog",
    ]


def board_draft(discovery: Discovery, cat: Catalog) -> str:
    """Catalog-style TOML: what was seen on the board, and a MISSING line per gap."""
    q = json.dumps
    lines = [
        "# Board draft written by `ghafgen discover`: no catalog board matches.",
        "# Fill every MISSING fact from a source you can name, then move the file",
        "# to ghafgen/catalog/data/boards/.",
        "",
        "[board]",
        f"dt_model = {q(discovery.model)}",
        f"dt_compatible = {q(discovery.compatible[0] if discovery.compatible else '')}",
        # printable: a newline in a compatible must not start a TOML line.
        f"# seen: compatible {printable(', '.join(discovery.compatible)) or 'none'}",
        f"# seen: {discovery.cpus} CPUs, MemTotal {discovery.mem_kib} kB",
        'soc = "t234"'
        if "nvidia,tegra234" in discovery.compatible
        else "# MISSING: soc",
    ]
    if discovery.carrier:
        lines.append(f"carrier = {q(discovery.carrier)}")
    lines += [f"# MISSING: {m}" for m in missing_facts(discovery, cat)]
    return "\n".join(lines) + "\n"
