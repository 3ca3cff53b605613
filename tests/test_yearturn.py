"""The year turns (issue 13 items 2, 3, 6): cases stored under a provisional 2027, alerts queued and some
delivered, then the State Council's notice pasted (``calendar import-notice``) and the deadlines recomputed.

The notice (tests/data/notices/2027-drill.txt) is written in the State Council's phrasing with 2027's dates:
春节 2月5日至13日 off, 2月14日（周日） and 2月20日（周六） make-up working days. The provisional 2027 (statutory
days plus 补假) has Feb 11 and 12 as working days and Feb 14 as a rest day, so a municipal complaint (5 working
days) received on Mon Feb 8 is due Feb 18 00:00 provisionally and Feb 19 00:00 under the notice.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon.config import Config
from daemon.core.calendar import WorkCalendar
from daemon.core.cases import CaseRecord, Category, Source, Status
from daemon.core.engine import CaseState, EngineSettings, SentAlert, correction_due, is_overdue, stale_reason
from daemon.core.rules import RuleSet, load_rules
from daemon.core.timeutil import parse_time
from daemon.pipeline.outbox import Dispatcher
from daemon.pipeline.recipients import sync_config_contacts
from daemon.pipeline.recompute import covered_since, recompute_if_changed
from daemon.pipeline.tick import run_tick
from daemon.reports.ranking import monthly_ranking
from daemon.storage.models import case_history, cases, outbox
from daemon.storage.store import Store
from notifiers.base import Message
from notifiers.testing import FakeNotifier

ROOT = Path(__file__).resolve().parent.parent
NOTICE = ROOT / "tests" / "data" / "notices" / "2027-drill.txt"
SETTINGS = EngineSettings()


def at(text: str) -> datetime:
    return parse_time(text)


def config() -> Config:
    units = [
        {"name": f"{n}单位", "contacts": [
            {"name": f"{n}承办", "role": "handler", "channels": [channel]},
            {"name": f"{n}科长", "role": "leader", "channels": [channel]}]}
        for n, channel in (("甲", "wecom"), ("乙", "mail"), ("丙", "wecom"), ("丁", "wecom"))
    ]
    return Config.model_validate({
        "channels": {"wecom": {"type": "wecom_app"}, "mail": {"type": "smtp"}},
        "default_channels": ["wecom"],
        "contacts": {"units": units, "supervisors": [{"name": "督办员", "role": "supervisor",
                                                      "channels": ["wecom"]}]},
    })


def case(number: str, unit: str, received: str, **kw: Any) -> CaseRecord:
    base: dict[str, Any] = {"number": number, "source": Source.CITY, "category": Category.COMPLAINT, "unit": unit,
                            "received_at": at(received), "status": Status.SIGNED, "signed_at": at(received),
                            "summary": f"诉求{number}"}
    base.update(kw)
    return CaseRecord(**base)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkCalendar, RuleSet, Path]:
    """The calendar and rules once the notice is pasted: ``calendar import-notice`` run as an operator would."""
    from daemon.cli import main

    holidays = tmp_path_factory.mktemp("rules") / "holidays"
    code = main(["calendar", "import-notice", str(NOTICE), "--output", str(holidays / "2027.yaml")])
    assert code == 0
    calendar = WorkCalendar.load(overrides_dir=holidays)
    return calendar, load_rules(ROOT / "sla_rules", calendar), holidays


def test_the_drill_notice_moves_the_spring_festival(calendar: WorkCalendar, published: Any) -> None:
    new = published[0]
    assert calendar.is_workday(date(2027, 2, 11)) and not new.is_workday(date(2027, 2, 11))
    assert not calendar.is_workday(date(2027, 2, 14)) and new.is_workday(date(2027, 2, 14))
    assert new.is_workday(date(2027, 2, 20)) and not calendar.is_workday(date(2027, 2, 20))


class Dispatch:
    """Dispatch runs with fake channels; what each recipient received, with when it was sent."""

    def __init__(self, store: Store, cfg: Config) -> None:
        self.store, self.cfg = store, cfg
        self.sent: list[tuple[datetime, Message]] = []
        with store.engine.begin() as conn:
            sync_config_contacts(conn, cfg)

    def run(self, now: datetime, calendar: WorkCalendar, *, mail_fails: bool = False) -> Any:
        wecom, mail = FakeNotifier("wecom"), FakeNotifier("mail")
        if mail_fails:
            mail.fail_next(50)  # the channel is down: its rows stay queued (retried later)
        d = Dispatcher(self.store, self.cfg, {"wecom": wecom, "mail": mail}, owner="drill",
                       rng=random.Random(7), monotonic=lambda: 0.0, calendar=calendar)
        result = d.dispatch_once(now)
        self.sent += [(now, m) for m in (*wecom.sent, *mail.sent)]
        return result

    def texts(self, number: str, since: datetime | None = None) -> list[tuple[str, str]]:
        return [(m.kind, m.text) for when, m in self.sent
                if number in m.text and (since is None or when >= since)]


def test_the_year_turns_without_a_false_alarm(store: Store, rules: RuleSet, calendar: WorkCalendar,
                                              published: Any) -> None:
    new_calendar, new_rules, _ = published
    cfg = config()
    dispatch = Dispatch(store, cfg)

    def tick(now: datetime, r: RuleSet, c: WorkCalendar) -> None:
        run_tick(store, r, c, cfg, now)

    store.upsert_cases([
        case("A", "甲单位", "2027-02-08 10:00"),  # breach delivered; not overdue under the notice: corrected
        case("B", "乙单位", "2027-02-08 10:00"),  # breach queued, its channel down: superseded, never sent
        case("C", "丙单位", "2027-02-01 10:00"),  # overdue either way: repeated once on Feb 18, not twice
        case("E", "丁单位", "2027-02-08 10:00"),  # breach delivered, then fed back on time (under the notice)
    ], rules=rules, now=at("2027-02-09 12:00"), source_name="drill")
    due = _due(store)
    assert due == {"A": at("2027-02-18 00:00"), "B": at("2027-02-18 00:00"), "C": at("2027-02-13 00:00"),
                   "E": at("2027-02-18 00:00")}

    tick(at("2027-02-13 00:00"), rules, calendar)
    dispatch.run(at("2027-02-13 00:00"), calendar)
    tick(at("2027-02-18 00:00"), rules, calendar)
    dispatch.run(at("2027-02-18 00:00"), calendar, mail_fails=True)
    tick(at("2027-02-18 09:00"), rules, calendar)
    before = dispatch.run(at("2027-02-18 09:00"), calendar, mail_fails=True)
    assert before.superseded == 0
    c_before = dispatch.texts("C")
    assert [k for k, _ in c_before].count("breach") == 2
    feb18 = [t for k, t in c_before if k == "breach_repeat" and "已超期3个工作日" in t]  # Feb 15, 16, 17
    assert len(feb18) == 3  # handler, leader and (2+ working days overdue) the supervisor
    assert all("暂定" in text for _, text in dispatch.texts("A"))  # the drill really ran on the provisional year
    assert dispatch.texts("B") == []
    store.upsert_cases([case("E", "丁单位", "2027-02-08 10:00", status=Status.FED_BACK,
                             fed_back_at=at("2027-02-18 08:00"))],
                       rules=rules, now=at("2027-02-18 09:30"), source_name="drill")

    # the notice is pasted and the service reloads: the recompute runs on the new fingerprint
    switch = at("2027-02-18 09:40")
    result = recompute_if_changed(store, new_rules, switch)
    assert sorted(m["case"] for m in result.moved) == ["A", "B", "C", "E"]
    assert (result.finished_checked, result.finished_moved, result.on_time_changed) == (1, 1, 1)
    assert result.corrections == 2  # A and E: their breach was delivered and is no longer true
    assert _due(store) == {"A": at("2027-02-19 00:00"), "B": at("2027-02-19 00:00"), "C": at("2027-02-16 00:00"),
                           "E": at("2027-02-19 00:00")}

    tick(at("2027-02-18 10:00"), new_rules, new_calendar)
    after = dispatch.run(at("2027-02-18 12:00"), new_calendar)
    assert after.superseded == 2  # B's breach to its handler and leader
    with store.engine.connect() as conn:
        superseded = conn.execute(select(outbox.c.kind, outbox.c.last_error)
                                  .where(outbox.c.status == "superseded")).all()
        history = {(h.field, h.old_value, h.new_value) for h in conn.execute(
            select(case_history).join(cases, cases.c.id == case_history.c.case_id)
            .where(cases.c.number == "E", case_history.c.reason == "recompute"))}
    assert [k for k, _ in superseded] == ["breach", "breach"]
    assert all("deadline version 1 replaced by 2" in e and "case B" in e for _, e in superseded)
    assert ("on_time", "False", "True") in history and any(f == "due_at" for f, *_ in history)

    # what each recipient read after the switch, and that every word of it is true
    a_after = dispatch.texts("A", switch)
    assert sorted(k for k, _ in a_after) == ["deadline_moved", "deadline_moved", "warning"]  # warnings: handler
    for kind, text in a_after:
        assert "暂定" not in text
        if kind == "deadline_moved":
            assert "时限已调整" in text and "2月18日 00:00起超期" in text
            assert "新的办理时限为2月19日 00:00前" in text and "目前未超期" in text
        else:
            assert "2月19日 00:00起超期" in text  # the warning names the new deadline
    assert [k for k, _ in dispatch.texts("B")] == ["warning"]  # never the stale breach
    assert sorted(k for k, _ in dispatch.texts("E", switch)) == ["deadline_moved", "deadline_moved"]
    c_after = dispatch.texts("C", switch)
    assert sorted(k for k, _ in c_after) == ["breach", "breach"]  # the new deadline; no second repeat today
    assert all("2月16日 00:00起超期" in text for _, text in c_after)

    # a day later, the repeat counts from the new deadline and comes once
    tick(at("2027-02-19 09:00"), new_rules, new_calendar)
    dispatch.run(at("2027-02-19 09:00"), new_calendar)
    repeats = [text for k, text in dispatch.texts("C", at("2027-02-19 00:00")) if k == "breach_repeat"]
    # Feb 16, 17, 18: the count did not go backwards from the 3 that Feb 18's repeat said
    assert len(repeats) == 3 and all("已超期3个工作日" in t for t in repeats)
    assert not [k for k, _ in dispatch.texts("A", at("2027-02-19 00:00")) if k == "deadline_moved"]


def _due(store: Store) -> dict[str, datetime]:
    with store.engine.connect() as conn:
        return {r.number: r.due_at for r in conn.execute(select(cases.c.number, cases.c.due_at))}


def test_a_breach_for_a_case_fed_back_before_the_send_is_not_sent(store: Store, rules: RuleSet,
                                                                  calendar: WorkCalendar) -> None:
    cfg = config()
    dispatch = Dispatch(store, cfg)
    store.upsert_cases([case("A", "甲单位", "2024-09-27 16:30")], rules=rules, now=at("2024-09-27 16:30"),
                       source_name="t")
    run_tick(store, rules, calendar, cfg, at("2024-10-11 00:00"))  # breach queued
    store.upsert_cases([case("A", "甲单位", "2024-09-27 16:30", status=Status.FED_BACK,
                             fed_back_at=at("2024-10-11 06:00"))], rules=rules, now=at("2024-10-11 06:00"),
                       source_name="t")
    result = dispatch.run(at("2024-10-11 08:00"), calendar)  # e.g. held by quiet hours until now
    assert (result.superseded, result.sent) == (2, 0) and dispatch.sent == []


# --- the ranking does not depend on when the notice was pasted ------------------------------------------


def test_a_months_ranking_is_the_same_when_the_notice_is_pasted_late(
    tmp_path: Path, store: Store, rules: RuleSet, published: Any
) -> None:
    new_rules = published[1]
    records = _february(rules)
    early = Store(f"sqlite:///{tmp_path / 'early.sqlite3'}")
    early.upgrade()
    try:
        early.upsert_cases(records, rules=new_rules, now=at("2027-02-26 18:00"), source_name="r")
        store.upsert_cases(records, rules=rules, now=at("2027-02-26 18:00"), source_name="r")
        now = at("2027-03-05 10:00")  # the notice pasted in March: February is still reported on
        late_before = _ranking(store, now)
        assert late_before != _ranking(early, now)  # provisionally, some units were scored late
        result = recompute_if_changed(store, new_rules, now)
        assert result.finished_moved == len(records) and result.on_time_changed > 0
        assert _ranking(store, now) == _ranking(early, now)
    finally:
        early.close()


def _february(rules: RuleSet) -> list[CaseRecord]:
    """Cases received around the Spring Festival and fed back around the days the notice moves."""
    out = []
    for i, (received, fed_back) in enumerate([
        ("2027-02-08 10:00", "2027-02-18 10:00"), ("2027-02-08 11:00", "2027-02-17 10:00"),
        ("2027-02-03 10:00", "2027-02-17 15:00"), ("2027-02-04 09:00", "2027-02-16 09:00"),
        ("2027-02-01 10:00", "2027-02-15 10:00"), ("2027-02-09 10:00", "2027-02-18 20:00"),
    ]):
        out.append(case(f"R{i}", "甲单位" if i % 2 else "丙单位", received, status=Status.CLOSED,
                        fed_back_at=at(fed_back), closed_at=at(fed_back)))
    return out


def _ranking(store: Store, now: datetime) -> Any:
    from daemon.commands.report_cmds import ranked_cases

    ranking = monthly_ranking(ranked_cases(store, 2027, 2), 2027, 2, now, Config().scoring)
    return ranking.units  # every unit's counts, rates, score and rank


# --- the pure decisions -------------------------------------------------------------------------------------


def test_stale_reason_and_correction_ask_the_engine(rules: RuleSet, published: Any) -> None:
    provisional = rules.get("municipal_complaint").deadline(at("2027-02-08 10:00"))
    new_calendar, new_rules, _ = published
    moved = new_rules.get("municipal_complaint").deadline(at("2027-02-08 10:00"))
    assert (provisional.due_at, moved.due_at) == (at("2027-02-18 00:00"), at("2027-02-19 00:00"))
    state = CaseState(number="A", status=Status.SIGNED, received_at=at("2027-02-08 10:00"))
    now = at("2027-02-18 10:00")
    kw: dict[str, Any] = {"calendar": new_calendar, "settings": SETTINGS}
    breach = SentAlert("breach", 1, provisional.due_at)
    assert "version 1 replaced by 2" in (stale_reason(breach, state, moved, 2, now, **kw) or "")
    assert stale_reason(breach, state, provisional, 1, now, **kw) is None
    # same version, but the case was fed back meanwhile: the breach is no longer true
    fed = CaseState(number="A", status=Status.FED_BACK, received_at=state.received_at, fed_back_at=now)
    assert "no longer overdue" in (stale_reason(breach, fed, provisional, 1, now, **kw) or "")
    assert correction_due(breach, state, moved, now, **kw)
    assert not correction_due(breach, state, moved, at("2027-02-19 00:00"), **kw)  # overdue again
    assert not correction_due(breach, state, provisional, now, **kw)  # the deadline did not move
    assert not correction_due(SentAlert("warning", 1, provisional.due_at), state, moved, now, **kw)
    correction = SentAlert("deadline_moved", 2, moved.due_at)
    assert stale_reason(correction, state, moved, 2, now, **kw) is None
    assert "overdue again" in (stale_reason(correction, state, moved, 2, at("2027-02-19 00:00"), **kw) or "")
    assert is_overdue(fed, provisional, now, **kw) and not is_overdue(fed, moved, now, **kw)
    returned = CaseState(number="A", status=Status.RETURNED, received_at=state.received_at)
    assert not is_overdue(returned, moved, now, **kw)


def test_covered_months_start_on_the_first_of_the_previous_month() -> None:
    assert covered_since(at("2027-03-05 10:00"), 2) == at("2027-02-01 00:00")
    assert covered_since(at("2027-01-01 00:00"), 2) == at("2026-12-01 00:00")
    assert covered_since(at("2027-01-31 23:59"), 13) == at("2026-01-01 00:00")
