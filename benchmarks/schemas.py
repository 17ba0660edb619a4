"""Benchmark rows for the binding-schema check (bench.py --schemas; minutes).

Rows: the schema processing (`dt-mk-schema -j` over linux-source-6.12's
bindings) cold, and the cached lookup `check` does instead; then per
reference target, dt-validate over its base, host and guest trees with an
empty findings cache (cold) and with the cache one run left (cached).
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ghafgen.toolchain import basetrees, bindings
from ghafgen.toolchain.guestbase import dump_qemu_virt
from ghafgen.toolchain.realtools import HostBase, _guests, _overlays, _Schemas, targets
from ghafgen.tools import run

Row = tuple[str, float, float, str]
MODULES = Path(__file__).resolve().parent.parent / "nix" / "modules"


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def rows(runs: int, cold_schemas: bool) -> list[Row]:
    tar = basetrees.tarball("6.12")
    tool = bindings.dtschema()
    if tar is None or tool is None:
        return [
            ("binding schemas", 0.0, 0.0, "skipped: needs linux-source-6.12, dtschema")
        ]
    tree = basetrees.kernel_subset(tar)
    out: list[Row] = []
    bindings_dir = tree / "Documentation/devicetree/bindings"
    if cold_schemas:
        ms = _ms(
            lambda: run(
                tool.argv("dt-mk-schema") + ["-j", "--", str(bindings_dir)]
            ).or_raise()
        )
        out.append(("dt-mk-schema 6.12 bindings (cold)", ms, ms, "once per tree"))
    schema = basetrees.processed_schemas(tree, tool)
    times = [_ms(lambda: basetrees.processed_schemas(tree, tool)) for _ in range(runs)]
    out.append(
        (
            "processed schemas (cached lookup)",
            sorted(times)[len(times) // 2],
            min(times),
            "",
        )
    )
    dtb = basetrees.board_dtb(tree, "nvidia/tegra234-p3737-0000+p3701-0000.dts")
    with tempfile.TemporaryDirectory() as tmpname:
        tmp = Path(tmpname)
        virt = dump_qemu_virt(tmp)
        for target in targets(MODULES):
            jobs = _Schemas()
            work = tmp / target.name
            work.mkdir()
            _overlays(target, HostBase(dtb, "6.12", tree), work, jobs)
            if virt is not None:
                _guests(target, virt, work, jobs)
            folder = work / "validate"
            folder.mkdir()
            dtbs = []
            for path in {p: None for j in jobs.jobs for p in (j.base, j.dtb)}:
                dtbs.append(folder / f"{len(dtbs)}.dtb")
                bindings.stable_copy(path, dtbs[-1])
            once = functools.partial(
                bindings.validate, tool, dtbs, schema, work / "cache"
            )
            cold = _ms(once)
            warm = [_ms(once) for _ in range(max(1, runs // 5))]
            name = target.name.removeprefix("nvidia-jetson-orin-agx-")
            out.append(
                (f"dt-validate {name} ({len(dtbs)} trees, cold)", cold, cold, "")
            )
            out.append(
                (
                    f"dt-validate {name} (cached)",
                    sorted(warm)[len(warm) // 2],
                    min(warm),
                    "",
                )
            )
    return out
