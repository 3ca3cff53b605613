"""A vendor's rate limit, shared through the database by every dispatcher, across processes and restarts.

The WeCom robot takes 20 messages per rolling minute, an application 30 per member, DingTalk 20, Aliyun SMS
about 1 per number (docs/channels.md; each channel type declares its default, ``channels.<name>.
rate_limit_per_minute`` overrides it). Counted in each process's memory, one robot got 49 per minute across
restarts and 70 with two instances, which WeCom answers with 45009 and may block the robot for.

:func:`take` keeps, per ``(channel, key)``, the instants of the sends of the last minute in one row of
``send_windows`` and reserves the sends a message needs in one transaction: it locks the key's row (an
``UPDATE``, which takes the row lock on PostgreSQL and MariaDB and the database's write lock on SQLite, so
two dispatchers serialise here and nowhere else), counts, and either appends the instants or answers how
long until they fit. A message that does not fit is deferred by the caller to that instant: not an attempt,
not a failure. Keys (a member's user id, a mobile) are stored hashed.

Time is an argument (``now``, aware); nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from daemon.storage.models import send_windows
from daemon.storage.store import Store

PERIOD_SECONDS = 60.0
_KEY_CHARS = 120


def window_key(channel: str, key: str) -> str:
    """The stored key of ``key`` on ``channel``: the channel name, and a hash of the member or number."""
    if not key:
        return channel[:_KEY_CHARS]
    digest = hashlib.sha256(f"{channel}\0{key}".encode()).hexdigest()[:32]
    return f"{channel[: _KEY_CHARS - 33]}:{digest}"


def take(store: Store, channel: str, keys: Iterable[str], *, count: int, limit: int, now: datetime) -> float:
    """Reserve ``count`` sends at ``now`` on every key of ``keys`` if each key's rolling minute has room.

    Returns 0.0 when reserved, else the seconds until they all fit (nothing reserved). A message that needs
    more sends than ``limit`` waits for an empty window and takes it whole (the vendor then limits its
    later parts, and the outbox resumes from the first undelivered one).
    """
    stored = sorted({window_key(channel, k) for k in keys})
    if not stored:
        return 0.0
    count = max(1, min(count, limit))
    instant = now.timestamp()
    with store.engine.begin() as conn:
        existing = set(conn.execute(select(send_windows.c.key).where(send_windows.c.key.in_(stored))).scalars())
        _ensure_rows(conn, [k for k in stored if k not in existing], now)
    with store.engine.begin() as conn:
        for key in stored:  # one at a time, in order: two dispatchers never wait on each other crosswise
            conn.execute(update(send_windows).where(send_windows.c.key == key).values(updated_at=now))
        windows = {
            row.key: _recent(row.sent, instant)
            for row in conn.execute(select(send_windows.c.key, send_windows.c.sent)  # the latest, not a snapshot
                                    .where(send_windows.c.key.in_(stored)).with_for_update())
        }
        wait = max(_wait(sent, count, limit, instant) for sent in windows.values())
        if wait > 0:
            return wait
        for key, sent in windows.items():
            text = " ".join(f"{t:.6f}" for t in [*sent, *[instant] * count])
            conn.execute(update(send_windows).where(send_windows.c.key == key).values(sent=text))
    return 0.0


def _recent(text: str, instant: float) -> list[float]:
    """The send instants of ``text`` still inside the window ending at ``instant``, oldest first."""
    return sorted(t for t in (float(v) for v in text.split()) if t > instant - PERIOD_SECONDS)


def _wait(sent: list[float], count: int, limit: int, instant: float) -> float:
    excess = len(sent) + count - limit
    if excess <= 0:
        return 0.0
    return max(sent[excess - 1] + PERIOD_SECONDS - instant, 0.001)


def _ensure_rows(conn: Connection, keys: list[str], now: datetime) -> None:
    """A row for every key; a row another dispatcher creates at the same moment is left as it is."""
    dialect = conn.dialect.name
    for key in keys:
        values = {"key": key, "sent": "", "updated_at": now}
        stmt: Any
        if dialect == "sqlite":
            stmt = sqlite.insert(send_windows).values(values).on_conflict_do_nothing(index_elements=["key"])
        elif dialect == "postgresql":
            stmt = postgresql.insert(send_windows).values(values).on_conflict_do_nothing(index_elements=["key"])
        else:  # MariaDB / MySQL
            stmt = insert(send_windows).values(values).prefix_with("IGNORE")
        conn.execute(stmt)
