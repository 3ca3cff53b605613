from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from daemon.core.calendar import WorkCalendar
from daemon.core.rules import RuleError, RuleSet, check_rules, load_rules
from daemon.core.timeutil import LOCAL_TZ, parse_time

ROOT = Path(__file__).resolve().parent.parent


def at(text: str) -> datetime:
    return parse_time(text)


@pytest.mark.parametrize(
    ("rule", "received", "due"),
    [  # DOMAIN.md's worked examples, exactly
        ("municipal_complaint", "2024-09-27 16:30", "2024-10-11T00:00:00+08:00"),
        ("provincial_complaint", "2024-09-27 16:30", "2024-10-08T00:00:00+08:00"),
        ("return_request", "2024-09-30 20:00", "2024-10-01T20:00:00+08:00"),
    ],
)
def test_domain_worked_examples(rules: RuleSet, rule: str, received: str, due: str) -> None:
    d = rules.get(rule).deadline(at(received))
    assert d.due_at.isoformat() == due
    assert d.due_at.utcoffset() is not None
    assert not d.provisional


def test_receipt_instant_in_utc_is_counted_on_the_local_day(rules: RuleSet) -> None:
    # 2024-09-27T16:00Z is Sep 28 00:00 local: the local day of receipt is Sep 28 (a Saturday)
    d = rules.get("municipal_complaint").deadline(at("2024-09-27T16:00:00Z"))
    assert d.due_at.isoformat() == "2024-10-11T00:00:00+08:00"
    d2 = rules.get("municipal_complaint").deadline(at("2024-09-27T15:59:00Z"))
    assert d2.due_at.isoformat() == "2024-10-11T00:00:00+08:00"


def test_late_december_2026_is_computed_and_provisional(rules: RuleSet) -> None:
    d = rules.get("municipal_complaint").deadline(at("2026-12-28 10:00"))
    assert d.due_at.isoformat() == "2027-01-06T00:00:00+08:00"  # Jan 1 off (元旦), weekend Jan 2-3
    assert d.provisional
    assert date(2027, 1, 1) in d.provisional_days
    assert all(day.year == 2027 for day in d.provisional_days)


def test_an_override_for_2027_changes_the_deadline_and_clears_the_mark(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "2027.yaml").write_text(
        "year: 2027\nnotice: 国办发明电〔2026〕99号\nrest_days:\n  - {date: 2027-01-01, to: 2027-01-04, name: 元旦}\n",
        encoding="utf-8",
    )
    cal = WorkCalendar.load(overrides_dir=holidays)
    rs = load_rules(ROOT / "sla_rules", cal)
    d = rs.get("municipal_complaint").deadline(at("2026-12-28 10:00"))
    assert d.due_at.isoformat() == "2027-01-07T00:00:00+08:00"  # Dec 29-31, Jan 5, Jan 6 = day 5
    assert not d.provisional


def test_natural_days_are_not_provisional_without_rolling(rules: RuleSet) -> None:
    d = rules.get("provincial_complaint").deadline(at("2026-12-28 10:00"))
    assert d.due_at.isoformat() == "2027-01-08T00:00:00+08:00"
    assert not d.provisional


def test_warning_levels_and_instants(rules: RuleSet) -> None:
    d = rules.get("municipal_complaint").deadline(at("2024-09-27 16:30"))
    assert [(w.level, w.at.isoformat()) for w in d.warnings] == [
        (1, "2024-10-09T08:30:00+08:00"),
        (2, "2024-10-10T08:30:00+08:00"),
    ]
    r = rules.get("return_request").deadline(at("2024-09-30 20:00"))
    assert [w.at.isoformat() for w in r.warnings] == ["2024-10-01T16:00:00+08:00"]


def test_warnings_before_receipt_are_dropped(tmp_path: Path, calendar: WorkCalendar) -> None:
    d = _write_rules(
        tmp_path, "rules:\n  - {id: h, name: H, match: {}, deadline: {hours: 24}, warn_before: [30h, 4h]}\n"
    )
    deadline = load_rules(d, calendar).get("h").deadline(at("2024-09-30 20:00"))
    # 30h before due is before receipt: dropped; the 4h warning keeps its level
    assert [(w.level, w.at.isoformat()) for w in deadline.warnings] == [(2, "2024-10-01T16:00:00+08:00")]


def test_extension_replaces_the_due_instant_and_moves_warnings(rules: RuleSet) -> None:
    ext = datetime(2024, 10, 16, tzinfo=LOCAL_TZ)
    d = rules.get("municipal_complaint").deadline(at("2024-09-27 16:30"), extended_due_at=ext)
    assert d.due_at == ext
    assert d.extended_from is not None and d.extended_from.isoformat() == "2024-10-11T00:00:00+08:00"
    assert d.warnings[-1].at.isoformat() == "2024-10-15T08:30:00+08:00"


def test_match_first_wins_and_catch_all(rules: RuleSet) -> None:
    assert rules.match({"source": "province", "category": "complaint"}).id == "provincial_complaint"
    assert rules.match({"source": "city", "category": "complaint"}).id == "municipal_complaint"
    assert rules.match({"source": "province", "category": "suggestion"}).id == "inquiry_suggestion"
    assert rules.match({"source": "hotline", "category": "report"}).id == "other_request"
    assert rules.match({}).id == "other_request"
    assert rules.return_rule({"source": "city"}) is not None


def _write_rules(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / "default.yaml").write_text(body, encoding="utf-8")
    return d


CATCH_ALL = "  - {id: other, name: 其他, match: {}, deadline: {working_days: 5}}\n"


@pytest.mark.parametrize(
    ("rule_yaml", "fragment"),
    [
        ("  - {id: a, name: A, deadline: {working_days: 5, hours: 3}}\n",
         "rule 'a': deadline: exactly one of natural_days, working_days, hours, working_hours, same_day is required"
         " (got working_days, hours)"),
        ("  - {id: b, name: B, deadline: {}}\n", "rule 'b': deadline: exactly one of"),
        ("  - {id: c, name: C, match: {source: 省}, deadline: {hours: 24}}\n",
         "rule 'c': match: Value error, match.source: '省' is not valid"),
        ("  - {id: d, name: D, deadline: {hours: 24}, warn_before: [soon]}\n",
         "rule 'd': warn_before.0: 'soon' is not a lead time"),
        ("  - {id: e, name: E, deadline: {working_days: 3}, roll_to_workday: true}\n",
         "rule 'e': (rule): roll_to_workday applies only to natural_days"),
        ("  - {id: f, name: F, deadline: {natural_days: 3}, end_of_day: '25:00'}\n",
         "rule 'f': end_of_day: '25:00' is not a time of day"),
        ("  - {id: g, name: G, deadline: {natural_days: 3}, colour: red}\n", "rule 'g': colour: unknown key"),
    ],
)
def test_rule_errors_name_file_rule_and_key(tmp_path: Path, rule_yaml: str, fragment: str) -> None:
    d = _write_rules(tmp_path, "rules:\n" + rule_yaml + CATCH_ALL)
    errors = check_rules(d)
    assert len(errors) == 1, errors
    assert errors[0].startswith(str(d / "default.yaml"))
    assert fragment.replace("Value error, ", "") in errors[0]


def test_missing_catch_all_and_duplicates(tmp_path: Path, calendar: WorkCalendar) -> None:
    d = _write_rules(tmp_path, "rules:\n  - {id: a, name: A, match: {category: complaint}, deadline: {hours: 1}}\n")
    assert "no catch-all rule" in check_rules(d)[0]
    with pytest.raises(RuleError, match="no catch-all"):
        load_rules(d, calendar)
    d = _write_rules(tmp_path, "rules:\n" + CATCH_ALL + CATCH_ALL)
    assert "duplicate" in check_rules(d)[0]


def test_roll_to_workday_and_end_of_day_options(tmp_path: Path, calendar: WorkCalendar) -> None:
    d = _write_rules(
        tmp_path,
        "rules:\n  - {id: n, name: N, match: {}, deadline: {natural_days: 10}, roll_to_workday: true}\n"
        "  - {id: m, name: M, match: {}, deadline: {working_days: 1}, end_of_day: '17:30'}\n",
    )
    rs = load_rules(d, calendar)
    # Oct 7 (10th day) is a holiday: rolled to Oct 8, first overdue Oct 9 00:00
    assert rs.get("n").deadline(at("2024-09-27 16:30")).due_at.isoformat() == "2024-10-09T00:00:00+08:00"
    assert rs.get("m").deadline(at("2024-09-27 16:30")).due_at.isoformat() == "2024-09-29T17:30:00+08:00"
