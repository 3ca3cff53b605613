"""One case and one unit's open cases, as `cases explain`, `cases list` and the desk show them.

The explanation: the rule, each counted day (holidays and make-up days named), the extension, the mute
(暂停提醒), the history, the alerts and the messages with their recipients masked (尾号1234). The CLI and the
desk (daemon.runtime.desk) both call :func:`explain_case`, so they cannot disagree. Instants in the documents
are local ISO texts (Asia/Shanghai).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from daemon.core.assignment import assignment_outcome, scored_on_unit
from daemon.core.calendar import WorkCalendar
from daemon.core.cases import Status
from daemon.core.derive import suspensions_from_json
from daemon.core.engine import is_finished, mute_in_force
from daemon.core.rules import Rule, RuleSet
from daemon.core.timeutil import iso_local
from daemon.reports.digest import OPEN
from daemon.storage.assignments import Assignment, earlier_assignments
from daemon.storage.models import alerts, case_history, cases, deliveries, mutes, outbox


def explain_case(conn: Connection, rules: RuleSet, calendar: WorkCalendar, number: str) -> dict[str, Any] | None:
    """The explanation of case ``number`` (None when the store has no such case)."""
    row = conn.execute(select(cases).where(cases.c.number == number)).first()
    if row is None:
        return None
    mute = conn.execute(select(mutes).where(mutes.c.case_id == row.id)).first()
    hist = conn.execute(select(case_history).where(case_history.c.case_id == row.id)
                        .order_by(case_history.c.id)).all()
    sent = conn.execute(select(alerts).where(alerts.c.case_id == row.id).order_by(alerts.c.id)).all()
    msgs = conn.execute(select(outbox).where(outbox.c.alert_id.in_([a.id for a in sent]))
                        .order_by(outbox.c.id)).all()
    tries = conn.execute(select(deliveries).where(deliveries.c.outbox_id.in_([m.id for m in msgs]))
                         .order_by(deliveries.c.id)).all()
    return {**explain_doc(rules, calendar, row, hist, sent, msgs, tries), "mute": mute_doc(mute),
            "assignments": assignments_doc(earlier_assignments(conn, row.id), row)}


def assignments_doc(earlier: Sequence[Assignment], row: Any) -> list[dict[str, Any]]:
    """Each unit the case was assigned to (退件 → 重新派单), oldest first, the current one (the case row) last:
    its dispatch, deadline, return window and request, outcome, and whether the ranking scores the unit on it
    (:func:`daemon.core.assignment.scored_on_unit`)."""
    current = Assignment(row.unit, row.received_at, row.due_at, row.return_due_at, row.return_requested_at,
                         row.fed_back_at, row.closed_at,
                         assignment_outcome(Status(row.status), row.return_requested_at), None)
    out = []
    for a in (*earlier, current):
        out.append({
            "unit": a.unit, "received_at": iso_local(a.received_at), "due_at": _iso(a.due_at),
            "return_window_ends": _iso(a.return_due_at), "return_requested_at": _iso(a.return_requested_at),
            "fed_back_at": _iso(a.fed_back_at), "closed_at": _iso(a.closed_at), "outcome": a.outcome,
            "ended_at": _iso(a.ended_at), "current": a.ended_at is None,
            "scored": scored_on_unit(a.outcome, a.return_requested_at, a.return_due_at),
        })
    return out


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else iso_local(instant)


def explain_doc(  # noqa: PLR0917 - the rows explain reads
    rules: RuleSet, calendar: WorkCalendar, row: Any, hist: Sequence[Any], sent: Sequence[Any], msgs: Sequence[Any],
    tries: Sequence[Any],
) -> dict[str, Any]:
    from notifiers.base import mask_mobiles_in

    rule = rules.find(row.rule_id)
    days = []
    if rule is not None:
        for day in rule.counted_days(row.received_at):
            info = calendar.day(day)
            days.append({"date": day.isoformat(), "kind": info.kind, "name": info.name,
                         "counted": info.workday if rule.working_days or rule.same_day else True,
                         "provisional": info.provisional})
    return {
        "case": row.number, "unit": row.unit, "status": row.status, "summary": row.summary,
        "priority": row.priority or "normal",
        "rule": {"id": row.rule_id, "name": rule.name if rule else None,
                 "limit": rule.describe_limit() if rule else None},
        "accepted_at": iso_local(row.accepted_at or row.received_at),
        "received_at": iso_local(row.received_at), "due_at": iso_local(row.due_at),
        **platform_doc(row, rule.model.deadline_source if rule else None),
        "extended_due_at": iso_local(row.extended_due_at) if row.extended_due_at else None,
        "suspended_at": iso_local(row.suspended_at) if row.suspended_at else None,
        "resumed_at": iso_local(row.resumed_at) if row.resumed_at else None,
        "suspensions": suspensions_doc(row),
        "provisional": bool(row.provisional), "deadline_version": row.deadline_version,
        "return_window_ends": iso_local(row.return_due_at) if row.return_due_at else None,
        **windows_doc(row, rule),
        "days": days,
        "history": [{"at": iso_local(h.at), "field": h.field, "old": h.old_value, "new": h.new_value,
                     "reason": h.reason} for h in hist],
        "alerts": [{"kind": a.kind, "level": a.level, "deadline_version": a.deadline_version,
                    "fire_at": iso_local(a.fire_at), "created_at": iso_local(a.created_at)} for a in sent],
        "messages": [{"channel": m.channel, "to": masked_recipient(m.recipient), "status": m.status,
                      "attempts": m.attempts, "sent_at": iso_local(m.sent_at) if m.sent_at else None,
                      "last_error": mask_mobiles_in(m.last_error) if m.last_error else None} for m in msgs],
        "deliveries": len(tries),
    }


def suspensions_doc(row: Any) -> list[dict[str, Any]]:
    """Every suspension (挂起) of the case's current cycle, oldest first: the earlier ones the import remembered
    (``earlier_suspensions``) and the current pair, ``resumed_at`` None while it lasts. The deadline moved by each
    resumed one (:meth:`daemon.core.rules.Rule.suspensions_due`)."""
    pairs: list[tuple[datetime, datetime | None]] = list(suspensions_from_json(row.earlier_suspensions))
    if row.suspended_at is not None:
        pairs.append((row.suspended_at, row.resumed_at))
    return [{"suspended_at": iso_local(start), "resumed_at": _iso(end)} for start, end in pairs]


def windows_doc(row: Any, rule: Rule | None) -> dict[str, Any]:
    """The sign (签收时限) and first-contact (先行联系) windows as stored, the rule's periods, and the case's
    instants. A rule's contact_within on a case whose export has no 先行联系时间 column shows ``by`` None and
    ``observed`` False: a contact that cannot be seen is never alerted."""
    sign_window = None if rule is None or rule.sign_window is None else rule.sign_window.describe_limit()
    contact_window = None if rule is None or rule.contact_window is None else rule.contact_window.describe_limit()
    return {
        "sign": {"by": _iso(row.sign_due_at), "window": sign_window, "signed_at": _iso(row.signed_at)},
        "contact": {"by": _iso(row.contact_due_at), "window": contact_window, "contacted_at": _iso(row.contacted_at),
                    "observed": bool(row.contact_tracked)},
    }


def platform_doc(row: Any, option: str | None) -> dict[str, Any]:
    """Ours, the platform's, which one drives and why (what :func:`daemon.core.rules.choose_due` decided)."""
    ours = row.computed_due_at or row.due_at
    doc: dict[str, Any] = {
        "computed_due_at": iso_local(ours),
        "platform_due_at": iso_local(row.platform_due_at) if row.platform_due_at else None,
        "platform_overdue": None if row.platform_overdue is None else bool(row.platform_overdue),
        "deadline_source": row.deadline_source, "deadline_option": option,
        "deadlines_differ": row.platform_due_at is not None and row.platform_due_at != ours,
    }
    if row.platform_due_at is None:
        why = "no platform deadline (办理时限) in the export: ours drives"
    elif row.extended_due_at is not None:
        why = "an approved extension (延期至) replaces both"
    elif option == "earlier":
        why = ("deadline_source earlier: the earlier of the two drives (the safe side); "
               + ("the platform's is earlier" if row.deadline_source == "platform" else "ours is not later"))
    else:
        why = f"deadline_source {option}: {'the platform' if row.deadline_source == 'platform' else 'ours'} drives"
    doc["deadline_reason"] = why
    return doc


def mute_doc(mute: Any) -> dict[str, Any] | None:
    """A ``mutes`` row as recorded (whether it is still in force depends on ``now``: compare ``until``)."""
    if mute is None:
        return None
    return {"until": iso_local(mute.muted_until), "reason": mute.reason, "by": mute.muted_by,
            "at": iso_local(mute.muted_at)}


def masked_recipient(recipient: dict[str, Any]) -> str:
    """``name(尾号1234)``: a recipient as anyone but its owner may see it."""
    from notifiers.base import mask_mobile

    name = recipient.get("name", "?")
    return f"{name}({mask_mobile(recipient['mobile'])})" if recipient.get("mobile") else str(name)


def open_cases(conn: Connection, now: datetime, *, unit: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The open cases (the digest's :data:`OPEN`), soonest deadline first, of ``unit`` or of all units."""
    stmt = (select(cases, mutes.c.muted_until, mutes.c.reason, mutes.c.muted_by, mutes.c.muted_at)
            .select_from(cases.outerjoin(mutes, mutes.c.case_id == cases.c.id)).where(OPEN))
    if unit is not None:
        stmt = stmt.where(cases.c.unit == unit)
    stmt = stmt.order_by(cases.c.due_at, cases.c.number).limit(limit)
    return [case_json(r, now) for r in conn.execute(stmt)]


def case_json(row: Any, now: datetime) -> dict[str, Any]:
    """A case row (with its ``mutes`` columns) as `cases list --json` prints it, with its mute when one is in
    force at ``now``."""
    finished = is_finished(Status(row.status), row.fed_back_at, row.closed_at)
    muted = mute_in_force(row.muted_until, now)
    return {
        "case": row.number, "unit": row.unit, "status": row.status, "rule": row.rule_id,
        "received_at": iso_local(row.received_at), "due_at": iso_local(row.due_at),
        "provisional": bool(row.provisional), "overdue": (not finished) and row.due_at <= now,
        "next_check_at": iso_local(row.next_check_at) if row.next_check_at else None, "summary": row.summary,
        "suspensions": suspensions_doc(row), "mute": mute_doc(row) if muted else None,
    }
