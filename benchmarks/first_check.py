"""A first `ghafgen check`: the binding schemas it processes, and what it finds.

    python3 benchmarks/first_check.py [--target NAME] [--no-full] [--no-compare]

Prints, in one run (so the figures share one machine load):
- `dt-mk-schema` over every binding of linux-source-6.12, as `check` ran it
  before it chose the schemas (cold, not cached);
- `ghafgen check` of one target with an empty cache but the unpacked kernel
  subset (cold: board tree, schema subset, dt-validate, Nix), then the same
  again (warm); the cold one's ratio to the full `dt-mk-schema`, wall and
  CPU (target: at most 1/5). CPU is that of the processes and all they
  started: on a shared machine it moves less with the load than wall time.
- whether `check` as it runs (each tree and its base cut down to what the
  target's files touch, the schemas those select) says the same as with
  the whole trees and every schema: `check` over nix/modules twice, in
  process; every schema result compared, and every finding dt-validate
  gives on a node the files touch, in the base and in the tree.

The unpack of the kernel tarball (once per installed package) is left out of
the cold check: it is the same with either schema set.
"""

from __future__ import annotations

import argparse
import json
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

from ghafgen import catalog  # noqa: E402
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


def _check(target: str, cache: Path, tree: Path) -> tuple[float, float, str]:
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
    return seconds, cpu, f"exit {done.returncode}, {len(schema)} schema lines"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# One validated pair: the whole base and tree `check` made, and what
# dt-validate found on the base and on the tree it was given for them.
Pair = tuple[bytes, bytes, set[Any], set[Any]]


def _findings(full: bool, virt: Path) -> tuple[list[realtools.Result], list[Pair]]:
    """check over every reference target: its schema results and pairs.

    full: the whole trees against every schema (as check ran before it cut
    the trees and chose schemas); else as check runs."""
    made: list[tuple[bytes, bytes, Path, Path]] = []
    found: dict[Path, set[Any]] = {}
    real_pairs, real_validate = realtools._validated_pairs, bindings.validate
    real_select = schemaset.remembered

    def recorded_pairs(jobs: list[Any], where: Path, whole: bool) -> Any:
        out = real_pairs(jobs, where, whole)
        for job, (base, tree) in zip(jobs, out, strict=True):
            made.append((job.base.read_bytes(), job.dtb.read_bytes(), base, tree))
        return out

    def recorded_validate(tool: bindings.DtSchema, dtbs: list[Path], *rest: Any) -> Any:
        got = real_validate(tool, dtbs, *rest)
        found.update({p: set(v) for p, v in got.items()})
        return got

    realtools._validated_pairs = recorded_pairs  # type: ignore[assignment]
    bindings.validate = recorded_validate  # type: ignore[assignment]
    if full:
        schemaset.remembered = lambda *_: None  # type: ignore[assignment,return-value]
    try:
        results = realtools.check_with_real_tools(
            MODULES,
            realtools.CheckInputs(qemu_dtb=virt, whole_trees=full),
            catalog.load(),
        )
    finally:
        realtools._validated_pairs = real_pairs  # type: ignore[assignment]
        bindings.validate = real_validate  # type: ignore[assignment]
        schemaset.remembered = real_select  # type: ignore[assignment]
    pairs = [(b, t, found[bp], found[tp]) for b, t, bp, tp in made]
    return [r for r in results if r.check == "schema"], pairs


def _compare() -> bool:
    """check as it runs against the whole trees with every schema, on every
    reference target: the same results, and the same findings on every node
    the target's files touch (base and tree)."""
    from ghafgen.toolchain import prune
    from ghafgen.toolchain.guestbase import dump_qemu_virt

    with tempfile.TemporaryDirectory() as tmp:
        # One dump for both: QEMU seeds /chosen afresh each time.
        virt = dump_qemu_virt(Path(tmp))
        cut, cut_pairs = _findings(False, virt)
        whole, whole_pairs = _findings(True, virt)
    same = cut == whole and len(cut_pairs) == len(whole_pairs)
    for a, b in zip(cut, whole, strict=False):
        if a != b:
            print(f"  as check runs: {a.render()}\n  whole trees:   {b.render()}")
    count = 0
    for (base, tree, cb, ct), (base2, tree2, wb, wt) in zip(
        cut_pairs, whole_pairs, strict=False
    ):
        if (base, tree) != (base2, tree2):
            same = False
            print("  check made other trees the second time")
        touched = prune.changed(base, tree)
        for name, cut_found, whole_found in (("base", cb, wb), ("tree", ct, wt)):
            a = {f for f in cut_found if f.node in touched}
            b = {f for f in whole_found if f.node in touched}
            count += len(b) if name == "tree" else 0
            same = same and a == b
            for f in sorted(a - b, key=str):
                print(f"  only as check runs ({name}): {f}")
            for f in sorted(b - a, key=str):
                print(f"  only with the whole trees ({name}): {f}")
    print(
        f"{len(cut)} schema results and {count} findings on the touched nodes of "
        f"{len(whole_pairs)} trees: as check runs (cut trees, chosen schemas) and "
        "with the whole trees and every schema: "
        + ("the same" if same else "DIFFERENT"),
        flush=True,
    )
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
    full = full_cpu = 0.0
    if not args.no_full:
        full, full_cpu = _full_mk_schema(tool, tree)
        print(
            f"dt-mk-schema, every 6.12 binding (cold): {full:7.1f} s "
            f"(CPU {full_cpu:.1f} s); load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    if not args.no_check:
        with tempfile.TemporaryDirectory() as tmp:
            cache = _cold_cache(tree, Path(tmp))
            cold, cold_cpu, said = _check(args.target, cache, args.tree)
            picked = [p.name for p in (cache / "kernel").glob("*/schemas/*")]
            print(
                f"check {args.target} of {args.tree} (cold): {cold:7.1f} s "
                f"(CPU {cold_cpu:.1f} s); load {os.getloadavg()[0]:.1f}"
            )
            chosen = next((cache / "kernel").glob("*/schemas/selections/*.json"), None)
            count = len(json.loads(chosen.read_text())) if chosen else 0
            print(f"  {said}; schemas processed: {picked}, {count} chosen")
            warm, warm_cpu, said = _check(args.target, cache, args.tree)
            print(
                f"check {args.target} (warm): {warm:7.1f} s (CPU {warm_cpu:.1f} s; {said})",
                flush=True,
            )
        if full:
            print(
                f"cold check / full dt-mk-schema: {cold / full:.2f} wall, "
                f"{cold_cpu / full_cpu:.2f} CPU (target <= 0.20)"
            )
    print(f"load: {os.getloadavg()}", flush=True)
    if not args.no_compare and not _compare():
        sys.exit(1)


if __name__ == "__main__":
    main()
