"""A first `ghafgen check`: the binding schemas it processes, and what it finds.

    python3 benchmarks/first_check.py [--target NAME] [--no-full] [--no-compare]

Prints, in one run (so the figures share one machine load):
- `dt-mk-schema` over every binding of linux-source-6.12, as `check` ran it
  before it chose the schemas (cold, not cached);
- `ghafgen check` of one target with an empty cache but the unpacked kernel
  subset (cold: board tree, schema subset, dt-validate, Nix), then the same
  again (warm); the cold one's ratio to the full `dt-mk-schema` (target: at
  most 1/5);
- whether dt-validate finds the same on every reference tree with the subset
  as with the full schema set (`check` over nix/modules twice, in process,
  every finding of every tree compared).

The unpack of the kernel tarball (once per installed package) is left out of
the cold check: it is the same with either schema set.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "nix" / "modules"
sys.path.insert(0, str(ROOT))

from ghafgen.toolchain import basetrees, bindings, realtools, schemaset  # noqa: E402
from ghafgen.tools import run  # noqa: E402


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _full_mk_schema(tool: bindings.DtSchema, tree: Path) -> tuple[float, float]:
    where = tree / "Documentation/devicetree/bindings"
    cpu = _children_cpu()
    wall = _seconds(
        lambda: run(tool.argv("dt-mk-schema") + ["-j", "--", "."], cwd=where)
    )
    return wall, _children_cpu() - cpu


def _cold_cache(tree: Path, folder: Path) -> Path:
    """A cache dir with nothing in it but the unpacked kernel subset (linked)."""
    tar = basetrees.tarball("6.12")
    assert tar is not None
    st = tar.stat()
    key = f"{tar.name.removesuffix('.tar.xz')}-{st.st_size}-{st.st_mtime_ns}"
    entry = folder / "kernel" / key
    entry.mkdir(parents=True)
    (entry / tree.name).symlink_to(tree)
    return folder


def _check(target: str, cache: Path, tree: Path) -> tuple[float, str]:
    env = {**os.environ, "GHAFGEN_CACHE_DIR": str(cache), "PYTHONPATH": str(tree)}
    folder = tree / "nix" / "modules" / target
    argv = [sys.executable, "-m", "ghafgen", "check", str(folder)]
    cpu = _children_cpu()
    start = time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path.
    done = subprocess.run(
        argv, cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    schema = [ln for ln in done.stdout.splitlines() if " schema " in ln]
    return seconds, (
        f"CPU {cpu:.1f} s; exit {done.returncode}, {len(schema)} schema lines"
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _findings(full: bool) -> dict[bytes, set[Any]]:
    """Every finding dt-validate gives on every reference tree, per tree bytes."""
    seen: dict[bytes, set[Any]] = {}
    real_validate, real_select = bindings.validate, schemaset.remembered

    def recording(tool: bindings.DtSchema, dtbs: list[Path], *rest: Any) -> Any:
        found = real_validate(tool, dtbs, *rest)
        for dtb, fs in found.items():
            seen[dtb.read_bytes()] = set(fs)
        return found

    bindings.validate = recording  # type: ignore[assignment]
    if full:
        schemaset.remembered = lambda *_: None  # type: ignore[assignment,return-value]
    try:
        from ghafgen import catalog
        from ghafgen.toolchain.guestbase import dump_qemu_virt

        with tempfile.TemporaryDirectory() as tmp:
            virt = dump_qemu_virt(Path(tmp))
            realtools.check_with_real_tools(
                MODULES, realtools.CheckInputs(qemu_dtb=virt), catalog.load()
            )
    finally:
        bindings.validate, schemaset.remembered = real_validate, real_select  # type: ignore[assignment]
    return seen


def _compare() -> bool:
    subset, every = _findings(full=False), _findings(full=True)
    same = subset == every
    print(
        f"findings on {len(every)} reference trees: "
        f"{sum(len(v) for v in every.values())} with every schema, "
        f"{sum(len(v) for v in subset.values())} with the subset: "
        + ("the same" if same else "DIFFERENT"),
        flush=True,
    )
    for dtb in every.keys() | subset.keys():
        a, b = every.get(dtb, set()), subset.get(dtb, set())
        for f in sorted(a - b, key=str):
            print(f"  only with every schema: {f}")
        for f in sorted(b - a, key=str):
            print(f"  only with the subset:   {f}")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="nvidia-jetson-orin-agx-uarta")
    parser.add_argument("--no-full", action="store_true")
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--no-compare", action="store_true")
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="Time `check` of another checkout (e.g. `git archive` of a commit before).",
    )
    args = parser.parse_args()
    tool = bindings.dtschema()
    tar = basetrees.tarball("6.12")
    if tool is None or tar is None:
        sys.exit("needs dtschema for this Python and linux-source-6.12")
    tree = basetrees.kernel_subset(tar)
    print(f"dtschema {tool.version}; {os.cpu_count()} CPUs; load {os.getloadavg()}")
    full = 0.0
    if not args.no_full:
        full, cpu = _full_mk_schema(tool, tree)
        print(
            f"dt-mk-schema, every 6.12 binding (cold): {full:7.1f} s (CPU {cpu:.1f} s)",
            flush=True,
        )
    if not args.no_check:
        with tempfile.TemporaryDirectory() as tmp:
            cache = _cold_cache(tree, Path(tmp))
            cold, said = _check(args.target, cache, args.tree)
            picked = [p.name for p in (cache / "kernel").glob("*/schemas/*")]
            print(f"check {args.target} of {args.tree} (cold): {cold:7.1f} s")
            print(f"  {said}; schemas processed: {picked}")
            warm, said = _check(args.target, cache, args.tree)
            print(f"check {args.target} (warm): {warm:7.1f} s ({said})", flush=True)
        if full:
            print(f"cold check / full dt-mk-schema: {cold / full:.2f} (target <= 0.20)")
    print(f"load: {os.getloadavg()}", flush=True)
    if not args.no_compare and not _compare():
        sys.exit(1)


if __name__ == "__main__":
    main()
