"""Recompute every open case's deadline when the rules or the calendar change (start-up, reload, new year).

The combined fingerprint of rules and calendar is kept in the database; when it differs, each open case is
re-derived, cases whose deadline moved get a new deadline version (which re-arms their warnings) and a
history row, and the list is returned so supervisors can be told.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import bindparam, insert, select, update

from daemon.core.cases import CaseRecord, Category, Satisfaction, Source, Status
from daemon.core.rules import RuleSet
from daemon.storage.models import case_history, cases
from daemon.storage.store import FINISHED, RuleCache, Store, derive

log = structlog.get_logger("hotline_sla.recompute")
FINGERPRINT_KEY = "rules_calendar_fingerprint"


@dataclass
class RecomputeResult:
    checked: int = 0
    moved: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False


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
    )


def recompute_if_changed(store: Store, rules: RuleSet, now: datetime, *, force: bool = False) -> RecomputeResult:
    """Re-derive open cases when the rules/calendar fingerprint changed (or ``force``)."""
    if not force and store.get_setting(FINGERPRINT_KEY) == rules.fingerprint:
        return RecomputeResult(skipped=True)
    result = RecomputeResult()
    cache = RuleCache(rules)
    last_id = 0
    while True:
        with store.engine.begin() as conn:
            rows = conn.execute(
                select(cases).where(cases.c.id > last_id, cases.c.status.not_in(list(FINISHED)))
                .order_by(cases.c.id).limit(2000)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            updates, history = [], []
            for row in rows:
                result.checked += 1
                derived = derive(record_from_row(row), cache)
                if derived["due_at"] == row.due_at and derived["rule_id"] == row.rule_id and (
                    derived["warnings"] == row.warnings and derived["provisional"] == bool(row.provisional)
                ):
                    continue
                moved = derived["due_at"] != row.due_at or derived["rule_id"] != row.rule_id
                version = row.deadline_version + (1 if moved else 0)
                updates.append({**derived, "deadline_version": version, "updated_at": now, "_id": row.id})
                if moved:
                    result.moved.append({
                        "case": row.number, "unit": row.unit, "old_due_at": row.due_at.isoformat(),
                        "new_due_at": derived["due_at"].isoformat(), "rule": derived["rule_id"],
                    })
                    history.append({
                        "case_id": row.id, "at": now, "field": "due_at", "old_value": row.due_at.isoformat(),
                        "new_value": derived["due_at"].isoformat(), "reason": "recompute",
                    })
            if updates:
                keys = [k for k in updates[0] if k != "_id"]
                conn.execute(
                    update(cases).where(cases.c.id == bindparam("_id")).values({k: bindparam(k) for k in keys}),
                    updates,
                )
            if history:
                conn.execute(insert(case_history), history)
    store.set_setting(FINGERPRINT_KEY, rules.fingerprint)
    if result.moved:
        log.warning("deadlines_moved", count=len(result.moved), checked=result.checked,
                    cases=[m["case"] for m in result.moved[:20]])
    else:
        log.info("deadlines_recomputed", checked=result.checked, moved=0)
    return result
