"""The sign (签收时限, ``sign_within`` → ``unsigned``) and first-contact (先行联系, ``contact_within`` →
``first_contact``) windows: the rule's arithmetic, the engine's decision and its boundary, the schema's
errors, and the import of 先行联系时间. Through the store on three databases: tests/test_life.py.

The boundary, as everywhere in the engine: a window's end is its first late instant (``now >= sign_by``
fires, like ``due_at``), and the case is taken as the store knows it at ``now``, so a case signed at
``sign_by`` itself is signed when that instant is evaluated and gets no alert.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from daemon.core.calendar import WorkCalendar
from daemon.core.cases import Category, Source, Status
from daemon.core.engine import (
    CaseState,
    EngineSettings,
    Evaluation,
    SentAlert,
    evaluate,
    first_check_at,
    muted,
    stale_reason,
    window_level,
)
from daemon.core.rules import Deadline, RuleError, RuleSet, load_rules
from daemon.core.timeutil import parse_time
from daemon.sources.mapping import CaseRowError, ColumnMapping

EXAMPLES = Path(__file__).resolve().parent.parent / "sla_rules" / "examples"
SETTINGS = EngineSettings()


def at(text: str) -> datetime:
    return parse_time(text)


@pytest.fixture
def office(calendar: WorkCalendar) -> RuleSet:
    """sla_rules/examples: urgent (contact within 1 hour), help (24 working hours, sign within 4 working
    hours), other_request (sign within 1 working day)."""
    return load_rules(EXAMPLES, calendar)


def unsigned_case(received: str, **changes: object) -> CaseState:
    case = CaseState(number="SIGN-1", status=Status.DISPATCHED, received_at=at(received))
    return replace(case, **changes)  # type: ignore[arg-type]


def run(case: CaseState, deadline: Deadline, now: datetime, calendar: WorkCalendar) -> Evaluation:
    return evaluate(case, deadline, None, now, calendar=calendar, settings=SETTINGS)


def kinds(ev: Evaluation) -> list[str]:
    return [d.kind for d in ev.decisions]


# --- the arithmetic: the deadline's vocabulary on the official calendar ---------------------------------------


def test_a_working_hour_sign_window_skips_the_weekend(office: RuleSet) -> None:
    rule = office.get("help_working_hours")
    # Fri 2024-11-08 16:00: 1.5 working hours on Friday, Saturday and Sunday off, 2.5 on Monday from 08:30
    assert rule.sign_by(at("2024-11-08 16:00")) == at("2024-11-11 11:00")
    # dispatched at lunch: the window starts at 13:30
    assert rule.sign_by(at("2024-11-11 12:15")) == at("2024-11-11 17:30")


def test_a_working_hour_sign_window_skips_national_day_and_counts_make_up_days(office: RuleSet) -> None:
    rule = office.get("help_working_hours")
    # Mon 2024-09-30 16:00: 1.5 h, then Oct 1-7 (the holiday and its weekend) off, 2.5 h on Tue Oct 8
    assert rule.sign_by(at("2024-09-30 16:00")) == at("2024-10-08 11:00")
    # Fri 2024-09-27 17:00: 0.5 h, Saturday off, the make-up Sunday Sep 29 counts: 3.5 h from 08:30, used up
    # at 12:00 (the morning's end is the window's end, not the afternoon's start)
    assert rule.sign_by(at("2024-09-27 17:00")) == at("2024-09-29 12:00")


def test_a_day_sign_window_counts_like_the_deadline(office: RuleSet) -> None:
    rule = office.get("other_request")
    # 1 working day from the eve of National Day: Oct 8 is day 1, late from Oct 9 00:00
    assert rule.sign_by(at("2024-09-30 20:00")) == at("2024-10-09 00:00")
    deadline = rule.deadline(at("2024-09-30 20:00"))
    assert (deadline.sign_by, deadline.contact_by) == (at("2024-10-09 00:00"), None)


def test_contact_window_only_where_the_export_observes_contact(office: RuleSet) -> None:
    rule = office.get("urgent")
    assert rule.deadline(at("2024-11-08 23:30")).contact_by == at("2024-11-09 00:30")
    assert rule.deadline(at("2024-11-08 23:30"), contact_observed=False).contact_by is None
    assert rule.deadline(at("2024-11-08 23:30")).sign_by is None  # this rule gives no sign window


# --- the engine ------------------------------------------------------------------------------------------------


def test_unsigned_fires_at_the_window_end_and_not_a_microsecond_before(
    office: RuleSet, calendar: WorkCalendar
) -> None:
    deadline = office.get("help_working_hours").deadline(at("2024-11-08 16:00"))
    sign_by = at("2024-11-11 11:00")
    case = unsigned_case("2024-11-08 16:00")
    before = run(case, deadline, sign_by - timedelta(microseconds=1), calendar)
    assert kinds(before) == [] and before.next_check_at == sign_by
    assert first_check_at(case, deadline, None) == sign_by  # the store's first check is the window's end
    ev = run(case, deadline, sign_by, calendar)
    assert [(d.kind, d.level, d.fire_at, d.due_at) for d in ev.decisions] == [
        ("unsigned", window_level(sign_by), sign_by, sign_by)]
    assert ev.next_check_at == min(w.at for w in deadline.warnings)  # the resolution ladder goes on
    # still unsigned later: the same decision (same key, stored once), never a second one
    assert run(case, deadline, sign_by + timedelta(days=1), calendar).decisions[0].key == ev.decisions[0].key


def test_signed_exactly_at_the_window_end_is_not_alerted(office: RuleSet, calendar: WorkCalendar) -> None:
    deadline = office.get("help_working_hours").deadline(at("2024-11-08 16:00"))
    sign_by = at("2024-11-11 11:00")
    signed = unsigned_case("2024-11-08 16:00", status=Status.SIGNED, signed_at=sign_by)
    assert "unsigned" not in kinds(run(signed, deadline, sign_by, calendar))
    assert first_check_at(signed, deadline, None) != sign_by
    # a signature recorded without its time (the status says 已签收) counts as signed too
    by_status = unsigned_case("2024-11-08 16:00", status=Status.SIGNED)
    assert "unsigned" not in kinds(run(by_status, deadline, sign_by + timedelta(hours=1), calendar))
    # a unit that asked to return the case has acted on it: no 未签收
    returning = unsigned_case("2024-11-08 16:00", status=Status.RETURN_REQUESTED,
                              return_requested_at=at("2024-11-08 17:00"))
    assert "unsigned" not in kinds(run(returning, deadline, sign_by, calendar))


def test_no_window_alert_while_suspended_or_once_finished(office: RuleSet, calendar: WorkCalendar) -> None:
    deadline = office.get("help_working_hours").deadline(at("2024-11-08 16:00"))
    later = at("2024-11-11 12:00")
    suspended = unsigned_case("2024-11-08 16:00", status=Status.SUSPENDED)
    assert run(suspended, deadline, later, calendar).decisions == ()
    closed = unsigned_case("2024-11-08 16:00", status=Status.CLOSED, closed_at=at("2024-11-08 17:00"))
    assert run(closed, deadline, later, calendar) == Evaluation((), None)
    assert first_check_at(closed, deadline, None) is None


def test_a_mute_defers_the_window_alert_to_its_end(office: RuleSet, calendar: WorkCalendar) -> None:
    deadline = office.get("help_working_hours").deadline(at("2024-11-08 16:00"))
    case = unsigned_case("2024-11-08 16:00")
    until = at("2024-11-11 15:00")
    silenced = muted(run(case, deadline, at("2024-11-11 11:00"), calendar), until, at("2024-11-11 11:00"))
    assert silenced == Evaluation((), until)
    assert kinds(muted(run(case, deadline, until, calendar), until, until)) == ["unsigned"]


def test_a_reopened_cycle_has_its_own_sign_window(office: RuleSet, calendar: WorkCalendar) -> None:
    rule = office.get("help_working_hours")
    first = rule.deadline(at("2024-11-08 16:00"))
    again = rule.deadline(at("2024-11-12 09:00"))  # 重办: re-dispatched Tuesday 09:00: 3 h, lunch, 1 h
    assert again.sign_by == at("2024-11-12 14:30")
    reopened = unsigned_case("2024-11-12 09:00", status=Status.REOPENED)
    ev = run(reopened, again, at("2024-11-12 14:30"), calendar)
    assert kinds(ev) == ["unsigned"]
    assert ev.decisions[0].level != window_level(first.sign_by or at("2024-11-11 11:00"))  # another alert


def test_first_contact_fires_only_while_not_contacted(office: RuleSet, calendar: WorkCalendar) -> None:
    deadline = office.get("urgent").deadline(at("2024-11-08 23:30"))
    contact_by = at("2024-11-09 00:30")
    case = unsigned_case("2024-11-08 23:30", status=Status.SIGNED, signed_at=at("2024-11-08 23:35"))
    assert first_check_at(case, deadline, None) == contact_by
    ev = run(case, deadline, contact_by, calendar)
    assert [(d.kind, d.fire_at) for d in ev.decisions] == [("first_contact", contact_by)]
    on_time = replace(case, contacted_at=contact_by)  # at the instant itself: contacted when it is evaluated
    assert "first_contact" not in kinds(run(on_time, deadline, contact_by, calendar))
    unobserved = office.get("urgent").deadline(at("2024-11-08 23:30"), contact_observed=False)
    assert "first_contact" not in kinds(run(case, unobserved, contact_by, calendar))


def test_a_queued_window_alert_is_superseded_once_signed_but_not_by_a_new_version(
    office: RuleSet, calendar: WorkCalendar
) -> None:
    deadline = office.get("help_working_hours").deadline(at("2024-11-08 16:00"))
    sign_by = at("2024-11-11 11:00")
    alert = SentAlert("unsigned", 1, sign_by)
    case = unsigned_case("2024-11-08 16:00")
    now = sign_by + timedelta(minutes=1)
    # an extension bumped the deadline version: the sign window did not move, the alert still stands
    assert stale_reason(alert, case, deadline, 2, now, calendar=calendar, settings=SETTINGS) is None
    signed = replace(case, status=Status.SIGNED, signed_at=now)
    assert stale_reason(alert, signed, deadline, 1, now, calendar=calendar, settings=SETTINGS) is not None


# --- the schema -----------------------------------------------------------------------------------------------


def _rules_file(tmp_path: Path, body: str) -> Path:
    (tmp_path / "r.yaml").write_text("version: 1\nrules:\n" + body, encoding="utf-8")
    return tmp_path


def test_a_bad_window_names_file_rule_and_key(tmp_path: Path, calendar: WorkCalendar) -> None:
    folder = _rules_file(tmp_path, (
        "  - {id: all, name: 全部, match: {}, deadline: {working_days: 5}, sign_within: {working_weeks: 1}}\n"))
    with pytest.raises(RuleError) as err:
        load_rules(folder, calendar)
    assert "r.yaml: rule 'all': sign_within.working_weeks: unknown key" in str(err.value)
    folder = _rules_file(tmp_path, (
        "  - {id: all, name: 全部, match: {}, deadline: {working_days: 5}, contact_within: {}}\n"))
    with pytest.raises(RuleError) as err:
        load_rules(folder, calendar)
    assert "rule 'all': contact_within: exactly one of natural_days, working_days, hours" in str(err.value)
    folder = _rules_file(tmp_path, (
        "  - {id: all, name: 全部, match: {}, deadline: {working_days: 5}}\n"
        "  - {id: ret, name: 退件, purpose: return, match: {}, deadline: {hours: 24}, sign_within: {hours: 2}}\n"))
    with pytest.raises(RuleError, match=r"rule 'ret'.*apply only to resolve rules"):
        load_rules(folder, calendar)


# --- the import of 先行联系时间 ---------------------------------------------------------------------------------

HEADERS = ["工单编号", "来源", "诉求类型", "交办时间", "承办单位", "办理状态", "签收时间", "先行联系时间"]


def test_the_contact_column_is_observed_even_when_empty() -> None:
    builder = ColumnMapping().builder(HEADERS)
    row = ["C1", "市级", "求助", "2024-11-08 16:00", "兴隆台区住建局", "已签收", "2024-11-08 16:10", ""]
    record = builder.build(row)
    assert (record.contact_tracked, record.contacted_at) == (True, None)
    record = builder.build([*row[:-1], "2024-11-08 16:30"])
    assert (record.contact_tracked, record.contacted_at) == (True, at("2024-11-08 16:30"))
    assert builder.source_key(row) is None  # the text key has no place for contact: the record path takes it
    without = ColumnMapping().builder(HEADERS[:-1]).build(row[:-1])
    assert (without.contact_tracked, without.contacted_at) == (False, None)
    assert ColumnMapping().builder([*HEADERS[:-1], "首次联系时间"]).build(row).contact_tracked


@pytest.mark.parametrize(("cell", "words"), [
    ("明天上午", "先行联系时间"),
    ("2024-11-08 15:00", "is before 交办时间"),
])
def test_a_bad_contact_time_rejects_the_row_naming_the_column(cell: str, words: str) -> None:
    builder = ColumnMapping().builder(HEADERS)
    with pytest.raises(CaseRowError) as err:
        builder.build(["C2", "市级", "求助", "2024-11-08 16:00", "兴隆台区住建局", "已签收", "", cell])
    assert err.value.field == "先行联系时间" and words in str(err.value)


def test_a_reopened_cycle_forgets_the_earlier_signature_and_contact() -> None:
    builder = ColumnMapping().builder(HEADERS)
    record = builder.build(["C3", "市级", "求助", "2024-11-12 09:00", "兴隆台区住建局", "重办", "2024-11-08 16:10",
                            "2024-11-08 16:30"])
    assert (record.status, record.signed_at, record.contacted_at) == (Status.REOPENED, None, None)
    assert (record.source, record.category) == (Source.CITY, Category.HELP)


# --- rules test, routes -----------------------------------------------------------------------------------------


def test_rules_test_checks_sign_by_and_contact_by(cli: object, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "tests").mkdir(parents=True)
    (rules / "r.yaml").write_text(
        "rules:\n  - {id: all, name: 全部, match: {}, deadline: {working_days: 5}, sign_within: {hours: 2}}\n",
        encoding="utf-8")
    (rules / "tests" / "t.yaml").write_text(
        "tests:\n"
        "  - {name: right, rule: all, received: '2024-11-08 16:00', sign_by: '2024-11-08 18:00', contact_by: null}\n"
        "  - {name: wrong, rule: all, received: '2024-11-08 16:00', sign_by: '2024-11-08 17:00'}\n",
        encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite3'}'}}\nrules_dir: {rules}\n"
                   "channels: {console: {type: console}}\n", encoding="utf-8")
    r = cli("--config", str(cfg), "rules", "test")  # type: ignore[operator]
    assert r.code == 1
    assert "PASS" in r.out and "sign_by: expected 2024-11-08 17:00, got 2024-11-08T18:00:00+08:00" in r.out
    d = cli("--config", str(cfg), "deadline", "--rule", "all", "--received", "2024-11-08 16:00", "--json")  # type: ignore[operator]
    assert d.code == 0 and '"sign_by": "2024-11-08T18:00:00+08:00"' in d.out


def test_unsigned_and_first_contact_go_to_the_handler_and_the_leader() -> None:
    from daemon.config import Config

    routes = Config().routes
    assert routes["unsigned"].roles == routes["first_contact"].roles == ["handler", "leader"]


def test_an_import_rejects_a_bad_contact_time_by_row_and_column_and_lands_the_good_rows(tmp_path: Path) -> None:
    from daemon.sources.files import read_case_file

    path = tmp_path / "export.csv"
    path.write_text(",".join(HEADERS) + "\n"
                    "C4,市级,求助,2024-11-08 16:00,兴隆台区住建局,已签收,2024-11-08 16:10,2024-11-08 16:30\n"
                    "C5,市级,求助,2024-11-08 16:00,兴隆台区住建局,已签收,2024-11-08 16:10,下午联系\n", encoding="utf-8")
    results = list(read_case_file(path))
    assert [(r.row, r.ok) for r in results] == [(2, True), (3, False)]
    assert "先行联系时间" in (results[1].error or "") and "下午联系" in (results[1].error or "")
