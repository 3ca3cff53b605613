"""What every case source hands back: one :class:`RowResult` per row, and :class:`SourceError` when the
source as a whole fails.

A bad row never stops the good ones: it becomes a ``RowResult`` with ``error`` set. A failure of the source
itself (database down, HTTP 500 after retries, malformed JSON) raises :class:`SourceError`; the caller logs
it and goes on with the other sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from daemon.core.cases import CaseRecord
from daemon.errors import UsageError


class SourceError(RuntimeError):
    """A whole source failed. The message names the source and never contains a secret or a password."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"source {source!r}: {message}")
        self.source = source


class HeaderError(UsageError):
    """A case or contacts file whose header row lacks required columns (exit code 2)."""


@dataclass(frozen=True, slots=True)
class RowResult:
    """One row of a source.

    ``row`` is the 1-based row number a spreadsheet user sees (header = row 1, so the first case is row 2);
    for SQL and HTTP sources it is the 1-based position in the result. Exactly one of ``record`` and
    ``error`` is set. ``number`` is the raw 工单编号 when the row had one (also for bad rows), ``note`` an
    informational remark that is not an error (e.g. a duplicate 工单编号 whose later row wins).
    """

    row: int
    record: CaseRecord | None
    error: str | None = None
    number: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.record is not None


@dataclass
class FetchResult:
    """What one incremental fetch of a SQL or HTTP source produced.

    ``watermark`` is the largest 更新时间 (source_updated_at) seen in this fetch, or the watermark passed in
    when nothing newer arrived: store it and pass it to the next fetch.
    """

    records: list[CaseRecord] = field(default_factory=list)
    errors: list[RowResult] = field(default_factory=list)
    watermark: datetime | None = None
    rows_read: int = 0


class WatermarkedStream:
    """An iterator of :class:`RowResult` that tracks the largest ``source_updated_at`` as it goes.

    ``watermark`` is final once the stream is exhausted; rows are never held in memory, so a first full
    sync of a million cases streams like a file does.
    """

    def __init__(self, rows: Iterator[tuple[RowResult, datetime | None]], start: datetime | None) -> None:
        self._rows = rows
        self.watermark = start
        self.rows_read = 0

    def __iter__(self) -> Iterator[RowResult]:
        for result, updated_at in self._rows:
            self.rows_read += 1
            if updated_at is not None and (self.watermark is None or updated_at > self.watermark):
                self.watermark = updated_at
            yield result

    def collect(self) -> FetchResult:
        """Drain the stream into a :class:`FetchResult` (for incremental fetches, which are small)."""
        out = FetchResult(watermark=self.watermark)
        for result in self:
            if result.record is not None:
                out.records.append(result.record)
            else:
                out.errors.append(result)
        out.watermark = self.watermark
        out.rows_read = self.rows_read
        return out
