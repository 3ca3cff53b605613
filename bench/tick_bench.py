"""Import rate, tick time and peak RSS with N open cases of which D are due, on SQLite and PostgreSQL.

    python bench/tick_bench.py [--sizes 10000,1000000] [--due 10000] [--backends sqlite,postgres]
                               [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--json]
                               [--tick-only --workdir DIR] [--code DIR]

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

``--tick-only`` skips the three timed imports and measures the tick alone: each (backend, size) store is
imported once and kept (SQLite: ``store_<size>.sqlite3`` in ``--workdir``; PostgreSQL: the database
``hsla_tickbench_<size>``), and every tick runs on a fresh copy of it (a file copy; ``CREATE DATABASE … TEMPLATE``),
upgraded to the code's schema first, so a 3,000,000-case store is built once for many runs. ``--code DIR``
runs the children on another checkout's ``daemon`` (the code before a change, measured in the same session).

On PostgreSQL the tick child also measures the raw COPY floor of the rows the tick wrote: the same alert and
outbox rows (``COPY … TO STDOUT`` after the tick) copied with ``COPY … FROM STDIN`` into empty tables made
``LIKE`` the real ones ``INCLUDING ALL`` (the same indexes and constraints, no foreign keys), in one
committed transaction, and again into such tables with the real foreign keys (each alert's case, each outbox
row's alert). Both are timed in wall and in CPU (this process's and the server processes', read from /proc:
the server runs on this machine); the bench prints the tick's wall and CPU over each floor. The CPU ratios are
the ones to read on a shared machine. Before ticking, the bench's own move of the later cases is vacuumed
away on PostgreSQL (autovacuum would have, long before a real tick): its dead index entries in the due range
cost a 1,000,000-case tick about 3 s of reads (profiled: 3.3 s in its SELECTs before, under 0.4 s after).

A little over the house's 400 lines: the full run and the tick-only run share the children, the store
building and the printing; the PostgreSQL floor and server-CPU readings live in bench/pg_floor.py.

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
CODE = Path(os.environ.get("HSLA_BENCH_CODE") or ROOT)  # whose daemon the children run (--code)
if CODE != ROOT:
    sys.path.insert(0, str(CODE))

from bench.gen_cases import CITY_UNITS, UNITS, generate, write_csv  # noqa: E402
from bench.memory import run_measured  # noqa: E402
from bench.pg_floor import alert_bytes, copy_floor, server_cpu  # noqa: E402

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

    calendar = WorkCalendar.load(overrides_dir=CODE / "sla_rules" / "holidays")
    rules = load_rules(CODE / "sla_rules", calendar)
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
        if store.dialect == "postgresql":  # the move leaves dead index entries in the due range: clear them, as
            # autovacuum would have long before a real tick (else the tick's range scan steps over them)
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE cases")
        n_due = int(conn.execute(select(func.count()).select_from(cases)
                                 .where(cases.c.next_check_at <= now)).scalar_one())
    server = server_cpu(store)
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_tick(store, rules, calendar, config, now)
    tick_s, tick_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    server_cpu_s = server_cpu(store, server)
    wall = time.perf_counter()
    quiet = run_tick(store, rules, calendar, config, now)
    quiet_s = time.perf_counter() - wall
    with store.engine.connect() as conn:
        n_alerts = int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())
        n_outbox = int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())
    floor_s, floor_cpu_s = copy_floor(store) if store.dialect == "postgresql" else (None, None)
    keyed_s, keyed_cpu_s = copy_floor(store, keyed=True) if store.dialect == "postgresql" else (None, None)
    store.close()
    written = n_alerts + n_outbox  # inserted by the tick (the store had none before it)
    return {"open": n_open, "due": n_due, "now": now.isoformat(), "evaluated": result.evaluated,
            "alerts": n_alerts, "outbox": n_outbox, "tick_s": tick_s, "tick_cpu_s": tick_cpu_s,
            "copy_floor_s": floor_s, "floor_cpu_s": floor_cpu_s, "server_cpu_s": server_cpu_s,
            "keyed_floor_s": keyed_s, "keyed_floor_cpu_s": keyed_cpu_s,
            "alert_bytes": alert_bytes(store),
            "cpu_us_per_due": tick_cpu_s / max(n_due, 1) * 1e6, "cpu_us_per_row": tick_cpu_s / max(written, 1) * 1e6,
            "quiet_evaluated": quiet.evaluated,
            "quiet_tick_s": quiet_s, "peak_rss_mb": _peak_rss_mb()}


def _child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HSLA_BENCH_CODE": str(CODE)}
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


def run_tick_only(backend: str, size: int, due: int, workdir: Path, pg_url: str) -> dict[str, Any]:
    """The tick alone, on a fresh copy of a store imported once and kept (see the module's docstring)."""
    import shutil

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    data = workdir / f"cases_{size}.csv"
    if not data.exists():
        write_csv(data, generate(size, seed=7, start=_date("2026-11-18"), end=_date("2026-11-20")))
    if backend == "sqlite":
        built = workdir / f"store_{size}.sqlite3"
        if not built.exists():
            _build(f"sqlite:///{built}.part", data)
            Path(f"{built}.part").rename(built)
        work = workdir / f"tick_{size}.sqlite3"
        for leftover in workdir.glob(f"{work.name}*"):
            leftover.unlink()
        shutil.copyfile(built, work)
        url, drop = f"sqlite:///{work}", None
    else:
        server = make_url(pg_url)
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        built_name, work_name = f"hsla_tickbench_{size}", f"hsla_tickbench_{size}_{os.getpid()}"
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": built_name}).first() is None:
                conn.execute(text(f"CREATE DATABASE {built_name}_part"))
                _build(server.set(database=f"{built_name}_part").render_as_string(hide_password=False), data)
                conn.execute(text(f"ALTER DATABASE {built_name}_part RENAME TO {built_name}"))
            conn.execute(text(f"CREATE DATABASE {work_name} TEMPLATE {built_name}"))
        url = server.set(database=work_name).render_as_string(hide_password=False)

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {work_name} WITH (FORCE)"))
            admin.dispose()
    try:
        _child("upgrade", url, "-")  # a store kept from an older schema; ANALYZE a template copy (PostgreSQL)
        tick = _child("tick", url, str(due))
    finally:
        if drop is not None:
            drop()
        elif backend == "sqlite":
            for leftover in workdir.glob(f"tick_{size}.sqlite3*"):
                leftover.unlink()
    return {"backend": backend, "size": size, "tick": tick}


def _build(url: str, data: Path) -> None:
    _child("upgrade", url, "-")
    _child("import", url, str(data))


def child_upgrade(url: str) -> dict[str, Any]:
    """Upgrade the store to this code's schema; on PostgreSQL ANALYZE it too (a copy starts without statistics)."""
    from sqlalchemy import text

    from daemon.storage.store import Store

    store = Store(url)
    store.upgrade()
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    store.close()
    return {}


def _date(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)


def _print_ticks(results: list[dict[str, Any]]) -> None:
    print(f"{'backend':8} {'cases':>9} {'open':>9} {'due':>6} {'alerts':>7} {'outbox':>7} {'ob/due':>6} "
          f"{'detail B':>8} {'tick s':>7} {'cpu s':>6} {'µs/due':>7} {'µs/row':>7} {'floor s':>7} {'/floor':>6} "
          f"{'srv cpu':>7} {'flr cpu':>7} {'cpu/flr':>7} {'kflr s':>6} {'kflr cpu':>8} {'cpu/kflr':>8} {'quiet s':>8}")
    for r in results:
        t = r["tick"]
        floor = t.get("copy_floor_s")
        print(f"{r['backend']:8} {r['size']:>9,} {t['open']:>9,} {t['due']:>6,} {t['alerts']:>7,} {t['outbox']:>7,} "
              f"{t['outbox'] / max(t['due'], 1):>6.2f} {t.get('alert_bytes', 0):>8.0f} {t['tick_s']:>7.3f} "
              f"{t['tick_cpu_s']:>6.3f} {t['cpu_us_per_due']:>7.1f} {t['cpu_us_per_row']:>7.1f} "
              + (f"{floor:>7.3f} {t['tick_s'] / floor:>6.2f} " if floor else f"{'-':>7} {'-':>6} ")
              + (f"{t['server_cpu_s']:>7.3f} {t['floor_cpu_s']:>7.3f} "
                 f"{(t['tick_cpu_s'] + t['server_cpu_s']) / t['floor_cpu_s']:>7.2f} "
                 if t.get("floor_cpu_s") else f"{'-':>7} {'-':>7} {'-':>7} ")
              + (f"{t['keyed_floor_s']:>6.3f} {t['keyed_floor_cpu_s']:>8.3f} "
                 f"{(t['tick_cpu_s'] + t['server_cpu_s']) / t['keyed_floor_cpu_s']:>8.2f} "
                 if t.get("keyed_floor_cpu_s") else f"{'-':>6} {'-':>8} {'-':>8} ")
              + f"{t['quiet_tick_s']:>8.4f}")
    by_backend: dict[str, dict[int, dict[str, Any]]] = {}
    for r in results:
        by_backend.setdefault(r["backend"], {})[r["size"]] = r["tick"]
    for backend, ticks in by_backend.items():
        small = min(ticks)
        for size in sorted(ticks)[1:]:
            print(f"{backend}: CPU per written row at {size:,} / at {small:,} = "
                  f"{ticks[size]['cpu_us_per_row'] / ticks[small]['cpu_us_per_row']:.2f}x (target <= 1.5x); "
                  f"wall {ticks[size]['tick_s'] / ticks[small]['tick_s']:.2f}x")
    print("ob/due: outbox rows per due case; detail B: mean characters of an alert's stored detail; floor s: "
          "COPY of the same alert and outbox rows into empty indexed copies (PostgreSQL); /floor: tick wall / floor;\n"
          "srv cpu: the PostgreSQL server's CPU for the tick; flr cpu: client + server CPU of the floor; cpu/flr: "
          "the tick's client + server CPU over the floor's;\n"
          "kflr: the same floor into tables with the real foreign keys too (each alert's case, each outbox row's "
          "alert)")
    print(f"code: {CODE}; machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end "
          "(wall-clock figures are noisy on shared CPUs: compare CPU)")


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
    parser.add_argument("--tick-only", action="store_true",
                        help="time only the tick, on copies of stores imported once and kept (needs --workdir)")
    parser.add_argument("--code", type=Path, help="run the children on this checkout's daemon (default: this one)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, url, arg = args.child
        out = (child_import(url, Path(arg)) if kind == "import" else child_upgrade(url) if kind == "upgrade"
               else child_tick(url, int(arg)))
        print(json.dumps(out))
        return 0
    if args.tick_only and not args.workdir:
        parser.error("--tick-only keeps its stores in --workdir")
    if args.code:
        global CODE  # noqa: PLW0603 - the children read it from the environment
        CODE = args.code.resolve()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="tick_bench_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = []
        for backend in args.backends.split(","):
            for size in sizes:
                job = run_tick_only if args.tick_only else run
                results.append(job(backend, size, args.due, workdir, args.pg_url))
                print(f"done {backend} {size}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    elif args.tick_only:
        _print_ticks(results)
    else:
        _print(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
