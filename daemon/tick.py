"""The tick: evaluate only the cases whose ``next_check_at <= now``, write alerts and outbox rows.

Per batch, one transaction: the new alerts (unique per case, kind, level and deadline version), their
outbox rows, and each case's new ``next_check_at``. Running it twice at the same ``now`` writes nothing
new; after an outage each missed alert is written once (the engine emits the current state, not every
missed minute). A case whose evaluation raises is pushed forward with backoff and the tick goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, insert, select, update

from daemon.calendar import WorkCalendar
from daemon.cases import Status
from daemon.config import Config
from daemon.engine import CaseState, Decision, EngineSettings, evaluate
from daemon.models import alerts, cases, outbox
from daemon.recipients import Directory, sync_config_contacts
from daemon.rules import Deadline, RuleSet
from daemon.store import Store, warnings_from_json
from daemon.timeutil import iso_local

log = structlog.get_logger("hotline_sla.tick")

MAX_FAILURE_BACKOFF = timedelta(hours=6)


@dataclass
class TickResult:
    evaluated: int = 0
    failed: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    outbox_rows: int = 0


def _deadlines(row: Any, rules: RuleSet) -> tuple[Deadline, Deadline | None]:
    rule = rules.find(row.rule_id)
    rule_name = rule.name if rule else row.rule_id
    deadline = Deadline(
        rule_id=row.rule_id, rule_name=rule_name, received_at=row.received_at, due_at=row.due_at,
        warnings=warnings_from_json(row.warnings),
    )
    ret = None
    if row.return_due_at is not None and row.return_rule_id:
        ret = Deadline(
            rule_id=row.return_rule_id, rule_name=row.return_rule_id, received_at=row.received_at,
            due_at=row.return_due_at, warnings=warnings_from_json(row.return_warnings),
        )
    return deadline, ret


def case_state(row: Any) -> CaseState:
    return CaseState(
        number=row.number, status=Status(row.status), received_at=row.received_at, signed_at=row.signed_at,
        return_requested_at=row.return_requested_at, fed_back_at=row.fed_back_at, closed_at=row.closed_at,
    )


def run_tick(
    store: Store, rules: RuleSet, calendar: WorkCalendar, config: Config, now: datetime, *, batch_size: int = 1000
) -> TickResult:
    result = TickResult()
    settings = EngineSettings.from_config(config.alerts)
    with store.engine.begin() as conn:
        sync_config_contacts(conn, config)
        directory = Directory.load(conn, config)
    while True:
        with store.engine.begin() as conn:
            rows = conn.execute(
                select(cases).where(cases.c.next_check_at <= now).order_by(cases.c.next_check_at).limit(batch_size)
            ).all()
            if not rows:
                break
            _tick_batch(conn, rows, rules, calendar, config, settings, directory, now, result)
    store.set_setting("last_tick_at", now.isoformat())
    return result


def _tick_batch(  # noqa: PLR0917 - the batch's whole context, internal
    conn: Connection, rows: Sequence[Any], rules: RuleSet, calendar: WorkCalendar, config: Config,
    settings: EngineSettings, directory: Directory, now: datetime, result: TickResult,
) -> None:
    ids = [r.id for r in rows]
    existing = {
        (a.case_id, a.kind, a.level, a.deadline_version)
        for a in conn.execute(
            select(alerts.c.case_id, alerts.c.kind, alerts.c.level, alerts.c.deadline_version).where(
                alerts.c.case_id.in_(ids)
            )
        )
    }
    new_alerts: list[tuple[Any, Decision]] = []
    next_checks: list[dict[str, Any]] = []
    for row in rows:
        try:
            deadline, ret = _deadlines(row, rules)
            ev = evaluate(case_state(row), deadline, ret, now, calendar=calendar, settings=settings)
        except Exception as exc:
            failures = row.check_failures + 1
            delay = min(timedelta(minutes=2 ** min(failures, 12)), MAX_FAILURE_BACKOFF)
            log.error("case_evaluation_failed", case=row.number, error=f"{type(exc).__name__}: {exc}",
                      failures=failures, retry_in_s=int(delay.total_seconds()))
            next_checks.append({"_id": row.id, "_next": now + delay, "_failures": failures})
            result.failed += 1
            continue
        result.evaluated += 1
        for d in ev.decisions:
            key = (row.id, d.kind, d.level, row.deadline_version)
            if key not in existing:
                existing.add(key)
                new_alerts.append((row, d))
        next_checks.append({"_id": row.id, "_next": ev.next_check_at, "_failures": 0})
    if new_alerts:
        _write_alerts(conn, new_alerts, rules, config, directory, now, result)
    conn.execute(
        update(cases)
        .where(cases.c.id == bindparam("_id"))
        .values(next_check_at=bindparam("_next"), check_failures=bindparam("_failures")),
        next_checks,
    )


def _write_alerts(  # noqa: PLR0917 - internal
    conn: Connection, new_alerts: list[tuple[Any, Decision]], rules: RuleSet, config: Config,
    directory: Directory, now: datetime, result: TickResult,
) -> None:
    alert_rows = []
    for row, d in new_alerts:
        alert_rows.append({
            "case_id": row.id, "kind": d.kind, "level": d.level, "deadline_version": row.deadline_version,
            "fire_at": d.fire_at, "due_at": d.due_at, "unit": row.unit, "created_at": now,
            "detail": _payload(row, d, rules),
        })
    conn.execute(insert(alerts), alert_rows)
    keys = {(r["case_id"], r["kind"], r["level"], r["deadline_version"]) for r in alert_rows}
    id_of = {
        (a.case_id, a.kind, a.level, a.deadline_version): a.id
        for a in conn.execute(
            select(alerts.c.id, alerts.c.case_id, alerts.c.kind, alerts.c.level, alerts.c.deadline_version).where(
                alerts.c.case_id.in_({k[0] for k in keys})
            )
        )
        if (a.case_id, a.kind, a.level, a.deadline_version) in keys
    }
    out_rows = []
    for alert in alert_rows:
        key = (alert["case_id"], alert["kind"], alert["level"], alert["deadline_version"])
        alert_id = id_of[key]
        payload = alert["detail"]
        route = config.routes[alert["kind"]]
        deliveries = directory.route(route, alert["unit"], payload.get("overdue_working_days", 0))
        if not deliveries:
            log.warning("alert_without_recipient", case=payload["case"]["number"], kind=alert["kind"],
                        unit=alert["unit"], hint="configure the unit's contacts or at least one supervisor")
        for dl in deliveries:
            out_rows.append({
                "alert_id": alert_id, "kind": alert["kind"], "channel": dl.channel, "recipient": dl.contact.as_json(),
                "payload": {**payload, "note": dl.note, "urgent": route.urgent},
                "dedupe_key": f"alert:{alert_id}:{dl.contact.key}", "status": "pending", "not_before": now,
                "attempts": 0, "created_at": now,
            })
        result.alerts.append({
            "case": payload["case"]["number"], "kind": alert["kind"], "level": alert["level"], "unit": alert["unit"],
            "due_at": payload["case"]["due_at"], "recipients": len(deliveries),
        })
    if out_rows:
        conn.execute(insert(outbox), out_rows)
        result.outbox_rows += len(out_rows)


def _payload(row: Any, d: Decision, rules: RuleSet) -> dict[str, Any]:
    rule = rules.find(row.rule_id)
    return {
        "kind": d.kind,
        "level": d.level,
        "fire_at": iso_local(d.fire_at),
        "overdue_working_days": d.overdue_working_days,
        "case": {
            "number": row.number, "summary": row.summary, "unit": row.unit, "district": row.district,
            "source": row.source, "category": row.category, "rule_id": row.rule_id,
            "rule_name": rule.name if rule else row.rule_id, "limit": rule.describe_limit() if rule else "",
            "received_at": iso_local(row.received_at), "due_at": iso_local(d.due_at),
            "case_due_at": iso_local(row.due_at), "provisional": bool(row.provisional),
            "return_requested_at": iso_local(row.return_requested_at) if row.return_requested_at else None,
        },
    }
