"""Benchmark: peak RSS and time of the month-end reports over N open cases (issue 15 item 3).

For each size (``--cases``, default 100,000 and 1,000,000) a SQLite store of open cases received in
October-November 2026 is generated (bench/digest_bench.py ``generate``), then each job runs in a fresh child
process (so that each peak is its own): ``carry_over`` (the carry-over of November, built and rendered as
Markdown, and the HTML and XLSX files streamed to a temporary directory as the job writes them),
``month_end`` (the month-end reminders of every unit, streamed one unit at a time, rendered), ``ranking``
(the November ranking streamed from the store, ranked and rendered as HTML and XLSX), and ``daemon_round``
(what the service does on the first working day: the month-end job run as the ``month-end`` command in a
child process, then the same job in-process, on a copy of the store; printed: this process's resident size
before, after the child and after the in-process run, i.e. whether the daemon gets its memory back).

Printed per job: seconds, CPU seconds (user + system) and CPU µs per open case, the child's peak RSS
(ru_maxrss); at each larger size the ratios of time, CPU and peak RSS to the smallest size's (with the
ratio of the sizes for reference), and for the carry-over and the ranking the seconds and peak RSS
against the issue's targets (≤ 15 s and ≤ 400 MB at 1M open; peak at 1M ≤ 1.5x that at 100k).

    python bench/report_bench.py [--cases 100000,1000000] [--units 300] [--db-dir /tmp] [--keep]

Measured figures: docs/reports.md, Performance (before and after, each in one session). Latest: carry-over
14.0 s CPU and 89.0 MB at 1M (1.08x the 100k peak); ranking 9.3 s CPU and 62.3 MB (1.00x).
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.core.timeutil import parse_time

ROOT = Path(__file__).resolve().parent.parent
NOW = parse_time("2026-12-01 09:00")  # the carry-over of November is due; the ranking of November is final
JOBS = ("carry_over", "month_end", "ranking", "daemon_round")
TARGET_SECONDS, TARGET_PEAK_MB, TARGET_PEAK_RATIO = 15.0, 400.0, 1.5  # issue 15, at 1M open
TARGETED = ("carry_over", "ranking")


def _rss_mb() -> float:
    """This process's resident size now (not its peak), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def daemon_round(db: Path) -> dict[str, Any]:
    """The service's month-end round on a copy of ``db``: in a child process as the service runs it, then
    in-process; this process's resident size before and after each (the daemon's memory after the job)."""
    import shutil

    from daemon.context import AppContext
    from daemon.reports.jobs import run_month_end_job
    from daemon.runtime.report_process import run_report_process

    now = parse_time("2026-12-01 09:30")  # the carry-over of November is due
    out: dict[str, Any] = {"job": "daemon_round", "rss_before_mb": round(_rss_mb(), 1)}
    with tempfile.TemporaryDirectory(dir=db.parent) as tmp:
        for how in ("child", "in_process"):
            copy = Path(tmp) / f"{how}.sqlite3"
            shutil.copyfile(db, copy)
            config_path = Path(tmp) / f"{how}.yaml"
            config_path.write_text(
                f"database: {{url: 'sqlite:///{copy}'}}\nrules_dir: {ROOT / 'sla_rules'}\n"
                "channels: {console: {type: console}}\n"
                "contacts: {supervisors: [{name: 督办员, role: supervisor, channels: [console]}]}\n"
                f"reports: {{output_dir: '{Path(tmp) / how}'}}\n", encoding="utf-8")
            started = time.perf_counter()
            if how == "child":
                done = run_report_process("month-end", str(config_path), now, should_stop=lambda: False,
                                          timeout=3600, monotonic=time.monotonic)
            else:
                ctx = AppContext(str(config_path))
                done = run_month_end_job(ctx.store, ctx.rules, ctx.calendar, ctx.config, now)
                ctx.close()
            out[f"{how}_seconds"] = round(time.perf_counter() - started, 2)
            out[f"rss_after_{how}_mb"] = round(_rss_mb(), 1)
            out[f"{how}_cases"] = sum(int(r.get("cases", 0)) for r in done)
    return out



def run_job(job: str, db: Path) -> dict[str, Any]:
    """Run one job in this process; its seconds and this process's peak RSS."""
    from daemon.config import Config
    from daemon.core.calendar import WorkCalendar
    from daemon.storage.store import Store

    if job == "daemon_round":
        return daemon_round(db)
    store = Store(f"sqlite:///{db}")
    config = Config()
    started = time.perf_counter()
    size = 0
    if job == "carry_over":
        from daemon.reports.month_end import carry_over, write_carry_over

        with tempfile.TemporaryDirectory() as tmp, store.engine.connect() as conn:
            report = carry_over(conn, 2026, 11, NOW)
            html_path, xlsx_path = Path(tmp) / "c.html", Path(tmp) / "c.xlsx"
            message = write_carry_over(report, html_path, xlsx_path, hint="", email_rows=config.reports.email_list_rows)
            size = (len(message.markdown) + len(message.html) + len(message.text) + html_path.stat().st_size
                    + xlsx_path.stat().st_size)
    elif job == "month_end":
        from daemon.reports.backlog import BacklogQuery, backlog_per_unit
        from daemon.reports.month_end import MonthEndAction, render_reminder

        calendar = WorkCalendar.load(overrides_dir=ROOT / "sla_rules" / "holidays")
        now = parse_time("2026-11-26 09:00")
        action = MonthEndAction("month_end", "2026-11/T-3", 2026, 11, date(2026, 11, 26), now, 3)
        with store.engine.connect() as conn:
            for unit, items in backlog_per_unit(conn, BacklogQuery(2026, 11, now, include_carried=True)):
                rendered = render_reminder(action, unit, items, calendar, now)
                size += len(rendered.xlsx or b"") + len(rendered.markdown)
    else:
        from daemon.commands.report_cmds import ranked_cases
        from daemon.reports import ranking_render
        from daemon.reports.ranking import monthly_ranking

        ranking = monthly_ranking(ranked_cases(store, 2026, 11), 2026, 11, NOW, config.scoring)
        size = len(ranking_render.render_html(ranking)) + len(ranking_render.render_xlsx(ranking))
    seconds = time.perf_counter() - started
    store.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"job": job, "seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "output_bytes": size}


def ensure_db(db: Path, cases: int, units: int, keep: bool) -> None:
    from bench.digest_bench import generate

    if keep and db.exists():
        with sqlite3.connect(db) as c:
            if c.execute("SELECT count(*) FROM cases").fetchone()[0] == cases:
                return
    generate(db, cases, cases // 20, units)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="100000,1000000", help="sizes, comma-separated")
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--db-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--keep", action="store_true", help="reuse a generated database of the same size")
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--job", help=argparse.SUPPRESS)  # the child's side
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(run_job(args.job, args.db)))
        return 0
    first: dict[str, dict[str, Any]] = {}
    smallest = 0
    for cases in (int(x) for x in args.cases.split(",")):
        smallest = smallest or cases
        db = args.db_dir / f"report_bench_{cases}.sqlite3"
        t = time.perf_counter()
        ensure_db(db, cases, args.units, args.keep)
        print(f"{cases:,} open cases, {args.units} units ({time.perf_counter() - t:.1f} s to prepare {db})")
        for job in args.jobs.split(","):
            out = subprocess.run([sys.executable, __file__, "--job", job, "--db", str(db)], capture_output=True,
                                 text=True, check=False, cwd=ROOT)
            if out.returncode:
                print(f"  {job}: failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if job == "daemon_round":
                print(f"  {job:<11} daemon RSS {r['rss_before_mb']:.1f} MB before; after the carry-over in a child "
                      f"process ({r['child_seconds']:.1f} s) {r['rss_after_child_mb']:.1f} MB; after the same "
                      f"job in-process ({r['in_process_seconds']:.1f} s) {r['rss_after_in_process_mb']:.1f} MB")
                continue
            base = first.setdefault(job, r)
            print(f"  {job:<11} {r['seconds']:7.2f} s  CPU {r['cpu_seconds']:7.2f} s "
                  f"({r['cpu_seconds'] / cases * 1e6:5.1f} µs/case)  peak RSS {r['peak_rss_mb']:7.1f} MB   "
                  f"output {r['output_bytes']:,} B")
            if base is not r:
                print(f"  {'':<11} ratios to {smallest:,} ({cases / smallest:.1f}x the cases): time "
                      f"{r['seconds'] / base['seconds']:.2f}x, CPU {r['cpu_seconds'] / base['cpu_seconds']:.2f}x, "
                      f"peak RSS {r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x (target ≤ {TARGET_PEAK_RATIO}x)")
            if job in TARGETED:
                print(f"  {'':<11} against the targets set for 1M: {r['seconds'] / TARGET_SECONDS:.2f}x the "
                      f"{TARGET_SECONDS:.0f} s (CPU {r['cpu_seconds'] / TARGET_SECONDS:.2f}x), "
                      f"{r['peak_rss_mb'] / TARGET_PEAK_MB:.2f}x the {TARGET_PEAK_MB:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
