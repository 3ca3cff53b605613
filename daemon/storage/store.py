"""The case store: engine, migrations, upserts with derived deadlines, and the few dialect differences.

Every upsert computes the case's rule, deadline, warning instants and ``next_check_at`` and stores them, so
the tick reads only ``WHERE next_check_at <= now`` through an index (ARCHITECTURE rule 2). Instants passed
in and out are aware datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, Index, create_engine, event, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex

from daemon.core.cases import CaseRecord
from daemon.core.derive import FINISHED, RuleCache, content_hash, derive, warnings_from_json
from daemon.core.rules import RuleSet
from daemon.storage.codec import dumps, paused_gc
from daemon.storage.models import cases, metadata, settings
from daemon.storage.upsert import ChunkWriter, TextRow, UpsertResult

__all__ = [  # derivation and upsert helpers live in daemon.core.derive / daemon.storage.upsert; importable here too
    "FINISHED", "RuleCache", "Store", "UpsertResult", "content_hash", "derive", "paused_gc", "warnings_from_json",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: SQLite page cache of an importing connection (KiB), see :meth:`Store.bulk_connection`
BULK_CACHE_KIB = 64 * 1024
log = structlog.get_logger("hotline_sla.store")


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


class Store:
    """One database. ``url`` is any SQLAlchemy URL (sqlite, postgresql+psycopg, mysql+pymysql)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        # one JSON serializer for every JSON column, and the same one the bulk writers use (codec.dumps)
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "json_serializer": dumps}
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
        if self.dialect == "sqlite":
            self._repair_case_indexes()
        return self.revision() or ""

    def _repair_case_indexes(self) -> None:
        """Build the secondary indexes of ``cases`` that are missing: a first import into an empty table
        drops them for its load (:mod:`daemon.pipeline.parallel_import`) and a process killed in it leaves them so."""
        with self.engine.begin() as conn:
            present = secondary_case_indexes(conn)
            missing = [ix for ix in cases.indexes if ix not in present]
            for index in missing:
                conn.execute(CreateIndex(index, if_not_exists=True))
        if missing:
            log.warning("case_indexes_rebuilt", indexes=sorted(str(ix.name) for ix in missing),
                        hint="an import into the empty table was interrupted; its cases are kept")

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
        records: Iterable[CaseRecord | TextRow],
        *,
        rules: RuleSet,
        now: datetime,
        source_name: str,
        batch_size: int | None = None,
    ) -> UpsertResult:
        """Insert new cases, update changed ones (by case number), leave unchanged ones alone.

        ``records`` (records, or :class:`TextRow` rows of a file import) is consumed as a stream, one
        transaction per chunk of ``batch_size`` (default
        :attr:`bulk_batch_size`), so memory stays flat whatever the size of the import.
        """
        total = UpsertResult()
        writer = ChunkWriter(self.engine.dialect, RuleCache(rules))
        with paused_gc(), self.bulk_connection() as conn:
            for chunk in _batched(records, batch_size or self.bulk_batch_size):
                last: dict[str, CaseRecord | TextRow] = {}
                for rec in chunk:  # within one batch the later row wins
                    last[rec.number] = rec
                with conn.begin():
                    total.add(writer.upsert(conn, list(last.values()), now, source_name))
        return total

    @property
    def bulk_batch_size(self) -> int:
        """Cases per transaction in an import. SQLite writes each index page a chunk touches to the WAL once
        per commit, so larger chunks cost less per case there (measured: bench/import_bench.py)."""
        return 20_000 if self.dialect == "sqlite" else 5000

    @contextmanager
    def bulk_connection(self) -> Iterator[Connection]:
        """One connection for a whole import, committing per chunk (``with conn.begin()``).

        On SQLite its page cache is raised to :data:`BULK_CACHE_KIB` for the import and put back after: the
        random inserts into the secondary indexes then stay in memory between chunks. Only this connection
        grows, and only while importing.
        """
        with self.engine.connect() as conn:
            if self.dialect != "sqlite":
                yield conn
                return
            before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
            conn.commit()
            try:
                yield conn
            finally:
                if conn.in_transaction():
                    conn.rollback()
                conn.exec_driver_sql(f"PRAGMA cache_size={int(before or -2000)}")
                conn.commit()

    def count_cases(self, *, open_only: bool = False) -> int:
        stmt = select(func.count()).select_from(cases)
        if open_only:
            stmt = stmt.where(cases.c.status.not_in(list(FINISHED)))
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


def secondary_case_indexes(conn: Connection) -> list[Index]:
    """The secondary indexes of ``cases`` (those of the schema, not the unique number's) that exist (SQLite)."""
    present = {name for (name,) in conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases'")}
    return sorted((ix for ix in cases.indexes if ix.name in present), key=lambda ix: str(ix.name))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the daemon's writes
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL keeps the file consistent
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
