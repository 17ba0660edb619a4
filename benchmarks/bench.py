"""Time ghafgen's commands and print a table; targets are printed, never asserted.

Run: python3 benchmarks/bench.py [--runs N]
Whole commands are compared, in the same run, with `python3 -c pass`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python3 benchmarks/bench.py` from a checkout
PROFILES = sorted(str(p) for p in (ROOT / "profiles").glob("*.toml"))


def best_of(runs: int, fn: Callable[[], object]) -> tuple[float, float]:
    """(median, min) wall time of `fn` over `runs` calls, in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


# Commands run as users run them: with Python's bytecode cache. A session or
# CI that exports PYTHONDONTWRITEBYTECODE=1 would otherwise time recompiling
# every ghafgen module on each start (measured: validate 3.9x -> see note).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def command(argv: list[str]) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, check=False)

    run()  # warm: writes the bytecode cache
    return run


def in_process_validate() -> object:
    from ghafgen import catalog
    from ghafgen.rules.engine import validate

    return validate([Path(p) for p in PROFILES], catalog.load())


def in_process_render() -> object:
    """Validate and render every reference profile, writing nothing."""
    from ghafgen import catalog
    from ghafgen.render.files import render_target
    from ghafgen.render.plan import plan
    from ghafgen.rules.engine import validate

    report = validate([Path(p) for p in PROFILES], catalog.load())
    return [render_target(plan(p, b, "bench")) for p, b in report.usable]


def scale_child(n: int, vms: int, runs: int) -> None:
    """In a child process (GHAFGEN_CATALOG set): time validate+render of one large profile."""
    from benchmarks.synthetic import profile_text
    from ghafgen import catalog
    from ghafgen.profile.parse import load_text
    from ghafgen.render.files import render_target
    from ghafgen.render.plan import plan
    from ghafgen.rules.engine import apply_rules

    text = profile_text(n, vms)

    def once() -> int:
        result = load_text(text, "synthetic.toml")
        board, found = apply_rules(result, catalog.load())
        assert result.profile is not None and board is not None, found
        assert not [f for f in found if f.severity.value == "error"], found[:3]
        return len(render_target(plan(result.profile, board, "synthetic.toml")))

    files = once()
    med, low = best_of(runs, once)
    print(f"{med:.1f} {low:.1f} {files}")


def scaling(runs: int) -> list[tuple[str, float, float, str]]:
    from benchmarks.synthetic import SHAPES, write_catalog

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        catalog = write_catalog(Path(tmp) / "data", max(n for n, _vms in SHAPES))
        env = {**os.environ, "GHAFGEN_CATALOG": str(catalog), "PYTHONPATH": str(ROOT)}
        for n, vms in SHAPES:
            done = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__)),
                    "--scale-child",
                    str(n),
                    str(vms),
                    "--runs",
                    str(runs),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                sys.exit(f"synthetic board, {n} devices, {vms} VMs:\n{done.stderr}")
            med, low, files = done.stdout.split()
            note = f"{files} files" + ("; target < 1000 ms" if n == 500 else "")
            rows.append(
                (
                    f"synthetic: {n} devices, {vms} VMs (in-process)",
                    float(med),
                    float(low),
                    note,
                )
            )
    return rows


def guest_boot_row() -> tuple[str, float, float, str] | None:
    """One guest boot as the boot test runs it, when its stand-ins are fetched."""
    from tests.guestinit import stand_ins

    if stand_ins() is None or not shutil.which("qemu-system-aarch64"):
        return None
    from benchmarks.guest_boot import DEFAULT, boot_seconds, reference_guests

    guest = next(g for g in reference_guests() if g.id == DEFAULT)
    with tempfile.TemporaryDirectory() as tmp:
        seconds, _ok, _variant = boot_seconds(guest, Path(tmp))
    ms = seconds * 1000
    note = "one run, QEMU TCG; benchmarks/guest_boot.py --all: each guest"
    return (f"guest boot {DEFAULT.split('-agx-')[1]}", ms, ms, note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--scale-child",
        nargs=2,
        type=int,
        metavar=("DEVICES", "VMS"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--no-scale", action="store_true", help="Skip the synthetic board."
    )
    parser.add_argument(
        "--schemas",
        action="store_true",
        help="Add dt-validate rows per target, cold and cached (minutes).",
    )
    parser.add_argument(
        "--schemas-cold",
        action="store_true",
        help="With --schemas: also time dt-mk-schema over the bindings (~2 min).",
    )
    parser.add_argument(
        "--no-boot", action="store_true", help="Skip the guest boot (seconds)."
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="Time commands without Python's bytecode cache (the worst case).",
    )
    args = parser.parse_args()
    if args.scale_child:
        scale_child(*args.scale_child, args.runs)
        return
    if args.no_bytecode_cache:
        ENV["PYTHONDONTWRITEBYTECODE"] = "1"
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
    if shutil.which("nix-instantiate") and shutil.which("dtc"):
        med, low = best_of(
            min(args.runs, 5), command([py, "-m", "ghafgen", "check", "nix/modules"])
        )
        rows.append(("ghafgen check nix/modules (real tools)", med, low, ""))
        med, low = best_of(
            min(args.runs, 5),
            command([py, "-m", "ghafgen", "check", "nix/modules", "--no-schemas"]),
        )
        rows.append(("ghafgen check nix/modules --no-schemas", med, low, ""))
    if args.schemas:
        from benchmarks import schemas

        rows += schemas.rows(args.runs, args.schemas_cold)
    in_process_validate()  # warm imports and catalog cache
    med, low = best_of(args.runs, in_process_validate)
    rows.append(
        (f"validate(catalog.load()) in-process, {len(PROFILES)} profiles", med, low, "")
    )
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
    if not args.no_scale:
        rows += scaling(max(3, args.runs // 3))
    booted = None if args.no_boot else guest_boot_row()
    if booted is not None:
        rows.append(booted)
    print(f"{'benchmark':44} {'median ms':>10} {'min ms':>8}  note")
    for label, med, low, note in rows:
        print(f"{label:44} {med:10.1f} {low:8.1f}  {note}")


if __name__ == "__main__":
    main()
