"""Month-end zero backlog (月底清零): the days, on real months of the official calendar, and the job."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.config import Config, ContactConfig, ContactsConfig, UnitConfig
from daemon.core.calendar import WorkCalendar
from daemon.core.cases import CaseRecord, Category, Source, Status
from daemon.core.rule_spec import MonthEndSettings
from daemon.core.rules import RuleSet
from daemon.core.timeutil import parse_time
from daemon.reports.jobs import run_month_end_job
from daemon.reports.month_end import (
    carry_over,
    carry_over_summary,
    due_actions,
    first_working_day,
    last_working_day,
    reminder_days,
    scheduled_actions,
)
from daemon.storage.models import outbox, runs
from daemon.storage.store import Store

DEFAULT = MonthEndSettings()


def days(calendar: WorkCalendar, year: int, month: int) -> list[tuple[str, int]]:
    return [(d.isoformat(), n) for d, n in reminder_days(calendar, DEFAULT, year, month)]


def test_month_ending_in_spring_festival_reminds_on_a_makeup_sunday(calendar: WorkCalendar) -> None:
    # 2025: 春节 Jan 28 - Feb 4 off, Sun Jan 26 a make-up working day; Jan 31 is a holiday.
    assert last_working_day(calendar, 2025, 1) == date(2025, 1, 27)
    assert days(calendar, 2025, 1) == [("2025-01-23", 3), ("2025-01-26", 1), ("2025-01-27", 0)]
    assert first_working_day(calendar, 2025, 2) == date(2025, 2, 5)  # the carry-over report's day


def test_month_ending_on_a_sunday(calendar: WorkCalendar) -> None:
    assert date(2026, 5, 31).weekday() == 6
    assert days(calendar, 2026, 5) == [("2026-05-26", 3), ("2026-05-28", 1), ("2026-05-29", 0)]
    assert first_working_day(calendar, 2026, 6) == date(2026, 6, 1)


def test_month_ending_on_a_makeup_saturday(calendar: WorkCalendar) -> None:
    # Sat 2026-02-28 is a make-up working day (春节调休上班): it is the month's last working day.
    assert days(calendar, 2026, 2) == [("2026-02-25", 3), ("2026-02-27", 1), ("2026-02-28", 0)]


def test_month_before_national_day_skips_mid_autumn(calendar: WorkCalendar) -> None:
    # 2026: 中秋 Fri Sep 25 off; 国庆 Oct 1-7 off, so September's carry-over waits for Thu Oct 8.
    assert days(calendar, 2026, 9) == [("2026-09-24", 3), ("2026-09-29", 1), ("2026-09-30", 0)]
    carry = [a for a in scheduled_actions(calendar, DEFAULT, 2026, 9) if a.kind == "carry_over"]
    assert [(a.day, a.period) for a in carry] == [(date(2026, 10, 8), "2026-09")]


def test_carry_over_after_national_day_is_due_once_its_day_and_time_come(calendar: WorkCalendar) -> None:
    # 2025: Oct 1-8 off, Thu Oct 9 the first working day, Sat Oct 11 a make-up working day.
    def kinds(text: str) -> list[tuple[str, str]]:
        return [(a.kind, a.period) for a in due_actions(calendar, DEFAULT, parse_time(text))]

    assert kinds("2025-10-01 09:00") == []
    assert kinds("2025-10-08 10:00") == []
    assert kinds("2025-10-09 08:59") == []
    assert kinds("2025-10-09 09:00") == [("carry_over", "2025-09")]
    assert kinds("2025-10-11 17:00") == [("carry_over", "2025-09")]  # catch-up: two working days later
    assert kinds("2025-10-13 09:00") == []  # not weeks later (a daemon installed mid-month)


def test_a_reminder_is_due_on_its_day_only(calendar: WorkCalendar) -> None:
    def kinds(text: str) -> list[str]:
        return [a.period for a in due_actions(calendar, DEFAULT, parse_time(text))]

    assert kinds("2026-05-26 08:59") == []
    assert kinds("2026-05-26 09:00") == ["2026-05/T-3"]
    assert kinds("2026-05-26 18:00") == ["2026-05/T-3"]  # daemon down in the morning: later that day
    assert kinds("2026-05-27 09:00") == []
    assert kinds("2026-05-29 09:30") == ["2026-05/T-0"]


def test_settings_switch_reminders(calendar: WorkCalendar) -> None:
    far = MonthEndSettings(reminder_working_days_before=(20, 2), remind_on_last_working_day=False)
    # 20 working days before 2025-01-27 is in December: left out, not sent in the wrong month
    assert [(d.isoformat(), n) for d, n in reminder_days(calendar, far, 2025, 1)] == [("2025-01-24", 2)]
    assert scheduled_actions(calendar, MonthEndSettings(enabled=False), 2025, 1) == []
    no_report = MonthEndSettings(carry_over_report=False)
    assert all(a.kind == "month_end" for a in scheduled_actions(calendar, no_report, 2025, 1))


# --- the job, on every database -------------------------------------------------------------------------

UNIT = "兴隆台区住建局"
ORPHAN = "兴隆台区环保局"


def job_config(tmp_path: Path) -> Config:
    return Config(
        base_dir=tmp_path,
        contacts=ContactsConfig(
            units=[UnitConfig(name=UNIT, contacts=[
                ContactConfig(name="王承办", role="handler", mobile="13800001234"),
                ContactConfig(name="李科长", role="leader", mobile="13800005678"),
            ])],
            supervisors=[ContactConfig(name="督办员", role="supervisor", mobile="13900001111")],
        ),
    )


def record(number: str, unit: str, received: str, **kw: object) -> CaseRecord:
    return CaseRecord(number=number, source=Source.CITY, category=Category.COMPLAINT, unit=unit,  # type: ignore[arg-type]
                      received_at=parse_time(received), summary=f"反映{number}问题", **kw)


def count(store: Store, table, **where: str) -> int:  # type: ignore[no-untyped-def]
    stmt = select(func.count()).select_from(table)
    for key, value in where.items():
        stmt = stmt.where(table.c[key] == value)
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def test_month_end_job_reminds_units_once_and_reports_the_carry_over(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path
) -> None:
    store.upsert_cases([
        record("C-APR", UNIT, "2026-04-20 10:00"),  # carried over from April
        record("C-MAY", UNIT, "2026-05-20 10:00"),
        record("C-DONE", UNIT, "2026-05-06 10:00", status=Status.CLOSED, closed_at=parse_time("2026-05-08 10:00")),
        record("C-ORPHAN", ORPHAN, "2026-05-21 10:00"),
    ], rules=rules, now=parse_time("2026-05-21 12:00"), source_name="test")
    config = job_config(tmp_path)

    assert run_month_end_job(store, rules, calendar, config, parse_time("2026-05-26 08:30")) == []
    [done] = run_month_end_job(store, rules, calendar, config, parse_time("2026-05-26 09:05"))
    assert done["period"] == "2026-05/T-3" and done["cases"] == 3
    assert run_month_end_job(store, rules, calendar, config, parse_time("2026-05-26 15:00")) == []
    second = Store(store.url)  # another daemon instance on the same database
    try:
        assert run_month_end_job(second, rules, calendar, config, parse_time("2026-05-26 15:00")) == []
    finally:
        second.close()

    with store.engine.connect() as conn:
        rows = conn.execute(select(outbox).where(outbox.c.kind == "month_end")).all()
    to_unit = [r for r in rows if r.recipient["unit"] == UNIT]
    assert sorted(r.recipient["name"] for r in to_unit) == ["李科长", "王承办"]
    md = to_unit[0].payload["rendered"]["markdown"]
    assert "C-APR" in md and "C-MAY" in md and "C-DONE" not in md and "结存" in md
    assert len(md.encode()) <= 4096
    orphan = [r for r in rows if r.recipient["role"] == "supervisor"]
    assert len(orphan) == 1 and ORPHAN in orphan[0].payload["rendered"]["markdown"]
    assert "未配置" in orphan[0].payload["rendered"]["text"]
    assert Path(orphan[0].payload["rendered"]["attachments"][0]["path"]).is_file()

    [carry] = run_month_end_job(store, rules, calendar, config, parse_time("2026-06-01 09:00"))
    assert (carry["kind"], carry["period"], carry["cases"], carry["units"]) == ("carry_over", "2026-05", 3, 2)
    assert run_month_end_job(store, rules, calendar, config, parse_time("2026-06-01 10:00")) == []
    assert count(store, runs, kind="carry_over") == 1 and count(store, outbox, kind="carry_over") == 1
    with store.engine.connect() as conn:
        payload = conn.execute(select(outbox.c.payload).where(outbox.c.kind == "carry_over")).scalar_one()
    files = [Path(a["path"]) for a in payload["rendered"]["attachments"]]
    assert all(f.is_file() for f in files) and {f.suffix for f in files} == {".html", ".xlsx"}


@pytest.mark.parametrize("when", ["2026-05-27 09:00", "2026-05-30 09:00"])
def test_month_end_job_does_nothing_on_other_days(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path, when: str
) -> None:
    store.upsert_cases([record("C1", UNIT, "2026-05-20 10:00")], rules=rules, now=parse_time("2026-05-21 12:00"),
                       source_name="test")
    assert run_month_end_job(store, rules, calendar, job_config(tmp_path), parse_time(when)) == []
    assert count(store, outbox) == 0


def test_carry_over_counts_what_was_open_at_the_months_end_whenever_it_is_sent(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path
) -> None:
    """Issue 16: a case closed during 国庆 still appears in "9月底未清零", sent on Oct 8."""
    store.upsert_cases([
        record("S-OPEN", UNIT, "2024-09-20 10:00"),
        record("S-GUOQING", UNIT, "2024-09-25 10:00"),
        record("S-RETURN", ORPHAN, "2024-09-27 10:00"),
        record("S-SEPT", UNIT, "2024-09-10 10:00", status=Status.CLOSED, closed_at=parse_time("2024-09-27 10:00")),
        record("S-AUG", UNIT, "2024-08-28 10:00"),  # carried over from August, still open
        record("S-RET-EARLY", UNIT, "2024-09-05 10:00", status=Status.RETURNED),  # returned before we saw it
    ], rules=rules, now=parse_time("2024-09-28 12:00"), source_name="test")
    store.upsert_cases([  # during 国庆: one closed, one returned (the status alone, no instant), one new
        record("S-GUOQING", UNIT, "2024-09-25 10:00", status=Status.CLOSED,
               fed_back_at=parse_time("2024-10-03 09:00"), closed_at=parse_time("2024-10-03 09:00")),
        record("S-RETURN", ORPHAN, "2024-09-27 10:00", status=Status.RETURNED),
        record("S-OCT", UNIT, "2024-10-02 10:00"),
    ], rules=rules, now=parse_time("2024-10-04 12:00"), source_name="test")

    with store.engine.connect() as conn:
        report = carry_over(conn, 2024, 9, parse_time("2024-10-08 09:00"))
    listed = {c.number: c for cases in report.by_unit.values() for c in cases}
    assert sorted(listed) == ["S-AUG", "S-GUOQING", "S-OPEN", "S-RETURN"]
    assert listed["S-AUG"].carried and not listed["S-OPEN"].carried
    assert report.as_of == parse_time("2024-10-01 00:00")
    assert "截至 2024 年 9 月 30 日 24:00" in carry_over_summary(report)
    [carry] = run_month_end_job(store, rules, calendar, job_config(tmp_path), parse_time("2024-10-08 09:05"))
    assert (carry["kind"], carry["period"], carry["cases"]) == ("carry_over", "2024-09", 4)
