"""A large CSV export into SQLite on every core: worker processes read, check, hash and build the rows; the
parent only writes them.

One process cannot import much faster than ~30,000 cases/s: reading, checking and hashing a row and
building its insert values cost about as much Python as SQLite's insert itself. Here the file is cut into
pieces of whole CSV records (a cut falls on a newline outside any quoted field, found by counting quotes,
which is safe in UTF-8 and GB18030 alike: neither uses the bytes of ``"`` or a newline inside a character),
and forked workers (:func:`_work`) turn each piece into prepared cases: (number, content hash, insert row,
index) and the piece's bad rows. The parent takes the pieces back in file order and writes them through
:meth:`daemon.storage.upsert.ChunkWriter.upsert_prepared`, so everything the serial import guarantees still holds:

- **what is stored decides.** A worker only skips building the insert row of a case it saw stored (a
  read-only look at committed data); the parent looks every case up again in its own transaction, so a
  number repeated in an earlier piece, or written meanwhile by another process, is updated as the later
  row, never inserted twice. A case the parent needs as a record (changed, or new without a row) is built
  again from its piece's bytes.
- **rows keep their numbers and messages:** workers report rejected rows by their index in the piece; the
  parent adds the records of the pieces before it.
- **each piece is one transaction**, as each chunk is in the serial import: after an error, what came before
  it stands, and the daemon's own writes are never locked out for longer than a piece.
- **a first import into an empty table** drops the table's secondary indexes and builds them again after
  the load, also after an error (SQLite builds an index from sorted keys much faster than it updates it row
  by row: measured on 1M cases, 3 s for the four against ~6 s more of inserting). Until then the daemon's
  queries on those cases scan the table; a process killed in between leaves them missing, and the next
  :meth:`daemon.storage.store.Store.upgrade` (every command and the service's start run it) builds them again.

It applies only where it pays and is safe: a SQLite database in a file, a CSV of at least
:data:`MIN_BYTES` whose encoding the first MiB decides, at least two CPUs, and a process with no other
thread (forking a threaded process can copy a lock another thread holds: the daemon's inbox imports,
which run in the scheduler's thread, stay serial). Everything else takes :func:`daemon.pipeline.sync.import_file`'s
serial path, which gives the same result (``tests/test_parallel_import.py`` compares them).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Index
from sqlalchemy.schema import CreateIndex, DropIndex

from daemon.core.cases import CaseRecord
from daemon.core.derive import RuleCache, content_hash
from daemon.core.rules import RuleSet
from daemon.errors import UsageError
from daemon.sources.csv_records import (
    DEFAULT_MAX_FIELD_CHARS,
    RowProblem,
    max_record_bytes,
    oversize_message,
    parse_block,
    record_ends,
    record_spans,
)
from daemon.sources.files import CSV_SUFFIXES, EncodingError
from daemon.sources.mapping import CaseRowError, RecordBuilder
from daemon.sources.repeats import Repeats, merge_warnings
from daemon.storage.store import Store, paused_gc, secondary_case_indexes
from daemon.storage.upsert import LOOKUP_BATCH, ChunkWriter, Prepared, TextRow, UpsertResult

log = structlog.get_logger("hotline_sla.import")

MIN_BYTES = 1 << 20  # ~5,000 rows: below this, starting the workers costs about what they save
PIECE_BYTES = 1 << 20  # ~5,000 rows per piece and per commit
MIN_PIECE_BYTES = 64 << 10
_MAX_PIECE_BYTES = 64 << 20  # a "record" longer than this is a broken quote: cut anyway, the reader reports it
FIRST_IMPORT_CACHE_KIB = 16 * 1024
UPDATE_CACHE_KIB = 32 * 1024
WAL_LIMIT_BYTES = 64 << 20


@dataclass(frozen=True)
class _Job:
    """What every worker needs, set before the fork (workers inherit it)."""

    path: Path
    encoding: str
    builder: RecordBuilder
    rules: RuleSet
    dialect: Any
    database: str | None  # the SQLite file to look cases up in; None when the table was empty at the start
    now: datetime
    source_name: str
    max_field_chars: int


_job: _Job | None = None
#: a piece: (offset, length, 0), or a record over the limit: (offset, length, 1; 2 when its quote never closes)
_Piece = tuple[int, int, int]
#: what a worker returns: (records in the piece, prepared cases, (index in the piece, message) of bad rows)
#: (records in a piece, its prepared cases, (index, message) of bad rows, (index, warning) of warned rows)
_Result = tuple[int, list[Prepared], list[tuple[int, str]], list[tuple[int, str]]]
_HEAD_BYTES = 1 << 20
_worker: dict[str, Any] = {}


def applies(store: Store, path: Path, detected: tuple[str, bool]) -> str | None:
    """The encoding to import ``path`` with in parallel, or None when the serial path should take it.
    ``detected``: the file's :func:`~daemon.sources.files.detect_encoding` (the import detects it once)."""
    database = store.engine.url.database
    if (
        store.dialect != "sqlite" or not database or database == ":memory:" or database.startswith("file:")
        or path.suffix.lower() not in CSV_SUFFIXES or path.stat().st_size < MIN_BYTES
        or (os.cpu_count() or 1) < 2 or threading.active_count() != 1
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return None
    encoding, undecided = detected
    with path.open("rb") as fh:
        sample = fh.read(1 << 16)
    # old Mac line ends (Excel's "CSV (Macintosh)") have no newline to cut the pieces at
    return None if undecided or (b"\r" in sample and b"\n" not in sample) else encoding


def import_parallel(
    store: Store, rules: RuleSet, path: Path, builder: RecordBuilder, encoding: str, *, now: datetime,
    source_name: str, rejected: list[dict[str, Any]], warnings: list[dict[str, Any]] | None = None,
    bar: Any = None, workers: int | None = None, piece_bytes: int | None = None,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
) -> UpsertResult:
    """Import the CSV at ``path`` (its header read into ``builder``) in parallel; bad rows go to ``rejected``
    as ``{"row": n, "error": …}``, repeated numbers to ``warnings`` as ``{"row": n, "warning": …}``, as the
    serial import reports them. ``bar``: a progress bar counting bytes (``update(n)``).
    """
    global _job  # noqa: PLW0603 - the forked workers' copy of the job
    encoding = "utf-8" if encoding == "utf-8-sig" else encoding  # the BOM is before the header
    load = _Load(ChunkWriter(store.engine.dialect, RuleCache(rules)), path, encoding, builder, now, source_name,
                 rejected, [] if warnings is None else warnings, max_field_chars)
    start = _body_start(path, builder.header_row)
    n_workers = workers or max(2, os.cpu_count() or 2)
    if piece_bytes is None:  # at least ~8 pieces a worker, so that the writer starts early in a small file
        piece_bytes = max(MIN_PIECE_BYTES, min(PIECE_BYTES, path.stat().st_size // (8 * n_workers)))
    with paused_gc(), store.bulk_connection() as conn:
        first = conn.exec_driver_sql("SELECT 1 FROM cases LIMIT 1").first() is None
        # the serial import's bulk cache (64 MiB), less: the workers hold memory too. A first import goes in
        # in rowid order with no secondary index to update, and its index builds sort in memory of this size.
        # journal_size_limit: the WAL file is cut back after the index builds' large transaction.
        conn.exec_driver_sql(f"PRAGMA cache_size=-{FIRST_IMPORT_CACHE_KIB if first else UPDATE_CACHE_KIB}")
        conn.exec_driver_sql(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        indexes = secondary_case_indexes(conn) if first else []
        conn.commit()
        _job = _Job(path, encoding, builder, rules, store.engine.dialect, None if first else str(
            store.engine.url.database), now, source_name, max_field_chars)
        log.info("import_parallel", file=str(path), workers=n_workers, first_import=first)
        # a dead worker (killed, out of memory) fails its futures with BrokenProcessPool instead of leaving
        # the import waiting for ever, as multiprocessing.Pool would; with fork the workers start here, before
        # the executor starts its own thread
        pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_init_worker)
        if bar is not None:
            bar.update(start)  # the header
        try:
            if indexes:
                with conn.begin():
                    for index in indexes:
                        conn.execute(DropIndex(index))
            load.run(conn, pool, n_workers, _pieces(path, start, piece_bytes, max_record_bytes(max_field_chars)),
                     bar=bar)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # at most the pieces being read finish
            _job = None
            if indexes:  # after an error too: what came before stands, as in the serial import
                with conn.begin():
                    _create(conn, indexes, n_workers)
    return load.total


@dataclass
class _Load:
    """The parent's side: pieces handed to the workers in order, their cases written in the same order."""

    writer: ChunkWriter
    path: Path
    encoding: str
    builder: RecordBuilder
    now: datetime
    source_name: str
    rejected: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    max_field_chars: int
    total: UpsertResult = field(default_factory=UpsertResult)

    def run(self, conn: Any, pool: Any, n_workers: int, pieces: Iterator[_Piece], *, bar: Any) -> None:
        pending: deque[tuple[_Piece, Any]] = deque()
        row_base = self.builder.header_row
        repeats = Repeats(expected_rows=self.path.stat().st_size // 150)
        row_warnings: list[dict[str, Any]] = []  # a row's own remarks (an unknown status word), in row order
        while True:
            while len(pending) <= n_workers:  # bounded: a slow writer does not pile results up
                piece = next(pieces, None)
                if piece is None:
                    break
                pending.append((piece, self._skipped(piece) if piece[2] else pool.submit(_work, piece[:2])))
            if not pending:
                repeats.report(self.warnings)
                self.warnings[:] = merge_warnings(row_warnings, self.warnings)
                return
            piece, future = pending.popleft()
            n_records, items, bad, warned = future.result()
            self.rejected.extend({"row": row_base + index, "error": message} for index, message in bad)
            row_warnings.extend({"row": row_base + index, "warning": message} for index, message in warned)
            repeats.see_many([item[0] for item in items], [row_base + item[3] for item in items])
            with conn.begin():  # one commit per piece: the WAL is checkpointed as it goes
                self._write(conn, piece[:2], items)
            row_base += n_records
            if bar is not None:
                bar.update(piece[1])

    def _skipped(self, piece: _Piece) -> Future[_Result]:
        """A record over the limit, found and skipped by the parent: one rejected row, never read whole."""
        _, length, unclosed = piece
        message = oversize_message(length, max_record_bytes(self.max_field_chars), self.max_field_chars,
                                   unclosed=bool(unclosed - 1))
        done: Future[_Result] = Future()
        done.set_result((1, [], [(1, message)], []))
        return done

    def _write(self, conn: Any, piece: tuple[int, int], items: list[Prepared]) -> None:
        last: dict[str, Prepared] = {}
        for item in items:  # within one piece the later row wins; across pieces, what is stored decides
            last[item[0]] = item
        rebuild = partial(_rebuild, self.path, self.encoding, self.builder, piece)
        self.total.add(self.writer.upsert_prepared(conn, list(last.values()), self.now, self.source_name, rebuild))


def _create(conn: Any, indexes: list[Index], threads: int) -> None:
    """Build the indexes a first import dropped (unless someone put them back: :meth:`Store.upgrade` repairs
    them). SQLite's sorter may use helper threads (``PRAGMA threads``, 0 by default): measured on 1M cases,
    2.6 s instead of 3.5 s for the four indexes with 2 threads."""
    conn.exec_driver_sql(f"PRAGMA threads={threads}")
    try:
        for index in indexes:
            conn.execute(CreateIndex(index, if_not_exists=True))
    finally:
        conn.exec_driver_sql("PRAGMA threads=0")


def _rebuild(
    path: Path, encoding: str, builder: RecordBuilder, piece: tuple[int, int], wanted: list[int]
) -> dict[int, CaseRecord]:
    """The records at ``wanted`` (indexes of records in the piece), read again from the file."""
    want = set(wanted)
    out: dict[int, CaseRecord] = {}
    data = _read(path, piece)
    for index, cells in enumerate(parse_block(data, encoding, 1 << 62, 1 << 62, piece[0]), 1):
        if index in want:  # only rows that were read and built before are wanted
            out[index] = builder.build(cells)
    return out


def _read(path: Path, piece: tuple[int, int]) -> bytes:
    offset, length = piece
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def _body_start(path: Path, header_row: int = 1) -> int:
    """The byte offset after the header record (record ``header_row``)."""
    with path.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
    for n, end in enumerate(record_ends(head), 1):
        if n == header_row:
            return end
    raise UsageError(f"{path}: the header (row {header_row}) does not end within the first {_HEAD_BYTES:,} bytes")


def _pieces(path: Path, start: int, piece_bytes: int, max_record: int) -> Iterator[_Piece]:
    """(offset, length, 0) of consecutive pieces of whole CSV records from ``start`` to the end of the file
    (:func:`~daemon.sources.csv_records.record_spans`, as the serial reader cuts them); a record over
    ``max_record`` bytes comes alone as (offset, length, 1 or 2 when its quote never closes)."""
    with path.open("rb") as fh:
        for offset, data, length, unclosed in record_spans(fh, start, piece_bytes, max_record):
            yield offset, length, 0 if data is not None else 1 + unclosed


# --- in the workers ----------------------------------------------------------------------------------------


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt stops
    gc.disable()  # as in the parent: nothing per row forms a cycle
    job = _job
    assert job is not None
    _worker["job"] = job
    _worker["writer"] = ChunkWriter(job.dialect, RuleCache(job.rules))
    _worker["now_bound"] = _worker["writer"].values.instant(job.now)
    if job.database is not None:
        _worker["db"] = sqlite3.connect(f"file:{job.database}?mode=ro", uri=True, timeout=60)


def _work(piece: tuple[int, int]) -> _Result:
    """One piece → (records in it, prepared cases, (index, message) of bad rows, (index, warning) of warned
    rows): each record read, checked, rejected and warned as the serial reader does
    (:func:`~daemon.sources.csv_records.parse_block`, :meth:`RecordBuilder.build_noted`)."""
    job: _Job = _worker["job"]
    writer: ChunkWriter = _worker["writer"]
    records = parse_block(_read(job.path, piece), job.encoding, job.max_field_chars,
                          max_record_bytes(job.max_field_chars), piece[0])
    source_key, build, headers = job.builder.source_key, job.builder.build_noted, job.builder.headers
    found: list[tuple[str, str, CaseRecord | TextRow, int]] = []
    bad: list[tuple[int, str]] = []
    warned: list[tuple[int, str]] = []
    index = 0
    for index, cells in enumerate(records, 1):
        if isinstance(cells, RowProblem):
            bad.append((index, cells.text(headers)))
            continue
        if not (cells and cells[0].strip()) and not "".join(cells).strip():  # _blank, for text cells
            continue
        key = source_key(cells)
        if key is not None:
            text_row = TextRow(job.builder, key)
            found.append((text_row.number, text_row.digest, text_row, index))
            continue
        try:
            rec, warning = build(cells)
        except CaseRowError as exc:
            bad.append((index, str(exc) or "invalid row"))
            continue
        if warning is not None:
            warned.append((index, warning))
        found.append((rec.number, content_hash(rec), rec, index))
    return index, _prepare(job, writer, found), bad, warned


def _prepare(job: _Job, writer: ChunkWriter, found: list[tuple[str, str, CaseRecord | TextRow, int]]) -> list[Prepared]:
    # whether a case is stored, not its content hash: the number alone is read from the unique index; the hash
    # is in the table's row, and reading those rows cost the workers ~1 µs a case (unchanged, 200k cases). The
    # parent compares the hashes in its own transaction and makes the records of the changed cases (_rebuild).
    stored: set[str] = set()
    db: sqlite3.Connection | None = _worker.get("db")
    if db is not None:
        numbers = [f[0] for f in found]
        for start in range(0, len(numbers), LOOKUP_BATCH):
            part = numbers[start:start + LOOKUP_BATCH]
            marks = ",".join("?" * len(part))
            stored.update(n for (n,) in db.execute(f"SELECT number FROM cases WHERE number IN ({marks})", part))
        db.rollback()  # no snapshot held between pieces
    now_bound, source_name = _worker["now_bound"], job.source_name
    out: list[Prepared] = []
    for number, digest, item, index in found:
        if number not in stored:  # new as far as this worker can see: its insert row
            out.append((number, digest, writer.new_row(item, digest, source_name, now_bound), index))
        else:
            out.append((number, digest, None, index))
    return out


__all__ = ["MIN_BYTES", "EncodingError", "applies", "import_parallel"]
