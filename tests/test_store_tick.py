"""The store and the tick, on SQLite, PostgreSQL and MariaDB over real connections."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from daemon.config import Config, ContactConfig, ContactsConfig, UnitConfig
from daemon.core.cases import CaseRecord, Category, Source, Status
from daemon.core.engine import window_level
from daemon.core.rules import RuleSet
from daemon.core.timeutil import LOCAL_TZ, parse_time
from daemon.pipeline.outbox import Dispatcher
from daemon.pipeline.queue import full_payload, select_rows
from daemon.pipeline.recompute import recompute_if_changed
from daemon.pipeline.tick import run_tick
from daemon.storage.models import alerts, case_history, cases, outbox
from daemon.storage.store import Store
from notifiers.testing import FakeNotifier

UNIT = "兴隆台区住建局"


def at(text: str) -> datetime:
    return parse_time(text)


def config() -> Config:
    return Config(
        contacts=ContactsConfig(
            units=[UnitConfig(name=UNIT, contacts=[
                ContactConfig(name="王承办", role="handler", mobile="13800001234"),
                ContactConfig(name="李科长", role="leader", mobile="13800005678"),
            ])],
            supervisors=[ContactConfig(name="督办员", role="supervisor")],
        )
    )


def case(number: str = "C1", **kw: object) -> CaseRecord:
    base: dict[str, object] = {"number": number, "source": Source.CITY, "category": Category.COMPLAINT,
                               "unit": UNIT, "received_at": at("2024-09-27 16:30"), "summary": "反映小区供暖不达标"}
    base.update(kw)
    return CaseRecord(**base)  # type: ignore[arg-type]


#: a late return's level names its return window's end (received 09-27 16:30 + 24 h), engine.window_level
LATE = window_level(at("2024-09-28 16:30"))


def kinds(result) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    return [(a["case"], a["kind"], a["level"]) for a in result.alerts]


def test_upsert_derives_deadline_and_reimport_is_a_no_op(store: Store, rules: RuleSet) -> None:
    now = at("2024-09-27 17:00")
    r = store.upsert_cases([case(), case("C2", source=Source.PROVINCE)], rules=rules, now=now, source_name="t")
    assert (r.inserted, r.updated, r.unchanged) == (2, 0, 0)
    with store.engine.connect() as conn:
        rows = {row.number: row for row in conn.execute(select(cases))}
    assert rows["C1"].rule_id == "municipal_complaint"
    assert rows["C1"].due_at == at("2024-10-11T00:00:00+08:00")
    assert rows["C2"].due_at == at("2024-10-08T00:00:00+08:00")
    assert rows["C1"].return_due_at == at("2024-09-28 16:30")
    assert rows["C1"].received_at.utcoffset() == timedelta(0)  # aware UTC out of every backend
    again = store.upsert_cases([case(), case("C2", source=Source.PROVINCE)], rules=rules, now=now, source_name="t")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)


def test_change_is_recorded_in_history_and_extension_bumps_the_version(store: Store, rules: RuleSet) -> None:
    now = at("2024-09-28 10:00")
    store.upsert_cases([case()], rules=rules, now=now, source_name="t")
    ext = case(status=Status.SIGNED, extended_due_at=at("2024-10-16 00:00"))
    r = store.upsert_cases([ext], rules=rules, now=now, source_name="t")
    assert r.updated == 1 and r.moved == ["C1"]
    with store.engine.connect() as conn:
        row = conn.execute(select(cases)).one()
        hist = {h.field: (h.old_value, h.new_value) for h in conn.execute(select(case_history))}
    assert row.deadline_version == 2 and row.due_at == at("2024-10-16 00:00")
    assert hist["status"] == ("dispatched", "signed")
    assert "due_at" in hist and "extended_due_at" in hist


def test_tick_walks_a_case_through_its_life_without_duplicates(store: Store, rules: RuleSet) -> None:
    cfg = config()
    store.upsert_cases([case()], rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    cal = rules.rules[0].calendar
    seen: list[tuple[str, str, int]] = []
    for instant in ("2024-09-28 12:30", "2024-10-09 08:30", "2024-10-10 08:30", "2024-10-11 00:00",
                    "2024-10-12 09:00"):
        r = run_tick(store, rules, cal, cfg, at(instant))
        seen += kinds(r)
        assert kinds(run_tick(store, rules, cal, cfg, at(instant))) == []  # same now twice: nothing new
    assert seen == [("C1", "return_window", 1), ("C1", "warning", 1), ("C1", "warning", 2),
                    ("C1", "breach", 0), ("C1", "breach_repeat", 20241012)]
    with store.engine.connect() as conn:
        n_alerts = conn.execute(select(func.count()).select_from(alerts)).scalar_one()
        msgs = conn.execute(select(outbox)).all()
    assert n_alerts == 5
    breach = [m for m in msgs if m.kind == "breach"]
    assert sorted(m.recipient["name"] for m in breach) == ["李科长", "王承办"]  # handler and leader
    assert {m.channel for m in msgs} == {"console"}


def test_outbox_rows_carry_the_alert_payload_recipient_and_key(store: Store, rules: RuleSet) -> None:
    store.upsert_cases([case(), case("C2", unit="无人单位")], rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    now = at("2024-10-11 00:00")
    r = run_tick(store, rules, rules.rules[0].calendar, config(), now)
    with store.engine.connect() as conn:
        by_id = {a.id: a for a in conn.execute(select(alerts))}
        msgs = conn.execute(select_rows()).all()
    assert len(by_id) == len(r.alerts) == 2 and len(msgs) == r.outbox_rows == 3
    for m in msgs:
        alert = by_id[m.alert_id]
        assert alert.detail["case"]["number"] in ("C1", "C2") and alert.detail["kind"] == alert.kind == m.kind
        note = "无人单位未配置承办人/分管领导联系人，转督办人员" if alert.detail["case"]["number"] == "C2" else None
        assert m.payload == {"note": note, "urgent": False}  # the rest is the alert's detail, stored once
        assert full_payload(m) == {**alert.detail, "note": note, "urgent": False}
        role, name = m.recipient["role"], m.recipient["name"]
        assert m.dedupe_key == f"alert:{alert.id}:{role}:{m.recipient['unit'] or '-'}:{name}"
        assert (m.status, m.not_before, m.attempts, m.created_at, alert.created_at) == ("pending", now, 0, now, now)
    assert {(m.recipient["name"], m.recipient["mobile"]) for m in msgs} == {
        ("王承办", "13800001234"), ("李科长", "13800005678"), ("督办员", None)}


def test_tick_after_an_outage_sends_the_breach_not_every_missed_warning(store: Store, rules: RuleSet) -> None:
    store.upsert_cases([case(), case("C2", status=Status.FED_BACK, fed_back_at=at("2024-10-08 10:00"))],
                       rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    r = run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-15 10:00"))
    # repeats: Sat Oct 12 (make-up day), Mon Oct 14, Tue Oct 15 09:00; only the latest is sent
    assert sorted(kinds(r)) == [("C1", "breach", 0), ("C1", "breach_repeat", 20241015)]
    assert r.evaluated == 1  # the fed-back case has nothing left to check


def test_dispatch_merges_the_alert_detail_back_and_rows_of_the_old_form_send_the_same(
    store: Store, rules: RuleSet
) -> None:
    store.upsert_cases([case(), case("C2", unit="无人单位")], rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    now = at("2024-10-11 00:00")
    run_tick(store, rules, rules.rules[0].calendar, config(), now)

    def send() -> list[tuple[str, str, str, dict[str, str]]]:
        fake = FakeNotifier("console")
        result = Dispatcher(store, config(), {"console": fake}, owner="t", monotonic=lambda: 0.0).dispatch_once(now)
        assert result.sent == 3 and result.failed == 0
        return sorted((m.recipient.name, m.subject, m.text, m.params) for m in fake.sent)

    trimmed = send()
    assert any("无人单位未配置" in text for _, _, text, _ in trimmed)  # the row's own note, merged with the detail
    assert all("C1" in subject or "C2" in subject for _, subject, _, _ in trimmed)
    with store.engine.begin() as conn:  # the rows as a version before the trim wrote them: the whole context
        for m in conn.execute(select_rows()).all():
            conn.execute(update(outbox).where(outbox.c.id == m.id)
                         .values(payload=full_payload(m), status="pending", not_before=now))
    assert send() == trimmed


def test_unit_without_contacts_goes_to_supervisors_with_a_note(store: Store, rules: RuleSet) -> None:
    store.upsert_cases([case(unit="无人单位")], rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-11 00:00"))
    with store.engine.connect() as conn:
        msgs = conn.execute(select(outbox)).all()
    assert msgs and all(m.recipient["name"] == "督办员" for m in msgs)
    assert all("无人单位未配置" in m.payload["note"] for m in msgs)


def test_a_case_that_fails_to_evaluate_is_pushed_forward(store: Store, rules: RuleSet) -> None:
    store.upsert_cases([case(), case("C2")], rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    with store.engine.begin() as conn:
        conn.execute(cases.update().where(cases.c.number == "C2").values(status="nonsense"))
    now = at("2024-10-11 00:00")
    r = run_tick(store, rules, rules.rules[0].calendar, config(), now)
    assert r.failed == 1 and ("C1", "breach", 0) in kinds(r)
    with store.engine.connect() as conn:
        bad = conn.execute(select(cases).where(cases.c.number == "C2")).one()
    assert bad.check_failures == 1 and bad.next_check_at > now


def test_recompute_moves_deadlines_when_the_calendar_changes(store: Store, rules: RuleSet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from daemon.core.calendar import WorkCalendar
    from daemon.core.rules import load_rules

    rec = case(received_at=at("2026-12-28 10:00"))
    store.upsert_cases([rec], rules=rules, now=at("2026-12-28 10:00"), source_name="t")
    assert recompute_if_changed(store, rules, at("2026-12-28 11:00")).moved == []
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "2027.yaml").write_text("year: 2027\nrest_days:\n  - {date: 2027-01-01, to: 2027-01-04}\n",
                                        encoding="utf-8")
    root = Path(__file__).resolve().parent.parent
    new_rules = load_rules(root / "sla_rules", WorkCalendar.load(overrides_dir=holidays))
    result = recompute_if_changed(store, new_rules, at("2026-12-29 09:00"))
    assert [m["case"] for m in result.moved] == ["C1"]
    with store.engine.connect() as conn:
        row = conn.execute(select(cases)).one()
    assert row.due_at == datetime(2027, 1, 7, tzinfo=LOCAL_TZ) and not row.provisional
    assert row.deadline_version == 2
    assert recompute_if_changed(store, new_rules, at("2026-12-29 09:05")).skipped


def test_reopened_case_is_checked_again(store: Store, rules: RuleSet) -> None:
    store.upsert_cases([case(status=Status.FED_BACK, fed_back_at=at("2024-09-30 10:00"))], rules=rules,
                       now=at("2024-09-30 10:00"), source_name="t")
    with store.engine.connect() as conn:
        assert conn.execute(select(cases.c.next_check_at)).scalar_one() is None
    store.upsert_cases([replace(case(), status=Status.SIGNED)], rules=rules, now=at("2024-10-01 10:00"),
                       source_name="t")
    r = run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-11 00:00"))
    assert ("C1", "breach", 0) in kinds(r)


def test_a_sync_during_the_tick_keeps_its_next_check(store: Store, rules: RuleSet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A re-import that lands between the tick's read and its write wins: the tick's stale check is not written.

    The tick reads C1 as returned too late (finished: one late-return notice, then nothing to check); while it
    evaluates, a sync reopens the case, which arms its deadline again. Writing the stale "nothing to check"
    over it would lose the breach for good.
    """
    import daemon.pipeline.tick

    store.upsert_cases([case(status=Status.RETURNED, return_requested_at=at("2024-09-29 10:00"))], rules=rules,
                       now=at("2024-09-29 10:00"), source_name="t")
    reopened = case(status=Status.SIGNED, signed_at=at("2024-09-29 11:00"))
    real_evaluate = daemon.pipeline.tick.evaluate
    synced: list[datetime | None] = []

    def evaluate_during_a_sync(*args, **kwargs):  # type: ignore[no-untyped-def]
        evaluation = real_evaluate(*args, **kwargs)
        if not synced:  # the tick has read the batch; another process's import commits now
            store.upsert_cases([reopened], rules=rules, now=at("2024-09-29 11:00"), source_name="t")
            with store.engine.connect() as conn:
                synced.append(conn.execute(select(cases.c.next_check_at)).scalar_one())
        return evaluation

    monkeypatch.setattr(daemon.pipeline.tick, "evaluate", evaluate_during_a_sync)
    r = run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-09-29 11:00"))
    assert kinds(r) == [("C1", "late_return", LATE)]  # decided on what the tick read, and written once
    monkeypatch.setattr(daemon.pipeline.tick, "evaluate", real_evaluate)
    with store.engine.connect() as conn:
        stored = conn.execute(select(cases.c.next_check_at, cases.c.check_failures)).one()
    assert synced[0] is not None and stored == (synced[0], 0)
    r = run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-11 00:00"))
    assert ("C1", "breach", 0) in kinds(r)


def test_two_processes_mirroring_the_config_contacts_write_them_once(store: Store) -> None:
    """Two instances start together: the second waits on the first's claim, then writes no duplicate contacts."""
    import threading

    from sqlalchemy import func, select

    from daemon.config import Config
    from daemon.pipeline.recipients import sync_config_contacts
    from daemon.storage.models import contacts

    config = Config.model_validate({"contacts": {
        "supervisors": [{"name": "督办甲", "role": "supervisor"}],
        "units": [{"name": "甲局", "contacts": [{"name": "王承办", "mobile": "13800001234"}]}],
    }})
    errors: list[BaseException] = []

    def second_instance() -> None:
        try:
            with store.engine.begin() as conn:
                sync_config_contacts(conn, config)
        except BaseException as exc:  # reported below
            errors.append(exc)

    with store.engine.begin() as first:
        sync_config_contacts(first, config)  # uncommitted: the second instance must wait for it
        other = threading.Thread(target=second_instance)
        other.start()
        other.join(timeout=0.5)  # bounded: give it the chance to race; it blocks on the claim
    other.join(timeout=60)
    assert not other.is_alive()
    assert errors == []
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(contacts)).scalar() == 2
    changed = Config.model_validate({"contacts": {"supervisors": [{"name": "督办乙", "role": "supervisor"}]}})
    with store.engine.begin() as conn:
        sync_config_contacts(conn, changed)
    with store.engine.connect() as conn:
        assert set(conn.execute(select(contacts.c.name)).scalars()) == {"督办乙"}


# --- what the fast tick reads and writes by hand --------------------------------------------------------------


def test_an_unsigned_case_gets_its_return_window_warning_and_a_signed_one_does_not(
    store: Store, rules: RuleSet
) -> None:
    """The tick parses a return window's warnings only for a case awaiting its signature: that one still hears."""
    store.upsert_cases([case(), case("C2", status=Status.SIGNED, signed_at=at("2024-09-28 09:00")),
                        case("C3", status=Status.RETURN_REQUESTED, return_requested_at=at("2024-09-28 17:00"))],
                       rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    cal = rules.rules[0].calendar
    with store.engine.connect() as conn:
        first = dict(conn.execute(select(cases.c.number, cases.c.next_check_at)).all())
    assert first["C1"] == at("2024-09-28 12:30")  # the return window's warning, 4h before it closes
    r = run_tick(store, rules, cal, config(), at("2024-09-28 12:30"))
    assert kinds(r) == [("C1", "return_window", 1)]
    r = run_tick(store, rules, cal, config(), at("2024-09-28 17:00"))  # C3 asked after the window closed
    assert kinds(r) == [("C3", "late_return", LATE)]
    with store.engine.connect() as conn:
        window = conn.execute(select(alerts.c.detail, alerts.c.due_at).where(alerts.c.kind == "return_window")).one()
    assert window.due_at == at("2024-09-28 16:30") and window.detail["case"]["due_at"] == "2024-09-28T16:30:00+08:00"


def test_a_moved_deadline_arms_its_warnings_again(store: Store, rules: RuleSet) -> None:
    cal = rules.rules[0].calendar
    store.upsert_cases([case(status=Status.SIGNED)], rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    assert kinds(run_tick(store, rules, cal, config(), at("2024-10-09 08:30"))) == [("C1", "warning", 1)]
    moved = case(status=Status.SIGNED, extended_due_at=at("2024-10-16 00:00"))  # 延期
    store.upsert_cases([moved], rules=rules, now=at("2024-10-09 09:00"), source_name="t")
    assert kinds(run_tick(store, rules, cal, config(), at("2024-10-11 00:00"))) == []  # no breach any more
    r = run_tick(store, rules, cal, config(), at("2024-10-14 08:30"))
    assert kinds(r) == [("C1", "warning", 1)] and r.alerts[0]["due_at"] == "2024-10-16T00:00:00+08:00"
    with store.engine.connect() as conn:
        keys = sorted(tuple(a) for a in conn.execute(select(alerts.c.kind, alerts.c.level, alerts.c.deadline_version)))
    assert keys == [("warning", 1, 1), ("warning", 1, 2)]


def test_overdue_cases_of_several_due_days_get_each_their_own_repeat(store: Store, rules: RuleSet) -> None:
    """The breach ladder is shared per due instant within a tick, never across due instants."""
    store.upsert_cases([case("C1", status=Status.SIGNED), case("C2", status=Status.SIGNED),
                        case("C3", status=Status.SIGNED, received_at=at("2024-09-20 10:00")),
                        case("C4", status=Status.SIGNED, extended_due_at=at("2024-10-11 15:00"))],
                       rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    r = run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-15 10:00"))
    due = {a["case"]: a["due_at"] for a in r.alerts}
    assert due == {"C1": "2024-10-11T00:00:00+08:00", "C2": "2024-10-11T00:00:00+08:00",
                   "C3": "2024-09-28T00:00:00+08:00", "C4": "2024-10-11T15:00:00+08:00"}
    repeats = sorted((a["case"], a["level"]) for a in r.alerts if a["kind"] == "breach_repeat")
    # Oct 12 (make-up day), 14, 15 after Oct 11; after Sep 28: Sep 29 (make-up), 30, Oct 8-12, 14, 15
    assert repeats == [("C1", 20241015), ("C2", 20241015), ("C3", 20241015), ("C4", 20241015)]
    with store.engine.connect() as conn:
        owd = {(a.detail["case"]["number"], a.detail["overdue_working_days"])
               for a in conn.execute(select(alerts.c.detail).where(alerts.c.kind == "breach_repeat"))}
    assert owd == {("C1", 3), ("C2", 3), ("C3", 8), ("C4", 2)}  # C4's due day (Oct 11) is only partly overdue


def test_the_instants_the_tick_reads_by_hand_are_what_the_column_type_reads(store: Store, rules: RuleSet) -> None:
    from daemon.pipeline.tick import READ
    from daemon.storage.codec import aware_utc as _aware

    record = case(status=Status.FED_BACK, signed_at=at("2024-09-27 17:00:00.250000"),
                  return_requested_at=at("2024-09-28 08:00:01"), fed_back_at=at("2024-09-30 10:00"),
                  closed_at=at("2024-10-01 10:00"))
    store.upsert_cases([record], rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    names = ("received_at", "signed_at", "return_requested_at", "fed_back_at", "closed_at", "due_at",
             "return_due_at")
    with store.engine.connect() as conn:
        raw = conn.execute(select(*READ)).one()._mapping
        typed = conn.execute(select(*(cases.c[n] for n in names))).one()._mapping
    for name in names:
        assert typed[name] is not None
        assert _aware(raw[name]) == typed[name] and _aware(raw[name]).tzinfo == typed[name].tzinfo, name
    assert _aware(None) is None


def test_alert_detail_is_the_text_the_stores_serializer_writes(store: Store, rules: RuleSet) -> None:
    """The detail reads back as the context, and (as text) is what the store's one serializer writes."""
    import json

    from sqlalchemy import type_coerce
    from sqlalchemy.types import NullType

    from daemon.storage.codec import dumps

    odd = '引号"和\\反斜杠\n换行\t😀 </script>'
    store.upsert_cases([case(summary=odd, district=None, return_requested_at=at("2024-09-28 17:00"),
                             status=Status.SIGNED),
                        case("C2", summary=None, district="兴隆台区", source=Source.PROVINCE)],
                       rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    r = run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-15 10:00"))
    assert sorted(kinds(r)) == [("C1", "breach", 0), ("C1", "breach_repeat", 20241015),
                                ("C1", "late_return", LATE), ("C2", "breach", 0), ("C2", "breach_repeat", 20241015)]
    with store.engine.connect() as conn:
        stored = conn.execute(select(alerts.c.kind, type_coerce(alerts.c.detail, NullType()).label("raw"),
                                     alerts.c.detail)).all()
    for a in stored:
        if isinstance(a.raw, str):  # SQLite, MariaDB: the text itself
            assert a.raw == dumps(json.loads(a.raw)) and json.loads(a.raw) == a.detail
        detail = a.detail
        assert list(detail) == ["kind", "level", "fire_at", "overdue_working_days", "case"]
        assert list(detail["case"]) == ["number", "summary", "unit", "district", "source", "category", "rule_id",
                                        "rule_name", "limit", "received_at", "due_at", "case_due_at",
                                        "provisional", "return_requested_at"]
        assert detail["kind"] == a.kind and detail["case"]["received_at"] == "2024-09-27T16:30:00+08:00"
        if detail["case"]["number"] == "C1":
            assert detail["case"]["summary"] == odd and detail["case"]["district"] is None
            assert detail["case"]["return_requested_at"] == "2024-09-28T17:00:00+08:00"
            assert (detail["case"]["rule_id"], detail["case"]["source"]) == ("municipal_complaint", "city")
        else:
            assert detail["case"]["summary"] is None and detail["case"]["district"] == "兴隆台区"
            assert detail["case"]["return_requested_at"] is None and detail["case"]["provisional"] is False
        if a.kind == "breach_repeat" and detail["case"]["number"] == "C1":
            assert detail["level"] == 20241015 and detail["overdue_working_days"] == 3
            assert detail["fire_at"] == "2024-10-15T09:00:00+08:00"


def test_the_engine_and_the_tick_write_json_through_one_serializer(tmp_path, rules: RuleSet) -> None:  # type: ignore[no-untyped-def]
    """A JSON column written through SQLAlchemy (the engine's serializer) and the tick's bulk rows are the
    same text for the same value: codec.dumps, UTF-8 rather than \\u escapes."""
    from sqlalchemy import insert

    from daemon.storage.codec import dumps

    store = Store(f"sqlite:///{tmp_path / 'one.db'}")
    store.upgrade()
    store.upsert_cases([case(), case("C2", unit="无人单位")], rules=rules, now=at("2024-09-27 16:30"),
                       source_name="t")
    run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-15 10:00"))
    with store.engine.begin() as conn:
        raw = conn.exec_driver_sql("SELECT detail FROM alerts ORDER BY id").scalars().all()
        detail = conn.execute(select(alerts.c.detail).order_by(alerts.c.id)).scalars().first()
        conn.execute(insert(alerts).values(
            case_id=1, kind="probe", level=0, deadline_version=1, fire_at=at("2024-10-15 10:00"),
            due_at=at("2024-10-15 10:00"), unit=UNIT, created_at=at("2024-10-15 10:00"), detail=detail))
        probe = conn.exec_driver_sql("SELECT detail FROM alerts WHERE kind = 'probe'").scalar_one()
    assert raw[0] == dumps(detail) == probe and "兴隆台区住建局" in raw[0] and "\\u" not in raw[0]
    store.close()


def test_the_tick_pauses_the_cycle_collector_only_while_it_runs(store: Store, rules: RuleSet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gc

    import daemon.pipeline.tick

    store.upsert_cases([case()], rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    during: list[bool] = []
    real_evaluate = daemon.pipeline.tick.evaluate

    def evaluate(*args, **kwargs):  # type: ignore[no-untyped-def]
        during.append(gc.isenabled())
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(daemon.pipeline.tick, "evaluate", evaluate)
    assert gc.isenabled()
    run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-09-28 12:30"))
    assert during == [False] and gc.isenabled()

    gc.disable()  # whoever paused it before keeps it paused
    try:
        run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-09 08:30"))
        assert during == [False, False] and not gc.isenabled()
    finally:
        gc.enable()

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # not an evaluation failure: it ends the tick

    monkeypatch.setattr(daemon.pipeline.tick, "evaluate", broken)
    with pytest.raises(KeyboardInterrupt):
        run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-10 08:30"))
    assert gc.isenabled()


def test_a_late_return_is_noticed_once_whatever_recomputes_the_deadline(store: Store, rules: RuleSet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A late return is about the return window, which a new holiday arrangement does not move for a 24-hour
    rule: a recompute that moves the resolution deadline (a new deadline version) must not notify it again."""
    from pathlib import Path

    from daemon.core.calendar import WorkCalendar
    from daemon.core.rules import load_rules

    late = case(received_at=at("2026-12-28 10:00"), status=Status.SIGNED, signed_at=at("2026-12-28 11:00"),
                return_requested_at=at("2026-12-30 10:00"))  # asked late, not yet answered: the case stays open
    store.upsert_cases([late], rules=rules, now=at("2026-12-30 10:00"), source_name="t")
    first = run_tick(store, rules, rules.rules[0].calendar, config(), at("2026-12-30 10:05"))
    assert [k[1] for k in kinds(first)] == ["late_return"]
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "2027.yaml").write_text("year: 2027\nrest_days:\n  - {date: 2027-01-01, to: 2027-01-04}\n",
                                        encoding="utf-8")
    new_rules = load_rules(Path(__file__).resolve().parent.parent / "sla_rules",
                           WorkCalendar.load(overrides_dir=holidays))
    moved = recompute_if_changed(store, new_rules, at("2026-12-31 09:00"), force=True)
    with store.engine.connect() as conn:
        assert conn.execute(select(cases.c.deadline_version)).scalar_one() == 2, moved
    again = run_tick(store, new_rules, new_rules.rules[0].calendar, config(), at("2026-12-31 09:05"))
    assert kinds(again) == []
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(alerts)
                            .where(alerts.c.kind == "late_return")).scalar_one() == 1
    # the notice queued under the first version is still true (the request is still late for its window): sent
    fake = FakeNotifier("console")
    sent = Dispatcher(store, config(), {"console": fake}, owner="t", monotonic=lambda: 0.0).dispatch_once(
        at("2026-12-31 09:10"))
    assert sent.sent == 1 and [m.recipient.name for m in fake.sent] == ["督办员"], sent
    with store.engine.connect() as conn:
        assert {r.status for r in conn.execute(select(outbox.c.status))} == {"sent"}


def test_an_upgrade_gives_stored_late_returns_their_window_level_and_nothing_is_sent_twice(
    store: Store, rules: RuleSet
) -> None:
    """Before migration 0012 a late return's level was 0; after it the tick keys it by its window's end. The
    migration rewrites the stored ones, so the first tick after an upgrade does not decide them again."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from daemon.storage.store import MIGRATIONS

    late = case(status=Status.SIGNED, signed_at=at("2024-09-27 17:00"), return_requested_at=at("2024-09-28 18:00"))
    store.upsert_cases([late], rules=rules, now=at("2024-09-28 18:00"), source_name="t")
    assert kinds(run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-09-28 18:05"))) == [
        ("C1", "late_return", LATE)]
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    with store.engine.connect() as conn:
        assert conn.execute(select(alerts.c.level)).scalars().all() == [0]  # as a store before 0012 has it
    store.upgrade()
    with store.engine.connect() as conn:
        assert conn.execute(select(alerts.c.level)).scalars().all() == [LATE]
        conn.execute(update(cases).values(next_check_at=at("2024-09-28 18:10")))
        conn.commit()
    assert kinds(run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-09-28 18:10"))) == []


def test_an_import_that_moves_a_delivered_breach_past_now_sends_one_correction(
    store: Store, rules: RuleSet, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """An approved extension (延期至) arrives by import after the breach was delivered: the handler and the leader
    who were told 已超期 get one 时限已调整 correction, as after a calendar change; a re-import sends nothing more."""
    from daemon.pipeline.sync import import_file

    headers = "工单编号,来源,诉求类型,交办时间,承办单位,办理状态,签收时间,延期至\n"
    first = tmp_path / "1.csv"
    first.write_text(headers + f"C1,市级,投诉,2024-09-27 16:30,{UNIT},办理中,2024-09-27 17:00,\n", "utf-8")
    extended = tmp_path / "2.csv"
    extended.write_text(headers + f"C1,市级,投诉,2024-09-27 16:30,{UNIT},办理中,2024-09-27 17:00,2024-10-18 00:00\n",
                        "utf-8")
    assert import_file(store, rules, first, now=at("2024-09-27 17:00"), parallel=False).inserted == 1
    assert [k[1] for k in kinds(run_tick(store, rules, rules.rules[0].calendar, config(), at("2024-10-11 00:05")))] \
        == ["breach"]

    def dispatch(now: datetime) -> list[tuple[str, str]]:
        fake = FakeNotifier("console")
        Dispatcher(store, config(), {"console": fake}, owner="t", monotonic=lambda: 0.0).dispatch_once(now)
        return sorted((m.recipient.name, m.text) for m in fake.sent)

    told = dispatch(at("2024-10-11 00:06"))
    assert [name for name, _ in told] == ["李科长", "王承办"] and all("超期" in text for _, text in told)
    assert import_file(store, rules, extended, now=at("2024-10-11 09:00"), parallel=False).updated == 1
    corrected = dispatch(at("2024-10-11 09:01"))
    assert [name for name, _ in corrected] == ["李科长", "王承办"], corrected
    assert all("时限已调整" in text and "10月18日" in text for _, text in corrected), corrected
    assert import_file(store, rules, extended, now=at("2024-10-11 10:00"), parallel=False).unchanged == 1
    assert dispatch(at("2024-10-11 10:01")) == []
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(alerts)
                            .where(alerts.c.kind == "deadline_moved")).scalar_one() == 1
