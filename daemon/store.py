"""The case store: engine, migrations, upserts with derived deadlines, and the few dialect differences.

Every upsert computes the case's rule, deadline, warning instants and ``next_check_at`` and stores them, so
the tick reads only ``WHERE next_check_at <= now`` through an index (ARCHITECTURE rule 2). Instants passed
in and out are aware datetimes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, insert, select, update
from sqlalchemy.engine import make_url

from daemon.cases import FINISHED_STATUSES, CaseRecord
from daemon.models import case_history, cases, metadata, settings
from daemon.rules import Deadline, Rule, RuleSet, WarningPoint

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_SOURCE_FIELDS = (
    "number", "source", "category", "unit", "district", "domain", "summary", "status", "received_at",
    "signed_at", "return_requested_at", "fed_back_at", "closed_at", "extended_due_at", "satisfaction",
    "stars", "difficult", "source_updated_at",
)
_HISTORY_FIELDS = ("status", "unit", "extended_due_at", "fed_back_at", "closed_at", "rule_id", "due_at")
_FINISHED = {s.value for s in FINISHED_STATUSES}  # as strings, for SQL


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: list[str] = field(default_factory=list)  # case numbers whose deadline moved

    def add(self, other: UpsertResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.moved.extend(other.moved)


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def content_hash(record: CaseRecord) -> str:
    """What the source said about the case; equal hashes mean a re-import changes nothing."""
    raw = "\x1f".join("" if (v := getattr(record, f)) is None else str(v) for f in _SOURCE_FIELDS)
    return hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest()


def warnings_json(points: Sequence[WarningPoint]) -> list[list[Any]]:
    return [[w.level, w.at.isoformat(), w.lead] for w in points]


def warnings_from_json(data: Any) -> tuple[WarningPoint, ...]:
    return tuple(WarningPoint(int(lv), datetime.fromisoformat(at), lead) for lv, at, lead in data or ())


def is_finished(row: Any) -> bool:
    return row.status in _FINISHED or row.fed_back_at is not None or row.closed_at is not None


def first_check_at(
    record: CaseRecord, deadline: Deadline, return_deadline: Deadline | None
) -> datetime | None:
    """The earliest instant at which anything about the case can happen, independent of ``now``.

    A past instant is fine: the next tick evaluates the case and stores the real next check.
    """
    if record.is_finished:
        late = (
            return_deadline is not None
            and record.return_requested_at is not None
            and record.return_requested_at > return_deadline.due_at
        )
        return record.return_requested_at if late else None
    instants = [w.at for w in deadline.warnings] + [deadline.due_at]
    if return_deadline is not None:
        if record.return_requested_at is not None and record.return_requested_at > return_deadline.due_at:
            instants.append(record.return_requested_at)
        elif record.signed_at is None and record.return_requested_at is None:
            instants.extend(w.at for w in return_deadline.warnings)
    return min(instants)


class RuleCache:
    """Rule matching memoised by the fields rules can match on (a few dozen distinct keys at most)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._cache: dict[tuple[Any, ...], tuple[Rule, Rule | None]] = {}

    def rules_for(self, record: CaseRecord) -> tuple[Rule, Rule | None]:
        key = (record.source, record.category, record.status, record.unit, record.district, record.domain)
        hit = self._cache.get(key)
        if hit is None:
            view = {
                "source": record.source.value, "category": record.category.value, "status": record.status.value,
                "unit": record.unit, "district": record.district, "domain": record.domain,
            }
            hit = (self.rules.match(view), self.rules.return_rule(view))
            if len(self._cache) < 100_000:
                self._cache[key] = hit
        return hit


def derive(record: CaseRecord, cache: RuleCache) -> dict[str, Any]:
    """The stored, derived columns of a case."""
    rule, return_rule = cache.rules_for(record)
    deadline = rule.deadline(record.received_at, extended_due_at=record.extended_due_at)
    ret = return_rule.deadline(record.received_at) if return_rule else None
    return {
        "rule_id": rule.id,
        "due_at": deadline.due_at,
        "provisional": deadline.provisional,
        "warnings": warnings_json(deadline.warnings),
        "return_rule_id": return_rule.id if return_rule else None,
        "return_due_at": ret.due_at if ret else None,
        "return_warnings": warnings_json(ret.warnings) if ret else None,
        "next_check_at": first_check_at(record, deadline, ret),
    }


def _record_columns(record: CaseRecord) -> dict[str, Any]:
    values = {f: getattr(record, f) for f in _SOURCE_FIELDS}
    for key in ("source", "category", "status", "satisfaction"):
        if values[key] is not None:
            values[key] = str(values[key].value)
    return values


class Store:
    """One database. ``url`` is any SQLAlchemy URL (sqlite, postgresql+psycopg, mysql+pymysql)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # --- schema ---------------------------------------------------------------------------------------

    def upgrade(self) -> str:
        """Apply the Alembic migrations up to head; returns the revision."""
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        return self.revision() or ""

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def drop_all(self) -> None:
        """Tests only: remove every table, including Alembic's."""
        from sqlalchemy import text

        with self.engine.begin() as conn:
            metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))

    # --- cases ----------------------------------------------------------------------------------------

    def upsert_cases(
        self,
        records: Iterable[CaseRecord],
        *,
        rules: RuleSet,
        now: datetime,
        source_name: str,
        batch_size: int = 2000,
    ) -> UpsertResult:
        """Insert new cases, update changed ones (by case number), leave unchanged ones alone."""
        total = UpsertResult()
        cache = RuleCache(rules)
        for chunk in _batched(records, batch_size):
            last: dict[str, CaseRecord] = {}
            for rec in chunk:  # within one batch the later row wins
                last[rec.number] = rec
            with self.engine.begin() as conn:
                total.add(self._upsert_chunk(conn, list(last.values()), cache, now, source_name))
        return total

    def _upsert_chunk(
        self, conn: Connection, chunk: list[CaseRecord], cache: RuleCache, now: datetime, source_name: str
    ) -> UpsertResult:
        result = UpsertResult()
        cols = [cases.c[c] for c in ("id", "number", "content_hash", "deadline_version", *_HISTORY_FIELDS)]
        existing = {
            row.number: row
            for row in conn.execute(select(*cols).where(cases.c.number.in_([r.number for r in chunk])))
        }
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for rec in chunk:
            digest = content_hash(rec)
            old = existing.get(rec.number)
            if old is not None and old.content_hash == digest:
                result.unchanged += 1
                continue
            values = _record_columns(rec)
            values.update(derive(rec, cache))
            values.update(content_hash=digest, source_name=source_name, updated_at=now)
            if old is None:
                values.update(created_at=now, deadline_version=1, check_failures=0)
                inserts.append(values)
                continue
            moved = values["due_at"] != old.due_at or values["rule_id"] != old.rule_id
            values["deadline_version"] = old.deadline_version + (1 if moved else 0)
            values["check_failures"] = 0
            if moved:
                result.moved.append(rec.number)
            for f in _HISTORY_FIELDS:
                before, after = getattr(old, f), values[f]
                if before != after:
                    history.append({
                        "case_id": old.id, "at": now, "field": f, "old_value": _text(before),
                        "new_value": _text(after), "reason": f"import:{source_name}",
                    })
            values["_id"] = old.id
            updates.append(values)
        if inserts:
            conn.execute(insert(cases), inserts)
            result.inserted = len(inserts)
        if updates:
            keys = [k for k in updates[0] if k != "_id"]
            stmt = update(cases).where(cases.c.id == bindparam("_id")).values({k: bindparam(k) for k in keys})
            conn.execute(stmt, updates)
            result.updated = len(updates)
        if history:
            conn.execute(insert(case_history), history)
        return result

    def count_cases(self, *, open_only: bool = False) -> int:
        stmt = select(func.count()).select_from(cases)
        if open_only:
            stmt = stmt.where(cases.c.status.not_in(list(_FINISHED)))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    # --- small state ----------------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar_one_or_none()
            return value

    def set_setting(self, key: str, value: str, conn: Connection | None = None) -> None:
        if conn is None:
            with self.engine.begin() as own:
                self.set_setting(key, value, own)
            return
        done = conn.execute(update(settings).where(settings.c.key == key).values(value=value)).rowcount
        if not done:
            conn.execute(insert(settings).values(key=key, value=value))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the daemon's writes
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL keeps the file consistent
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
