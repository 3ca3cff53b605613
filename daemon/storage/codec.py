"""The database codec: Python values in the driver's form, bulk statements, JSON, and the GC pause.

The import and the tick write hundreds of thousands of rows, so they skip SQLAlchemy's per-row, per-column
type processing: each statement is compiled once for the dialect and run as one ``executemany`` on the
driver (``COPY`` on PostgreSQL), with values already in the driver's form. What lands in the database is
what SQLAlchemy's own column types would have written (``tests/test_upsert.py`` compares them per dialect):
instants go through :func:`naive_utc` (the ``UTCDateTime`` column type uses the same function), JSON
through :func:`dumps`, the one serializer the store's engine is created with.

Nothing here reads a private attribute of SQLAlchemy, json or a driver.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Connection, Dialect, Table, bindparam, insert, update
from sqlalchemy.sql.dml import Insert, ValuesBase
from sqlalchemy.types import TypeEngine

__all__ = [
    "BoundedMemo", "BulkInsert", "BulkStatement", "BulkUpdate", "DriverValues", "aware_utc", "copy_rows", "dumps",
    "loads", "naive_utc", "paused_gc",
]


def dumps(value: Any) -> str:
    """JSON text of ``value``: the store's one serializer (set on its engine, used by the bulk writers).

    orjson: about 2.5 µs for an alert's detail against 17 µs for ``json.dumps``, compact and UTF-8
    (non-ASCII characters are not escaped). Dict keys that are not strings are written as strings.
    """
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def loads(text: str | bytes) -> Any:
    """The value of a JSON text (what :func:`dumps` wrote, or any JSON)."""
    return orjson.loads(text)


def naive_utc(value: datetime) -> datetime:
    """An aware instant as the store keeps it: naive UTC. Raises ValueError for a naive one."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given to the store: attach a timezone")
    return value.astimezone(UTC).replace(tzinfo=None)


def aware_utc(raw: Any) -> datetime | None:
    """An instant column as a driver returns it (naive UTC datetime, or its text on SQLite) → aware UTC."""
    if raw is None:
        return None
    value = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


K = TypeVar("K")
V = TypeVar("V")


class BoundedMemo(dict[K, V], Generic[K, V]):
    """A memo that stops growing at ``limit`` entries (later keys are computed each time, never stored).

    For values that many rows share (due instants, rule texts, warning lists): a bulk write over a million
    rows must not turn a memo into a second copy of its input.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int = 100_000) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` for ``key`` while there is room; returns ``value``."""
        if len(self) < self.limit:
            self[key] = value
        return value


class DriverValues:
    """Python values → what the driver receives for a column, as SQLAlchemy's types convert them.

    ``flag_type`` and ``json_type`` are the table's Boolean and JSON column types (their processors decide
    the driver's form on this dialect).
    """

    def __init__(self, dialect: Dialect, *, flag_type: TypeEngine[Any], json_type: TypeEngine[Any]) -> None:
        if dialect.name == "sqlite":  # SQLAlchemy's SQLite DATETIME text, which SQL compares as text
            def instant(value: datetime | None) -> Any:
                return None if value is None else naive_utc(value).isoformat(" ", "microseconds")
        else:
            def instant(value: datetime | None) -> Any:
                return None if value is None else naive_utc(value)
        self.instant: Callable[[datetime | None], Any] = instant
        self.text_mode = dialect.name == "sqlite"
        flag = flag_type.dialect_impl(dialect).bind_processor(dialect)
        self.flag = {b: (flag(b) if flag else b) for b in (False, True)}
        json_processor = json_type.dialect_impl(dialect).bind_processor(dialect)
        #: a JSON column's value → the driver's
        self.json: Callable[[Any], Any] = json_processor if json_processor is not None else _same
        self.json_null = self.json(None)  # JSON columns store None as JSON null, as SQLAlchemy does
        # SQLite and MySQL bind the serialized text; psycopg wraps the object, but the bulk statements cast
        # (or infer) the parameter to JSON, so the text goes there too
        sample = json_processor({"x": 1}) if json_processor is not None else None
        self._json_text_as_is = (
            json_processor is None or isinstance(sample, str) or dialect.driver == "psycopg"
        )
        self._shared: BoundedMemo[datetime, Any] = BoundedMemo()

    def json_text(self, text: str) -> Any:
        """The driver's value for a JSON column holding ``text`` (already :func:`dumps` output)."""
        if self._json_text_as_is:
            return text
        return self.json(orjson.loads(text))

    def shared_instant(self, value: datetime | None) -> Any:
        """:attr:`instant`, memoised: for due and check instants that many rows share."""
        if value is None:
            return None
        bound = self._shared.get(value)
        if bound is None:
            bound = self._shared.put(value, self.instant(value))
        return bound


def copy_rows(cursor: Any, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows`` (driver values) through psycopg's ``COPY … FROM STDIN`` on ``cursor``."""
    with cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _is_psycopg(dialect: Dialect) -> bool:
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


class BulkStatement:
    """A statement compiled once for a dialect and run as one ``executemany`` on the driver.

    Rows are tuples in ``names`` order, holding driver values; the paramstyle decides tuples or dicts.

    On PostgreSQL an INSERT runs as ``COPY … FROM STDIN`` instead: an ``executemany`` there is one statement
    per row, even pipelined, and a tick writing 46,000 alert and outbox rows spent most of a second on
    them, in psycopg's per-statement work and the server's. COPY takes the same driver values (psycopg
    adapts them as it does parameters) and fires the same constraints and triggers.
    """

    def __init__(self, dialect: Dialect, statement: ValuesBase, names: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names = tuple(names)
        positions = compiled.positiontup
        self.named = positions is None
        order = None if positions is None else [self.names.index(n) for n in positions]
        self.order = None if order == list(range(len(self.names))) else order
        self.copy_sql: str | None = None
        if _is_psycopg(dialect) and isinstance(statement, Insert):
            quote = dialect.identifier_preparer.quote
            table: Any = statement.table
            self.copy_sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in self.names)}) FROM STDIN"

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.copy_sql is not None:
            with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                copy_rows(cursor, self.copy_sql, rows)
            return
        params: Any = rows
        if self.named:
            names = self.names
            params = [dict(zip(names, row, strict=True)) for row in rows]
        elif self.order is not None:
            order = self.order
            params = [tuple(row[i] for i in order) for row in rows]
        conn.exec_driver_sql(self.sql, params)


class BulkInsert:
    """An INSERT of rows in ``names`` order in which some columns (``defaulted``) usually hold what the database
    stores when they are left out (NULL, or a constant server default): a chunk in which every row holds that
    is written without those columns; any other chunk is written whole. Same rows, same order, either way.

    Measured on SQLite with the ``cases`` table (200,000 rows, 40 columns, 8 of them NULL or their default):
    9.0 µs a row whole against 7.1 µs without the 8 columns.
    """

    def __init__(self, dialect: Dialect, table: Table, names: Sequence[str], defaulted: Sequence[str]) -> None:
        names = tuple(names)
        left_out = [names.index(c) for c in defaulted]
        kept = [i for i in range(len(names)) if i not in left_out]
        assert len(left_out) > 1 and len(kept) > 1, "itemgetter of one index gives a value, not a tuple"
        self.defaults = tuple(_left_out_value(table, c) for c in defaulted)
        self._defaulted, self._kept = itemgetter(*left_out), itemgetter(*kept)
        self.whole = BulkStatement(dialect, insert(table).values({c: bindparam(c) for c in names}), names)
        short = [names[i] for i in kept]
        self.short = BulkStatement(dialect, insert(table).values({c: bindparam(c) for c in short}), short)

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        defaulted, defaults = self._defaulted, self.defaults
        if all(defaulted(row) == defaults for row in rows):
            self.short.run(conn, list(map(self._kept, rows)))
        else:
            self.whole.run(conn, rows)


def _left_out_value(table: Table, name: str) -> Any:
    """What the database stores in column ``name`` when an INSERT leaves it out: NULL, or its constant server
    default. A column with a Python-side default cannot be left out (SQLAlchemy would send that default)."""
    column = table.c[name]
    assert column.default is None, f"{name}: has a Python-side default"
    server = column.server_default
    value = None if server is None else getattr(server, "arg", None)
    assert server is None or isinstance(value, str), f"{name}: only a constant server default can be left out"
    assert value is not None or column.nullable, f"{name}: NOT NULL without a server default"
    return value


class BulkUpdate:
    """``UPDATE table SET set_columns WHERE where_columns = …`` for many rows, each a tuple of driver values
    (the new values of ``set_columns``, then what ``where_columns`` must hold).

    On PostgreSQL the rows are copied into a temporary table (emptied at commit) whose columns are generated
    from ``table``'s own column types, and one UPDATE joins it: 9,000 single-row UPDATEs, even pipelined, took
    a quarter of a second there. Elsewhere one ``executemany``.
    """

    def __init__(self, dialect: Dialect, table: Table, set_columns: Sequence[str], where_columns: Sequence[str]
                 ) -> None:
        self.pg = _is_psycopg(dialect)
        names = [f"s_{c}" for c in set_columns] + [f"w_{c}" for c in where_columns]
        self.statement = BulkStatement(
            dialect,
            update(table)
            .where(*(table.c[c] == bindparam(f"w_{c}") for c in where_columns))
            .values({c: bindparam(f"s_{c}") for c in set_columns}),
            names,
        )
        quote = dialect.identifier_preparer.quote
        temp = quote(f"hsla_{table.name}_update")
        columns = [(n, table.c[n[2:]].type.compile(dialect=dialect)) for n in names]
        self.create_sql = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} ("
            + ", ".join(f"{quote(n)} {kind}" for n, kind in columns) + ") ON COMMIT DELETE ROWS"
        )
        self.copy_sql = f"COPY {temp} FROM STDIN"
        target = quote(table.name)
        self.update_sql = (
            f"UPDATE {target} SET " + ", ".join(f"{quote(c)} = v.{quote('s_' + c)}" for c in set_columns)
            + f" FROM {temp} v WHERE "
            + " AND ".join(f"{target}.{quote(c)} = v.{quote('w_' + c)}" for c in where_columns)
        )

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if not self.pg:
            self.statement.run(conn, rows)
            return
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(self.create_sql)
            copy_rows(cursor, self.copy_sql, rows)
            cursor.execute(self.update_sql)


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off for a bulk write, back as it was after.

    An import allocates millions of short-lived tuples while the memos it keeps (rules, deadlines per day,
    local instants) stay alive; every generation-2 collection walks all of them again. Nothing the import
    allocates per row forms a reference cycle, so reference counting frees it as before: measured on a
    fresh 200,000-row import, 6-7 µs/row (a quarter of the Python work) went to collections.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _same(value: Any) -> Any:
    return value
