"""Time ghafgen's commands and print a table; targets are printed, never asserted.

Run: python3 benchmarks/bench.py [--runs N]
Whole commands are compared, in the same run, with `python3 -c pass`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted(str(p) for p in (ROOT / "profiles").glob("*.toml"))


def best_of(runs: int, fn: Callable[[], object]) -> tuple[float, float]:
    """(median, min) wall time of `fn` over `runs` calls, in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def command(argv: list[str]) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)

    return run


def in_process_validate() -> object:
    from ghafgen.validate import validate

    return validate([Path(p) for p in PROFILES])


def in_process_render() -> object:
    """Validate and render every reference profile, writing nothing."""
    from ghafgen.render.files import render_target
    from ghafgen.render.plan import plan
    from ghafgen.validate import validate

    report = validate([Path(p) for p in PROFILES])
    return [render_target(plan(p, b, "bench")) for p, b in report.usable]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    rows: list[tuple[str, float, float, str]] = []
    base, base_min = best_of(args.runs, command([py, "-c", "pass"]))
    rows.append(("python3 -c pass (baseline)", base, base_min, ""))
    for label, argv, target in (
        ("ghafgen --help", [py, "-m", "ghafgen", "--help"], 4.0),
        (
            "ghafgen validate (all refs)",
            [py, "-m", "ghafgen", "validate", *PROFILES],
            4.0,
        ),
    ):
        med, low = best_of(args.runs, command(argv))
        rows.append(
            (label, med, low, f"{med / base:.1f}x baseline (target < {target:.0f}x)")
        )
    with tempfile.TemporaryDirectory() as out:
        gen = [py, "-m", "ghafgen", "generate", *PROFILES, "-o", out]
        med, low = best_of(1, command(gen))
        rows.append(("ghafgen generate (all refs, first write)", med, low, ""))
        med, low = best_of(args.runs, command(gen))
        rows.append(
            ("ghafgen generate (all refs, no change)", med, low, "target < 500 ms")
        )
    in_process_validate()  # warm imports and catalog cache
    med, low = best_of(args.runs, in_process_validate)
    rows.append((f"validate() in-process, {len(PROFILES)} profiles", med, low, ""))
    in_process_render()
    med, low = best_of(args.runs, in_process_render)
    rows.append(
        (
            f"validate+render in-process, {len(PROFILES)} profiles",
            med,
            low,
            "target < 300 ms",
        )
    )
    print(f"{'benchmark':44} {'median ms':>10} {'min ms':>8}  note")
    for label, med, low, note in rows:
        print(f"{label:44} {med:10.1f} {low:8.1f}  {note}")


if __name__ == "__main__":
    main()
