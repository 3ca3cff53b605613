"""Where an import's time goes: read, parse, hash, derive, row values and insert, timed separately.

    python bench/import_bench.py [--rows 200000] [--runs 3] [--csv path] [--full]

Each stage runs over the whole generated CSV (bench/gen_cases.py, received over the 2 days before
2026-11-20) on its own, so the figures add up to roughly what one fresh import costs on one core; the
insert runs into a fresh SQLite database with the migrations applied. ``--full`` also times
``import_file`` end to end (fresh, unchanged, one case in five updated) in child processes with their
peak RSS. Figures are the best of ``--runs`` runs (the machine is shared, so single runs are noisy).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gen_cases import generate, write_csv  # noqa: E402
from bench.memory import run_measured  # noqa: E402
from bench.tick_bench import NOW_TEXT, _context, _date, _updated_copy  # noqa: E402


def _best(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(runs):
        gc.collect()
        began = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - began)
    return best, out


def stages(path: Path, runs: int) -> dict[str, float]:
    from sqlalchemy import select

    from daemon.core.derive import RuleCache, content_hash, derive_parts, key_hash
    from daemon.core.timeutil import parse_time
    from daemon.sources.files import csv_rows
    from daemon.sources.mapping import ColumnMapping
    from daemon.storage.models import cases
    from daemon.storage.store import Store
    from daemon.storage.upsert import ChunkWriter

    _, rules, _ = _context()
    now = parse_time(NOW_TEXT)
    out: dict[str, float] = {}

    def read() -> list[list[object]]:
        return [list(cells) for _, cells in csv_rows(path)]

    out["read"], rows = _best(runs, read)
    header, body = rows[0], rows[1:]
    n = len(body)
    builder = ColumnMapping().builder(header)
    out["parse"], records = _best(runs, lambda: [builder.build(r) for r in body])
    out["hash"], digests = _best(runs, lambda: [content_hash(r) for r in records])
    cache = RuleCache(rules)
    out["derive"], derived = _best(runs, lambda: [derive_parts(r, cache) for r in records])
    with tempfile.TemporaryDirectory(prefix="import_bench_") as tmp:
        url = f"sqlite:///{tmp}/b.sqlite3"
        store = Store(url)
        store.upgrade()
        writer = ChunkWriter(store.engine.dialect, cache)
        now_bound = writer.values.instant(now)
        out["values"], tuples = _best(runs, lambda: [
            writer.record_row(r, h, d, "import", 1, now_bound)
            for r, h, d in zip(records, digests, derived, strict=True)
        ])

        # the text path import_file takes for plain text rows (source_key, key_hash, fast_row)
        out["fast key"], keys = _best(runs, lambda: [builder.source_key(r) for r in body])
        out["fast hash"], fast_digests = _best(runs, lambda: [key_hash(k) for k in keys])
        out["fast row"], fast_tuples = _best(runs, lambda: [
            writer.fast_row(k, h, "import", now_bound) for k, h in zip(keys, fast_digests, strict=True)
        ])
        assert fast_digests == digests and fast_tuples == tuples, "the text path differs from the record path"

        def lookup() -> None:
            with store.engine.connect() as conn:
                for i in range(0, n, 5000):
                    nums = [t[0] for t in tuples[i:i + 5000]]
                    conn.execute(select(cases.c.number, cases.c.content_hash).where(cases.c.number.in_(nums))).all()

        out["lookup"], _ = _best(runs, lookup)

        def insert() -> None:  # as Store.upsert_cases writes: one connection, bulk_batch_size per commit
            with store.engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM cases")
            size = store.bulk_batch_size
            with store.bulk_connection() as conn:
                for i in range(0, n, size):
                    with conn.begin():
                        writer._insert.run(conn, tuples[i:i + size])

        out["insert"], _ = _best(runs, insert)
        store.close()
    return {k: v / n * 1e6 for k, v in out.items()} | {"rows": n}


def child_import(url: str, path: str) -> dict[str, Any]:
    from daemon.core.timeutil import parse_time
    from daemon.pipeline.sync import import_file
    from daemon.storage.store import Store

    _, rules, _ = _context()
    store = Store(url)
    import resource

    began, cpu_began = time.perf_counter(), time.process_time()
    report = import_file(store, rules, Path(path), now=parse_time(NOW_TEXT))
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    store.close()
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # the import's worker processes, once they are reaped

    rows = report.inserted + report.updated + report.unchanged
    # VmHWM, not ru_maxrss: a child started from a big parent inherits the parent's ru_maxrss across exec
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    return {"rows": rows, "inserted": report.inserted, "updated": report.updated, "unchanged": report.unchanged,
            "rejected": len(report.rejected), "rate": rows / wall, "peak_rss_mb": hwm / 1024,
            "cpu_us_per_row": (cpu + workers.ru_utime + workers.ru_stime) / max(rows, 1) * 1e6,
            "workers_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done, tree_pss = run_measured([sys.executable, __file__, "--child", *args], env)
    if done.returncode != 0:
        raise SystemExit(f"bench child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["tree_pss_mb"] = tree_pss  # with the import workers, shared pages once (bench/memory.py)
    return result


def full(data: Path, runs: int) -> dict[str, dict[str, Any]]:
    from daemon.storage.store import Store

    updated = data.with_name(data.stem + "_updated.csv")
    if not updated.exists():
        _updated_copy(data, updated)
    best: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="import_bench_") as tmp:
        for run in range(runs):
            url = f"sqlite:///{tmp}/full{run}.sqlite3"
            store = Store(url)
            store.upgrade()
            store.close()
            for kind, path in (("fresh", data), ("unchanged", data), ("update", updated)):
                got = _child(url, str(path))
                least_cpu = min(got["cpu_us_per_row"], best[kind]["cpu_us_per_row"]) if kind in best else None
                if kind not in best or got["rate"] > best[kind]["rate"]:
                    best[kind] = got
                if least_cpu is not None:  # the best wall time and, separately, the least CPU of the runs
                    best[kind]["cpu_us_per_row"] = least_cpu
            for leftover in Path(tmp).glob(f"full{run}.sqlite3*"):
                leftover.unlink()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--csv", type=Path, help="use this file (default: generate one in a cache folder)")
    parser.add_argument("--full", action="store_true", help="also time import_file end to end")
    parser.add_argument("--no-stages", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_import(*args.child)))
        return 0
    data = args.csv
    if data is None:
        cache = Path(tempfile.gettempdir()) / "hsla_import_bench"
        cache.mkdir(exist_ok=True)
        data = cache / f"cases_{args.rows}.csv"
        if not data.exists():
            write_csv(data, generate(args.rows, seed=7, start=_date("2026-11-18"), end=_date("2026-11-20")))
    if not args.no_stages:
        got = stages(data, args.runs)
        n = int(got.pop("rows"))
        record_path = ("read", "parse", "hash", "derive", "values", "lookup", "insert")
        text_path = ("read", "fast key", "fast hash", "fast row", "lookup", "insert")
        print(f"{n:,} rows, best of {args.runs}; µs/row per stage:")
        for stage, us in got.items():
            print(f"  {stage:9} {us:6.2f}")
        for name, path in (("record path", record_path), ("text path", text_path)):
            total = sum(got[s] for s in path)
            print(f"  total, {name:11} {total:6.2f}  → {1e6 / total:,.0f} rows/s on one core")
    if args.full:
        for kind, r in full(data, args.runs).items():
            print(f"import_file {kind:9} {r['rate']:>9,.0f} rows/s  CPU {r['cpu_us_per_row']:5.1f} µs/row "
                  f"(process and workers)  peak RSS {r['peak_rss_mb']:.0f} MB, "
                  f"with the workers peak PSS {r['tree_pss_mb']:.0f} MB  "
                  f"(inserted {r['inserted']:,} updated {r['updated']:,} unchanged {r['unchanged']:,} "
                  f"rejected {r['rejected']})")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
