"""Sync: bring cases from every configured source into the store, one source's failure isolated.

- ``files``: a fixed export re-imported on each sync (a re-import of the same file changes nothing);
- ``inbox``: a folder; each dropped CSV/XLSX is imported and moved to ``done/`` or ``failed/`` with a report;
- ``sql`` / ``http``: incremental by the platform's updated-at watermark, kept in ``source_state``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select, update

from daemon.config import Config, SourceConfig
from daemon.core.cases import CaseRecord
from daemon.core.rules import RuleSet
from daemon.errors import ConfigError, UsageError
from daemon.pipeline import parallel_import
from daemon.pipeline.recompute import queue_import_corrections
from daemon.sources.base import RowResult, SourceError
from daemon.sources.csv_records import DEFAULT_MAX_FIELD_CHARS, RowProblem
from daemon.sources.files import CSV_SUFFIXES, case_table, detect_encoding
from daemon.sources.mapping import CaseRowError, ColumnMapping
from daemon.sources.repeats import Repeats, merge_warnings
from daemon.storage.models import source_state
from daemon.storage.store import Store, UpsertResult
from daemon.storage.upsert import TextRow
from notifiers.secrets import redact_secrets, remember_secret

log = structlog.get_logger("hotline_sla.sync")

#: errors of the store itself (down, read-only, full): not a source's failure
STORE_OUTAGE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError,
)
CASE_FILE_SUFFIXES = {".csv", ".xlsx"}


@dataclass
class ImportReport:
    file: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    #: rows imported with a remark: {"row": r, "warning": "…"} (the shape the status words' warnings share)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": self.rejected, "warnings": self.warnings}


def mapping_for(src: SourceConfig | None) -> ColumnMapping:
    if src is None:
        return ColumnMapping()
    opts = src.options
    try:
        return ColumnMapping.model_validate({
            "columns": opts.get("columns") or {}, "values": opts.get("values") or {},
            "config_key": f"sources.{src.name}",
        })
    except ValueError as exc:
        raise ConfigError(f"sources.{src.name}: invalid columns/values mapping: {exc}") from None


def import_file(
    store: Store, rules: RuleSet, path: Path, *, now: datetime, mapping: ColumnMapping | None = None,
    source_name: str = "import", progress: bool = False, parallel: bool = True, header_row: int | None = None,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
) -> ImportReport:
    """Import one CSV/XLSX export: good rows are upserted, bad rows reported with their row number, and
    rows kept with a remark (a 工单编号 repeated in the file) reported as warnings.

    A large CSV into SQLite is imported by worker processes (:mod:`daemon.pipeline.parallel_import`) unless
    ``parallel`` is False; the result is the same. ``progress``: a bar on stderr with the bytes read of the
    file's size and the time left. ``header_row``: the row with the column names (None: found within the
    first 20 rows); ``max_field_chars``: a longer CSV field rejects its row.
    """
    if not path.is_file():
        raise UsageError(f"{path}: no such file (expected a .csv or .xlsx export)")
    report = ImportReport(str(path))
    detected = detect_encoding(path) if path.suffix.lower() in CSV_SUFFIXES else None  # once, for both readers
    bar = progress_bar(path, bytes_known=detected is not None) if progress else None
    try:
        builder, rows = case_table(path, mapping, encoding=detected, header_row=header_row,
                                   max_field_chars=max_field_chars, progress=None if bar is None else bar.update)
        encoding = parallel_import.applies(store, path, detected) if parallel and detected else None
        if encoding is not None:  # a large CSV into SQLite: every core (daemon/pipeline/parallel_import.py)
            rows.close()  # type: ignore[attr-defined]
            done = parallel_import.import_parallel(
                store, rules, path, builder, encoding, now=now, source_name=source_name, rejected=report.rejected,
                warnings=report.warnings, bar=bar, max_field_chars=max_field_chars)
            report.inserted, report.updated, report.unchanged = done.inserted, done.updated, done.unchanged
            _correct_moved(store, rules, done, now)
            return report
        if bar is not None and detected is None:  # XLSX: rows, without a total
            rows = iter(bar(rows))
        repeats = Repeats(expected_rows=path.stat().st_size // 150)  # an export row is ~200-300 bytes
        row_warnings: list[dict[str, Any]] = []  # a row's own remarks (an unknown status word), in row order

        def good_records(rows: Iterator[tuple[int, Sequence[object]]]) -> Iterator[CaseRecord | TextRow]:
            """Plain text rows stay text (TextRow); every other row is built here, bad ones reported."""
            source_key, build, headers = builder.source_key, builder.build_noted, builder.headers
            for row, cells in rows:
                if type(cells) is RowProblem:
                    report.rejected.append({"row": row, "error": cells.text(headers)})
                    continue
                key = source_key(cells)
                if key is not None:
                    item: CaseRecord | TextRow = TextRow(builder, key)
                else:
                    try:
                        item, warning = build(cells)
                    except CaseRowError as exc:
                        report.rejected.append({"row": row, "error": str(exc) or "invalid row"})
                        continue
                    if warning is not None:
                        row_warnings.append({"row": row, "warning": warning})
                repeats.see(item.number, row)
                yield item

        upserted: UpsertResult = store.upsert_cases(good_records(rows), rules=rules, now=now,
                                                    source_name=source_name)
        repeats.report(report.warnings)
        report.warnings[:] = merge_warnings(row_warnings, report.warnings)
    finally:
        if bar is not None:
            bar.close()
    report.inserted, report.updated, report.unchanged = upserted.inserted, upserted.updated, upserted.unchanged
    _correct_moved(store, rules, upserted, now)
    return report


def _correct_moved(store: Store, rules: RuleSet, result: UpsertResult, now: datetime) -> None:
    """Cases whose deadline the import moved (an approved extension 延期, a resumed suspension …): a correction
    to whoever was told of a breach that is no longer true (daemon/pipeline/recompute.py)."""
    if result.moved:
        queue_import_corrections(store, rules, result.moved, now)


def progress_bar(path: Path, *, bytes_known: bool) -> Any:
    """The import's bar on stderr: the bytes read of the file's size (so tqdm shows the total and the time
    left) for a CSV; rows for an XLSX, whose reader cannot say how far into the file it is."""
    from tqdm import tqdm

    if bytes_known:
        return tqdm(desc=path.name, total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                    file=sys.stderr, mininterval=0.5)
    return tqdm(desc=path.name, unit=" rows", file=sys.stderr, mininterval=0.5)


@dataclass
class SyncResult:
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [name for name, s in self.sources.items() if s.get("error")]


def sync_all(store: Store, rules: RuleSet, config: Config, now: datetime) -> SyncResult:
    """Run every enabled source; a failing source is logged and recorded, the others still run."""
    result = SyncResult()
    for src in config.sources:
        if not src.enabled:
            continue
        try:
            stats, watermark = _sync_one(store, rules, config, src, now)
            _record_state(store, src.name, now, ok=True, stats=stats, watermark=watermark)
            log.info("source_synced", source=src.name,
                     **{k: (len(v) if isinstance(v, list) else v) for k, v in stats.items()})
        except STORE_OUTAGE:
            raise  # the store is away, not the source: the caller backs off and retries every source
        except Exception as exc:  # anything else a source raises is that source's failure, the next ones run
            error = _failure_text(src.name, exc)
            stats = {"error": error}
            _record_state(store, src.name, now, ok=False, error=error)
            log.error("source_failed", source=src.name, error=error)
        result.sources[src.name] = stats
    return result


def _failure_text(name: str, exc: Exception) -> str:
    """One line naming the source (our own errors as they are, anything unexpected with its type), without
    any secret value: it is stored in ``source_state`` and logged."""
    if isinstance(exc, SourceError | UsageError | ConfigError | OSError):
        return redact_secrets(str(exc))
    return redact_secrets(f"source {name!r}: {type(exc).__name__}: {str(exc)[:300]}")


def _sync_one(
    store: Store, rules: RuleSet, config: Config, src: SourceConfig, now: datetime
) -> tuple[dict[str, Any], datetime | None]:
    """The source's stats, and its new watermark (sql/http; None for files): the caller records both at once."""
    opts = src.options
    mapping = mapping_for(src)
    if src.type == "files":
        path = config.path(str(_require(src, "path")))
        return import_file(store, rules, path, now=now, mapping=mapping, source_name=src.name,
                           header_row=src.header_row, max_field_chars=src.max_field_chars).as_json(), None
    if src.type == "inbox":
        folder = config.path(str(opts.get("path") or opts.get("directory") or ""))
        return _sync_inbox(store, rules, folder, src, mapping, now), None
    fetcher = _fetcher(src, mapping)
    rejected: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []  # rows imported with a remark (an unknown status word)

    def good_records(results: Iterator[RowResult]) -> Iterator[CaseRecord]:
        for r in results:
            if r.record is None:
                rejected.append({"row": r.row, "error": r.error or "invalid row"})
            else:
                if r.note is not None:
                    warnings.append({"row": r.row, "warning": r.note})
                yield r.record

    try:  # streamed: a first sync of a million cases holds one chunk at a time, like a file import
        stream = fetcher.stream(_watermark(store, src.name))
        up = store.upsert_cases(good_records(iter(stream)), rules=rules, now=now, source_name=src.name)
    finally:
        fetcher.close()
    _correct_moved(store, rules, up, now)
    watermark: datetime | None = stream.watermark
    return {"inserted": up.inserted, "updated": up.updated, "unchanged": up.unchanged, "rejected": rejected,
            "warnings": warnings, "watermark": watermark.isoformat() if watermark else None}, watermark


def _fetcher(src: SourceConfig, mapping: ColumnMapping) -> Any:
    opts = dict(src.options)
    for key in ("columns", "values", "path", "directory"):
        opts.pop(key, None)
    if src.type == "sql":
        from daemon.sources.sql import SqlSource

        url = _from_env(src, opts, "url")
        _remember_url_password(url)
        query = str(_require(src, "query"))
        opts.pop("query", None)
        return SqlSource(src.name, url, query, mapping, **opts)
    from daemon.sources.http import HttpSource

    url = str(_require(src, "url"))
    opts.pop("url", None)
    token = _from_env(src, opts, "token") if ("token_env" in opts or "token" in opts) else None
    if token:
        remember_secret(token)  # redacted from every stored error and log line from now on
    try:
        return HttpSource(src.name, url, mapping, token=token, **opts)
    except TypeError as exc:
        raise ConfigError(f"sources.{src.name}: {exc}") from None


def _remember_url_password(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return
    if password:
        remember_secret(str(password))


def _from_env(src: SourceConfig, opts: dict[str, Any], key: str) -> str:
    """``key`` given directly or as ``key_env: VAR`` (for URLs with passwords and tokens)."""
    env_key = f"{key}_env"
    if env_key in opts:
        var = str(opts.pop(env_key))
        value = os.environ.get(var)
        if not value:
            raise ConfigError(f"sources.{src.name}.{env_key}: environment variable {var} is not set")
        return value
    if key in opts:
        return str(opts.pop(key))
    raise ConfigError(f"sources.{src.name}: {key} (or {env_key}) is required for a {src.type} source")


def _require(src: SourceConfig, key: str) -> Any:
    value = src.options.get(key)
    if not value:
        raise ConfigError(f"sources.{src.name}.{key}: required for a {src.type} source")
    return value


def _sync_inbox(  # noqa: PLR0917 - internal
    store: Store, rules: RuleSet, folder: Path, src: SourceConfig, mapping: ColumnMapping,
                now: datetime) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    done, failed = folder / "done", folder / "failed"
    totals: dict[str, Any] = {"files": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": [],
                              "warnings": []}
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in CASE_FILE_SUFFIXES):
        stamp = now.strftime("%Y%m%dT%H%M%S")
        refusal = _not_a_regular_file(path)
        if refusal:  # a symlink could read any file the service can; a FIFO would block the import for ever
            _move(path, failed, stamp, {"file": path.name, "error": refusal})
            log.error("inbox_file_refused", source=src.name, file=path.name, error=refusal)
            continue
        try:
            report = import_file(store, rules, path, now=now, mapping=mapping, source_name=src.name,
                                 header_row=src.header_row, max_field_chars=src.max_field_chars)
        except (UsageError, OSError) as exc:
            _move(path, failed, stamp, {"file": path.name, "error": str(exc)})
            log.error("inbox_file_failed", source=src.name, file=path.name, error=str(exc))
            continue
        totals["files"] += 1
        for key in ("inserted", "updated", "unchanged"):
            totals[key] += getattr(report, key)
        totals["rejected"].extend({"file": path.name, **r} for r in report.rejected)
        totals["warnings"].extend({"file": path.name, **w} for w in report.warnings)
        target = failed if report.rejected and not (report.inserted or report.updated or report.unchanged) else done
        _move(path, target, stamp, {"file": path.name, **report.as_json()})
    return totals


def _not_a_regular_file(path: Path) -> str | None:
    """Why the inbox refuses ``path`` (looked at without following a symlink), or None for a regular file."""
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        return f"{path.name}: cannot be examined ({exc.strerror})"
    if stat.S_ISLNK(mode):
        return f"{path.name}: a symbolic link; the inbox takes only regular files copied into it"
    if not stat.S_ISREG(mode):
        return f"{path.name}: not a regular file (a directory, pipe or device); the inbox takes only files"
    return None


def _move(path: Path, target: Path, stamp: str, report: dict[str, Any]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    dest = target / f"{stamp}-{path.name}"
    shutil.move(str(path), dest)
    dest.with_name(dest.name + ".report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
    )


def _watermark(store: Store, name: str) -> datetime | None:
    with store.engine.connect() as conn:
        value = conn.execute(select(source_state.c.watermark).where(source_state.c.name == name)).scalar()
    return datetime.fromisoformat(value) if value else None


def _record_state(store: Store, name: str, now: datetime, *, ok: bool, error: str | None = None,
                  stats: dict[str, Any] | None = None, watermark: datetime | None = None) -> None:
    values: dict[str, Any] = {"last_attempt_at": now}
    if ok:
        values["last_ok_at"] = now
        values["last_error"] = None
    else:
        values["last_error"] = error
    if stats is not None:
        values["stats"] = {k: (len(v) if isinstance(v, list) else v) for k, v in stats.items()}
    if watermark is not None:
        values["watermark"] = watermark.isoformat()
    with store.engine.begin() as conn:
        if not conn.execute(update(source_state).where(source_state.c.name == name).values(**values)).rowcount:
            conn.execute(insert(source_state).values(name=name, **values))
