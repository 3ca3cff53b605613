"""Dead letter (死信): rows that could not be delivered in time stop retrying, and the supervisors are told.

A row still pending ``dispatch.dead_letter_after_hours`` after it was created (or one that failed
``dispatch.max_attempts`` times, see daemon/pipeline/outbox.py, which calls this module; this module
imports only the queue below both, daemon/pipeline/queue.py) becomes ``dead``. One ``dead_letter`` message per
supervisor and channel lists them, mobiles masked; it is queued in the same transaction that marks the rows
dead, so a crash cannot lose the notice nor send it twice. A ``dead_letter`` row that dies is logged, never
dead-lettered again (no loop).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, and_, select, update

from daemon.config import Config
from daemon.core.timeutil import iso_local
from daemon.glossary import KIND_ZH
from daemon.pipeline.queue import enqueue, full_rows, open_for_claim, select_rows
from daemon.pipeline.recipients import Directory
from daemon.pipeline.render import Renderer
from daemon.storage.models import outbox
from daemon.storage.store import Store
from notifiers.base import Recipient

log = structlog.get_logger("hotline_sla.outbox")


def _masked(recipient: dict[str, Any]) -> str:
    return Recipient(str(recipient.get("name") or "?"), mobile=recipient.get("mobile")).masked


def sweep(store: Store, config: Config, renderer: Renderer, owner: str, now: datetime) -> int:
    """Mark rows too old to send as dead (conditional update: one dispatcher wins each row); returns how many."""
    hours = config.dispatch.dead_letter_after_hours
    cond = and_(outbox.c.created_at <= now - timedelta(hours=hours), open_for_claim(now))
    with store.engine.begin() as conn:
        ids = list(conn.execute(select(outbox.c.id).where(cond).order_by(outbox.c.id).limit(1000)).scalars())
        if not ids:
            return 0
        token = f"{owner}/dead-{secrets.token_hex(4)}"
        conn.execute(update(outbox).where(outbox.c.id.in_(ids), cond)
                     .values(status="dead", lease_owner=token, lease_until=None))
        mine = and_(outbox.c.id.in_(ids), outbox.c.lease_owner == token)
        rows = full_rows(conn.execute(select_rows().where(mine).order_by(outbox.c.id)))
        conn.execute(update(outbox).where(mine).values(lease_owner=None))
        if rows:
            tell_supervisors(conn, config, renderer, rows, now=now, why=f"超过{hours:g}小时未送达")
    return len(rows)


def tell_supervisors(
    conn: Connection, config: Config, renderer: Renderer, rows: Sequence[Any], *, now: datetime, why: str
) -> None:
    """Queue one ``dead_letter`` message per supervisor and channel, listing ``rows`` (masked)."""
    for r in rows:
        log.error("outbox_dead", id=r.id, kind=r.kind, channel=r.channel, to=_masked(r.recipient),
                  attempts=r.attempts, why=why, error=r.last_error)
    told = [r for r in rows if r.kind != "dead_letter"]  # a dead notice is not re-dead-lettered
    if not told:
        return
    supervisors = Directory.load(conn, config).supervisors
    if not supervisors:
        log.error("dead_letter_without_supervisor", rows=len(told),
                  hint="configure contacts.supervisors to be told about undeliverable messages")
        return
    items = [{
        "what": KIND_ZH.get(r.kind, r.kind) + (
            f" 工单{r.payload['case']['number']}" if isinstance((r.payload or {}).get("case"), dict) else ""),
        "to": _masked(r.recipient), "channel": r.channel, "attempts": r.attempts,
        "last_error": r.last_error or why, "id": r.id,
    } for r in told]
    digest = hashlib.sha256(",".join(str(r.id) for r in told).encode()).hexdigest()[:16]
    hours = f"{config.dispatch.dead_letter_after_hours:g}"
    for sup in supervisors:
        context = {"recipient": {"name": sup.name, "role": sup.role, "unit": sup.unit}, "count": len(items),
                   "items": items, "hours": hours, "why": why, "now": iso_local(now)}
        out = renderer.render("dead_letter", context)
        payload = {
            "rendered": {"subject": out.subject, "text": out.text, "markdown": out.markdown, "html": out.html,
                         "attachments": [], "sms_params": {"count": str(len(items)), "name": sup.name}},
            "urgent": False, "dead_outbox_ids": [r.id for r in told],
        }
        for channel in sup.channels or config.default_channels:
            enqueue(conn, kind="dead_letter", channel=channel, recipient=sup.as_json(), payload=payload,
                    dedupe_key=f"dead_letter:{digest}:{sup.key}"[:200], now=now)
