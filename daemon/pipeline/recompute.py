"""Recompute deadlines when the rules or the calendar change (start-up, reload, the next year's notice).

The combined fingerprint of rules and calendar is kept in the database; when it differs, cases are
re-derived: every open case, and the finished (fed back, closed, returned) cases received in the months the
reports still cover (the current month and ``months - 1`` before it, ``reports.recompute_months``), so a
month's ranking is the same whenever the notice was pasted. A case whose deadline moved gets a new deadline
version (which re-arms an open case's warnings; alerts queued under the old one are superseded at dispatch,
daemon/pipeline/stale.py) and a history row; a finished case whose on-time verdict flipped gets one more
(``on_time``). A finished case keeps its ``next_check_at``: no warning or breach is decided about it again
(a correction of a delivered breach still follows).

**Corrections** (``deadline_moved``): when a breach or repeat was already delivered about a moved case and the
engine says the case is not overdue under its new deadline (:func:`daemon.core.engine.correction_due`), the
recipients of those deliveries are queued one correction (时限已调整……目前未超期), in the same transaction.
The same holds when an import moves a deadline (an approved extension 延期, a resumed suspension, the platform's
new deadline): :func:`queue_import_corrections`, called by the sync after the cases are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, insert, or_, select, update

from daemon.core.cases import CaseRecord, Category, Priority, Satisfaction, Source, Status
from daemon.core.derive import suspensions_from_json, warnings_from_json
from daemon.core.engine import CaseState, EngineSettings, SentAlert, correction_due, is_overdue
from daemon.core.rules import Deadline, RuleSet
from daemon.core.timeutil import LOCAL_TZ, iso_local
from daemon.pipeline.queue import enqueue
from daemon.storage.codec import dumps
from daemon.storage.models import alerts, case_history, cases, outbox
from daemon.storage.store import FINISHED, RuleCache, Store, derive

log = structlog.get_logger("hotline_sla.recompute")
FINGERPRINT_KEY = "rules_calendar_fingerprint"
DEFAULT_MONTHS = 2  # the current month and the previous one: what the monthly ranking still reports on


@dataclass
class RecomputeResult:
    checked: int = 0
    moved: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False
    finished_checked: int = 0  # finished cases of the covered months re-derived
    finished_moved: int = 0  # of which the deadline moved
    on_time_changed: int = 0  # of which the on-time verdict (fed back before due_at) flipped
    corrections: int = 0  # deadline_moved alerts queued (one per case; a message per earlier recipient)


def record_from_row(row: Any) -> CaseRecord:
    return CaseRecord(
        number=row.number, source=Source(row.source), category=Category(row.category), unit=row.unit,
        received_at=row.received_at, status=Status(row.status), district=row.district, domain=row.domain,
        summary=row.summary, signed_at=row.signed_at, return_requested_at=row.return_requested_at,
        fed_back_at=row.fed_back_at, closed_at=row.closed_at, extended_due_at=row.extended_due_at,
        satisfaction=Satisfaction(row.satisfaction) if row.satisfaction else None, stars=row.stars,
        difficult=bool(row.difficult), source_updated_at=row.source_updated_at, accepted_at=row.accepted_at,
        platform_due_at=row.platform_due_at,
        platform_overdue=None if row.platform_overdue is None else bool(row.platform_overdue),
        suspended_at=row.suspended_at, resumed_at=row.resumed_at,
        priority=Priority(row.priority) if row.priority else None,
        contacted_at=row.contacted_at, contact_tracked=bool(row.contact_tracked),
        earlier_suspensions=suspensions_from_json(row.earlier_suspensions),
    )


def covered_since(now: datetime, months: int) -> datetime:
    """00:00 Asia/Shanghai on the 1st of the month ``months - 1`` before ``now``'s (aware) month."""
    local = now.astimezone(LOCAL_TZ)
    index = local.year * 12 + local.month - 1 - (max(months, 1) - 1)
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=LOCAL_TZ)


def recompute_if_changed(
    store: Store, rules: RuleSet, now: datetime, *, force: bool = False, months: int = DEFAULT_MONTHS
) -> RecomputeResult:
    """Re-derive open cases, and finished ones received since :func:`covered_since`, when the rules/calendar
    fingerprint changed (or ``force``). ``now`` is aware."""
    if not force and store.get_setting(FINGERPRINT_KEY) == rules.fingerprint:
        return RecomputeResult(skipped=True)
    result = RecomputeResult()
    cache = RuleCache(rules)
    since = covered_since(now, months)
    last_id = 0
    while True:
        with store.engine.begin() as conn:
            rows = conn.execute(
                select(cases).where(cases.c.id > last_id,
                                    or_(cases.c.status.not_in(list(FINISHED)), cases.c.received_at >= since))
                .order_by(cases.c.id).limit(2000)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            _recompute_batch(conn, rows, cache, rules, now, result)
    store.set_setting(FINGERPRINT_KEY, rules.fingerprint)
    fields = {"checked": result.checked, "finished_checked": result.finished_checked,
              "finished_moved": result.finished_moved, "on_time_changed": result.on_time_changed,
              "corrections": result.corrections, "covered_since": iso_local(since)}
    if result.moved:
        log.warning("deadlines_moved", count=len(result.moved), cases=[m["case"] for m in result.moved[:20]],
                    **fields)
    else:
        log.info("deadlines_recomputed", moved=0, **fields)
    return result


def queue_import_corrections(store: Store, rules: RuleSet, numbers: Sequence[str], now: datetime) -> int:
    """After an import moved the deadlines of the cases ``numbers`` (an extension 延期, a resumed suspension, the
    platform's new deadline, …): one ``deadline_moved`` correction to whoever was told of a breach the engine
    no longer returns, as a recompute queues it (:func:`_queue_corrections`). The cases are read as stored, so
    their deadline and version are the import's. Returns the corrections queued."""
    queued = 0
    for start in range(0, len(numbers), 1000):
        with store.engine.begin() as conn:
            rows = conn.execute(select(cases).where(cases.c.number.in_(list(numbers[start:start + 1000])))).all()
            moved_rows = [
                (row, {"rule_id": row.rule_id, "due_at": row.due_at, "warnings": row.warnings,
                       "provisional": row.provisional}, row.deadline_version)
                for row in rows if row.rule_id is not None and row.due_at is not None
            ]
            if moved_rows:
                queued += _queue_corrections(conn, moved_rows, rules, now)
    if queued:
        log.info("import_corrections_queued", corrections=queued)
    return queued


def _recompute_batch(  # noqa: PLR0917 - one batch's context
    conn: Connection, rows: Sequence[Any], cache: RuleCache, rules: RuleSet, now: datetime, result: RecomputeResult
) -> None:
    updates, history = [], []
    moved_rows: list[tuple[Any, dict[str, Any], int]] = []
    for row in rows:
        finished = row.status in FINISHED
        result.checked += 1
        result.finished_checked += finished
        derived = derive(record_from_row(row), cache)
        if finished:
            derived["next_check_at"] = row.next_check_at  # the tick has nothing to decide about it again
        if derived["due_at"] == row.due_at and derived["rule_id"] == row.rule_id and (
            derived["warnings"] == row.warnings and derived["provisional"] == bool(row.provisional)
            and derived["sign_due_at"] == row.sign_due_at and derived["contact_due_at"] == row.contact_due_at
        ):
            continue
        moved = derived["due_at"] != row.due_at or derived["rule_id"] != row.rule_id
        version = row.deadline_version + (1 if moved else 0)
        updates.append({**derived, "deadline_version": version, "updated_at": now, "_id": row.id})
        if not moved:
            continue
        moved_rows.append((row, derived, version))
        result.finished_moved += finished
        result.moved.append({
            "case": row.number, "unit": row.unit, "old_due_at": row.due_at.isoformat(),
            "new_due_at": derived["due_at"].isoformat(), "rule": derived["rule_id"], "finished": finished,
        })
        history.append({
            "case_id": row.id, "at": now, "field": "due_at", "old_value": row.due_at.isoformat(),
            "new_value": derived["due_at"].isoformat(), "reason": "recompute",
        })
        if finished:
            was_late, is_late = (_finished_late(row, due, now, rules) for due in (row.due_at, derived["due_at"]))
            if was_late != is_late:
                result.on_time_changed += 1
                history.append({"case_id": row.id, "at": now, "field": "on_time", "old_value": str(not was_late),
                                "new_value": str(not is_late), "reason": "recompute"})
    if updates:
        keys = [k for k in updates[0] if k != "_id"]
        conn.execute(
            update(cases).where(cases.c.id == bindparam("_id")).values({k: bindparam(k) for k in keys}), updates,
        )
    if history:
        conn.execute(insert(case_history), history)
    if moved_rows:
        result.corrections += _queue_corrections(conn, moved_rows, rules, now)


def _state(row: Any) -> CaseState:
    return CaseState(
        number=row.number, status=Status(row.status), received_at=row.received_at, signed_at=row.signed_at,
        return_requested_at=row.return_requested_at, fed_back_at=row.fed_back_at, closed_at=row.closed_at,
        contacted_at=row.contacted_at,
    )


def _finished_late(row: Any, due_at: datetime, now: datetime, rules: RuleSet) -> bool:
    """The engine's verdict on a finished case under ``due_at``: fed back (else closed) at or after it
    (:func:`is_overdue`)."""
    deadline = Deadline(rule_id=row.rule_id, rule_name=row.rule_id, received_at=row.received_at, due_at=due_at,
                        warnings=())
    return is_overdue(_state(row), deadline, now, calendar=rules.rules[0].calendar, settings=EngineSettings())


def _queue_corrections(
    conn: Connection, moved_rows: list[tuple[Any, dict[str, Any], int]], rules: RuleSet, now: datetime
) -> int:
    """Queue a ``deadline_moved`` correction for each moved case whose delivered breach is no longer true."""
    by_id = {row.id: (row, derived, version) for row, derived, version in moved_rows}
    delivered = conn.execute(
        select(alerts.c.id, alerts.c.case_id, alerts.c.kind, alerts.c.deadline_version, alerts.c.due_at,
               outbox.c.channel, outbox.c.recipient, outbox.c.payload)
        .join(outbox, outbox.c.alert_id == alerts.c.id)
        .where(alerts.c.case_id.in_(list(by_id)), alerts.c.kind.in_(["breach", "breach_repeat"]),
               outbox.c.status == "sent")
    ).all()
    latest: dict[Any, Any] = {}
    recipients: dict[Any, dict[tuple[str, str], Any]] = {}
    for d in delivered:
        row, _, version = by_id[d.case_id]
        if d.deadline_version >= version:
            continue
        if d.case_id not in latest or (d.deadline_version, d.id) > (latest[d.case_id].deadline_version,
                                                                     latest[d.case_id].id):
            latest[d.case_id] = d
        who = (d.channel, dumps(d.recipient))
        recipients.setdefault(d.case_id, {}).setdefault(who, d)
    queued = 0
    for case_id, told in latest.items():
        row, derived, version = by_id[case_id]
        rule = rules.find(derived["rule_id"])
        if rule is None:
            continue
        deadline = Deadline(rule_id=rule.id, rule_name=rule.name, received_at=row.received_at,
                            due_at=derived["due_at"], warnings=warnings_from_json(derived["warnings"]))
        if not correction_due(SentAlert(told.kind, told.deadline_version, told.due_at), _state(row), deadline, now,
                              calendar=rule.calendar, settings=EngineSettings()):
            continue
        detail = _detail(row, derived, rule.name, rule.describe_limit(), told.due_at, now)
        key = conn.execute(insert(alerts).values(
            case_id=case_id, kind="deadline_moved", level=0, deadline_version=version, fire_at=now,
            due_at=derived["due_at"], unit=row.unit, created_at=now, detail=detail,
        )).inserted_primary_key
        assert key is not None
        alert_id = key[0]
        queued += 1
        for (channel, _), sent in recipients[case_id].items():
            r = sent.recipient or {}
            own = sent.payload if isinstance(sent.payload, dict) else {}
            enqueue(conn, kind="deadline_moved", channel=channel, recipient=r,
                    payload={"note": own.get("note"), "urgent": False},
                    dedupe_key=f"alert:{alert_id}:{r.get('role')}:{r.get('unit') or '-'}:{r.get('name')}"[:200],
                    now=now, alert_id=alert_id)
    return queued


def _detail(  # noqa: PLR0917 - the correction's context
    row: Any, derived: dict[str, Any], rule_name: str, limit: str, old_due_at: datetime, now: datetime
) -> dict[str, Any]:
    """The correction's template context, shaped like an alert's (daemon/pipeline/tick.py) plus ``old_due_at``."""
    due = iso_local(derived["due_at"])
    return {
        "kind": "deadline_moved", "level": 0, "fire_at": iso_local(now), "overdue_working_days": 0,
        "case": {
            "number": row.number, "summary": row.summary, "unit": row.unit, "district": row.district,
            "source": row.source, "category": row.category, "rule_id": derived["rule_id"], "rule_name": rule_name,
            "limit": limit, "received_at": iso_local(row.received_at), "due_at": due, "case_due_at": due,
            "provisional": bool(derived["provisional"]),
            "return_requested_at": iso_local(row.return_requested_at) if row.return_requested_at else None,
        },
        "old_due_at": iso_local(old_due_at),
    }
