"""Month-end lists streamed from the store (issue 15 item 3): the files written from the stream hold exactly
what the in-memory rendering holds, on every database, and the memory does not grow with the store."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from daemon.core.calendar import WorkCalendar
from daemon.core.rules import RuleSet
from daemon.core.timeutil import parse_time
from daemon.reports.jobs import run_month_end_job
from daemon.reports.month_end import carry_over, render_carry_over, write_carry_over
from daemon.reports.xlsx_writer import Sheet, workbook_bytes
from daemon.storage.models import outbox
from daemon.storage.store import Store
from tests.test_month_end import ORPHAN, UNIT, job_config, record

THIRD = "兴隆台区水务局"


def sheet_values(data: bytes) -> dict[str, list[tuple[object, ...]]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}


def seed(store: Store, rules: RuleSet) -> None:
    store.upsert_cases([
        record("A-1", UNIT, "2026-04-20 10:00"),  # carried over
        record("A-2", UNIT, "2026-05-03 10:00"),
        record("A-3", UNIT, "2026-05-20 10:00"),
        record("B-1", ORPHAN, "2026-05-21 10:00"),
        record("B-2", ORPHAN, "2026-05-02 10:00"),
        record("C-1", THIRD, "2026-05-22 10:00"),
        record("=HYPERLINK(1)", THIRD, "2026-05-23 10:00"),  # formula-looking: stays text when streamed
    ], rules=rules, now=parse_time("2026-05-23 12:00"), source_name="test")


def test_streamed_carry_over_files_equal_the_in_memory_rendering(store: Store, rules: RuleSet, tmp_path: Path) -> None:
    seed(store, rules)
    now = parse_time("2026-06-01 09:00")
    with store.engine.connect() as conn:
        report = carry_over(conn, 2026, 5, now)
    # most first, then by name (水 U+6C34 before 环 U+73AF)
    assert [(u.unit, u.this_month, u.carried) for u in report.units] == [(UNIT, 2, 1), (THIRD, 2, 0), (ORPHAN, 2, 0)]
    assert report.total == 7
    _, html, xlsx, _ = render_carry_over(report, hint="")
    message = write_carry_over(report, tmp_path / "c.html", tmp_path / "c.xlsx", hint="", email_rows=2)
    assert (tmp_path / "c.html").read_text() == html
    streamed, in_memory = sheet_values((tmp_path / "c.xlsx").read_bytes()), sheet_values(xlsx)
    assert streamed == in_memory
    listed = [r[1] for r in streamed["结存工单"][2:9]]
    assert listed == ["A-1", "A-2", "A-3", "C-1", "=HYPERLINK(1)", "B-2", "B-1"]  # units most first, oldest first
    assert [r[0] for r in streamed["结存工单"][2:9]] == list(range(1, 8))
    assert "A-2" in message.html and "A-3" not in message.html  # the e-mail body lists email_rows cases
    assert "仅列出前 2 条，共 7 条" in message.html
    assert not list(tmp_path.glob(".*.tmp"))  # written through a rename


def test_unrouted_reminder_lists_exactly_the_unrouted_units_cases(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path
) -> None:
    seed(store, rules)
    run_month_end_job(store, rules, calendar, job_config(tmp_path), parse_time("2026-05-26 09:05"))
    with store.engine.connect() as conn:
        rows = conn.execute(select(outbox).where(outbox.c.kind == "month_end")).all()
    [orphan] = [r for r in rows if r.recipient["role"] == "supervisor"]
    assert orphan.payload["report"]["units"] == sorted([ORPHAN, THIRD])
    assert orphan.payload["rendered"]["sms_params"]["count"] == "4"
    data = Path(orphan.payload["rendered"]["attachments"][0]["path"]).read_bytes()
    [sheet] = sheet_values(data).values()
    body = [r for r in sheet[2:] if r and r[0] is not None]
    assert [(r[0], r[1], r[3]) for r in body] == [
        (1, "C-1", THIRD), (2, "=HYPERLINK(1)", THIRD), (3, "B-2", ORPHAN), (4, "B-1", ORPHAN)]


def test_units_that_a_collation_equates_stay_apart(store: Store, rules: RuleSet, tmp_path: Path) -> None:
    """MariaDB's default collation equates "Unit" and "unit " (case, trailing space): grouped by the
    collation's order, their cases interleaved and a unit got two reminders."""
    from daemon.reports.backlog import BacklogQuery, backlog_per_unit

    store.upsert_cases([
        record("U-1", "Unit", "2026-05-01 10:00"), record("U-2", "unit ", "2026-05-02 10:00"),
        record("U-3", "Unit", "2026-05-03 10:00"), record("U-4", "unit ", "2026-05-04 10:00"),
    ], rules=rules, now=parse_time("2026-05-05 12:00"), source_name="test")
    with store.engine.connect() as conn:
        groups = [(u, [c.number for c in items]) for u, items in
                  backlog_per_unit(conn, BacklogQuery(2026, 5, parse_time("2026-05-26 09:00")))]
    assert groups == [("Unit", ["U-1", "U-3"]), ("unit ", ["U-2", "U-4"])]


def test_a_streamed_sheet_writes_the_same_xml_as_a_listed_one() -> None:
    rows = [(i, f"=x{i}", "摘要<&>") for i in range(4_500)]  # crosses the 2,000-row write blocks
    listed, streamed = Sheet("s"), Sheet("s", body=iter(rows))  # a one-shot iterator: read once
    listed.append(["标题"])
    streamed.append(["标题"])
    listed.rows.extend((0, r) for r in rows)
    listed.append(["注"])
    streamed.tail.append((0, ["注"]))
    assert sheet_values(workbook_bytes([listed])) == sheet_values(workbook_bytes([streamed]))


def _peak_bytes(store: Store, tmp_path: Path) -> int:
    tracemalloc.start()
    try:
        with store.engine.connect() as conn:
            report = carry_over(conn, 2026, 11, parse_time("2026-12-01 09:00"))
        write_carry_over(report, tmp_path / "c.html", tmp_path / "c.xlsx", hint="")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_carry_over_memory_does_not_grow_with_the_open_cases(tmp_path: Path) -> None:
    """Failed before streaming: the report held every case and the whole page and workbook (8x the cases,
    ~8x the peak)."""
    from bench.digest_bench import generate

    peaks = []
    for n in (5_000, 40_000):
        db = tmp_path / f"s{n}.sqlite3"
        generate(db, n, n // 20, 50)
        store = Store(f"sqlite:///{db}")
        try:
            peaks.append(_peak_bytes(store, tmp_path))
        finally:
            store.close()
    assert peaks[1] < 1.5 * peaks[0], peaks
