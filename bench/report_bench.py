"""Benchmark: peak RSS and time of the month-end reports over N open cases (issue 15 item 3).

For each size (``--cases``, default 100,000 and 1,000,000) a SQLite store of open cases received in
October-November 2026 is generated (bench/digest_bench.py ``generate``), then each job runs in a fresh child
process (so that each peak is its own): ``carry_over`` (the carry-over of November, built and rendered as
Markdown, and the HTML and XLSX files streamed to a temporary directory as the job writes them),
``month_end`` (the month-end reminders of every unit, streamed one unit at a time, rendered), ``ranking``
(the November ranking read from the store, ranked and rendered as HTML and XLSX). Printed per job: seconds,
CPU seconds (user + system), the child's peak RSS (ru_maxrss), and the ratios of time, CPU and peak RSS
to the smallest size's, with the ratio of the sizes for reference.

    python bench/report_bench.py [--cases 100000,1000000] [--units 300] [--db-dir /tmp] [--keep]

Measured after streaming (SQLite, two shared cores; docs/reports.md, Performance): carry-over 6.6 s, 4.7 s
CPU, 73 MB at 100k and 22.3 s, 13.5 s CPU, 73 MB at 300k (peak 1.00x); reminders 66 MB and 70 MB (1.06x).

Targets (issue 15): carry-over and ranking at 1M open ≤ 400 MB peak RSS and ≤ 15 s; peak RSS at 1M ≤ 1.5x
that at 100k.
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
JOBS = ("carry_over", "month_end", "ranking")


def run_job(job: str, db: Path) -> dict[str, Any]:
    """Run one job in this process; its seconds and this process's peak RSS."""
    from daemon.config import Config
    from daemon.core.calendar import WorkCalendar
    from daemon.storage.store import Store

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
            base = first.setdefault(job, r)
            print(f"  {job:<11} {r['seconds']:7.2f} s  CPU {r['cpu_seconds']:7.2f} s  "
                  f"peak RSS {r['peak_rss_mb']:7.1f} MB   output {r['output_bytes']:,} B")
            if base is not r:
                print(f"  {'':<11} ratios to {smallest:,} ({cases / smallest:.1f}x the cases): time "
                      f"{r['seconds'] / base['seconds']:.2f}x, CPU {r['cpu_seconds'] / base['cpu_seconds']:.2f}x, "
                      f"peak RSS {r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
