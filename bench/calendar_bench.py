"""Deadlines per second: our precomputed calendar vs a day-by-day loop over chinese_calendar.

    python bench/calendar_bench.py [--n 1000000] [--batch-lines 200000]

Prints: in-process rate for ``Rule.due_at`` (the hot path the store uses) and ``Rule.deadline`` (with
warnings and provisional days), the same deadlines computed with ``chinese_calendar.is_workday`` and
``chinese_calendar.find_workday`` loops, their ratios, and the batch CLI's lines per second.
Targets (issue 2): ≥ 300,000 deadlines/s in-process, ≥ 100× the chinese-calendar loop, batch CLI ≥ 50,000 lines/s.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.core.calendar import WorkCalendar  # noqa: E402
from daemon.core.rules import load_rules  # noqa: E402
from daemon.core.timeutil import LOCAL_TZ  # noqa: E402


def receipts(n: int, seed: int = 12345) -> list[datetime]:
    rng = random.Random(seed)
    start = datetime(2004, 1, 1, tzinfo=LOCAL_TZ)
    span = int((datetime(2026, 12, 1, tzinfo=LOCAL_TZ) - start).total_seconds())
    return [start + timedelta(seconds=rng.randrange(span)) for _ in range(n)]


def cc_loop_due(received: datetime, n: int) -> datetime:
    d, found = received.date(), 0
    while found < n:
        d += timedelta(days=1)
        if chinese_calendar.is_workday(d):
            found += 1
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ) + timedelta(days=1)


def cc_find_workday_due(received: datetime, n: int) -> datetime:
    d: date = chinese_calendar.find_workday(n, received.date())
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ) + timedelta(days=1)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f}/s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--batch-lines", type=int, default=200_000)
    ap.add_argument("--cli-rounds", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    cal = WorkCalendar.load()
    rules = load_rules(ROOT / "sla_rules", cal)
    print(f"calendar + rules load: {time.perf_counter() - t0:.3f} s ({cal.first_year}-{cal.last_year})")
    data = receipts(args.n)
    print(f"receipts: {args.n:,} random instants 2004-01-01 .. 2026-12-01 (Asia/Shanghai)")

    results = {}
    for rule_id in ("municipal_complaint", "inquiry_suggestion"):
        rule = rules.get(rule_id)
        n_days = rule.working_days
        assert n_days is not None
        due = rule.due_at
        t = time.perf_counter()
        ours = [due(r) for r in data]
        t_due = time.perf_counter() - t

        # the calendar arithmetic alone, without the per-day memo that due_at keeps (each call computes)
        raw = rule._due_for_day  # measuring the unmemoised arithmetic on purpose
        t = time.perf_counter()
        for r in data:
            raw(r.astimezone(LOCAL_TZ).toordinal())
        t_raw = time.perf_counter() - t

        full = rule.deadline
        t = time.perf_counter()
        for r in data:
            full(r)
        t_full = time.perf_counter() - t

        t = time.perf_counter()
        loop = [cc_loop_due(r, n_days) for r in data]
        t_loop = time.perf_counter() - t

        t = time.perf_counter()
        find = [cc_find_workday_due(r, n_days) for r in data]
        t_find = time.perf_counter() - t

        assert ours == loop, "results differ from the chinese_calendar.is_workday loop"
        # find_workday starts counting differently when the receipt day is itself a rest day, which is not
        # the legal convention (the day of receipt is never counted); it is a speed reference only.
        find_diff = sum(a != b for a, b in zip(ours, find, strict=True))
        results[rule_id] = (t_due, t_full, t_loop, t_find)
        print(f"\n{rule_id} ({n_days} working days), {args.n:,} deadlines, identical to the is_workday loop:")
        print(f"  ours Rule.due_at            {rate(args.n, t_due)}  ({t_due:.2f} s)")
        print(f"  ours arithmetic, no memo    {rate(args.n, t_raw)}  ({t_raw:.2f} s)")
        print(f"  ours Rule.deadline (full)   {rate(args.n, t_full)}  ({t_full:.2f} s)")
        print(f"  chinese_calendar is_workday {rate(args.n, t_loop)}  ({t_loop:.2f} s)")
        print(f"  chinese_calendar find_workday {rate(args.n, t_find)}  ({t_find:.2f} s; differs on {find_diff:,}"
              " receipts made on rest days)")
        print(f"  ratio due_at / is_workday loop: {t_loop / t_due:,.0f}x; / find_workday: {t_find / t_due:,.0f}x; "
              f"arithmetic without memo / is_workday loop: {t_loop / t_raw:,.0f}x")

    lines = "\n".join(r.strftime("%Y-%m-%d %H:%M:%S") for r in data[: args.batch_lines]) + "\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "daemon", "deadline", "--rule", "municipal_complaint", "--received", "-"]
    times = []
    for _ in range(args.cli_rounds):  # best of N: the machine may be shared; the best run is the code's speed
        t = time.perf_counter()
        proc = subprocess.run(cmd, input=lines, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
        times.append(time.perf_counter() - t)
        out_lines = proc.stdout.count("\n")
        assert out_lines == args.batch_lines, (out_lines, proc.stderr[-500:])
    print(f"\nbatch CLI (deadline --received -, {args.batch_lines:,} lines, incl. start-up), best of "
          f"{args.cli_rounds}: {rate(args.batch_lines, min(times))}; all runs: "
          + ", ".join(f"{args.batch_lines / t:,.0f}/s" for t in times))

if __name__ == "__main__":
    main()
