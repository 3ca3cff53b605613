"""The text-to-row import path (RecordBuilder.source_key, key_hash, ChunkWriter.fast_row) gives what the
record path gives: the same content hash, the same insert row on every dialect, the same stored rows."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from bench.gen_cases import HEADERS, generate, write_csv
from daemon.core.calendar import WorkCalendar
from daemon.core.cases import CaseRecord
from daemon.core.derive import RuleCache, content_hash, derive_parts, key_hash
from daemon.core.engine import CaseState, first_check_at
from daemon.core.rules import RuleSet, load_rules
from daemon.core.timeutil import LOCAL_TZ
from daemon.pipeline.sync import import_file
from daemon.sources.files import case_table, read_case_file
from daemon.sources.mapping import ColumnMapping
from daemon.storage.models import case_history, cases
from daemon.storage.store import Store
from daemon.storage.upsert import INSERT_COLUMNS, ChunkWriter, TextRow

ROOT = Path(__file__).resolve().parent.parent
NEXT_CHECK = INSERT_COLUMNS.index("next_check_at")
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=LOCAL_TZ)
FULL_HEADERS = ("工单编号", "来源", "诉求类型", "受理时间", "承办单位", "办理状态", "签收时间", "退件申请时间",
                "反馈时间", "办结时间", "延期至", "满意度", "评星", "疑难件", "属地", "涉及领域", "问题摘要",
                "更新时间")


def _t(instant: datetime, rng: random.Random) -> str:
    text = f"{instant:%Y-%m-%d %H:%M:%S}"
    roll = rng.random()
    if roll < 0.15:
        return text[:16]
    if roll < 0.2:
        return f"  {text} "
    if roll < 0.22:
        return f"{instant:%Y/%m/%d %H:%M}"  # the record path's
    return text


def _random_rows(n: int, seed: int) -> Iterator[list[str]]:
    """Rows over years with holidays and a provisional year, every status path, odd but valid cells."""
    rng = random.Random(seed)
    start = datetime(2024, 9, 20)  # local wall time
    for i in range(n):
        received = start + timedelta(seconds=rng.randrange(0, 3 * 366 * 86400))
        if rng.random() < 0.3:
            received = received.replace(hour=rng.choice([0, 8, 23]), minute=rng.choice([0, 30, 59]), second=0)
        signed = requested = fed_back = closed = extended = ""
        status = rng.choice(["", "", "已交办", "办理中", "申请退件", "已反馈", "已办结", "已退件"])
        if rng.random() < 0.5:
            signed = _t(received + timedelta(minutes=rng.randrange(0, 3000)), rng)
        if rng.random() < 0.3:
            requested = _t(received + timedelta(hours=rng.choice([0, 2, 19, 20, 21, 23, 24, 25, 30, 200])), rng)
        if rng.random() < 0.25:
            fed_back = _t(received + timedelta(hours=rng.randrange(1, 300)), rng)
        if rng.random() < 0.15:
            closed = _t(received + timedelta(hours=rng.randrange(1, 400)), rng)
        if rng.random() < 0.05:
            extended = _t(received + timedelta(days=rng.randint(3, 30)), rng)
        if rng.random() < 0.03:
            signed = _t(received - timedelta(hours=1), rng)  # a bad row
        yield [
            f"N{i:06d}" if rng.random() < 0.97 else f"N{rng.randrange(i + 1):06d}",
            rng.choice(["省平台", "市级", "话务端", "province", " 12345 ", "区热线"]),
            rng.choice(["投诉", "咨询", "建议", "求助", "举报", "其他", "complaint", "意见建议", "什么"]),
            _t(received, rng) if rng.random() < 0.99 else "2026-02-30 08:00:00",
            rng.choice(["兴隆台区住建局", "市税务局", " 大洼区教育局", ""]) if rng.random() < 0.02 else "市税务局",
            status, signed, requested, fed_back, closed, extended,
            rng.choice(["", "满意", "基本满意", "不满意"]), rng.choice(["", "5", "4星", "三星", "7"]),
            rng.choice(["", "是", "否", "yes", "疑难"]), rng.choice(["", "兴隆台区", "盘山县"]),
            rng.choice(["", "城建交通类", "其他类"]), rng.choice(["", "路灯不亮", "反映\t噪音"]),
            _t(received + timedelta(hours=rng.randrange(0, 500)), rng) if rng.random() < 0.8 else "",
        ]


def _json(value: Any) -> Any:
    return getattr(value, "obj", value)  # psycopg wraps JSON in Json


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect(), mysql.pymysql.dialect()],
                         ids=["sqlite", "postgresql", "mariadb"])
@pytest.mark.parametrize("rule_dir", ["sla_rules", "tests/data/unusual_rules"], ids=["default", "unusual"])
def test_fast_row_equals_record_row(calendar: WorkCalendar, dialect: Any, rule_dir: str) -> None:
    """Both against the engine too: the stored next check is the engine's first check on the rule's own
    deadlines (tests/data/unusual_rules: end_of_day 17:30, roll_to_workday, working-day warnings on an hour
    rule)."""
    rules = load_rules(ROOT / rule_dir, calendar)
    builder = ColumnMapping().builder(FULL_HEADERS)
    writer = ChunkWriter(dialect, RuleCache(rules))
    now_bound = writer.values.instant(NOW)
    with (ROOT / "samples" / "cases.csv").open(encoding="utf-8-sig", newline="") as fh:
        sample = list(csv.reader(fh))
    assert tuple(sample[0]) == FULL_HEADERS
    gen = [[row.get(h, "") for h in FULL_HEADERS] for row in generate(2000, seed=3, start=date(2026, 9, 25),
                                                                      end=date(2026, 10, 10))]
    fast = slow = rows = 0
    for cells in [*sample[1:], *gen, *_random_rows(6000, seed=11)]:
        key = builder.source_key(cells)
        if key is None:
            slow += 1
            continue
        fast += 1
        record = builder.build(cells)  # a row the fast path takes is a good row
        assert builder.record_of(key) == record, cells  # a changed text row's record, from its key
        digest = content_hash(record)
        assert key_hash(key) == digest, cells
        row = writer.fast_row(key, digest, "import", now_bound)
        expected = writer.record_row(record, digest, derive_parts(record, writer.cache), "import", 1, now_bound)
        rule, return_rule = writer.cache.rules_for(record)
        first = first_check_at(
            CaseState.from_record(record), rule.deadline(record.received_at, extended_due_at=record.extended_due_at,
                                                         contact_observed=record.contact_tracked),
            None if return_rule is None else return_rule.deadline(record.received_at),
        )
        assert expected[NEXT_CHECK] == writer.values.instant(first), cells
        if row is not None:
            rows += 1
            assert [_json(x) for x in row] == [_json(x) for x in expected], cells
    assert fast > 5000 and rows > 3000 and slow > 1000, (fast, rows, slow)


def _stored(store: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(cases).order_by(cases.c.id))]
        history = [tuple(r) for r in conn.execute(select(case_history).order_by(case_history.c.id))]
    return rows, history


def _checked_import(store: Store, rules: RuleSet, path: Path) -> tuple[int, int, int, list[dict[str, Any]]]:
    """import_file as it was: every row built into a record, then upserted."""
    rejected: list[dict[str, Any]] = []

    def records() -> Iterator[CaseRecord]:
        for r in read_case_file(path):
            if r.record is None:
                rejected.append({"row": r.row, "error": r.error or "invalid row"})
            else:
                yield r.record

    up = store.upsert_cases(records(), rules=rules, now=NOW, source_name="import", batch_size=700)
    return up.inserted, up.updated, up.unchanged, rejected


def test_fast_and_checked_imports_store_the_same(store: Store, rules: RuleSet, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    rows = list(generate(3000, seed=5, start=date(2026, 11, 18), end=date(2026, 11, 20)))
    write_csv(first, iter(rows))
    with second.open("w", encoding="utf-8-sig", newline="") as fh:  # updates, new rows, odd and bad rows
        out = csv.writer(fh)
        out.writerow(FULL_HEADERS)
        for i, row in enumerate(rows[:1500]):
            cells = [row.get(h, "") for h in FULL_HEADERS]
            if i % 3 == 0:
                cells[5], cells[9] = "已办结", cells[3]
            out.writerow(cells)
        out.writerows(_random_rows(1500, seed=12))
    assert set(HEADERS) <= set(FULL_HEADERS)
    monkeypatch.setattr(Store, "bulk_batch_size", 700)  # several chunks, numbers repeated across them
    results = {}
    for name in ("fast", "checked"):
        store.drop_all()
        store.upgrade()
        got = []
        for path in (first, second, second):
            if name == "fast":
                report = import_file(store, rules, path, now=NOW)
                got.append((report.inserted, report.updated, report.unchanged, report.rejected))
            else:
                got.append(_checked_import(store, rules, path))
            got.append(_stored(store))
        results[name] = got
    assert results["fast"][2][1] >= 500 and results["fast"][2][3]  # updated cases, rejected rows
    assert results["fast"] == results["checked"]


def test_import_uses_the_fast_path(rules: RuleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cases.csv"
    write_csv(path, generate(500, seed=2, start=date(2026, 11, 18), end=date(2026, 11, 20)))
    built: list[int] = []
    original = TextRow.record
    monkeypatch.setattr(TextRow, "record", lambda self: built.append(1) or original(self))
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    store.upgrade()
    builder, table = case_table(path)
    assert all(builder.source_key(cells) is not None for _, cells in table)
    report = import_file(store, rules, path, now=NOW)
    assert (report.inserted, built) == (500, [])
    store.close()
