"""Leader election through a lease row in ``settings`` (key ``leader``): one instance runs the schedules.

Several ``hotline-sla run`` processes may share one database (a province-wide deployment on PostgreSQL).
Sync, tick and the reports run on the leader only; every instance dispatches, because the outbox claims
keep them apart. The leader holds the row ``settings(key='leader', owner=<instance id>, until=<instant>)``
and renews it every third of the lease; anyone may take it once ``until`` has passed.

Acquire and renew are one conditional UPDATE whose rowcount decides (``WHERE owner = me OR until < now``),
or an INSERT when the row is absent (the primary key decides a race), so the same SQL works on SQLite,
PostgreSQL and MariaDB without row locks. A killed leader's lease runs out within one lease period and a
follower that retries every third of it takes over before two periods have passed.

Time is an argument (aware datetimes, any zone); the instances' clocks are assumed to agree to well under
a lease period (NTP). Even when they do not, two leaders for a moment repeat no alert: the tick's alerts
are unique per case, kind, level and deadline version, and the reports are once-only through ``runs``.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from daemon.storage.models import settings
from daemon.storage.store import Store

LEADER_KEY = "leader"
OWNER_MAX_LENGTH = 64  # settings.owner and outbox.lease_owner are String(64)


def instance_id(host: str | None = None, pid: int | None = None) -> str:
    """``host:pid:random``: unique per process, readable in ``status`` and in the outbox leases."""
    host = (host or socket.gethostname() or "host").replace(":", "_")
    tail = f":{os.getpid() if pid is None else pid}:{secrets.token_hex(3)}"
    return host[: OWNER_MAX_LENGTH - len(tail)] + tail


@dataclass(frozen=True)
class LeaseHolder:
    owner: str | None
    until: datetime | None

    def live(self, now: datetime) -> bool:
        return self.owner is not None and self.until is not None and self.until > now


def current_leader(conn: Connection, key: str = LEADER_KEY) -> LeaseHolder | None:
    """Who holds the lease row (possibly expired), or None when nobody ever led."""
    row = conn.execute(select(settings.c.owner, settings.c.until).where(settings.c.key == key)).first()
    return None if row is None else LeaseHolder(row.owner, row.until)


class LeaderLease:
    """This instance's side of the lease. Not thread-safe: one job renews it."""

    def __init__(self, store: Store, owner: str, lease_seconds: float, *, key: str = LEADER_KEY) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"scheduler.leader_lease_seconds must be positive, got {lease_seconds!r}")
        if len(owner) > OWNER_MAX_LENGTH:
            raise ValueError(f"lease owner {owner!r} is longer than {OWNER_MAX_LENGTH} characters")
        self.store = store
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.key = key
        #: until when this instance knows it leads (its own last successful renewal), None: not leading
        self.held_until: datetime | None = None

    @property
    def renew_every(self) -> float:
        """Seconds between attempts: a third of the lease, so one missed renewal does not lose it."""
        return self.lease.total_seconds() / 3

    def is_leader(self, now: datetime) -> bool:
        """True while this instance's last successful renewal has not run out (no database access).

        When renewals fail (database down), leadership ends by itself when the lease does, which is
        exactly when another instance may take it.
        """
        return self.held_until is not None and now < self.held_until

    def try_acquire(self, now: datetime) -> bool:
        """Take the lease if it is free or expired, or renew it if this instance holds it.

        Returns whether this instance leads until ``now + lease``. Database errors propagate; the
        caller backs off, and :meth:`is_leader` turns false when the last lease runs out.
        """
        until = now + self.lease
        with self.store.engine.begin() as conn:
            taken = conn.execute(
                update(settings)
                .where(settings.c.key == self.key)
                .where(or_(settings.c.owner == self.owner, settings.c.until.is_(None), settings.c.until <= now))
                .values(owner=self.owner, until=until, value=now.isoformat())
            ).rowcount
            exists = bool(taken) or conn.execute(
                select(settings.c.key).where(settings.c.key == self.key)
            ).first() is not None
        if not taken and not exists:
            try:
                with self.store.engine.begin() as conn:
                    conn.execute(insert(settings).values(key=self.key, owner=self.owner, until=until,
                                                         value=now.isoformat()))
                taken = 1
            except IntegrityError:  # another instance inserted it first: it leads
                taken = 0
        self.held_until = until if taken else None
        return bool(taken)

    def release(self, now: datetime) -> bool:
        """Give the lease up (graceful stop) so a follower takes over at its next attempt, not a lease
        period later. True if this instance held it."""
        self.held_until = None
        with self.store.engine.begin() as conn:
            done = conn.execute(
                update(settings)
                .where(settings.c.key == self.key, settings.c.owner == self.owner)
                .values(until=now)
            ).rowcount
        return bool(done)
