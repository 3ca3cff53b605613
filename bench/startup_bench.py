"""Start-up cost of the command line, timed as whole processes against ``python -c pass``.

    python bench/startup_bench.py [--rounds 15] [--python .venv/bin/python] [--compare DIR]

Runs each command ``--rounds`` times, interleaved (round 1 of every command, then round 2 …) so that a noisy
neighbour on the machine hits all of them alike, and prints min and median wall time and CPU time
(user + sys of the child, from ``os.wait4``), with the ratio to ``python -c pass`` on both. Two passes:
**cold** (an empty compiled-calendar cache before every run: each run builds and writes it) and **warm**
(the cache written once, then read by every run). Target (issue 15 item 5): ``--help`` and a one-line
``deadline`` each ≤ 4x ``python -c pass``.

Commands run as ``python -m daemon …`` from the repository root with the default ``config.yaml``, so the
figures measure this checkout (an installed ``hotline-sla`` script adds its own small wrapper cost).
Bytecode: pip byte-compiles an installed package, so its commands never run the compiler. A checkout run
with ``PYTHONDONTWRITEBYTECODE=1`` in the environment (as some sandboxes set it) would compile every module
of ours at every start (~25 ms of a warm ``deadline``), so the children run without it (``--keep-env``
keeps it) and one untimed run of each command writes the ``__pycache__`` files first.
``--compare DIR`` runs the same commands in another checkout (e.g. ``git archive main | tar -x -C DIR``) in
the same rounds, labelled ``[DIR's name]``: before and after, paired in one run.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "--help": ["-m", "daemon", "--help"],
    "deadline": ["-m", "daemon", "deadline", "--rule", "municipal_complaint", "--received", "2024-09-27 16:30"],
    "calendar status": ["-m", "daemon", "calendar", "status", "--now", "2026-11-20 09:00"],
}


def run_once(argv: list[str], env: dict[str, str], root: Path = ROOT) -> tuple[float, float]:
    """(wall s, user+sys CPU s) of one whole process, run in the checkout ``root``."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=root, env={**env, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(
    python: str, rounds: int, cache_dir: Path, *, cold: bool, compare: Path | None = None, keep_env: bool = False
) -> dict[str, list[tuple[float, float]]]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_dir)}
    env.pop("HOTLINE_SLA_CONFIG", None)
    if not keep_env:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    runs = [(name, [python, *args], ROOT) for name, args in COMMANDS.items()]
    script = Path(python).parent / "hotline-sla"  # the console script, when the package is installed there
    if script.exists():
        runs.append(("hotline-sla --help (script)", [str(script), "--help"], ROOT))
    if compare is not None:
        runs += [(f"{name} [{compare.name}]", [python, *args], compare)
                 for name, args in COMMANDS.items() if "-c" not in args]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in runs}
    for _, argv, root in runs:  # untimed: writes the bytecode and, for the warm pass, fills the cache
        run_once(argv, env, root)
    for _ in range(rounds):
        for name, argv, root in runs:
            if cold:
                shutil.rmtree(cache_dir, ignore_errors=True)
                cache_dir.mkdir()
            results[name].append(run_once(argv, env, root))
    return results


def report(title: str, results: dict[str, list[tuple[float, float]]]) -> None:
    base = results["python -c pass"]
    base_wall = statistics.median(w for w, _ in base)
    base_cpu = statistics.median(c for _, c in base)
    print(f"\n{title}: {len(base)} rounds, interleaved; ratio = median / median of `python -c pass`")
    print(f"{'command':<32}{'wall min':>10}{'wall med':>10}{'cpu min':>10}{'cpu med':>10}{'x wall':>9}{'x cpu':>8}")
    for name, runs in results.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        print(
            f"{name:<32}{min(walls) * 1000:>8.1f}ms{statistics.median(walls) * 1000:>8.1f}ms"
            f"{min(cpus) * 1000:>8.1f}ms{statistics.median(cpus) * 1000:>8.1f}ms"
            f"{statistics.median(walls) / base_wall:>8.1f}x{statistics.median(cpus) / max(base_cpu, 1e-6):>7.1f}x"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--python", default=sys.executable, help="the interpreter with the package installed")
    ap.add_argument("--warm-only", action="store_true", help="skip the cold-cache pass")
    ap.add_argument("--compare", type=Path, help="another checkout to time in the same rounds (e.g. main)")
    ap.add_argument("--keep-env", action="store_true",
                    help="keep PYTHONDONTWRITEBYTECODE from the environment (time the compiler too)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        cache_dir = Path(tmp) / "cache"
        cache_dir.mkdir()
        if not args.warm_only:
            report("cold cache (emptied before every run)", measure(args.python, args.rounds, cache_dir, cold=True,
                                                                       compare=args.compare, keep_env=args.keep_env))
        report("warm cache", measure(args.python, args.rounds, cache_dir, cold=False, compare=args.compare,
                                     keep_env=args.keep_env))


if __name__ == "__main__":
    main()
