"""Benchmark: the daily digest over 1,000,000 open cases of which 50,000 are overdue (target < 10 s).

Generates the cases straight into a SQLite database (raw ``executemany``, no rule matching: the derived
columns are written as the store would), then times building the digest from the store and rendering it
as Markdown, HTML and XLSX, and prints the figures and the peak RSS.

    python bench/digest_bench.py [--cases 1000000] [--overdue 50000] [--db /tmp/digest_bench.sqlite3] [--keep]

With ``--keep`` and an existing database of the same size, generation is skipped.
"""

from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.core.calendar import WorkCalendar
from daemon.core.rules import load_rules
from daemon.core.timeutil import parse_time
from daemon.reports import digest_render
from daemon.reports.digest import build_digest
from daemon.storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
NOW = parse_time("2026-11-20 09:00")
FMT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DATETIME on SQLite (naive UTC)
RULES = [("municipal_complaint", "complaint", "city"), ("provincial_complaint", "complaint", "province"),
         ("inquiry_suggestion", "inquiry", "hotline"), ("other_request", "help", "city")]
SUMMARIES = ["反映小区供暖温度不达标", "反映道路坑洼不平无警示牌", "咨询医保异地报销政策", "反映楼道照明损坏",
             "反映施工噪音扰民", "求助追讨装修工程欠薪", "建议增设公交站点", "反映自来水水质浑浊"]


def generate(path: Path, n: int, overdue: int, units: int, seed: int = 7) -> None:
    if path.exists():
        path.unlink()
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    store.close()
    rng = random.Random(seed)
    now_utc = NOW.astimezone(UTC).replace(tzinfo=None)
    created = now_utc.strftime(FMT)
    unit_names = [f"第{i:03d}承办单位" for i in range(units)]
    overdue_ids = set(rng.sample(range(n), overdue))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    sql = (
        "INSERT INTO cases (number, source, category, unit, summary, status, received_at, difficult, content_hash,"
        " rule_id, due_at, provisional, warnings, return_rule_id, return_due_at, deadline_version, next_check_at,"
        " check_failures, created_at, updated_at) VALUES (?,?,?,?,?,?,?,0,'x',?,?,0,'[]','return_request',?,1,?,0,?,?)"
    )
    batch = []
    for i in range(n):
        rule, category, source = RULES[i % 4]
        if i in overdue_ids:  # due within the last 15 days
            due = now_utc - timedelta(minutes=rng.randrange(1, 15 * 24 * 60))
        else:  # due within the next 10 days
            due = now_utc + timedelta(minutes=rng.randrange(1, 10 * 24 * 60))
        received = due - timedelta(days=rng.randrange(3, 30))
        batch.append((
            f"B{i:08d}", source, category, unit_names[rng.randrange(units)], rng.choice(SUMMARIES),
            "signed" if i % 3 else "dispatched", received.strftime(FMT), rule, due.strftime(FMT),
            (received + timedelta(hours=24)).strftime(FMT), due.strftime(FMT), created, created,
        ))
        if len(batch) == 50_000:
            conn.executemany(sql, batch)
            batch.clear()
    if batch:
        conn.executemany(sql, batch)
    conn.commit()
    conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--overdue", type=int, default=50_000)
    p.add_argument("--units", type=int, default=300)
    p.add_argument("--db", type=Path, default=Path("/tmp/digest_bench.sqlite3"))
    p.add_argument("--keep", action="store_true", help="reuse an existing database of the same size")
    args = p.parse_args()

    t0 = time.perf_counter()
    reuse = False
    if args.keep and args.db.exists():
        with sqlite3.connect(args.db) as c:
            reuse = c.execute("SELECT count(*) FROM cases").fetchone()[0] == args.cases
    if not reuse:
        generate(args.db, args.cases, args.overdue, args.units)
    gen_s = time.perf_counter() - t0

    calendar = WorkCalendar.load(overrides_dir=ROOT / "sla_rules" / "holidays")
    rules = load_rules(ROOT / "sla_rules", calendar)
    store = Store(f"sqlite:///{args.db}")
    store.upgrade()  # a kept database from an older schema gets the current indexes (not timed)
    figures: dict[str, float] = {}
    start = time.perf_counter()
    with store.engine.connect() as conn:
        digest = build_digest(conn, rules, calendar, NOW, datetime.strptime("08:30", "%H:%M").time())
    figures["build (SQL aggregate + overdue rows)"] = time.perf_counter() - start
    t = time.perf_counter()
    markdown, _ = digest_render.render_markdown(digest)
    figures["markdown"] = time.perf_counter() - t
    t = time.perf_counter()
    tables = digest_render.digest_tables(digest)
    figures["tables (format the cells once)"] = time.perf_counter() - t
    t = time.perf_counter()
    html = digest_render.render_html(digest, tables=tables)
    figures["html"] = time.perf_counter() - t
    t = time.perf_counter()
    xlsx = digest_render.render_xlsx(digest, tables=tables)
    figures["xlsx"] = time.perf_counter() - t
    total = time.perf_counter() - start
    store.close()

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"cases {args.cases:,} open, {digest.overview.overdue:,} overdue, {len(digest.units)} units"
          f" ({'reused' if reuse else f'generated in {gen_s:.1f} s'}: {args.db})")
    for name, seconds in figures.items():
        print(f"  {name:<40} {seconds:6.2f} s")
    print(f"  {'total build + render':<40} {total:6.2f} s   (target < 10 s: {'ok' if total < 10 else 'MISSED'})")
    print(f"  sizes: markdown {len(markdown.encode()):,} B, html {len(html.encode()) / 1e6:.1f} MB,"
          f" xlsx {len(xlsx) / 1e6:.1f} MB")
    print(f"  peak RSS {rss_mb:.0f} MB")
    return 0 if total < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
