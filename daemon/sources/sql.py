"""The platform's own database as a case source: an operator-configured SELECT, run read-only.

The query is text with a ``:watermark`` bind parameter, e.g.::

    SELECT gdbh AS 工单编号, ly AS 来源, … , gxsj AS 更新时间
      FROM gd_main WHERE gxsj >= :watermark ORDER BY gxsj

Use ``>=``, not ``>``: rows committed later with the same 更新时间 as the last watermark are then read
again (the store's upsert makes that harmless) instead of lost. On the first fetch ``:watermark`` is
1970-01-01 00:00. Naive database times are Asia/Shanghai and the watermark is bound as naive local time.

Any SQLAlchemy URL works the same (``sqlite:///…``, ``postgresql+psycopg://…``,
``mysql+pymysql://…`` for MariaDB). Read-only is enforced three ways: only SELECT/WITH statements are
accepted; every connection is made read-only for its session (SQLite ``PRAGMA query_only``, PostgreSQL
``default_transaction_read_only``, MariaDB/MySQL ``SET SESSION TRANSACTION READ ONLY``); and the
transaction is always rolled back, never committed. Give it a database account that can only read, too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from daemon.core.timeutil import LOCAL_TZ
from daemon.errors import ConfigError
from daemon.sources.base import FetchResult, RowResult, SourceError, WatermarkedStream
from daemon.sources.mapping import CaseRowError, ColumnMapping

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")
_WATERMARK_PARAM = re.compile(r"(?<!:):watermark\b")
FIRST_WATERMARK = datetime(1970, 1, 1)  # noqa: DTZ001 - bound as naive local time, like the platform's columns
_READ_ONLY_SESSION = {
    "sqlite": "PRAGMA query_only = ON",
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
}


def check_select(query: str, *, where: str = "query") -> str:
    """The query without comments and a trailing ';'. Raises ConfigError unless it is one SELECT/WITH."""
    body = _COMMENTS.sub(" ", query).strip().rstrip(";").strip()
    first = _FIRST_WORD.match(body)
    if first is None or first.group(1).upper() not in ("SELECT", "WITH"):
        raise ConfigError(f"{where}: must be one SELECT (or WITH … SELECT) statement; a source only reads")
    if ";" in body:
        raise ConfigError(f"{where}: must be one statement; remove the ';' (also inside string literals)")
    return body


def mask_url(url: str | URL) -> str:
    """The URL as it may be logged: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


class SqlSource:
    """Fetch cases changed since a watermark from a database. Never writes; see the module docstring."""

    def __init__(
        self,
        name: str,
        url: str | URL,
        query: str,
        mapping: ColumnMapping | None = None,
        *,
        page_size: int = 1000,
        engine: Engine | None = None,
    ) -> None:
        self.name = name
        self.mapping = (mapping or ColumnMapping()).for_source(name)
        self.query = check_select(query, where=f"sources.{name}.query")
        self.uses_watermark = _WATERMARK_PARAM.search(self.query) is not None
        self.page_size = page_size
        try:
            self._url = make_url(url)
        except ArgumentError:
            raise ConfigError(
                f"sources.{name}.url: not a database URL (e.g. postgresql+psycopg://…)"
            ) from None
        self.display_url = self._url.render_as_string(hide_password=True)
        if engine is None:
            try:
                engine = create_engine(self._url, pool_pre_ping=True)
            except (ArgumentError, ImportError) as exc:
                raise ConfigError(f"sources.{name}.url: {self.display_url}: {exc}") from None
        self.engine = engine
        self._make_read_only(engine)

    def _make_read_only(self, engine: Engine) -> None:
        statement = _READ_ONLY_SESSION.get(engine.dialect.name)
        if statement is None:
            return  # another dialect: SELECT-only check, rollback and the account's grants still hold

        @event.listens_for(engine, "connect")
        def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(statement)
            finally:
                cursor.close()
            dbapi_connection.commit()  # SET is transactional in PostgreSQL: keep it past the pool's rollback

    def fetch(self, watermark: datetime | None) -> FetchResult:
        """Cases changed since ``watermark`` (aware, or naive Asia/Shanghai) and the new watermark.

        Raises :class:`SourceError` (password masked) when the database cannot be read.
        """
        return self.stream(watermark).collect()

    def stream(self, watermark: datetime | None) -> WatermarkedStream:
        """Like :meth:`fetch` but yields rows as the server-side cursor delivers them (flat memory)."""
        return WatermarkedStream(self._rows(watermark), watermark)

    def _bind(self, watermark: datetime | None) -> dict[str, object]:
        if not self.uses_watermark:
            return {}
        local = FIRST_WATERMARK if watermark is None else watermark
        if local.tzinfo is not None:
            local = local.astimezone(LOCAL_TZ).replace(tzinfo=None)
        if self.engine.dialect.name == "sqlite":  # SQLite compares datetimes as text
            fmt = "%Y-%m-%d %H:%M:%S.%f" if local.microsecond else "%Y-%m-%d %H:%M:%S"
            return {"watermark": local.strftime(fmt)}
        return {"watermark": local}

    def _rows(self, watermark: datetime | None) -> Iterator[tuple[RowResult, datetime | None]]:
        try:
            with self.engine.connect() as connection:
                result = connection.execution_options(stream_results=True, yield_per=self.page_size).execute(
                    text(self.query), self._bind(watermark)
                )
                builder = self.mapping.builder(result.keys())
                missing = builder.missing_required()
                if self.uses_watermark and "source_updated_at" not in builder.index:
                    missing.append(f"{self.mapping.header('source_updated_at')} (source_updated_at)")
                if missing:
                    raise SourceError(
                        self.name,
                        f"the query returns no column for {', '.join(missing)}; "
                        f"columns: {', '.join(builder.headers)}; alias them (AS 工单编号 …) "
                        f"or map them in config sources.{self.name}.columns",
                    )
                for position, row in enumerate(result, start=1):
                    values = tuple(row)
                    number = builder.number_of(values)
                    try:
                        record, warning = builder.build_noted(values)
                    except CaseRowError as exc:
                        yield (
                            RowResult(position, None, f"record {position}: {exc}", number),
                            builder.updated_at_of(values),
                        )
                    else:
                        note = None if warning is None else f"record {position}: {warning}"
                        yield RowResult(position, record, number=number, note=note), record.source_updated_at
                connection.rollback()
        except SQLAlchemyError as exc:
            raise SourceError(self.name, f"{self.display_url}: {self._describe(exc)}") from None

    def _describe(self, exc: SQLAlchemyError) -> str:
        detail = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
        detail = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
        if self._url.password:
            detail = detail.replace(str(self._url.password), "***")
        return f"{type(exc).__name__}: {detail}"

    def close(self) -> None:
        self.engine.dispose()
