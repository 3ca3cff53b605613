"""Working hours (工作小时) and same-day (当日) deadlines: the core arithmetic and the rule kinds built on it
(issue 12 item 4), across a weekend, a holiday and a make-up working day."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.core.calendar import WorkCalendar
from daemon.core.rules import RuleError, check_rules, load_rules
from daemon.core.timeutil import parse_time
from daemon.core.workhours import (
    DEFAULT_SCHEDULE,
    WorkSchedule,
    add_working_time,
    same_day_due,
    sub_working_time,
    working_time_between,
)
from tests.conftest import run_subprocess

H = timedelta(hours=1)


def at(text: str) -> str:
    return parse_time(text).isoformat()


def _add(cal: WorkCalendar, start: str, hours: float) -> str:
    return add_working_time(parse_time(start), hours * H, DEFAULT_SCHEDULE, cal).isoformat()


def test_24_working_hours_from_friday_evening_skip_the_weekend(calendar: WorkCalendar) -> None:
    # Fri 2024-11-08 17:00: 30 min on Friday, 7.5 h a day Mon-Wed (22.5 h), the last 1 h on Thu 11-14
    assert _add(calendar, "2024-11-08 17:00", 24) == at("2024-11-14 09:30")
    # opened after the working day: the clock starts Monday 08:30
    assert _add(calendar, "2024-11-08 18:00", 2) == at("2024-11-11 10:30")


def test_working_hours_skip_a_holiday_and_count_a_make_up_day(calendar: WorkCalendar) -> None:
    # National Day 2024: Oct 1-7 off, Sat Oct 12 a make-up working day
    assert _add(calendar, "2024-09-30 16:30", 4) == at("2024-10-08 11:30")
    assert _add(calendar, "2024-10-11 17:00", 1) == at("2024-10-12 09:00")  # the make-up Saturday counts


def test_the_lunch_break_and_a_period_end_exactly(calendar: WorkCalendar) -> None:
    assert _add(calendar, "2024-11-11 11:00", 2) == at("2024-11-11 14:30")
    assert _add(calendar, "2024-11-11 08:30", 7.5) == at("2024-11-11 17:30")  # ends at the day's end
    assert _add(calendar, "2024-11-11 07:00", 1) == at("2024-11-11 09:30")  # before work: from 08:30


def test_sub_and_between_invert_add(calendar: WorkCalendar) -> None:
    start = parse_time("2024-09-30 16:30")
    for hours in (1, 2, 4, 7.5, 24, 40):
        end = add_working_time(start, hours * H, DEFAULT_SCHEDULE, calendar)
        assert working_time_between(start, end, DEFAULT_SCHEDULE, calendar) == hours * H
        back = sub_working_time(end, hours * H, DEFAULT_SCHEDULE, calendar)
        assert working_time_between(back, start, DEFAULT_SCHEDULE, calendar) == timedelta(0)
        assert add_working_time(back, hours * H, DEFAULT_SCHEDULE, calendar) == end


def test_same_day(calendar: WorkCalendar) -> None:
    eod = timedelta(hours=24)

    def due(text: str) -> str:
        return same_day_due(parse_time(text), DEFAULT_SCHEDULE, calendar, eod).isoformat()

    assert due("2024-11-11 10:00") == at("2024-11-12 00:00")  # Monday: the end of Monday
    assert due("2024-11-11 17:29") == at("2024-11-12 00:00")
    assert due("2024-11-11 17:30") == at("2024-11-13 00:00")  # after the working day: Tuesday's end
    assert due("2024-11-08 18:00") == at("2024-11-12 00:00")  # Friday evening: Monday's end
    assert due("2024-11-09 10:00") == at("2024-11-12 00:00")  # on a Saturday: Monday's end
    assert due("2024-09-30 18:00") == at("2024-10-09 00:00")  # before National Day: Oct 8's end
    assert due("2024-10-12 09:00") == at("2024-10-13 00:00")  # the make-up Saturday is a working day


@pytest.mark.parametrize(
    ("periods", "fragment"),
    [([], "at least one"), (["8:30-12"], "not a working period"), (["12:00-08:30"], "must end after"),
     (["08:30-12:00", "11:00-13:00"], "overlap")],
)
def test_schedule_errors_say_what_is_valid(periods: list[str], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        WorkSchedule.parse(periods)


RULES = """
version: 1
working_schedule: ["09:00-12:00", "14:00-18:00"]
rules:
  - id: urgent
    name: 紧急件
    match: {priority: urgent}
    deadline: {hours: 2}
    warn_before: [30m]
  - id: working_hours
    name: 工作小时件
    match: {category: help}
    deadline: {working_hours: 24}
    warn_before: [2 working hours, 4 working hours]
  - id: default_schedule
    name: 默认作息
    match: {category: report}
    deadline: {working_hours: 4}
    working_schedule: ["08:30-12:00", "13:30-17:30"]
  - id: same_day
    name: 当日件
    match: {category: inquiry}
    deadline: {same_day: true}
  - id: rest
    name: 兜底
    match: {}
    deadline: {working_days: 5}
"""


def _rules(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "r.yaml").write_text(body, encoding="utf-8")
    return d


def test_rule_kinds_from_yaml(tmp_path: Path, calendar: WorkCalendar) -> None:
    rs = load_rules(_rules(tmp_path, RULES), calendar)
    assert rs.match({"priority": "urgent", "category": "help"}).id == "urgent"
    assert rs.match({"priority": "normal", "category": "help"}).id == "working_hours"
    # the file's schedule (9-12, 14-18 = 7 h a day): Fri 17:00 + 24 h -> 1 h Fri, 21 h Mon-Wed, 2 h Thu -> Thu 11:00
    wh = rs.get("working_hours")
    d = wh.deadline(parse_time("2024-11-08 17:00"))
    assert d.due_at.isoformat() == at("2024-11-14 11:00")
    assert [(w.level, w.at.isoformat()) for w in d.warnings] == [
        (1, at("2024-11-13 16:00")),  # 4 working hours back: 2 h on Thursday, 2 h over the night to Wed 16:00
        (2, at("2024-11-14 09:00")),  # 2 working hours back: Thu 09:00
    ]
    assert wh.describe_limit() == "24个工作小时"
    assert wh.last_day(parse_time("2024-11-08 17:00")) is None
    # a rule's own schedule wins over the file's
    assert rs.get("default_schedule").due_at(parse_time("2024-11-08 17:00")).isoformat() == at("2024-11-11 12:00")
    sd = rs.get("same_day")
    assert sd.describe_limit() == "当日"
    assert sd.deadline(parse_time("2024-11-08 18:30")).due_at.isoformat() == at("2024-11-12 00:00")


def test_working_hour_suspension_gives_back_working_time(tmp_path: Path, calendar: WorkCalendar) -> None:
    wh = load_rules(_rules(tmp_path, RULES), calendar).get("working_hours")
    # suspended Fri 11:00 to Mon 10:00 on the 9-12/14-18 schedule: 1+4 on Friday + 1 on Monday = 6 working hours
    d = wh.deadline(parse_time("2024-11-08 09:00"),
                    suspensions=[(parse_time("2024-11-08 11:00"), parse_time("2024-11-11 10:00"))])
    assert d.suspension_moved_from is not None
    moved = working_time_between(d.suspension_moved_from, d.due_at, wh.schedule, calendar)
    assert moved == 6 * H


def test_working_hours_over_a_provisional_year_are_provisional(tmp_path: Path, calendar: WorkCalendar) -> None:
    wh = load_rules(_rules(tmp_path, RULES), calendar).get("working_hours")
    assert wh.deadline(parse_time("2026-12-30 10:00")).provisional
    assert not wh.deadline(parse_time("2024-11-08 10:00")).provisional


@pytest.mark.parametrize(
    ("deadline", "extra", "fragment"),
    [("{working_hours: 4, hours: 2}", "", "exactly one of"),
     ("{same_day: false}", "", "same_day"),
     ("{working_hours: 4}", "end_of_day: '17:30'", "end_of_day applies only"),
     ("{working_hours: 4}", "working_schedule: ['9-12']", "not a working period"),
     ("{hours: 4}", "match: {priority: high}", "valid: normal, urgent")],
)
def test_rule_kind_errors_name_the_key(tmp_path: Path, deadline: str, extra: str, fragment: str) -> None:
    body = f"rules:\n  - id: x\n    name: x\n    deadline: {deadline}\n" + (f"    {extra}\n" if extra else "")
    body += "  - id: c\n    name: c\n    match: {}\n    deadline: {hours: 1}\n"
    errors = check_rules(_rules(tmp_path, body))
    assert any("rule 'x'" in e and fragment in e for e in errors), errors


def test_a_bad_file_schedule_is_an_error(tmp_path: Path, calendar: WorkCalendar) -> None:
    body = "working_schedule: ['18:00-09:00']\nrules:\n  - id: c\n    name: c\n    deadline: {hours: 1}\n"
    with pytest.raises(RuleError, match=r"working_schedule.*must end after"):
        load_rules(_rules(tmp_path, body), calendar)


def test_rules_test_runs_the_office_kinds_against_the_example_rules(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("rules", "test", "--json")
    doc = json.loads(r.out)
    office = [t for t in doc["results"] if t["file"].endswith("office_kinds.yaml")]
    assert r.code == 0 and len(office) >= 8 and all(t["ok"] for t in office)


def test_a_rules_test_file_with_a_bad_rules_dir_fails_naming_it(tmp_path: Path) -> None:
    rules = tmp_path / "sla_rules"
    (rules / "tests").mkdir(parents=True)
    (rules / "default.yaml").write_text("rules:\n  - {id: c, name: c, match: {}, deadline: {hours: 1}}\n",
                                       encoding="utf-8")
    test = "rules_dir: ../nowhere\ntests:\n  - {rule: c, received: '2024-11-11 10:00'}\n"
    (rules / "tests" / "t.yaml").write_text(test, encoding="utf-8")
    (tmp_path / "config.yaml").write_text("rules_dir: sla_rules\n", encoding="utf-8")
    r = run_subprocess("--config", str(tmp_path / "config.yaml"), "rules", "test")
    assert r.returncode == 1
    assert "rules_dir:" in r.stdout and "nowhere" in r.stdout
