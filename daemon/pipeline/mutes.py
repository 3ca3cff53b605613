"""Case mutes (暂停提醒): a supervisor pauses a case's warnings and breaches until an instant, with a reason.

The decision (what a mute silences, and when the case is looked at again) is :func:`daemon.core.engine.muted`,
which the tick applies; this module only records mutes. A case is muted at ``now`` while
``now < muted_until`` (the SQL below says ``muted_until > now``: the same instants). Each mute and unmute is a
row of the case's history (field ``mute``), so `cases explain` and the desk show who paused what and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from daemon.core.timeutil import iso_local
from daemon.errors import UsageError
from daemon.storage.models import case_history, cases, mutes
from daemon.storage.store import Store

REASON_MAX = 500


@dataclass(frozen=True)
class MuteChange:
    """What a mute or unmute did (instants aware)."""

    case: str
    unit: str
    muted_until: datetime | None
    reason: str | None
    by: str | None
    previous_until: datetime | None


def mute_case(store: Store, number: str, *, until: datetime, reason: str, by: str, now: datetime) -> MuteChange:
    """Mute case ``number`` until ``until`` (aware, after ``now``) with ``reason`` by ``by``; replaces a mute.

    Raises :class:`UsageError` for an unknown case, an end not after ``now`` or an empty reason.
    """
    reason = reason.strip()
    if until <= now:
        raise UsageError(f"--until {iso_local(until)} is not after now ({iso_local(now)}): give a later time")
    if not reason:
        raise UsageError("--reason: give the reason for the mute (why the case's alerts pause), e.g. '复核中'")
    if len(reason) > REASON_MAX:
        raise UsageError(f"--reason: {len(reason)} characters; at most {REASON_MAX}")
    with store.engine.begin() as conn:
        row = _case(conn, store, number)
        previous = row.muted_until
        values = {"muted_until": until, "reason": reason, "muted_by": by, "muted_at": now}
        if previous is None:
            conn.execute(insert(mutes).values(case_id=row.id, **values))
        else:
            conn.execute(update(mutes).where(mutes.c.case_id == row.id).values(**values))
        conn.execute(insert(case_history).values(
            case_id=row.id, at=now, field="mute", old_value=iso_local(previous) if previous else None,
            new_value=f"暂停提醒至 {iso_local(until)}（{by}）：{reason}", reason="mute"))
    return MuteChange(number, row.unit, until, reason, by, previous)


def unmute_case(store: Store, number: str, *, by: str, now: datetime) -> MuteChange:
    """End case ``number``'s mute at ``now``: the next tick evaluates it (its current state is alerted).

    Raises :class:`UsageError` for an unknown case or one that is not muted at ``now``.
    """
    with store.engine.begin() as conn:
        row = _case(conn, store, number)
        if row.muted_until is None or row.muted_until <= now:
            raise UsageError(f"case {number!r} is not muted at {iso_local(now)}; see `hotline-sla cases explain`")
        conn.execute(delete(mutes).where(mutes.c.case_id == row.id))
        if row.next_check_at is not None and row.next_check_at > now:
            conn.execute(update(cases).where(cases.c.id == row.id).values(next_check_at=now))
        conn.execute(insert(case_history).values(
            case_id=row.id, at=now, field="mute", old_value=iso_local(row.muted_until),
            new_value=f"恢复提醒（{by}）", reason="unmute"))
    return MuteChange(number, row.unit, None, None, by, row.muted_until)


def muted_until_of(conn: Connection, case_ids: list[Any] | None, now: datetime) -> dict[Any, datetime]:
    """The cases muted at ``now`` and until when (of ``case_ids``, or all): a range of ix_mutes_muted_until."""
    stmt = select(mutes.c.case_id, mutes.c.muted_until).where(mutes.c.muted_until > now)
    if case_ids is not None:
        stmt = stmt.where(mutes.c.case_id.in_(case_ids))
    return {r.case_id: r.muted_until for r in conn.execute(stmt)}


def _case(conn: Connection, store: Store, number: str) -> Any:
    row = conn.execute(
        select(cases.c.id, cases.c.unit, cases.c.next_check_at, mutes.c.muted_until)
        .select_from(cases.outerjoin(mutes, mutes.c.case_id == cases.c.id)).where(cases.c.number == number)
    ).first()
    if row is None:
        raise UsageError(f"no case {number!r} in {store.safe_url}; see `hotline-sla cases list`")
    return row
