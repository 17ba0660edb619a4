"""Wall and CPU time of the test suite, as scripts/test.sh runs it or serially.

    python3 benchmarks/suite.py --workers 2          # the whole suite, 2 workers
    python3 benchmarks/suite.py --workers 0          # serially
    python3 benchmarks/suite.py -m "not slow"        # the quick loop
    python3 benchmarks/suite.py --compare            # a subset: serial vs -n auto

Prints one line per pytest run: wall seconds, CPU seconds of pytest and everything it
started, the load average before and after (on a shared machine the wall
time says as much about the neighbours as about the suite), and pytest's
summary line. The caches (kernel subsets, board trees, schemas) are left as
they are: run it once on an empty GHAFGEN_CACHE_DIR for a first run.
`--compare` runs the tests once to fill them (its line is printed too), then
serially and in parallel, one after the other.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# A subset that starts many processes (ghafgen, dtc, fdtoverlay, cpp) and
# runs in a few minutes serially: what the second worker can take on.
SUBSET = (
    "tests/test_no_traceback.py",
    "tests/test_host_trees.py",
    "tests/test_hostile_files.py",
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(workers: str, marker: str, rest: list[str]) -> tuple[float, int]:
    """Run pytest once and print its line; (wall seconds, exit status)."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if workers != "0":
        argv += ["-n", workers, "--dist", "loadgroup"]
    else:
        argv += ["-n", "0"]
    if marker:
        argv += ["-m", marker]
    argv += rest
    before, cpu = os.getloadavg(), _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else done.stderr.strip()[-300:]
    print(
        f"{' '.join(argv[3:])}: wall {wall:.1f} s, CPU "
        f"{_children_cpu() - cpu:.1f} s, load {before[0]:.1f} -> "
        f"{os.getloadavg()[0]:.1f}; {summary}",
        flush=True,
    )
    for line in lines:
        if line.startswith(("FAILED", "ERROR")):
            print(f"  {line}")
    return wall, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="0", help="pytest-xdist -n (0: serial)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="serially, then with --workers (default auto), same tests, one run; "
        "without test paths: the process-heavy SUBSET",
    )
    parser.add_argument("-m", dest="marker", default="", help="pytest -m")
    parser.add_argument("rest", nargs="*", help="more pytest arguments")
    args = parser.parse_args()
    if not args.compare:
        sys.exit(_run(args.workers, args.marker, args.rest)[1])
    rest = args.rest or list(SUBSET)
    workers = args.workers if args.workers != "0" else "auto"
    # Once before timing, so neither run pays for a cache the other filled.
    _run(workers, args.marker, rest)
    serial, a = _run("0", args.marker, rest)
    parallel, b = _run(workers, args.marker, rest)
    print(f"parallel / serial wall: {parallel / serial:.2f}")
    sys.exit(a or b)


if __name__ == "__main__":
    main()
