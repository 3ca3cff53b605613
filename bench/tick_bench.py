"""Import rate, tick time and peak RSS with N open cases of which D are due, on SQLite and PostgreSQL.

    python bench/tick_bench.py [--sizes 10000,1000000] [--due 10000] [--backends sqlite,postgres]
                               [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--json]

Per backend and size: a bulletin-shaped CSV (bench/gen_cases.py, received over the 2 days before
2026-11-20 so most cases are still open) is imported fresh, again unchanged, and then as an update of
one case in five (a later 更新时间 and a new status); each import runs in its own process, which reports
its peak RSS, and the bench samples the peak PSS of that process and its import workers together (a large
CSV into SQLite is imported by worker processes: daemon/pipeline/parallel_import.py; bench/memory.py). The tick
runs over the same D due cases at every size (the first D open cases in file order, at the latest of their
next checks; every later case due by then is moved a day later), so it writes the same alerts and outbox
rows whatever the number open, and the bench prints its CPU time per due case and per written row; then it
runs again at the same instant with nothing due ("quiet minute"). PostgreSQL runs in a
private database ``hsla_bench_<pid>``, dropped at the end.

Targets (issue 3): import >= 50,000 cases/s into SQLite; a tick over 10,000 due cases < 1 s; the tick at
1,000,000 open within 1.3x of the tick at 10,000 open; peak RSS < 300 MB importing a 1,000,000-row file
(held against the larger of the two memory figures).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gen_cases import CITY_UNITS, UNITS, generate, write_csv  # noqa: E402
from bench.memory import run_measured  # noqa: E402

DEFAULT_PG = os.environ.get("HOTLINE_SLA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW_TEXT = "2026-11-20 09:00"


def _peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: a child started from a big parent inherits the parent's ru_maxrss across exec
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _context() -> tuple[Any, Any, Any]:
    from daemon.config import Config, ContactConfig, ContactsConfig, UnitConfig
    from daemon.core.calendar import WorkCalendar
    from daemon.core.rules import load_rules

    calendar = WorkCalendar.load(overrides_dir=ROOT / "sla_rules" / "holidays")
    rules = load_rules(ROOT / "sla_rules", calendar)
    units = [u for names in UNITS.values() for u in names] + CITY_UNITS
    config = Config(contacts=ContactsConfig(
        units=[UnitConfig(name=u, contacts=[
            ContactConfig(name=f"承办人{i}", role="handler", mobile=f"138{i:08d}"),
            ContactConfig(name=f"分管领导{i}", role="leader", mobile=f"139{i:08d}"),
        ]) for i, u in enumerate(units)],
        supervisors=[ContactConfig(name="督办员", role="supervisor", mobile="13700000000")],
    ))
    return calendar, rules, config


def child_import(url: str, path: Path) -> dict[str, Any]:
    from daemon.core.timeutil import parse_time
    from daemon.pipeline.sync import import_file
    from daemon.storage.store import Store

    _, rules, _ = _context()
    store = Store(url)
    wall, cpu = time.perf_counter(), time.process_time()
    report = import_file(store, rules, path, now=parse_time(NOW_TEXT))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = report.inserted + report.updated + report.unchanged
    store.close()
    return {"rows": rows, "inserted": report.inserted, "updated": report.updated, "unchanged": report.unchanged,
            "rejected": len(report.rejected), "wall_s": wall, "cpu_s": cpu, "rate": rows / wall,
            "peak_rss_mb": _peak_rss_mb()}


def child_tick(url: str, due: int) -> dict[str, Any]:
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from daemon.pipeline.tick import run_tick
    from daemon.storage.models import alerts, cases, outbox
    from daemon.storage.store import Store

    calendar, rules, config = _context()
    store = Store(url)
    with store.engine.connect() as conn:
        open_cases = conn.execute(select(func.count()).select_from(cases).where(cases.c.next_check_at.is_not(None)))
        n_open = int(open_cases.scalar_one())
        if n_open < due:
            raise SystemExit(f"only {n_open:,} open cases, fewer than --due {due:,}: generate more or ask for fewer")
        # like with like: the due cases are the first `due` open cases in file order, the same rows at every
        # size (gen_cases draws row i the same way whatever the size), so every size's tick evaluates the same
        # cases at the same instant and writes the same alerts and outbox rows; every later case that would be
        # due too is moved a day later
        cohort = conn.execute(select(cases.c.id, cases.c.next_check_at).where(cases.c.next_check_at.is_not(None))
                              .order_by(cases.c.id).limit(due)).all()
        last_id, now = cohort[-1].id, max(r.next_check_at for r in cohort)
        conn.execute(update(cases).where(cases.c.id > last_id, cases.c.next_check_at <= now)
                     .values(next_check_at=now + timedelta(days=1)))
        conn.commit()
        n_due = int(conn.execute(select(func.count()).select_from(cases)
                                 .where(cases.c.next_check_at <= now)).scalar_one())
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_tick(store, rules, calendar, config, now)
    tick_s, tick_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    wall = time.perf_counter()
    quiet = run_tick(store, rules, calendar, config, now)
    quiet_s = time.perf_counter() - wall
    with store.engine.connect() as conn:
        n_alerts = int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())
        n_outbox = int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())
    store.close()
    written = n_alerts + n_outbox  # inserted by the tick (the store had none before it)
    return {"open": n_open, "due": n_due, "now": now.isoformat(), "evaluated": result.evaluated,
            "alerts": n_alerts, "outbox": n_outbox, "tick_s": tick_s, "tick_cpu_s": tick_cpu_s,
            "cpu_us_per_due": tick_cpu_s / max(n_due, 1) * 1e6, "cpu_us_per_row": tick_cpu_s / max(written, 1) * 1e6,
            "quiet_evaluated": quiet.evaluated,
            "quiet_tick_s": quiet_s, "peak_rss_mb": _peak_rss_mb()}


def _child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done, tree_pss = run_measured([sys.executable, __file__, "--child", *args], env)
    if done.returncode != 0:
        raise SystemExit(f"bench child {args[0]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["tree_pss_mb"] = tree_pss  # the child and its import workers together (bench/memory.py)
    return result


def _updated_copy(source: Path, target: Path) -> int:
    """Every fifth case with a later 更新时间 and the next status (办理中 → 已反馈 at the update time)."""
    changed = 0
    with source.open(encoding="utf-8-sig", newline="") as src, target.open("w", encoding="utf-8-sig",
                                                                           newline="") as out:
        reader, writer = csv.reader(src), csv.writer(out)
        header = next(reader)
        writer.writerow(header)
        at = {h: i for i, h in enumerate(header)}
        for n, row in enumerate(reader):
            if n % 5 == 0:
                row[at["更新时间"]] = "2026-11-20 08:59:00"
                if row[at["办理状态"]] == "办理中":
                    row[at["办理状态"]], row[at["反馈时间"]] = "已反馈", "2026-11-20 08:59:00"
                else:
                    row[at["问题摘要"]] += "（补充）"
                changed += 1
            writer.writerow(row)
    return changed


def _private_pg(server_url: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"hsla_bench_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def run(backend: str, size: int, due: int, workdir: Path, pg_url: str) -> dict[str, Any]:
    from daemon.storage.store import Store

    data = workdir / f"cases_{size}.csv"
    if not data.exists():
        write_csv(data, generate(size, seed=7, start=_date("2026-11-18"), end=_date("2026-11-20")))
    updated = workdir / f"cases_{size}_updated.csv"
    if not updated.exists():
        _updated_copy(data, updated)
    drop = None
    if backend == "sqlite":
        db = workdir / f"bench_{size}.sqlite3"
        for leftover in workdir.glob(f"{db.name}*"):
            leftover.unlink()
        url = f"sqlite:///{db}"
    else:
        url, drop = _private_pg(pg_url)
    try:
        store = Store(url)
        store.upgrade()
        store.close()
        fresh = _child("import", url, str(data))
        again = _child("import", url, str(data))
        tick = _child("tick", url, str(due))
        update = _child("import", url, str(updated))
    finally:
        if drop is not None:
            drop()
    return {"backend": backend, "size": size, "fresh": fresh, "unchanged": again, "update": update, "tick": tick}


def _date(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)


def _print(results: list[dict[str, Any]]) -> None:
    print(f"{'backend':8} {'cases':>9} {'fresh/s':>9} {'same/s':>9} {'update/s':>9} {'RSS MB':>7} {'PSS MB':>7} "
          f"{'open':>9} {'due':>6} {'alerts':>7} {'outbox':>7} {'tick s':>7} {'cpu s':>6} {'µs/due':>7} "
          f"{'µs/row':>7} {'quiet s':>8} {'tick RSS':>8}")
    for r in results:
        t = r["tick"]
        imports = (r["fresh"], r["unchanged"], r["update"])
        rss = max(i["peak_rss_mb"] for i in imports)
        pss = max(i["tree_pss_mb"] for i in imports)
        print(f"{r['backend']:8} {r['size']:>9,} {r['fresh']['rate']:>9,.0f} {r['unchanged']['rate']:>9,.0f} "
              f"{r['update']['rate']:>9,.0f} {rss:>7.0f} {pss:>7.0f} {t['open']:>9,} {t['due']:>6,} "
              f"{t['alerts']:>7,} {t['outbox']:>7,} {t['tick_s']:>7.3f} {t['tick_cpu_s']:>6.3f} "
              f"{t['cpu_us_per_due']:>7.1f} {t['cpu_us_per_row']:>7.1f} "
              f"{t['quiet_tick_s']:>8.4f} {t['peak_rss_mb']:>8.0f}")
    by_backend: dict[str, dict[int, float]] = {}
    for r in results:
        by_backend.setdefault(r["backend"], {})[r["size"]] = r["tick"]["tick_s"]
    for backend, ticks in by_backend.items():
        if len(ticks) > 1:
            small, large = min(ticks), max(ticks)
            print(f"{backend}: tick at {large:,} open / tick at {small:,} open = "
                  f"{ticks[large] / ticks[small]:.2f}x (target <= 1.3x)")
    print("µs/due, µs/row: the tick's CPU time per due case and per row it wrote (alerts + outbox); every size "
          "ticks the same due cases (the first --due open ones in file order), so it writes the same rows")
    print("RSS MB: peak resident size of the importing process; PSS MB: peak proportional size of that process "
          "and its import workers together (shared pages counted once)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end "
          "(wall-clock figures; shared CPUs make them noisy, the tick's CPU time less so)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="open-case counts, comma-separated")
    parser.add_argument("--due", type=int, default=8_000,
                        help="cases due at the tick, the same ones at every size (at most the smallest size's open "
                             "cases: 8,945 of 10,000 rows)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="a PostgreSQL server where we may CREATE DATABASE")
    parser.add_argument("--workdir", type=Path, help="keep generated files here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, url, arg = args.child
        out = child_import(url, Path(arg)) if kind == "import" else child_tick(url, int(arg))
        print(json.dumps(out))
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="tick_bench_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = []
        for backend in args.backends.split(","):
            for size in sizes:
                results.append(run(backend, size, args.due, workdir, args.pg_url))
                print(f"done {backend} {size}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
