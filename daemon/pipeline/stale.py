"""Before a send: drop the alerts that a moved deadline made untrue (issue 13, "a switch without a false alarm").

When the calendar or the rules change (the State Council's notice pasted, a rule edited), the recompute
gives the moved cases a new deadline version (daemon/pipeline/recompute.py). Alerts queued under the old one
may say something false by the time they are sent: "超期" for a case whose new deadline is days away.
:func:`screen` asks the engine (:func:`daemon.core.engine.stale_reason`) about every alert row a dispatcher
claimed, against the case as the store holds it now; :func:`daemon.pipeline.queue.supersede` then marks the
untrue ones ``superseded`` with the reason, never sent (``outbox list`` shows them; the digest does not count
them as failures). Report rows (no alert) pass untouched.

An outage between a tick and its dispatch leaves the breach queued when the next tick queues its repeat: the
rows a dispatcher claims for one case and one recipient are folded like the decisions of one tick
(:func:`daemon.core.engine.announced`): only the latest step is sent, the earlier ones are superseded.

Time is an argument (``now``, aware); the calendar is loaded only when a breach has to be checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from daemon.core.calendar import WorkCalendar
from daemon.core.cases import Status
from daemon.core.derive import warnings_from_json
from daemon.core.engine import CaseState, Decision, EngineSettings, SentAlert, announced, stale_reason
from daemon.core.rules import Deadline
from daemon.core.timeutil import iso_local
from daemon.storage.models import alerts, cases
from daemon.storage.store import Store

__all__ = ["screen"]

_READ = (
    alerts.c.id, alerts.c.kind, alerts.c.level, alerts.c.fire_at, alerts.c.case_id, alerts.c.deadline_version,
    alerts.c.due_at, cases.c.number, cases.c.status,
    cases.c.received_at, cases.c.signed_at, cases.c.return_requested_at, cases.c.fed_back_at, cases.c.closed_at,
    cases.c.rule_id, cases.c.warnings, cases.c.deadline_version.label("case_version"),
    cases.c.due_at.label("case_due_at"), cases.c.contacted_at, cases.c.sign_due_at, cases.c.contact_due_at,
)


def screen(
    store: Store, rows: Sequence[Any], now: datetime, *, calendar: Callable[[], WorkCalendar],
    settings: EngineSettings,
) -> dict[Any, str]:
    """The outbox ids among ``rows`` (claimed, with ``alert_id``) that must not be sent at ``now``, with why.

    ``calendar`` returns the work calendar the deadlines were computed on (called only when there are alert
    rows: the dispatcher keeps it loaded)."""
    alert_ids = list({r.alert_id for r in rows if r.alert_id is not None})
    if not alert_ids:
        return {}
    with store.engine.connect() as conn:
        found = conn.execute(
            select(*_READ).join(cases, cases.c.id == alerts.c.case_id).where(alerts.c.id.in_(alert_ids))
        ).all()
    work_calendar = calendar()
    reasons: dict[Any, str] = {}
    for f in found:
        state = CaseState(
            number=f.number, status=Status(f.status), received_at=f.received_at, signed_at=f.signed_at,
            return_requested_at=f.return_requested_at, fed_back_at=f.fed_back_at, closed_at=f.closed_at,
            contacted_at=f.contacted_at,
        )
        deadline = Deadline(rule_id=f.rule_id, rule_name=f.rule_id, received_at=f.received_at,
                            due_at=f.case_due_at, warnings=warnings_from_json(f.warnings),
                            sign_by=f.sign_due_at, contact_by=f.contact_due_at)
        alert = SentAlert(f.kind, f.deadline_version, f.due_at)
        reason = stale_reason(alert, state, deadline, f.case_version, now, calendar=work_calendar, settings=settings)
        if reason is not None:
            reasons[f.id] = f"{reason} (case {f.number}, now due {iso_local(f.case_due_at)})"
    stale = {r.id: reasons[r.alert_id] for r in rows if r.alert_id in reasons}
    return stale | _folded([r for r in rows if r.id not in stale], {f.id: f for f in found})


def _folded(rows: Sequence[Any], alert_of: dict[Any, Any]) -> dict[Any, str]:
    """The outbox ids among ``rows`` (still true) that a later step for the same case and recipient, claimed
    with them, states already (:func:`announced`), with why."""
    groups: dict[tuple[Any, ...], list[tuple[Any, Decision]]] = {}
    for row in rows:
        f = alert_of.get(row.alert_id)
        if f is None:
            continue
        decision = Decision(f.kind, f.level, fire_at=f.fire_at, due_at=f.due_at)
        who = (f.case_id, row.channel, json.dumps(row.recipient, sort_keys=True, ensure_ascii=False))
        groups.setdefault(who, []).append((row.id, decision))
    reasons: dict[Any, str] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        kept = announced([d for _, d in group])
        latest = next((d for d in kept if d.kind in ("warning", "breach", "breach_repeat")), None)
        for row_id, decision in group:
            if not any(decision is k for k in kept) and latest is not None:
                reasons[row_id] = (f"superseded: the later {latest.kind} (level {latest.level}) of the same case "
                                   f"is sent instead")
    return reasons
