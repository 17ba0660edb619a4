"""Start-up of `ghafgen --help` and `ghafgen validate PROFILE`, against Typer's own import.

Run: python3 benchmarks/startup.py [--runs N] [--tree CHECKOUT] [--against CHECKOUT]

Each command runs as a whole process, as users run it (bytecode cache warm),
interleaved with `python3 -c 'import typer'` so that both see the same load;
the table gives the median wall time, its ratio to Typer's import, and the
median CPU time (user + system) with its ratio, which moves less on a busy
machine. The target (issue #17) is 1.3x for both commands; it is printed,
never asserted. `--tree` times another checkout (e.g. an older commit in a
git worktree) with the same Python and Typer; `--against` times a second
checkout in the same rounds, the fairer comparison on a shared machine.
Figures measured so far are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "profiles/orin-agx-uarta.toml"
TARGET = 1.3


def commands(py: str) -> list[tuple[str, list[str]]]:
    return [
        ("python3 -c 'import typer'", [py, "-c", "import typer"]),
        ("ghafgen --help", [py, "-m", "ghafgen", "--help"]),
        (f"ghafgen validate {PROFILE}", [py, "-m", "ghafgen", "validate", PROFILE]),
    ]


def run_once(argv: list[str], tree: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=tree, env=env, capture_output=True, check=False)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000
    return wall, cpu


def measure(trees: list[Path], runs: int) -> list[list[tuple[str, float, float]]]:
    """Per tree: (command, median wall ms, median CPU ms), Typer's import first.

    Each round runs every tree's commands in turn, so that the trees compared
    see the same load."""
    # The bytecode cache is written on the first run, as after an install.
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    envs = [dict(base_env, PYTHONPATH=str(tree)) for tree in trees]
    cmds = commands(sys.executable)
    jobs = [(i, label, argv) for i in range(len(trees)) for label, argv in cmds]
    for i, _label, argv in jobs:
        run_once(argv, trees[i], envs[i])
    times: dict[tuple[int, str], list[tuple[float, float]]] = {
        (i, label): [] for i, label, _ in jobs
    }
    for _ in range(runs):
        for i, label, argv in jobs:
            times[i, label].append(run_once(argv, trees[i], envs[i]))
    return [
        [
            (
                label,
                statistics.median(w for w, _ in times[i, label]),
                statistics.median(c for _, c in times[i, label]),
            )
            for label, _ in cmds
        ]
        for i in range(len(trees))
    ]


def table(rows: list[tuple[str, float, float]]) -> str:
    _, base_wall, base_cpu = rows[0]
    lines = [
        f"{'command':52} {'median ms':>9} {'ratio':>6} {'CPU ms':>7} {'ratio':>6}  target"
    ]
    for label, wall, cpu in rows:
        target = "" if label.startswith("python3") else f"< {TARGET}x"
        lines.append(
            f"{label:52} {wall:9.1f} {wall / base_wall:5.2f}x {cpu:7.1f} "
            f"{cpu / base_cpu:5.2f}x  {target}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="The checkout to time (its profiles/ and ghafgen/); default this one.",
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="Another checkout timed in the same rounds (e.g. the commit before a "
        "change): one table each, both under the same load.",
    )
    args = parser.parse_args()
    trees = [args.tree.resolve()] + ([args.against.resolve()] if args.against else [])
    for tree, rows in zip(trees, measure(trees, args.runs), strict=True):
        print(f"{tree}, Python {sys.version.split()[0]}, {args.runs} runs each")
        print(table(rows))


if __name__ == "__main__":
    main()
