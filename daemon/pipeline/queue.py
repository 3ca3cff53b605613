"""The outbox queue: what the dispatcher (daemon/pipeline/outbox.py) and the dead letter
(daemon/pipeline/dead_letter.py) share, below both of them.

- :func:`enqueue` writes one message row (status ``pending``), idempotent on ``(dedupe_key, channel)``;
  the tick writes its alerts' rows in bulk with the same columns (:data:`OUTBOX_COLUMNS`).
- :func:`select_rows`, :func:`full_payload` and :func:`full_rows` read rows back with their alert's detail
  merged into the payload.
- :func:`open_for_claim` and :func:`claimable` are the one definition of which rows a dispatcher may take:
  pending ones, and ones whose sender's lease ran out; :func:`claim` takes them under a lease and
  :func:`release` gives back the ones a stopping dispatcher did not send; :func:`claimable_count` says
  whether any are left.

Time is an argument (``now``, aware); nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, Connection, Insert, Select, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from daemon.storage.models import alerts, deliveries, outbox
from daemon.storage.store import Store

#: the columns of a new outbox row, in the order the tick's bulk insert passes them
OUTBOX_COLUMNS = (
    "alert_id", "kind", "channel", "recipient", "payload", "dedupe_key", "status", "not_before", "attempts",
    "created_at",
)
DEDUPE_KEY_CHARS = 200  # the column's width
#: every status an outbox row can have; ``superseded``: an alert a moved deadline made untrue before it was
#: sent (daemon/pipeline/stale.py), kept with the reason in ``last_error``, never sent, not a failure
STATUSES = ("pending", "sending", "sent", "failed", "dead", "superseded")
_CANDIDATES = 4  # MariaDB: candidates read per row claimed, so concurrent claimers find unlocked ones


# --- which rows may be taken ----------------------------------------------------------------------------


def open_for_claim(now: datetime) -> ColumnElement[bool]:
    """Rows nobody is sending: ``pending``, or ``sending`` with a lease that ran out by ``now`` (a crashed
    dispatcher's). Whether they are due yet is :func:`claimable`'s concern; the dead letter takes old rows
    whether due or not."""
    return or_(outbox.c.status == "pending", and_(outbox.c.status == "sending", outbox.c.lease_until <= now))


def claimable(now: datetime) -> ColumnElement[bool]:
    """Rows a dispatcher may claim at ``now``: due (``not_before <= now``) and :func:`open_for_claim`."""
    return and_(outbox.c.not_before <= now, open_for_claim(now))


def claim(store: Store, token: str, now: datetime, *, limit: int, lease_seconds: float) -> list[Any]:
    """Take up to ``limit`` claimable rows for ``token`` until ``now + lease_seconds`` (full rows, oldest due
    first). Several dispatchers never take one row twice, and one that loses a race takes other candidates
    instead of nothing (:func:`_take_ids`: skip-locked on PostgreSQL/MariaDB, one atomic statement on
    SQLite). A partly delivered batch (``parts_sent``) comes whole, whatever ``limit`` cut, so it renders
    the same parts.
    """
    cond = claimable(now)
    lease = {"status": "sending", "lease_owner": token, "lease_until": now + timedelta(seconds=lease_seconds)}
    with _claiming(store) as conn:
        found = _take_ids(conn, cond, limit, lease)
        ids = [r.id for r in found]
        resumed = {r.batch_id for r in found if r.parts_sent and r.batch_id}
        if resumed:
            taken = set(ids)
            more = [i for i in conn.execute(
                _locking(conn, select(outbox.c.id).where(outbox.c.batch_id.in_(resumed), cond))
            ).scalars() if i not in taken]
            if more:
                conn.execute(update(outbox).where(outbox.c.id.in_(more)).values(lease))  # locked: still claimable
                ids += more
        if not ids:
            return []
        rows = full_rows(conn.execute(
            select_rows().where(outbox.c.id.in_(ids), outbox.c.lease_owner == token)  # by primary key
            .order_by(outbox.c.not_before, outbox.c.id)
        ))
        owned = [r.id for r in rows]
        if owned:  # an earlier dispatcher died between sending and recording these
            conn.execute(
                update(deliveries)
                .where(deliveries.c.outbox_id.in_(owned), deliveries.c.outcome == "attempting")
                .values(outcome="interrupted", finished_at=now,
                        error="dispatcher stopped before recording the result; the message may have been sent")
            )
    return rows


@contextmanager
def _claiming(store: Store) -> Iterator[Connection]:
    """A transaction for a claim: ``READ COMMITTED`` on MariaDB, whose default (repeatable read) takes
    next-key locks that reach past the rows a claim locks and make other claimers wait on them."""
    with store.engine.connect() as opened:
        conn = opened
        if store.dialect not in ("sqlite", "postgresql"):
            conn = opened.execution_options(isolation_level="READ COMMITTED")
        with conn.begin():
            yield conn


def _locking(conn: Connection, stmt: Select[Any]) -> Select[Any]:
    """``stmt`` … ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB: rows another dispatcher is claiming
    at this moment are passed over, not waited for and then lost."""
    return stmt if conn.dialect.name == "sqlite" else stmt.with_for_update(skip_locked=True)


def _take_ids(conn: Connection, cond: ColumnElement[bool], limit: int, lease: dict[str, Any]) -> list[Any]:
    """Lease up to ``limit`` rows matching ``cond`` (oldest due first) in ``conn``'s transaction; their
    ``(id, batch_id, parts_sent)``.

    Before, candidates were selected and then updated in two transactions: two dispatchers picked the same
    candidates, and the slower one won none and stopped with hundreds pending. Now the candidates are
    locked as they are chosen: on PostgreSQL and MariaDB with ``FOR UPDATE SKIP LOCKED`` (a concurrent
    claimer's rows are skipped, so it gets the next ones); on SQLite with one ``UPDATE … WHERE id IN
    (SELECT … LIMIT n) RETURNING``, which holds the database's write lock from the first read, so the
    choice and the stamp are atomic and the next claimer sees the rows taken.
    """
    order = (outbox.c.not_before, outbox.c.id)
    picked = select(outbox.c.id).where(cond).order_by(*order).limit(limit)
    if conn.dialect.name == "sqlite":
        stmt = (update(outbox).where(outbox.c.id.in_(picked.scalar_subquery()), cond).values(lease)
                .returning(outbox.c.id, outbox.c.batch_id, outbox.c.parts_sent))
        return list(conn.execute(stmt))
    wanted = select(outbox.c.id, outbox.c.batch_id, outbox.c.parts_sent)
    if conn.dialect.name == "postgresql":
        wanted = wanted.where(cond).order_by(*order).limit(limit)
    else:
        # InnoDB locks every row a locking read examines, and ordering by due instant reads them all: the
        # first claimer would lock the whole backlog and the others skip it all. So the oldest candidates
        # are read without locks and then locked by primary key, which examines only those.
        candidates = list(conn.execute(picked.limit(limit * _CANDIDATES)).scalars())
        if not candidates:
            return []
        wanted = (wanted.where(outbox.c.id.in_(candidates), cond).order_by(outbox.c.id).limit(limit)
                  .with_hint(outbox, "FORCE INDEX (PRIMARY)"))  # else it reads (and skips) by status
    found = list(conn.execute(_locking(conn, wanted)))
    if found:  # locked by us, so still claimable; by primary key alone, so InnoDB locks nothing else
        conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in found])).values(lease))
    return found


def claimable_count(store: Store, now: datetime, *, cap: int = 1) -> int:
    """How many rows are claimable at ``now``, counted up to ``cap`` (the dispatch loop asks "any left?")."""
    with store.engine.connect() as conn:
        return len(list(conn.execute(select(outbox.c.id).where(claimable(now)).limit(cap))))


def release(store: Store, ids: list[Any], token: str) -> None:
    """Give rows ``ids`` claimed under ``token`` back as pending (no attempt was made)."""
    if not ids:
        return
    with store.engine.begin() as conn:
        conn.execute(
            update(outbox).where(outbox.c.id.in_(ids), outbox.c.lease_owner == token)
            .values(status="pending", lease_owner=None, lease_until=None)
        )


def supersede(store: Store, reasons: dict[Any, str], token: str) -> int:
    """Mark the rows claimed under ``token`` ``superseded``, each with its reason in ``last_error``
    (``reasons``: outbox id → reason); they are never sent. Returns how many were marked."""
    if not reasons:
        return 0
    with store.engine.begin() as conn:
        conn.execute(
            update(outbox).where(outbox.c.id == bindparam("_id"), outbox.c.lease_owner == token)
            .values(status="superseded", lease_owner=None, lease_until=None, last_error=bindparam("_reason")),
            [{"_id": i, "_reason": reason[:500]} for i, reason in reasons.items()],
        )
        return len(conn.execute(
            select(outbox.c.id).where(outbox.c.id.in_(list(reasons)), outbox.c.status == "superseded")
        ).all())


# --- reading rows: the alert's detail merged back ----------------------------------------------------


def select_rows(*columns: Any) -> Select[Any]:
    """``SELECT`` outbox rows (every column, or ``columns``) with their alert's detail as ``alert_detail``.

    An alert's outbox rows store only their own part of the template context (``note``, ``urgent``); the
    rest is the alert's ``detail``, stored once (see daemon/pipeline/tick.py). Report rows have no alert (outer
    join). Read the payload of a row selected here with :func:`full_payload`, or use :func:`full_rows`.
    """
    return select(*(columns or outbox.c), alerts.c.detail.label("alert_detail")).select_from(
        outbox.outerjoin(alerts, alerts.c.id == outbox.c.alert_id)
    )


def full_payload(row: Any) -> dict[str, Any]:
    """A row's whole payload: ``{**alert detail, **payload}`` (rows from :func:`select_rows`).

    Rows written before the payload was trimmed hold the whole context already; merging the detail under
    it gives the same document.
    """
    payload: dict[str, Any] = row.payload or {}
    detail = row.alert_detail
    return {**detail, **payload} if isinstance(detail, dict) else payload


def full_rows(rows: Iterable[Any]) -> list[Any]:
    """Rows from :func:`select_rows` as attribute records whose ``payload`` is the whole payload."""
    return [SimpleNamespace(**{**r._asdict(), "payload": full_payload(r)}) for r in rows]


# --- writing rows --------------------------------------------------------------------------------------


def bulk_insert() -> Insert:
    """``INSERT`` of one outbox row with a bind parameter per :data:`OUTBOX_COLUMNS` (the tick runs it
    for many rows at once; a new row is ``pending`` with ``attempts`` 0, as :func:`enqueue` writes it)."""
    return insert(outbox).values({c: bindparam(c) for c in OUTBOX_COLUMNS})


def enqueue(
    conn: Connection,
    *,
    kind: str,
    channel: str,
    recipient: dict[str, Any],
    payload: dict[str, Any],
    dedupe_key: str,
    now: datetime,
    not_before: datetime | None = None,
    alert_id: int | None = None,
) -> bool:
    """Queue one message (status pending, due at ``not_before`` or ``now``) in ``conn``'s transaction.

    Returns False, without an error, when a row with the same ``(dedupe_key, channel)`` exists already.
    """
    if not dedupe_key or len(dedupe_key) > DEDUPE_KEY_CHARS:
        raise ValueError(f"dedupe_key must be 1-{DEDUPE_KEY_CHARS} characters, got {len(dedupe_key)}")
    values = {
        "alert_id": alert_id, "kind": kind, "channel": channel, "recipient": recipient, "payload": payload,
        "dedupe_key": dedupe_key, "status": "pending", "not_before": not_before or now, "attempts": 0,
        "created_at": now,
    }
    dialect = conn.dialect.name
    keys = ["dedupe_key", "channel"]
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        stmt: Any = sqlite.insert(outbox).values(values).on_conflict_do_nothing(index_elements=keys)
        return bool(conn.execute(stmt).rowcount == 1)
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        stmt = postgresql.insert(outbox).values(values).on_conflict_do_nothing(index_elements=keys)
        return conn.execute(stmt.returning(outbox.c.id)).first() is not None
    exists = conn.execute(
        select(outbox.c.id).where(outbox.c.dedupe_key == dedupe_key, outbox.c.channel == channel)
    ).first()
    if exists is not None:
        return False
    try:
        with conn.begin_nested():  # a concurrent insert of the same key must not abort the caller's transaction
            conn.execute(insert(outbox).values(values))
    except IntegrityError:
        return False
    return True
