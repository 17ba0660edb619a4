"""Wall and CPU time of the test suite, as scripts/test.sh runs it or serially.

    python3 benchmarks/suite.py --workers 2          # the whole suite, 2 workers
    python3 benchmarks/suite.py --workers 0          # serially
    python3 benchmarks/suite.py -m "not slow"        # the quick loop

Prints one line: wall seconds, CPU seconds of pytest and everything it
started, the load average before and after (on a shared machine the wall
time says as much about the neighbours as about the suite), and pytest's
summary line. The caches (kernel subsets, board trees, schemas) are left as
they are: run it once on an empty GHAFGEN_CACHE_DIR for a first run.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="0", help="pytest-xdist -n (0: serial)")
    parser.add_argument("-m", dest="marker", default="", help="pytest -m")
    parser.add_argument("rest", nargs="*", help="more pytest arguments")
    args = parser.parse_args()
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if args.workers != "0":
        argv += ["-n", args.workers, "--dist", "loadgroup"]
    if args.marker:
        argv += ["-m", args.marker]
    argv += args.rest
    before = os.getloadavg()
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else done.stderr.strip()[-300:]
    print(
        f"{' '.join(argv[3:])}: wall {wall:.1f} s, CPU "
        f"{usage.ru_utime + usage.ru_stime:.1f} s, load {before[0]:.1f} -> "
        f"{os.getloadavg()[0]:.1f}; {summary}"
    )
    for line in lines:
        if line.startswith(("FAILED", "ERROR")):
            print(f"  {line}")
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
