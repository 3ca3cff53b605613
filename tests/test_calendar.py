from __future__ import annotations

import functools
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from daemon.core.calendar import CalendarRangeError, DaySource, WorkCalendar
from daemon.core.holidays import HolidayFileError, statutory_holidays


@functools.cache
def _is_workday(day: date) -> bool:
    return bool(chinese_calendar.is_workday(day))


def _direct_nth_workday(day: date, n: int) -> date:
    """The same computation done the slow way: a day-by-day loop over chinese_calendar.is_workday."""
    d, found = day, 0
    while found < n:
        d += timedelta(days=1)
        if _is_workday(d):
            found += 1
    return d


@pytest.mark.slow
def test_every_day_2004_2026_matches_chinese_calendar(calendar: WorkCalendar) -> None:
    day, mismatches, compared = date(2004, 1, 1), [], 0
    while day <= date(2026, 12, 31):
        if calendar.is_workday(day) != chinese_calendar.is_workday(day):
            mismatches.append(("is_workday", day))
        for n in range(1, 11):
            try:
                expected = _direct_nth_workday(day, n)
            except NotImplementedError:  # runs past 2026, where the package has no data
                break
            compared += 1
            if calendar.add_working_days(day, n) != expected:
                mismatches.append((n, day))
        day += timedelta(days=1)
    assert mismatches == []
    assert compared > 83_900  # every day x N=1..10, but for the last days of 2026


def test_official_2024_national_day_and_makeup_days(calendar: WorkCalendar) -> None:
    assert calendar.year_source(2024) is DaySource.OFFICIAL
    sunday = calendar.day(date(2024, 9, 29))
    assert sunday.workday and sunday.makeup and sunday.name == "国庆节调休上班"
    assert not calendar.is_workday(date(2024, 10, 1))
    assert calendar.day(date(2024, 10, 3)).name == "国庆节"
    assert calendar.add_working_days(date(2024, 9, 27), 1) == date(2024, 9, 29)
    # received on the make-up Sunday: day 1 is the next working day after it
    assert calendar.add_working_days(date(2024, 9, 29), 1) == date(2024, 9, 30)


def test_working_days_between_and_back(calendar: WorkCalendar) -> None:
    assert calendar.working_days_between(date(2024, 9, 27), date(2024, 10, 10)) == 5
    assert calendar.working_days_between(date(2024, 10, 10), date(2024, 9, 27)) == -5
    assert calendar.sub_working_days(date(2024, 10, 8), 1) == date(2024, 9, 30)
    assert calendar.next_workday(date(2024, 10, 1)) == date(2024, 10, 8)
    assert calendar.next_workday(date(2024, 10, 8), include=True) == date(2024, 10, 8)


def test_provisional_2027_statutory_days(calendar: WorkCalendar) -> None:
    assert calendar.year_source(2027) is DaySource.PROVISIONAL
    days = statutory_holidays(2027)
    # 春节 2027: lunar new year Sat Feb 6; eve Feb 5; first three days Feb 6-8
    assert [d for d, name in days.items() if name == "春节"] == [date(2027, 2, d) for d in (5, 6, 7, 8)]
    assert days[date(2027, 4, 5)] == "清明节"
    assert days[date(2027, 6, 9)] == "端午节"
    assert days[date(2027, 9, 15)] == "中秋节"
    assert {date(2027, 10, d) for d in (1, 2, 3)} <= days.keys()
    assert len(days) == 13  # 1 + 4 + 1 + 2 + 1 + 1 + 3 days, as the 2025 revision fixes them
    assert not calendar.is_workday(date(2027, 2, 8))  # a Monday holiday
    assert calendar.is_provisional(date(2027, 3, 1)) and not calendar.is_provisional(date(2026, 3, 1))
    assert calendar.day(date(2027, 2, 5)).provisional


def test_statutory_days_match_the_published_2025_and_2026_arrangements() -> None:
    """The provisional rule reproduces the statutory core of years that are published."""
    for year in (2025, 2026):
        published = {d for d in chinese_calendar.holidays if d.year == year}
        assert set(statutory_holidays(year)) <= published


def test_override_makes_a_year_official_and_changes_days(tmp_path: Path) -> None:
    (tmp_path / "2027.yaml").write_text(
        "year: 2027\nnotice: 国办发明电〔2026〕99号\nrest_days:\n"
        "  - {date: 2027-01-01, to: 2027-01-03, name: 元旦}\n"
        "  - {date: 2027-02-05, to: 2027-02-12, name: 春节}\n"
        "make_up_workdays:\n  - {date: 2027-02-13, name: 春节调休上班}\n",
        encoding="utf-8",
    )
    cal = WorkCalendar.load(overrides_dir=tmp_path)
    assert cal.year_source(2027) is DaySource.OVERRIDE
    assert not cal.is_provisional(date(2027, 1, 4))
    assert not cal.is_workday(date(2027, 2, 10))  # a Wednesday inside the arranged block
    assert cal.is_workday(date(2027, 2, 13))  # a make-up Saturday
    assert cal.years[2027].notice == "国办发明电〔2026〕99号"
    assert cal.fingerprint != WorkCalendar.load().fingerprint


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("year: 2027\nrest_days:\n  - {date: 2027-13-01}\n", 3, "is not a date"),
        ("year: 2027\nrest_days:\n  - {date: 2028-01-01}\n", 3, "outside the file's year 2027"),
        (
            "year: 2027\nrest_days:\n  - {date: 2027-02-06}\nmake_up_workdays:\n  - {date: 2027-02-06}\n",
            5,
            "either a rest day or a make-up working day",
        ),
        ("year: 2027\nmake_up_workdays:\n  - 2027-02-10\n", 3, "is a weekday"),
        ("year: 2027\nrest_day:\n  - 2027-02-10\n", 2, "unknown key 'rest_day'"),
        ("year: 27\n", 1, "'year' is required"),
    ],
)
def test_override_errors_name_file_and_line(tmp_path: Path, body: str, line: int, fragment: str) -> None:
    (tmp_path / "2027.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(HolidayFileError) as exc:
        WorkCalendar.load(overrides_dir=tmp_path)
    assert f"2027.yaml:{line}:" in str(exc.value)
    assert fragment in str(exc.value)


def test_outside_the_range_is_a_clear_error(calendar: WorkCalendar) -> None:
    with pytest.raises(CalendarRangeError, match="2003-12-31 is outside the calendar"):
        calendar.is_workday(date(2003, 12, 31))


def test_provisional_year_owes_the_weekend_days_back_bujia(calendar: WorkCalendar) -> None:
    """放假办法 第六条: 春节 2027 has Sat Feb 6 and Sun Feb 7 among its statutory days; both are made up
    on the next working days (Tue 9, Wed 10). Before the fix Feb 9 was a working day."""
    assert calendar.day(date(2027, 2, 9)).name == "春节补假"
    assert not calendar.is_workday(date(2027, 2, 9)) and not calendar.is_workday(date(2027, 2, 10))
    assert calendar.is_workday(date(2027, 2, 11)) and calendar.day(date(2027, 2, 11)).provisional
    assert calendar.add_working_days(date(2027, 2, 4), 1) == date(2027, 2, 11)
    assert not calendar.is_workday(date(2027, 5, 3)) and not calendar.is_workday(date(2027, 5, 4))  # 劳动节 Sat+Sun
    assert calendar.day(date(2027, 10, 4)).name == "国庆节补假"
    assert not calendar.is_workday(date(2028, 1, 3))  # 元旦 2028 is a Saturday


@pytest.mark.parametrize(
    ("year", "rest", "first_workday"),
    [
        # 2031: 中秋 is Oct 1 (Wed), inside 国庆 Oct 1-3: one day owed, made up on Mon Oct 6
        (2031, [date(2031, 10, d) for d in (1, 2, 3, 6)], date(2031, 10, 7)),
        # 2028: 中秋 is Oct 3 (Tue); Oct 1 is a Sunday: two days owed, Wed Oct 4 and Thu Oct 5
        (2028, [date(2028, 10, d) for d in (2, 3, 4, 5)], date(2028, 10, 6)),
    ],
)
def test_mid_autumn_inside_national_day_loses_no_day(
    calendar: WorkCalendar, year: int, rest: list[date], first_workday: date
) -> None:
    weekday_rest = [d for d in (date(year, 10, 1) + timedelta(days=i) for i in range(10))
                    if d.weekday() < 5 and not calendar.is_workday(d)]
    assert weekday_rest == rest
    assert calendar.next_workday(date(year, 10, 1)) == first_workday
    assert "中秋节" in (calendar.day(date(year, 10, 1 if year == 2031 else 3)).name or "")
    assert len(statutory_holidays(year)) == 12  # 13 entitlements, two on one date


def test_override_may_move_the_previous_december(tmp_path: Path) -> None:
    """A notice for 2027 that moves 2026-12-31 (Thu) to a rest day and 2026-12-26 (Sat) to a working day,
    as the 2019 notice did for 2018: those days follow the 2027 file, the rest of 2026 stays official."""
    (tmp_path / "2027.yaml").write_text(
        "year: 2027\nrest_days:\n  - {date: 2026-12-31, to: 2027-01-01, name: 元旦}\n"
        "make_up_workdays:\n  - {date: 2026-12-26, name: 元旦调休上班}\n",
        encoding="utf-8",
    )
    base = WorkCalendar.load()
    cal = WorkCalendar.load(overrides_dir=tmp_path)
    assert base.is_workday(date(2026, 12, 31)) and not cal.is_workday(date(2026, 12, 31))
    assert not base.is_workday(date(2026, 12, 26)) and cal.is_workday(date(2026, 12, 26))
    assert cal.day(date(2026, 12, 26)).makeup and cal.day(date(2026, 12, 31)).name == "元旦"
    assert cal.year_source(2026) is DaySource.OFFICIAL and cal.years[2026].amended_by == str(tmp_path / "2027.yaml")
    assert cal.add_working_days(date(2026, 12, 30), 1) == date(2027, 1, 4)
    assert cal.is_workday(date(2026, 12, 30))  # a day the notice does not list keeps the package's status


def test_previous_december_conflicting_with_that_years_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "2026.yaml").write_text("year: 2026\nrest_days:\n  - {date: 2026-12-26, name: 某节}\n",
                                        encoding="utf-8")
    (tmp_path / "2027.yaml").write_text("year: 2027\nmake_up_workdays:\n  - {date: 2026-12-26}\n",
                                        encoding="utf-8")
    with pytest.raises(HolidayFileError) as exc:
        WorkCalendar.load(overrides_dir=tmp_path)
    assert "2027.yaml" in str(exc.value) and "2026.yaml" in str(exc.value) and "2026-12-26" in str(exc.value)


def test_override_may_not_reach_before_the_previous_december(tmp_path: Path) -> None:
    (tmp_path / "2027.yaml").write_text("year: 2027\nrest_days:\n  - {date: 2026-11-30}\n", encoding="utf-8")
    with pytest.raises(HolidayFileError, match=r"2027.yaml:3: 2026-11-30 is outside the file's year 2027"):
        WorkCalendar.load(overrides_dir=tmp_path)


def test_rules_check_reports_a_previous_december_conflict(cli, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "2026.yaml").write_text("year: 2026\nrest_days:\n  - {date: 2026-12-26}\n", encoding="utf-8")
    (holidays / "2027.yaml").write_text("year: 2027\nmake_up_workdays:\n  - {date: 2026-12-26}\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(f"rules_dir: {Path(__file__).resolve().parent.parent / 'sla_rules'}\nholidays_dir: {holidays}\n",
                      encoding="utf-8")
    r = cli("--config", str(config), "rules", "check")
    assert r.code == 1 and "2026-12-26" in r.out and "2026.yaml" in r.out
    (holidays / "2026.yaml").unlink()
    assert cli("--config", str(config), "rules", "check").code == 0
