"""Upserting cases by number in chunks: new ones inserted, changed ones updated with history, the rest left.

An import of a million cases spends its time here, so the writes skip SQLAlchemy's per-row, per-column
type processing: each statement is compiled once for the dialect and run as one ``executemany`` on the
driver, with values already in the driver's form (:class:`DriverValues`: instants as naive UTC, JSON
through the column type's own processor, memoised for the shared deadline parts). What lands in the
database is what SQLAlchemy would have written; ``tests/test_upsert.py`` compares them per dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, insert, select, update
from sqlalchemy.sql.dml import ValuesBase

from daemon.cases import CaseRecord
from daemon.derive import Derived, RuleCache, Warnings, content_hash, derive_parts
from daemon.models import UTCDateTime, case_history, cases

HISTORY_FIELDS = ("status", "unit", "extended_due_at", "fed_back_at", "closed_at", "rule_id", "due_at")

#: the order of the values :func:`_row` builds; a schema change that moves a column fails here, loudly
INSERT_COLUMNS = (
    "number", "source", "category", "unit", "district", "domain", "summary", "status", "received_at",
    "signed_at", "return_requested_at", "fed_back_at", "closed_at", "extended_due_at", "satisfaction", "stars",
    "difficult", "source_name", "source_updated_at", "content_hash", "rule_id", "due_at", "provisional",
    "warnings", "return_rule_id", "return_due_at", "return_warnings", "deadline_version", "next_check_at",
    "check_failures", "created_at", "updated_at",
)
assert tuple(c.name for c in cases.columns if c.name != "id") == INSERT_COLUMNS, "cases columns changed"
UPDATE_COLUMNS = tuple(c for c in INSERT_COLUMNS if c != "created_at")
_CREATED_AT = INSERT_COLUMNS.index("created_at")

#: (number, content hash, the insert row in the driver's form, the record's field values in order)
Prepared = tuple[str, str, tuple[Any, ...], tuple[Any, ...]]
_record_values = attrgetter(*(f.name for f in fields(CaseRecord)))


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


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given to the store: attach a timezone")
    return value.astimezone(UTC).replace(tzinfo=None)


class DriverValues:
    """Python values → what the driver receives for a ``cases`` column, as SQLAlchemy's types convert them."""

    def __init__(self, dialect: Dialect) -> None:
        if dialect.name == "sqlite":  # SQLAlchemy's SQLite DATETIME text, which SQL compares as text
            def instant(value: datetime | None) -> Any:
                return None if value is None else _naive_utc(value).isoformat(" ", "microseconds")
        else:
            def instant(value: datetime | None) -> Any:
                return None if value is None else _naive_utc(value)
        self.instant: Callable[[datetime | None], Any] = instant
        flag = cases.c.provisional.type.dialect_impl(dialect).bind_processor(dialect)
        self.flag = {b: (flag(b) if flag else b) for b in (False, True)}
        json_processor = cases.c.warnings.type.dialect_impl(dialect).bind_processor(dialect)
        self._json: Callable[[Any], Any] = json_processor if json_processor is not None else _same
        self.json_null = self._json(None)  # JSON columns store None as JSON null, as SQLAlchemy does
        self._shared: dict[datetime, Any] = {}

    def shared_instant(self, value: datetime | None) -> Any:
        """:attr:`instant`, memoised: for due and check instants that many cases share."""
        if value is None:
            return None
        bound = self._shared.get(value)
        if bound is None:
            bound = self.instant(value)
            if len(self._shared) < 100_000:
                self._shared[value] = bound
        return bound

    def warnings(self, warnings: Warnings | None) -> Any:
        if warnings is None:
            return self.json_null
        if warnings.bound_by is not self:
            warnings.bound, warnings.bound_by = self._json(warnings.as_json), self
        return warnings.bound


class BulkStatement:
    """A statement compiled once for a dialect and run as one ``executemany`` on the driver.

    Rows are tuples in ``names`` order, holding driver values; the paramstyle decides tuples or dicts.
    """

    def __init__(self, dialect: Dialect, statement: ValuesBase, names: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names = tuple(names)
        positions = compiled.positiontup
        self.named = positions is None
        order = None if positions is None else [self.names.index(n) for n in positions]
        self.order = None if order == list(range(len(self.names))) else order

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        params: Any = rows
        if self.named:
            names = self.names
            params = [dict(zip(names, row, strict=True)) for row in rows]
        elif self.order is not None:
            order = self.order
            params = [tuple(row[i] for i in order) for row in rows]
        conn.exec_driver_sql(self.sql, params)


class ChunkWriter:
    """Upserts chunks of cases on one dialect; holds the compiled statements and the deadline memo."""

    def __init__(self, dialect: Dialect, cache: RuleCache) -> None:
        self.cache = cache
        self.values = DriverValues(dialect)
        self._insert = BulkStatement(
            dialect, insert(cases).values({c: bindparam(c) for c in INSERT_COLUMNS}), INSERT_COLUMNS
        )
        self._update = BulkStatement(
            dialect,
            update(cases).where(cases.c.id == bindparam("_id")).values({c: bindparam(c) for c in UPDATE_COLUMNS}),
            (*UPDATE_COLUMNS, "_id"),
        )
        for column in INSERT_COLUMNS:  # every type this module converts by hand must be one it knows
            kind = cases.c[column].type
            known = isinstance(kind, UTCDateTime) or column in ("provisional", "difficult", "warnings",
                                                                 "return_warnings")
            assert known or kind.dialect_impl(dialect).bind_processor(dialect) is None, column

    def upsert(
        self, conn: Connection, chunk: Sequence[CaseRecord], now: datetime, source_name: str
    ) -> UpsertResult:
        """One chunk (distinct numbers) in the caller's transaction."""
        result = UpsertResult()
        digests = {rec.number: content_hash(rec) for rec in chunk}
        stored: dict[str, str] = dict(conn.execute(
            select(cases.c.number, cases.c.content_hash).where(cases.c.number.in_(list(digests)))
        ).all())
        inserts: list[tuple[Any, ...]] = []
        changed: list[CaseRecord] = []
        now_bound = self.values.instant(now)
        for rec in chunk:
            digest = digests[rec.number]
            old_digest = stored.get(rec.number)
            if old_digest is None:
                inserts.append(self._row(rec, digest, derive_parts(rec, self.cache), source_name, 1, now_bound))
            elif old_digest != digest:
                changed.append(rec)
            else:
                result.unchanged += 1
        self._insert.run(conn, inserts)
        result.inserted = len(inserts)
        if changed:
            self._update_changed(conn, changed, digests, now, now_bound, source_name, result)
        return result

    def prepare(self, chunk: Sequence[CaseRecord], now: datetime, source_name: str) -> list[Prepared]:
        """Every case of a chunk (distinct numbers) ready to insert, before knowing which ones are new.

        For a process that parses while another writes (:mod:`daemon.bulk`): the rows are plain tuples, cheap
        to pickle, and :meth:`write_prepared` turns them into the same writes as :meth:`upsert`.
        """
        now_bound = self.values.instant(now)
        cache = self.cache
        return [
            (rec.number, digest, self._row(rec, digest, derive_parts(rec, cache), source_name, 1, now_bound),
             _record_values(rec))
            for rec in chunk
            for digest in (content_hash(rec),)
        ]

    def write_prepared(
        self, conn: Connection, prepared: Sequence[Prepared], now: datetime, source_name: str
    ) -> UpsertResult:
        """:meth:`upsert` of a chunk that :meth:`prepare` made, in the caller's transaction."""
        result = UpsertResult()
        stored: dict[str, str] = dict(conn.execute(
            select(cases.c.number, cases.c.content_hash).where(cases.c.number.in_([p[0] for p in prepared]))
        ).all())
        inserts: list[tuple[Any, ...]] = []
        changed: list[CaseRecord] = []
        digests: dict[str, str] = {}
        for number, digest, row, values in prepared:
            old_digest = stored.get(number)
            if old_digest is None:
                inserts.append(row)
            elif old_digest != digest:
                changed.append(CaseRecord(*values))
                digests[number] = digest
            else:
                result.unchanged += 1
        self._insert.run(conn, inserts)
        result.inserted = len(inserts)
        if changed:
            self._update_changed(conn, changed, digests, now, self.values.instant(now), source_name, result)
        return result

    def _update_changed(  # noqa: PLR0917 - internal
        self, conn: Connection, changed: list[CaseRecord], digests: dict[str, str], now: datetime,
        now_bound: Any, source_name: str, result: UpsertResult,
    ) -> None:
        cols = [cases.c[c] for c in ("id", "number", "deadline_version", *HISTORY_FIELDS)]
        existing = {
            row.number: row
            for row in conn.execute(select(*cols).where(cases.c.number.in_([r.number for r in changed])))
        }
        updates: list[tuple[Any, ...]] = []
        history: list[dict[str, Any]] = []
        for rec in changed:
            old = existing[rec.number]
            derived = derive_parts(rec, self.cache)
            moved = derived.due_at != old.due_at or derived.rule_id != old.rule_id
            if moved:
                result.moved.append(rec.number)
            after = {
                "status": rec.status.value, "unit": rec.unit, "extended_due_at": rec.extended_due_at,
                "fed_back_at": rec.fed_back_at, "closed_at": rec.closed_at, "rule_id": derived.rule_id,
                "due_at": derived.due_at,
            }
            for f in HISTORY_FIELDS:
                before = getattr(old, f)
                if before != after[f]:
                    history.append({
                        "case_id": old.id, "at": now, "field": f, "old_value": _text(before),
                        "new_value": _text(after[f]), "reason": f"import:{source_name}",
                    })
            row = self._row(rec, digests[rec.number], derived, source_name,
                            old.deadline_version + (1 if moved else 0), now_bound)
            updates.append((*row[:_CREATED_AT], *row[_CREATED_AT + 1:], old.id))
        self._update.run(conn, updates)
        result.updated = len(updates)
        if history:
            conn.execute(insert(case_history), history)

    def _row(  # noqa: PLR0917 - internal, the hot path
        self, rec: CaseRecord, digest: str, d: Derived, source_name: str, version: int, now_bound: Any
    ) -> tuple[Any, ...]:
        """The values of :data:`INSERT_COLUMNS`, in the driver's form."""
        v = self.values
        instant, shared = v.instant, v.shared_instant
        satisfaction = rec.satisfaction
        return (
            rec.number, rec.source.value, rec.category.value, rec.unit, rec.district, rec.domain, rec.summary,
            rec.status.value, instant(rec.received_at), instant(rec.signed_at), instant(rec.return_requested_at),
            instant(rec.fed_back_at), instant(rec.closed_at), instant(rec.extended_due_at),
            None if satisfaction is None else satisfaction.value, rec.stars, v.flag[rec.difficult], source_name,
            instant(rec.source_updated_at), digest, d.rule_id, shared(d.due_at), v.flag[d.provisional],
            v.warnings(d.warnings), d.return_rule_id, instant(d.return_due_at), v.warnings(d.return_warnings),
            version, shared(d.next_check_at), 0, now_bound, now_bound,
        )


def _same(value: Any) -> Any:
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
