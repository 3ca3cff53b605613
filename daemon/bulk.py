"""Large file imports on two cores: worker processes parse and prepare chunks while this process writes.

The file is cut into chunks of ``chunk_rows`` non-empty rows. Worker ``k`` of ``n`` reads the whole file
(reading CSV is cheap) but builds only chunks ``k, k+n, …``: it parses the rows, hashes and derives the
cases and makes their insert rows (:meth:`~daemon.upsert.ChunkWriter.prepare`), and sends the chunk with its
bad rows through a pipe. This process takes the chunks in file order and writes each one in a transaction
(:meth:`~daemon.upsert.ChunkWriter.write_prepared`): the outcome, the rejected rows and their messages are
those of the one-process import, chunk by chunk.

Workers are forked, so they share the loaded rules without pickling; they never touch the store's engine
(only its dialect) and leave with ``os._exit`` as multiprocessing does. Forking a threaded process is
unsafe, so :func:`usable` says no when other threads run (the service); the ``import`` command and sync
runs from the CLI are single-threaded. A pipe holds about one chunk, so memory stays bounded.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from itertools import count, islice
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from daemon.derive import RuleCache
from daemon.rules import RuleSet
from daemon.sources.files import case_table
from daemon.sources.mapping import ColumnMapping, RowError
from daemon.store import Store
from daemon.upsert import ChunkWriter, Prepared, UpsertResult

#: files from this size on are imported by workers (about 50,000 rows of a platform export)
MIN_BYTES = 8 << 20
WORKERS = 2
CHUNK_ROWS = 20_000


def usable(path: Path) -> bool:
    """Worth it and safe here: a large CSV file, fork available, and no other thread in this process."""
    try:
        big = path.suffix.lower() in (".csv", ".txt") and path.stat().st_size >= MIN_BYTES
    except OSError:
        return False
    return big and threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


def import_chunks(  # noqa: PLR0917 - the import's parameters
    store: Store, rules: RuleSet, path: Path, mapping: ColumnMapping | None, now: datetime, source_name: str,
    *, on_rejected: Callable[[int, str], None], on_rows: Callable[[int], None] | None = None,
    workers: int = WORKERS, chunk_rows: int | None = None,
) -> UpsertResult:
    """Upsert every good row of ``path``; ``on_rejected(row, error)`` for each bad row, in file order.

    Raises what reading the file raises (header, encoding, CSV errors), before or during the import.
    Chunks are of ``chunk_rows`` rows (default :data:`CHUNK_ROWS`).
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    _, rows = case_table(path, mapping)  # header and encoding errors surface here, before any fork
    close = getattr(rows, "close", None)
    if close is not None:
        close()
    context = multiprocessing.get_context("fork")
    pipes: list[Pipe] = []
    procs = []
    for k in range(workers):
        receive, send = context.Pipe(duplex=False)
        proc = context.Process(
            target=_produce, name=f"import-{k}", daemon=True,
            args=(k, workers, path, mapping, rules, store.engine.dialect, now, source_name, chunk_rows, send),
        )
        proc.start()
        send.close()
        pipes.append(receive)
        procs.append(proc)
    total = UpsertResult()
    writer = ChunkWriter(store.engine.dialect, RuleCache(rules))
    try:
        with store.bulk_connection() as conn:
            for index in count():
                message = pickle.loads(pipes[index % workers].recv_bytes())  # noqa: S301 - our own forked worker
                if message[0] == "done":  # the worker due for this chunk has none: the file is done
                    break
                if message[0] == "error":
                    raise message[1]
                _, n_rows, rejected, prepared = message
                for row, error in rejected:
                    on_rejected(row, error)
                with conn.begin():
                    total.add(writer.write_prepared(conn, prepared, now, source_name))
                if on_rows is not None:
                    on_rows(n_rows)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for pipe in pipes:
            pipe.close()
    return total


def _produce(  # noqa: PLR0917 - a process target
    k: int, workers: int, path: Path, mapping: ColumnMapping | None, rules: RuleSet, dialect: Any,
    now: datetime, source_name: str, chunk_rows: int, pipe: Pipe,
) -> None:
    try:
        writer = ChunkWriter(dialect, RuleCache(rules))
        builder, rows = case_table(path, mapping)
        for index, chunk in enumerate(_chunks(rows, chunk_rows)):
            if index % workers != k:
                continue
            rejected: list[tuple[int, str]] = []
            last: dict[str, Any] = {}
            for row_number, values in chunk:
                try:
                    record = builder.build(values)
                except RowError as exc:
                    rejected.append((row_number, str(exc)))
                    continue
                last[record.number] = record  # within one chunk the later row wins
            prepared: list[Prepared] = writer.prepare(list(last.values()), now, source_name)
            pipe.send_bytes(pickle.dumps(("chunk", len(chunk), rejected, prepared), pickle.HIGHEST_PROTOCOL))
        pipe.send_bytes(pickle.dumps(("done",)))
    except BaseException as exc:
        try:
            payload = pickle.dumps(("error", exc))
        except Exception:
            payload = pickle.dumps(("error", RuntimeError(f"import worker failed: {traceback.format_exc()}")))
        pipe.send_bytes(payload)
    finally:
        pipe.close()


def _chunks(rows: Iterator[tuple[int, Sequence[object]]], size: int) -> Iterator[list[tuple[int, Sequence[object]]]]:
    while chunk := list(islice(rows, size)):
        yield chunk
