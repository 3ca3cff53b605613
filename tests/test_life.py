"""Cases through their whole lives via the real store, compared with a pure walk of the engine.

Each case is imported, changed and re-imported (``Store.upsert_cases``) and ticked (``run_tick``) at every
instant where something can happen to it (every warning, due instant, return-window end and breach repeat
the engine names, and each change), on SQLite, PostgreSQL and MariaDB. After every step the stored
``next_check_at`` of every case must be what the engine says (:func:`first_check_at` after a change, the
evaluation's ``next_check_at`` after a tick that read it) and the stored alerts must be, to the instant,
what evaluating every case at every tick gives: the store may skip a case only when the engine says nothing
can happen to it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from daemon.config import Config, ContactConfig, ContactsConfig, UnitConfig
from daemon.core.assignment import scored_on_unit
from daemon.core.calendar import WorkCalendar
from daemon.core.cases import CaseRecord, Category, Priority, Source, Status
from daemon.core.derive import RuleCache
from daemon.core.engine import ONCE_KINDS, CaseState, EngineSettings, announced, evaluate, first_check_at, muted
from daemon.core.lifecycle import remembered_suspensions
from daemon.core.rules import Deadline, RuleSet, load_rules
from daemon.core.timeutil import parse_time
from daemon.pipeline.mutes import mute_case
from daemon.pipeline.tick import run_tick
from daemon.storage.models import alerts, assignments, case_history, cases, outbox
from daemon.storage.store import Store

UNIT = "兴隆台区住建局"
OTHER_UNIT = "兴海街道办事处"  # a re-dispatch's second unit
END = parse_time("2024-10-18 12:00")  # the walk's horizon


def at(text: str) -> datetime:
    return parse_time(text)


def config() -> Config:
    return Config(contacts=ContactsConfig(
        units=[UnitConfig(name=UNIT, contacts=[ContactConfig(name="王承办", role="handler", mobile="13800001234")])],
        supervisors=[ContactConfig(name="督办员", role="supervisor")],
    ))


def case(number: str, received: str, **kw: object) -> CaseRecord:
    base: dict[str, object] = {"number": number, "source": Source.CITY, "category": Category.COMPLAINT,
                               "unit": UNIT, "received_at": at(received), "summary": f"诉求 {number}"}
    base.update(kw)
    return CaseRecord(**base)  # type: ignore[arg-type]


# 2024: Oct 1-7 off, Sun Sep 29 and Sat Oct 12 make-up working days. A municipal complaint received Fri
# Sep 27 16:30 is due Oct 11 00:00 (warnings Oct 9 and 10 08:30), its return window closes Sep 28 16:30
# (warning at 12:30), and its breach repeats on the make-up Saturday Oct 12 09:00.
FRIDAY = "2024-09-27 16:30"
EDGE = at("2024-09-28 16:30")  # received + 24 h exactly: the window's first late instant
LIVES: list[tuple[str, list[CaseRecord]]] = [
    # returned exactly at the window's end: finished, its late-return notice is all that is left
    ("2024-09-27 16:30", [case("EDGE-RETURNED", FRIDAY)]),
    ("2024-09-28 16:30", [case("EDGE-RETURNED", FRIDAY, status=Status.RETURNED, return_requested_at=EDGE)]),
    # a pending return asked for exactly at the window's end: late, and the resolution clock runs on
    ("2024-09-27 16:30", [case("EDGE-PENDING", FRIDAY)]),
    ("2024-09-28 16:30", [case("EDGE-PENDING", FRIDAY, status=Status.RETURN_REQUESTED, return_requested_at=EDGE)]),
    # asked for exactly at the return window's warning: in time
    ("2024-09-27 16:30", [case("AT-WARNING", FRIDAY)]),
    ("2024-09-28 12:30", [case("AT-WARNING", FRIDAY, status=Status.RETURN_REQUESTED,
                               return_requested_at=at("2024-09-28 12:30"))]),
    # asked for a minute late, then returned
    ("2024-09-27 16:30", [case("LATE", FRIDAY)]),
    ("2024-09-28 16:31", [case("LATE", FRIDAY, status=Status.RETURN_REQUESTED,
                               return_requested_at=at("2024-09-28 16:31"))]),
    ("2024-09-29 10:00", [case("LATE", FRIDAY, status=Status.RETURNED, return_requested_at=at("2024-09-28 16:31"))]),
    # signed late (after the return warning), then left to breach: repeats from the make-up Saturday on
    ("2024-09-27 16:30", [case("BREACH", FRIDAY)]),
    ("2024-09-28 13:00", [case("BREACH", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-28 13:00"))]),
    # extended after its second warning: the deadline moves and its warnings are armed afresh
    ("2024-09-27 16:30", [case("EXTENDED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"))]),
    ("2024-10-10 10:00", [case("EXTENDED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"),
                               extended_due_at=at("2024-10-16 00:00"))]),
    # overdue, repeated on the make-up Saturday, then its deadline moved a little later while still overdue (a new
    # deadline version): that day's repeat was sent already and must not come again (repeats keyed by day)
    ("2024-09-27 16:30", [case("MOVED-OVERDUE", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"))]),
    ("2024-10-12 10:00", [case("MOVED-OVERDUE", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"),
                               extended_due_at=at("2024-10-11 12:00"))]),
    # received on the make-up Sunday, fed back exactly at its due instant (too late: due is the first late one)
    ("2024-09-29 10:00", [case("MAKEUP", "2024-09-29 10:00", category=Category.INQUIRY)]),
    ("2024-10-10 00:00", [case("MAKEUP", "2024-09-29 10:00", category=Category.INQUIRY, status=Status.FED_BACK,
                               fed_back_at=at("2024-10-10 00:00"))]),
    # provincial, natural days over the holiday, fed back after its breach
    ("2024-09-27 16:30", [case("PROVINCE", FRIDAY, source=Source.PROVINCE)]),
    ("2024-10-08 10:00", [case("PROVINCE", FRIDAY, source=Source.PROVINCE, status=Status.FED_BACK,
                               fed_back_at=at("2024-10-08 10:00"))]),
    # muted (暂停提醒, MUTES below): across the breach and two repeats; and across one warning only
    ("2024-09-27 16:30", [case("MUTED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"))]),
    ("2024-09-27 16:30", [case("MUTED-SHORT", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"))]),
    # taken in on Thursday, dispatched Friday: the clock runs from dispatch; the platform's 办理时限 is two days
    # earlier than ours and drives (deadline_source earlier, the default)
    ("2024-09-27 16:30", [case("PLATFORM-EARLIER", FRIDAY, accepted_at=at("2024-09-26 09:00"),
                               platform_due_at=at("2024-10-09 00:00"))]),
    # the platform's is later: ours drives; then the platform moves its own to an earlier one, which takes over
    ("2024-09-27 16:30", [case("PLATFORM-LATER", FRIDAY, platform_due_at=at("2024-10-15 00:00"))]),
    ("2024-10-08 12:00", [case("PLATFORM-LATER", FRIDAY, platform_due_at=at("2024-10-10 00:00"))]),
    # suspended (挂起) over National Day: nothing while suspended; resumed Tue Oct 8, one working day given
    # back (Oct 8; the holiday gives nothing), so due moves from Oct 11 00:00 to Oct 12 00:00 (a make-up day)
    ("2024-09-27 16:30", [case("SUSPENDED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"))]),
    ("2024-09-30 10:00", [case("SUSPENDED", FRIDAY, status=Status.SUSPENDED, signed_at=at("2024-09-27 17:00"),
                               suspended_at=at("2024-09-30 10:00"))]),
    ("2024-10-08 10:00", [case("SUSPENDED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"),
                               suspended_at=at("2024-09-30 10:00"), resumed_at=at("2024-10-08 10:00"))]),
    # suspended twice (issue 12 item 3): the export shows only the latest pair. Over National Day (Oct 8 back: due
    # Oct 12), then again Oct 9 10:00 (still suspended: the first still counts, no breach on Oct 12) to Oct 11
    # 09:00 (Oct 10, 11 back): due Oct 15 00:00, never the false Oct 13 of the second suspension alone
    ("2024-09-27 16:30", [case("TWICE-SUSPENDED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"))]),
    ("2024-09-30 10:00", [case("TWICE-SUSPENDED", FRIDAY, status=Status.SUSPENDED, signed_at=at("2024-09-27 17:00"),
                               suspended_at=at("2024-09-30 10:00"))]),
    ("2024-10-08 10:00", [case("TWICE-SUSPENDED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"),
                               suspended_at=at("2024-09-30 10:00"), resumed_at=at("2024-10-08 10:00"))]),
    ("2024-10-09 10:00", [case("TWICE-SUSPENDED", FRIDAY, status=Status.SUSPENDED, signed_at=at("2024-09-27 17:00"),
                               suspended_at=at("2024-10-09 10:00"))]),
    ("2024-10-11 09:00", [case("TWICE-SUSPENDED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"),
                               suspended_at=at("2024-10-09 10:00"), resumed_at=at("2024-10-11 09:00"))]),
    # suspended and never resumed within the walk: no warning, no breach
    ("2024-09-27 16:30", [case("STILL-SUSPENDED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"))]),
    ("2024-09-29 09:00", [case("STILL-SUSPENDED", FRIDAY, status=Status.SUSPENDED, signed_at=at("2024-09-27 17:00"),
                               suspended_at=at("2024-09-29 09:00"))]),
    # fed back, then reopened (重办) on Oct 9 10:00: a new cycle (deadline version 2) with its own clock, due
    # Oct 16 00:00 (Oct 10, 11, 12 make-up, 14, 15), which it breaches
    ("2024-09-27 16:30", [case("REOPENED", FRIDAY, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"))]),
    ("2024-10-08 15:00", [case("REOPENED", FRIDAY, status=Status.FED_BACK, signed_at=at("2024-09-27 17:00"),
                               fed_back_at=at("2024-10-08 15:00"))]),
    ("2024-10-09 10:00", [case("REOPENED", "2024-10-09 10:00", status=Status.REOPENED,
                               accepted_at=at("2024-09-27 16:00"))]),
    # asked for a return too late (Sat 18:00, the window closed 16:30), then re-dispatched under the same number
    # to another unit on Sun Sep 29 10:00: the first unit keeps its late-return notice, the second gets its own
    # clock (due Oct 12 00:00: Sep 30, Oct 8, 9, 10, 11), return window (Sep 30 10:00) and breach
    ("2024-09-27 16:30", [case("REDISPATCHED", FRIDAY)]),
    ("2024-09-28 18:00", [case("REDISPATCHED", FRIDAY, status=Status.RETURN_REQUESTED,
                               return_requested_at=at("2024-09-28 18:00"))]),
    ("2024-09-29 10:00", [case("REDISPATCHED", "2024-09-29 10:00", unit=OTHER_UNIT,
                               accepted_at=at("2024-09-27 16:00"))]),
]
#: (case, muted at, muted until): `cases mute` at that instant
MUTES = [("MUTED", "2024-10-09 09:00", "2024-10-14 12:00"), ("MUTED-SHORT", "2024-10-09 09:00", "2024-10-10 12:00")]


@dataclass
class Pure:
    """One case as the pure walk knows it."""

    record: CaseRecord
    rule_id: str
    deadline: Deadline
    return_deadline: Deadline | None
    version: int
    next_check_at: datetime | None


def _deadlines(cache: RuleCache, rec: CaseRecord) -> tuple[str, Deadline, Deadline | None]:
    rule, return_rule = cache.rules_for(rec)
    ret = None if return_rule is None else return_rule.deadline(rec.received_at)
    return rule.id, rule.deadline(rec.received_at, extended_due_at=rec.extended_due_at,
                                  platform_due_at=rec.platform_due_at, suspensions=rec.suspensions,
                                  contact_observed=rec.contact_tracked), ret


def _remembering(before: CaseRecord, exported: CaseRecord) -> CaseRecord:
    """``exported`` with the earlier suspensions the core remembers over ``before`` (an export shows one pair)."""
    return replace(exported, earlier_suspensions=remembered_suspensions(
        before.earlier_suspensions, before.suspended_at, before.resumed_at, exported.suspended_at,
        new_cycle=before.received_at != exported.received_at))


Alert = tuple[str, str, int, int, datetime, datetime]


def _announced(store: Store) -> set[Alert]:
    """The stored alerts that have at least one outbox row (a message queued)."""
    with store.engine.connect() as conn:
        return {
            (r.number, r.kind, r.level, r.deadline_version, r.fire_at, r.due_at)
            for r in conn.execute(
                select(cases.c.number, alerts.c.kind, alerts.c.level, alerts.c.deadline_version, alerts.c.fire_at,
                       alerts.c.due_at).join(cases, cases.c.id == alerts.c.case_id)
                .where(alerts.c.id.in_(select(outbox.c.alert_id))))
        }


def _stored(store: Store) -> tuple[dict[str, datetime | None], set[Alert]]:
    with store.engine.connect() as conn:
        checks = {r.number: r.next_check_at for r in conn.execute(select(cases.c.number, cases.c.next_check_at))}
        found = {
            (r.number, r.kind, r.level, r.deadline_version, r.fire_at, r.due_at)
            for r in conn.execute(select(cases.c.number, alerts.c.kind, alerts.c.level, alerts.c.deadline_version,
                                         alerts.c.fire_at, alerts.c.due_at).join(cases, cases.c.id == alerts.c.case_id))
        }
    return checks, found


Alert = tuple[str, str, int, int, datetime, datetime]


def _walk(store: Store, rules: RuleSet, lives: list[tuple[str, list[CaseRecord]]],
          mutes: list[tuple[str, str, str]]) -> tuple[set[Alert], set[Alert], int]:
    """Import, change and tick every case of ``lives`` at every instant where something can happen, and
    compare the store with the pure walk after each step; the alerts expected, those that get a message,
    and the number of steps."""
    cfg = config()
    settings = EngineSettings.from_config(cfg.alerts)
    calendar = rules.rules[0].calendar
    cache = RuleCache(rules)
    changes: dict[datetime, list[CaseRecord]] = {}
    for when, records in lives:
        changes.setdefault(at(when), []).extend(records)
    pure: dict[str, Pure] = {}
    expected: set[Alert] = set()
    sent: set[Alert] = set()  # the alerts that get a message: announced() of those decided at once
    instants = list(changes)
    heapq.heapify(instants)
    for _, muted_at, until in mutes:
        instants += [at(muted_at), at(until)]
    heapq.heapify(instants)
    done: set[datetime] = set()
    steps = 0
    while instants:
        now = heapq.heappop(instants)
        if now in done or now > END or (done and now < max(done)):  # time runs forwards: a deadline moved
            continue  # while overdue has warning instants in the past
        done.add(now)
        if now in changes:
            store.upsert_cases(changes[now], rules=rules, now=now, source_name="life")
            for exported in changes[now]:
                old = pure.get(exported.number)
                rec = exported if old is None else _remembering(old.record, exported)
                rule_id, deadline, ret = _deadlines(cache, rec)
                version = 1 if old is None else old.version + (
                    deadline.due_at != old.deadline.due_at or rule_id != old.rule_id)
                first = first_check_at(CaseState.from_record(rec), deadline, ret)
                pure[rec.number] = Pure(rec, rule_id, deadline, ret, version, first)
            checks, _ = _stored(store)
            assert checks == {n: p.next_check_at for n, p in pure.items()}, f"after the changes at {now}"
        for number, muted_at, until in mutes:
            if at(muted_at) == now:
                mute_case(store, number, until=at(until), reason="复核中", by="督办员", now=now)
        muted_until = {number: at(until) for number, muted_at, until in mutes if at(muted_at) <= now}
        run_tick(store, rules, calendar, cfg, now)
        steps += 1
        for number, p in pure.items():
            ev = evaluate(CaseState.from_record(p.record), p.deadline, p.return_deadline, now,
                          calendar=calendar, settings=settings)
            ev = muted(ev, muted_until.get(number), now)
            # every case, due or not: what the store must have alerted by now; a breach repeat is keyed by its
            # day and a sign/contact window by its end, so one alerted under an earlier deadline version is not
            # alerted again
            repeated = {(n, kind, level) for n, kind, level, *_ in expected if kind in ONCE_KINDS}
            new = [d for d in ev.decisions
                   if (number, d.kind, d.level, p.version, d.fire_at, d.due_at) not in expected
                   and (d.kind not in ONCE_KINDS or (number, d.kind, d.level) not in repeated)]
            expected |= {(number, d.kind, d.level, p.version, d.fire_at, d.due_at) for d in new}
            sent |= {(number, d.kind, d.level, p.version, d.fire_at, d.due_at) for d in announced(new)}
            if p.next_check_at is not None and p.next_check_at <= now:  # what the tick read
                p.next_check_at = ev.next_check_at
            if ev.next_check_at is not None:
                heapq.heappush(instants, ev.next_check_at)
            for point in (*p.deadline.warnings, *(p.return_deadline.warnings if p.return_deadline else ())):
                heapq.heappush(instants, point.at)
        checks, found = _stored(store)
        assert found == expected, f"alerts at {now}: missing {expected - found}, extra {found - expected}"
        messages = _announced(store)
        assert messages == sent, f"messages at {now}: missing {sent - messages}, extra {messages - sent}"
        assert checks == {n: p.next_check_at for n, p in pure.items()}, f"next checks after the tick at {now}"
    return expected, sent, steps


def test_every_case_lives_in_the_store_as_the_engine_walks_it(store: Store, rules: RuleSet) -> None:
    expected, sent, steps = _walk(store, rules, LIVES, MUTES)
    kinds = {(number, kind) for number, kind, *_ in expected}
    assert {("EDGE-RETURNED", "late_return"), ("EDGE-PENDING", "late_return"), ("LATE", "late_return"),
            ("BREACH", "breach_repeat"), ("EXTENDED", "warning"), ("PROVINCE", "breach")} <= kinds
    assert ("AT-WARNING", "late_return") not in kinds and ("MAKEUP", "breach") not in kinds
    moved = sorted((level, version) for number, kind, level, version, *_ in expected
                   if number == "MOVED-OVERDUE" and kind == "breach_repeat")
    assert moved[:2] == [(20241012, 1), (20241014, 2)]  # Oct 12 once (under version 1), then on under version 2
    # the long mute: nothing after its first warning until the mute's end, then the breach and the latest repeat
    # (the second warning and the first repeat fell inside it: never sent); the short one missed no step
    muted_keys = {(k, lv) for n, k, lv, *_ in expected if n == "MUTED"}
    # (repeats are keyed by their working day: Oct 12 is the make-up Saturday, the first repeat)
    assert ("warning", 1) in muted_keys and ("breach_repeat", 20241014) in muted_keys
    assert ("warning", 2) not in muted_keys and ("breach_repeat", 20241012) not in muted_keys
    assert {("warning", 2), ("breach_repeat", 20241012)} <= {
        (k, lv) for n, k, lv, *_ in expected if n == "MUTED-SHORT"}
    # at the mute's end the breach and the latest repeat are decided at once: both recorded, only the repeat
    # (the current state) is sent, never 已超期 and 超期仍未办结 together
    muted_sent = {(k, lv) for n, k, lv, *_ in sent if n == "MUTED"}
    assert ("breach_repeat", 20241014) in muted_sent and ("breach", 0) not in muted_sent
    assert ("breach", 0) in muted_keys
    assert {a for a in expected if a[0] == "BREACH"} == {a for a in sent if a[0] == "BREACH"}  # one at a time
    with store.engine.connect() as conn:
        created = conn.execute(select(alerts.c.created_at).join(cases, cases.c.id == alerts.c.case_id).where(
            cases.c.number == "MUTED", alerts.c.kind == "breach")).scalar_one()
    assert created == at("2024-10-14 12:00")
    breaches = {(number, due) for number, kind, _, _, _, due in expected if kind == "breach"}
    assert ("PLATFORM-EARLIER", at("2024-10-09 00:00")) in breaches  # the platform's, not ours (Oct 11)
    assert ("PLATFORM-LATER", at("2024-10-10 00:00")) in breaches  # moved earlier by the platform
    assert {due for number, due in breaches if number == "SUSPENDED"} == {at("2024-10-12 00:00")}
    assert not {a for a in expected if a[0] == "STILL-SUSPENDED" and a[4] >= at("2024-09-29 09:00")}
    assert {due for number, due in breaches if number == "TWICE-SUSPENDED"} == {at("2024-10-15 00:00")}
    with store.engine.connect() as conn:
        twice = conn.execute(select(cases.c.earlier_suspensions).where(cases.c.number == "TWICE-SUSPENDED")).scalar()
    assert twice == [["2024-09-30T10:00:00+08:00", "2024-10-08T10:00:00+08:00"]]
    with store.engine.connect() as conn:
        redispatched = set(conn.execute(
            select(alerts.c.kind, alerts.c.deadline_version, alerts.c.unit).join(cases, cases.c.id == alerts.c.case_id)
            .where(cases.c.number == "REDISPATCHED")).all())
        units = [h.new_value for h in conn.execute(
            select(case_history.c.new_value).join(cases, cases.c.id == case_history.c.case_id)
            .where(cases.c.number == "REDISPATCHED", case_history.c.field == "unit"))]
        requested = [h.old_value for h in conn.execute(
            select(case_history.c.old_value).join(cases, cases.c.id == case_history.c.case_id)
            .where(cases.c.number == "REDISPATCHED", case_history.c.field == "return_requested_at"))]
    assert ("late_return", 1, UNIT) in redispatched  # the first unit's own window and notice
    assert {("return_window", 2, OTHER_UNIT), ("breach", 2, OTHER_UNIT)} <= redispatched  # the holder's now
    assert {a[1] for a in redispatched if a[2] == UNIT} == {1}  # nothing of the new assignment went to it
    # both assignments kept: the unit and the first one's return request, as the re-dispatch cleared it
    assert units == [OTHER_UNIT] and requested[-1] is not None
    assert datetime.fromisoformat(requested[-1]) == at("2024-09-28 18:00")
    with store.engine.connect() as conn:  # and as its own assignment row, which the ranking scores (late return)
        first = conn.execute(select(assignments).join(cases, cases.c.id == assignments.c.case_id)
                             .where(cases.c.number == "REDISPATCHED")).one()
    assert (first.unit, first.outcome, first.return_requested_at) == (UNIT, "returned", at("2024-09-28 18:00"))
    assert scored_on_unit(first.outcome, first.return_requested_at, first.return_due_at)
    assert ("REDISPATCHED", at("2024-10-12 00:00")) in breaches
    reopened = {(kind, version, due) for number, kind, _, version, _, due in expected if number == "REOPENED"}
    assert ("breach", 2, at("2024-10-16 00:00")) in reopened  # the new cycle's own breach
    assert not {a for a in reopened if a[0] == "breach" and a[1] == 1}  # the first cycle was fed back in time
    assert steps > 20


# the rule kinds offices use (issue 12 item 4), under sla_rules/examples (urgent: 2 hours; help: 24 working
# hours on 08:30-12:00/13:30-17:30 with leads of 4 and 2 working hours; inquiry: 当日). 2024: Sun Sep 29 a
# make-up working day, Oct 1-7 off.
KIND_LIVES: list[tuple[str, list[CaseRecord]]] = [
    # urgent: due Fri 18:30, warned at 18:00, breached, then repeated on working days
    ("2024-09-27 16:30", [case("URGENT", FRIDAY, category=Category.HELP, priority=Priority.URGENT)]),
    # 24 working hours from Fri 17:00: 0.5 h Fri, Sat off, 7.5 h on the make-up Sunday and on Mon Sep 30,
    # National Day off, 7.5 h Tue Oct 8, the last hour Wed Oct 9: due Oct 9 09:30 (not Saturday)
    ("2024-09-27 17:00", [case("WORKING-HOURS", "2024-09-27 17:00", category=Category.HELP)]),
    # 当日 after the working day on the eve of National Day: the end of Oct 8
    ("2024-09-30 18:00", [case("SAME-DAY", "2024-09-30 18:00", category=Category.INQUIRY)]),
    # working hours suspended over the holiday: the working time inside the suspension is given back
    ("2024-09-30 09:00", [case("WH-SUSPENDED", "2024-09-30 09:00", category=Category.HELP)]),
    ("2024-09-30 10:00", [case("WH-SUSPENDED", "2024-09-30 09:00", category=Category.HELP, status=Status.SUSPENDED,
                               suspended_at=at("2024-09-30 10:00"))]),
    ("2024-10-08 10:00", [case("WH-SUSPENDED", "2024-09-30 09:00", category=Category.HELP, status=Status.SIGNED,
                               signed_at=at("2024-10-08 10:00"), suspended_at=at("2024-09-30 10:00"),
                               resumed_at=at("2024-10-08 10:00"))]),
    # 签收时限 (help: 4 working hours). Dispatched Fri 16:00: 1.5 h, Saturday off, 2.5 h on the make-up Sunday:
    # late from Sep 29 11:00, signed the next morning (no repeat, nothing withdrawn)
    ("2024-09-27 16:00", [case("SIGN-LATE", "2024-09-27 16:00", category=Category.HELP)]),
    ("2024-09-30 09:00", [case("SIGN-LATE", "2024-09-27 16:00", category=Category.HELP, status=Status.SIGNED,
                               signed_at=at("2024-09-30 09:00"))]),
    # dispatched Mon Sep 30 16:00: 1.5 h, National Day and its weekend off, 2.5 h on Oct 8: signed at 11:00
    # itself, the window's first late instant: signed when it is evaluated, so no alert
    ("2024-09-30 16:00", [case("SIGN-AT-END", "2024-09-30 16:00", category=Category.HELP)]),
    ("2024-10-08 11:00", [case("SIGN-AT-END", "2024-09-30 16:00", category=Category.HELP, status=Status.SIGNED,
                               signed_at=at("2024-10-08 11:00"))]),
    # signed and fed back in the first cycle; reopened (重办) Oct 8 09:00 and not signed: the new cycle's window
    ("2024-09-27 16:30", [case("SIGN-REOPENED", FRIDAY, category=Category.HELP, status=Status.SIGNED,
                               signed_at=at("2024-09-27 16:45"))]),
    ("2024-09-30 10:00", [case("SIGN-REOPENED", FRIDAY, category=Category.HELP, status=Status.FED_BACK,
                               signed_at=at("2024-09-27 16:45"), fed_back_at=at("2024-09-30 10:00"))]),
    ("2024-10-08 09:00", [case("SIGN-REOPENED", "2024-10-08 09:00", category=Category.HELP, status=Status.REOPENED)]),
    # muted over its window's end (Oct 9 09:00 + 4 working hours = 14:30): the alert comes at the mute's end
    ("2024-10-09 09:00", [case("SIGN-MUTED", "2024-10-09 09:00", category=Category.HELP)]),
    # 先行联系 (urgent: within 1 hour), where the export has the column: late at 17:30, contacted at 18:00
    ("2024-09-27 16:30", [case("CONTACT-LATE", FRIDAY, category=Category.HELP, priority=Priority.URGENT,
                               contact_tracked=True)]),
    ("2024-09-27 18:00", [case("CONTACT-LATE", FRIDAY, category=Category.HELP, priority=Priority.URGENT,
                               contact_tracked=True, contacted_at=at("2024-09-27 18:00"))]),
    # contacted at the window's end itself: no alert; and a source without the column: never observed, no alert
    ("2024-09-27 16:30", [case("CONTACT-AT-END", FRIDAY, category=Category.HELP, priority=Priority.URGENT,
                               contact_tracked=True)]),
    ("2024-09-27 17:30", [case("CONTACT-AT-END", FRIDAY, category=Category.HELP, priority=Priority.URGENT,
                               contact_tracked=True, contacted_at=at("2024-09-27 17:30"))]),
]
KIND_MUTES = [("SIGN-MUTED", "2024-10-09 12:00", "2024-10-09 16:00")]


def test_rule_kinds_live_in_the_store_as_the_engine_walks_them(store: Store, calendar: WorkCalendar) -> None:
    rules = load_rules(Path(__file__).resolve().parent.parent / "sla_rules" / "examples", calendar)
    expected, sent, steps = _walk(store, rules, KIND_LIVES, KIND_MUTES)
    breaches = {(number, due) for number, kind, _, _, _, due in expected if kind == "breach"}
    assert {("URGENT", at("2024-09-27 18:30")), ("WORKING-HOURS", at("2024-10-09 09:30")),
            ("SAME-DAY", at("2024-10-09 00:00"))} <= breaches
    # due Oct 10 10:30 without the suspension; 7.5 working hours given back (Sep 30 10:00-17:30 less lunch,
    # Oct 8 08:30-10:00): Oct 11 10:30
    assert {due for number, due in breaches if number == "WH-SUSPENDED"} == {at("2024-10-11 10:30")}
    warned = {(number, fire) for number, kind, _, _, fire, _ in expected if kind == "warning"}
    assert {("URGENT", at("2024-09-27 18:00")), ("WORKING-HOURS", at("2024-10-08 14:30")),
            ("WORKING-HOURS", at("2024-10-08 16:30"))} <= warned
    assert steps > 5
    # 未签收 and 未先行联系: once per window, at its end, to the unit that holds the case
    unsigned = sorted((number, fire) for number, kind, _, _, fire, _ in expected if kind == "unsigned")
    assert unsigned == [("SIGN-LATE", at("2024-09-29 11:00")), ("SIGN-MUTED", at("2024-10-09 14:30")),
                        ("SIGN-REOPENED", at("2024-10-08 14:30")), ("WORKING-HOURS", at("2024-09-29 12:00"))]
    contact = [(number, fire) for number, kind, _, _, fire, _ in expected if kind == "first_contact"]
    assert contact == [("CONTACT-LATE", at("2024-09-27 17:30"))]  # URGENT's export has no contact column
    assert {a for a in expected if a[1] in ("unsigned", "first_contact")} <= sent
    with store.engine.connect() as conn:
        created = conn.execute(select(alerts.c.created_at).join(cases, cases.c.id == alerts.c.case_id).where(
            cases.c.number == "SIGN-MUTED", alerts.c.kind == "unsigned")).scalar_one()
        routed = {r.recipient["role"] for r in conn.execute(
            select(outbox.c.recipient).join(alerts, alerts.c.id == outbox.c.alert_id)
            .where(alerts.c.kind.in_(["unsigned", "first_contact"])))}
    assert created == at("2024-10-09 16:00")  # deferred by the mute, never lost
    assert routed == {"handler"}  # the life config has a handler and no leader for the unit


def test_a_return_asked_for_exactly_at_the_window_end_is_checked_and_alerted(store: Store, rules: RuleSet) -> None:
    """The issue's reproduction: a returned case whose 退件申请时间 is exactly received + 24 h, then a tick."""
    returned = case("EDGE", FRIDAY, status=Status.RETURNED, return_requested_at=EDGE)
    store.upsert_cases([returned], rules=rules, now=EDGE, source_name="t")
    checks, _ = _stored(store)
    assert checks == {"EDGE": EDGE}
    result = run_tick(store, rules, rules.rules[0].calendar, config(), EDGE + timedelta(minutes=1))
    assert [(a["case"], a["kind"]) for a in result.alerts] == [("EDGE", "late_return")]
    assert _stored(store)[0] == {"EDGE": None}
