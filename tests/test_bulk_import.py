"""The worker-process import (daemon/bulk.py) gives what the one-process import gives, row for row."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon import bulk
from daemon.errors import UsageError
from daemon.models import case_history, cases
from daemon.store import Store
from daemon.sync import ImportReport, import_file
from daemon.timeutil import parse_time
from tests.conftest import ROOT

SAMPLE = ROOT / "samples" / "cases.csv"
NOW = parse_time("2026-11-20 09:00")


def _parallel(store: Store, rules: Any, path: Path) -> ImportReport:
    report = ImportReport(str(path))
    up = bulk.import_chunks(store, rules, path, None, NOW, "import", chunk_rows=7, workers=2,
                            on_rejected=lambda row, error: report.rejected.append({"row": row, "error": error}))
    report.inserted, report.updated, report.unchanged = up.inserted, up.updated, up.unchanged
    return report


def _cases(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(*[c for c in cases.c if c.name != "id"]).order_by(cases.c.number)).all()
        history = conn.execute(select(case_history.c.field, case_history.c.old_value, case_history.c.new_value)
                               .order_by(case_history.c.id)).all()
    return [tuple(r) for r in rows] + [tuple(h) for h in history]


def _with_duplicates_and_changes(tmp_path: Path) -> tuple[Path, Path]:
    """The sample with a repeated number in the same chunk (the later row wins), and a copy with changes."""
    with SAMPLE.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    first = tmp_path / "first.csv"
    repeated = list(body[5])
    repeated[header.index("问题摘要")] = "重复行，以后者为准"
    with first.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([header, *body[:6], repeated, *body[6:]])
    second = tmp_path / "second.csv"
    for row in body[::4]:
        row[header.index("办理状态")] = "已办结"
        row[header.index("办结时间")] = "2026-11-20 08:00"
    with second.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([header, *body])
    return first, second


def test_workers_import_like_one_process(store: Store, rules: Any, tmp_path: Path) -> None:
    first, second = _with_duplicates_and_changes(tmp_path)
    alone = Store(f"sqlite:///{tmp_path / 'alone.sqlite3'}")
    alone.upgrade()
    try:
        for path in (first, first, second):
            one = import_file(alone, rules, path, now=NOW)
            two = _parallel(store, rules, path)
            assert two.as_json() == one.as_json()
        assert one.updated > 0 and [r["row"] for r in one.rejected] == [14, 33, 51]  # of second.csv
        assert _cases(store) == _cases(alone)
    finally:
        alone.close()


def test_import_file_parallel_flag_and_a_broken_file(store: Store, rules: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MIN_BYTES", 0)
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 10)
    path = tmp_path / "cases.csv"
    shutil.copy(SAMPLE, path)
    report = import_file(store, rules, path, now=NOW, parallel=True)
    assert report.inserted == 56 and [r["row"] for r in report.rejected] == [14, 33, 51]
    broken = tmp_path / "broken.csv"
    broken.write_text("工单编号,来源\n1,2\n", encoding="utf-8")
    with pytest.raises(UsageError, match="missing required columns"):
        import_file(store, rules, broken, now=NOW, parallel=True)
