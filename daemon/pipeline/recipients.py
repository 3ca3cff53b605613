"""Who hears about an alert: contacts by unit and role, routed by alert kind (``routes:`` in config.yaml).

A unit without a matching contact never sends to nowhere: its alerts go to the supervisors, with a note.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from daemon.config import Config, RouteConfig
from daemon.glossary import ROLE_ZH
from daemon.storage.models import contacts, settings


@dataclass(frozen=True)
class Contact:
    name: str
    role: str  # handler (承办人), leader (分管领导), supervisor (督办)
    unit: str | None
    mobile: str | None = None
    wecom_userid: str | None = None
    email: str | None = None
    channels: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "role": self.role, "unit": self.unit, "mobile": self.mobile,
            "wecom_userid": self.wecom_userid, "email": self.email,
        }

    @property
    def key(self) -> str:
        return f"{self.role}:{self.unit or '-'}:{self.name}"


@dataclass(frozen=True)
class Delivery:
    contact: Contact
    channel: str
    note: str | None = None  # e.g. why a supervisor receives a unit's alert


def sync_config_contacts(conn: Connection, config: Config) -> None:
    """Mirror config.yaml's contacts into the table (origin='config'); imported ones are left alone."""
    rows: list[dict[str, Any]] = []
    for unit in config.contacts.units:
        for c in unit.contacts:
            rows.append(_row(c.model_dump(), unit.name))
    for c in config.contacts.supervisors:
        rows.append(_row({**c.model_dump(), "role": "supervisor"}, None))
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    current = conn.execute(select(settings.c.value).where(settings.c.key == "contacts_config_hash")).scalar()
    if current == digest:
        return
    # Claim the change on the marker row first: with two processes mirroring at once, the second waits on
    # the row (or the key) and then finds it already claimed, so the contacts are never written twice.
    if current is None:
        marker = insert(settings).values(key="contacts_config_hash", value=digest)
        try:
            if conn.dialect.name == "postgresql":  # a failed statement aborts a PostgreSQL transaction
                with conn.begin_nested():
                    conn.execute(marker)
            else:  # SQLite and MariaDB roll back only the statement (and pysqlite's SAVEPOINT would commit)
                conn.execute(marker)
        except IntegrityError:
            return  # another process is mirroring (or has mirrored) the same config
    else:
        claimed = conn.execute(
            update(settings)
            .where(settings.c.key == "contacts_config_hash", settings.c.value == current)
            .values(value=digest)
        ).rowcount
        if claimed != 1:
            return
    conn.execute(delete(contacts).where(contacts.c.origin == "config"))
    if rows:
        conn.execute(insert(contacts), rows)


def _row(c: dict[str, Any], unit: str | None) -> dict[str, Any]:
    return {
        "unit": unit, "name": c["name"], "role": c["role"], "mobile": c.get("mobile"),
        "wecom_userid": c.get("wecom_userid"), "email": c.get("email"), "channels": list(c.get("channels") or []),
        "origin": "config",
    }


class Directory:
    """All contacts, indexed by unit (aliases resolved)."""

    def __init__(self, people: list[Contact], default_channels: list[str], aliases: dict[str, str]) -> None:
        self.default_channels = tuple(default_channels)
        self.aliases = aliases
        self.by_unit: dict[str, list[Contact]] = defaultdict(list)
        self.supervisors: list[Contact] = []
        for p in people:
            if p.unit is None or p.role == "supervisor":
                self.supervisors.append(p)
            else:
                self.by_unit[p.unit].append(p)

    @classmethod
    def load(cls, conn: Connection, config: Config) -> Directory:
        people = [
            Contact(r.name, r.role, r.unit, r.mobile, r.wecom_userid, r.email, tuple(r.channels or ()))
            for r in conn.execute(select(contacts))
        ]
        aliases = {alias: u.name for u in config.contacts.units for alias in u.aliases}
        return cls(people, config.default_channels, aliases)

    def unit_contacts(self, unit: str, roles: Sequence[str]) -> list[Contact]:
        name = self.aliases.get(unit, unit)
        return [c for c in self.by_unit.get(name, []) if c.role in roles]

    @staticmethod
    def escalates(route: RouteConfig, overdue_working_days: int) -> bool:
        """Whether an alert this many working days overdue also goes to the supervisors.

        :meth:`route` depends on ``overdue_working_days`` only through this, so callers may memoise it by
        (route, unit, this).
        """
        return 0 < route.supervisors_after_working_days <= overdue_working_days

    def route(self, route: RouteConfig, unit: str, overdue_working_days: int = 0) -> list[Delivery]:
        """The (contact, channel) pairs for one alert of ``unit``."""
        people: list[tuple[Contact, str | None]] = []
        unit_roles: list[str] = [r for r in route.roles if r != "supervisor"]
        found = self.unit_contacts(unit, unit_roles) if unit_roles else []
        people.extend((c, None) for c in found)
        wants_supervisors = "supervisor" in route.roles or self.escalates(route, overdue_working_days)
        if unit_roles and not found:
            fallback = f"{unit}未配置{'/'.join(ROLE_ZH[r] for r in unit_roles)}联系人，转督办人员"
            people.extend((s, fallback) for s in self.supervisors)
        elif wants_supervisors:
            people.extend((s, None) for s in self.supervisors)
        deliveries: list[Delivery] = []
        seen: set[tuple[str, str]] = set()
        for contact, note in people:  # note: why a supervisor gets a unit's alert
            for channel in contact.channels or self.default_channels:
                if (contact.key, channel) not in seen:
                    seen.add((contact.key, channel))
                    deliveries.append(Delivery(contact, channel, note))
        return deliveries
