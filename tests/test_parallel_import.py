"""The parallel CSV import (daemon/pipeline/parallel_import.py) stores what the serial import stores: the same cases,
the same rejected rows with the same numbers and messages, the same history; a first import rebuilds the
indexes it dropped, and a failure leaves the database as the serial import would."""

from __future__ import annotations

import csv
import itertools
import os
import threading
from concurrent.futures.process import BrokenProcessPool
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bench.gen_cases import generate
from daemon.core.rules import RuleSet
from daemon.core.timeutil import LOCAL_TZ
from daemon.pipeline import parallel_import
from daemon.pipeline.sync import import_file
from daemon.sources.files import case_table, detect_encoding
from daemon.storage.models import case_history, cases
from daemon.storage.store import Store
from daemon.storage.upsert import ChunkWriter
from tests.test_fastimport import FULL_HEADERS, _random_rows

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=LOCAL_TZ)
PIECE = 4096  # ~20 rows a piece: many pieces, records and duplicates across their edges


def _write(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        out = csv.writer(fh)
        out.writerow(FULL_HEADERS)
        out.writerows(rows)
    return path


def _generated(n: int, seed: int) -> list[list[str]]:
    return [[row.get(h, "") for h in FULL_HEADERS]
            for row in generate(n, seed=seed, start=date(2026, 11, 18), end=date(2026, 11, 20))]


def _unique(rows: list[list[str]]) -> list[list[str]]:
    """The first row of each number (the odd rows repeat a few numbers of their own)."""
    seen: set[str] = set()
    out = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


def _mixed(n: int, *, repeats: bool = False) -> list[list[str]]:
    """Plain rows, odd and bad rows, blank lines, summaries over several lines with quotes; with ``repeats``,
    numbers repeated further down the file."""
    rows = _generated(n, seed=21)
    odd = list(_random_rows(n // 2, seed=22))
    if not repeats:
        odd = _unique(odd)
    out: list[list[str]] = []
    for i, row in enumerate(rows):
        if i % 37 == 0:
            row[16] = f'第一行\n"第二行"，含逗号,\r\n第三行 {i}'
        out.append(row)
        if i % 2 == 0 and odd:
            out.append(odd.pop())
        if i % 53 == 0:
            out.append([""] * len(FULL_HEADERS))
        if repeats and i % 41 == 0 and i:
            again = list(rows[i - 30])  # the same number later in the file, changed: the later row wins
            again[5] = "已反馈"
            again[8] = again[3]
            out.append(again)
    return out


def _state(store: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every stored case by number (ids aside: duplicates may be inserted once or inserted and updated), and
    the history by case number."""
    with store.engine.connect() as conn:
        rows = sorted(tuple(r)[1:] for r in conn.execute(select(cases)))
        number = {r.id: r.number for r in conn.execute(select(cases.c.id, cases.c.number))}
        history = sorted([(number[h.case_id], h.field, h.old_value, h.new_value)
                          for h in conn.execute(select(case_history))], key=str)
    return rows, history


def _indexes(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return sorted(conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases' AND sql IS NOT NULL"
        ).all())


def _new_store(path: Path) -> Store:
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    return store


def _parallel(store: Store, rules: RuleSet, path: Path, encoding: str = "utf-8-sig",
              **kw: Any) -> tuple[int, int, int, list[dict[str, Any]]]:
    builder, rows = case_table(path)
    rows.close()  # type: ignore[attr-defined]
    rejected: list[dict[str, Any]] = []
    done = parallel_import.import_parallel(store, rules, path, builder, encoding, now=NOW, source_name="import",
                                           rejected=rejected, piece_bytes=kw.pop("piece_bytes", PIECE), **kw)
    return done.inserted, done.updated, done.unchanged, rejected


def _serial(store: Store, rules: RuleSet, path: Path) -> tuple[int, int, int, list[dict[str, Any]]]:
    report = import_file(store, rules, path, now=NOW, parallel=False)
    return report.inserted, report.updated, report.unchanged, report.rejected


def test_parallel_import_stores_what_the_serial_import_stores(rules: RuleSet, tmp_path: Path) -> None:
    first = _write(tmp_path / "first.csv", _mixed(1200))  # the odd rows repeat a few numbers
    update = [list(r) for r in _generated(1200, seed=21)[::2]]
    for i, row in enumerate(update):
        if i % 3 == 0:
            row[5], row[9] = "已办结", row[3]
    update += _unique(list(_random_rows(300, seed=23)))
    second = _write(tmp_path / "second.csv", update)
    serial, parallel = _new_store(tmp_path / "s.sqlite3"), _new_store(tmp_path / "p.sqlite3")
    baseline = _indexes(parallel)
    results: dict[str, list[Any]] = {"serial": [], "parallel": []}
    for path in (first, second, second):
        results["serial"].append(_serial(serial, rules, path))
        results["parallel"].append(_parallel(parallel, rules, path))
        assert _state(parallel) == _state(serial), path.name
    s, p = results["serial"], results["parallel"]
    for got in (s, p):
        assert got[0][3] and got[1][3]  # rejected rows, reported
        assert got[1][1] > 150 and got[2][:3] == (0, 0, got[2][2])  # updates, then nothing changes
    assert [r[3] for r in p] == [r[3] for r in s]  # the same rows rejected, with the same numbers and messages
    assert [r[1:] for r in p[1:]] == [r[1:] for r in s[1:]]
    assert p == s
    assert _indexes(parallel) == baseline
    serial.close()
    parallel.close()


def test_numbers_repeated_across_pieces_end_as_the_later_row(rules: RuleSet, tmp_path: Path) -> None:
    """The serial import collapses a repeat within its 20,000-row chunk into one insert; the parallel one
    inserts and then updates it when the repeat is in a later piece (so the history and the deadline
    version may say more): the cases end the same."""
    path = _write(tmp_path / "repeats.csv", _mixed(1200, repeats=True))
    serial, parallel = _new_store(tmp_path / "s.sqlite3"), _new_store(tmp_path / "p.sqlite3")
    s, p = _serial(serial, rules, path), _parallel(parallel, rules, path)
    assert p[3] == s[3] and p[1] > 20  # the repeats in later pieces were updates
    version = [c.name for c in cases.columns if c.name != "id"].index("deadline_version")
    rows = [[r[:version] + r[version + 1:] for r in _state(store)[0]] for store in (serial, parallel)]
    assert rows[0] == rows[1]
    serial.close()
    parallel.close()


def test_a_later_row_wins_even_when_an_earlier_piece_is_not_yet_written(rules: RuleSet, tmp_path: Path) -> None:
    """Stored B; the file says A early and B late. A worker looking at the store while the earlier piece is
    unwritten sees B = B; the writer's own look, in order, decides: the case ends as B."""
    rows = _generated(400, seed=31)
    store = _new_store(tmp_path / "db.sqlite3")
    _serial(store, rules, _write(tmp_path / "base.csv", rows))
    changed = [list(r) for r in rows]
    early = list(changed[5])
    early[5], early[8] = "已反馈", early[3]
    late = list(changed[5])
    file_rows = [early, *changed[6:], late]  # late is many pieces after early
    with store.engine.connect() as conn:
        before = conn.execute(select(cases.c.content_hash).where(cases.c.number == rows[5][0])).scalar_one()
    result = _parallel(store, rules, _write(tmp_path / "again.csv", file_rows), piece_bytes=2048)
    with store.engine.connect() as conn:
        after = conn.execute(select(cases.c.content_hash).where(cases.c.number == rows[5][0])).scalar_one()
        fields = conn.execute(select(case_history.c.field)).scalars().all()
    assert after == before  # B, as the file's last row says
    assert result == (0, 2, len(file_rows) - 2, [])  # to A, then back to B
    assert fields.count("status") == 2
    store.close()


def test_records_across_piece_edges_keep_their_row_numbers(rules: RuleSet, tmp_path: Path) -> None:
    rows = _generated(300, seed=41)
    for i in range(0, 300, 7):
        rows[i][16] = "多行\n" * 30 + '"引号"'
    rows[150][3] = "不是时间"
    path = _write(tmp_path / "multi.csv", rows)
    a, b = _new_store(tmp_path / "a.sqlite3"), _new_store(tmp_path / "b.sqlite3")
    serial = _serial(a, rules, path)
    parallel = _parallel(b, rules, path, piece_bytes=700)
    assert parallel == serial and [r["row"] for r in parallel[3]] == [152]
    assert _state(a) == _state(b)


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
def test_encodings(rules: RuleSet, tmp_path: Path, encoding: str) -> None:
    path = _write(tmp_path / "gbk.csv", _generated(200, seed=51), encoding=encoding)
    a, b = _new_store(tmp_path / "a.sqlite3"), _new_store(tmp_path / "b.sqlite3")
    assert _parallel(b, rules, path, encoding=encoding) == _serial(a, rules, path)
    assert _state(a) == _state(b)


def _both(rules: RuleSet, tmp_path: Path, path: Path, **kw: Any) -> tuple[Any, Store, Store]:
    """The serial and the parallel import of ``path`` into fresh stores, after checking that they agree."""
    serial, parallel = _new_store(tmp_path / "s.sqlite3"), _new_store(tmp_path / "p.sqlite3")
    limit = kw.pop("max_field_chars", None)
    extra = {} if limit is None else {"max_field_chars": limit}
    report = import_file(serial, rules, path, now=NOW, parallel=False, **extra)
    s = report.inserted, report.updated, report.unchanged, report.rejected
    p = _parallel(parallel, rules, path, **kw, **extra)
    assert p == s
    assert _state(parallel) == _state(serial)
    return s, serial, parallel


def test_an_undecodable_byte_rejects_only_its_row(rules: RuleSet, tmp_path: Path) -> None:
    """Before: the import stopped at the row (exit 2) and the rows after it were lost."""
    path = _write(tmp_path / "bad.csv", _generated(6000, seed=61), encoding="utf-8")  # > the 1 MiB sample
    lines = path.read_bytes().split(b"\n")
    lines[5500] = b"\xff" + lines[5500]  # row 5501 (the header is row 1), in the first column
    lines[20] = lines[20].replace(b",", b",\xfe\xfe", 1)  # row 21, inside the first MiB, in the 2nd column
    path.write_bytes(b"\n".join(lines))
    got, serial, parallel = _both(rules, tmp_path, path, encoding="utf-8", piece_bytes=1 << 16)
    assert [r["row"] for r in got[3]] == [21, 5501]
    assert got[3][0]["error"].startswith(f"{FULL_HEADERS[1]} (column 2) has bytes that are not UTF-8 at byte ")
    assert "(b'\\xfe\\xfe" in got[3][0]["error"] and got[3][1]["error"].startswith(f"{FULL_HEADERS[0]} (column 1) ")
    assert got[0] == 5998 and parallel.count_cases() == 5998  # every other row landed
    serial.close()
    parallel.close()


def test_a_nul_byte_rejects_its_row(rules: RuleSet, tmp_path: Path) -> None:
    """Before: the NUL went into the stored text (the databases cut it there, or refuse it)."""
    rows = _generated(300, seed=62)
    rows[40][16] = "前半\x00后半"
    path = _write(tmp_path / "nul.csv", rows)
    got, serial, parallel = _both(rules, tmp_path, path, encoding="utf-8-sig")
    assert [r["row"] for r in got[3]] == [42]
    assert got[3][0]["error"].startswith(f"{FULL_HEADERS[16]} (column 17) contains a NUL byte (\\0) at byte ")
    assert got[0] == 299
    serial.close()
    parallel.close()


def test_a_field_over_the_limit_rejects_its_row_and_the_import_goes_on(rules: RuleSet, tmp_path: Path) -> None:
    """Before: one field over 128 KiB stopped the import (exit 2) and lost every row after it."""
    rows = _generated(400, seed=63)
    rows[10][16] = "长" * 2000  # over a limit of 1,000 characters, within the record limit: named by its column
    rows[200][16] = "x" * 3_000_000  # over the record limit (128,000 bytes): skipped without being read whole
    rows[300][16] = '"引号"' * 600  # 2,400 characters, quotes doubled in the file
    path = _write(tmp_path / "long.csv", rows)
    got, serial, parallel = _both(rules, tmp_path, path, encoding="utf-8-sig", max_field_chars=1000)
    assert [r["row"] for r in got[3]] == [12, 202, 302]
    assert got[3][0]["error"] == (
        f"{FULL_HEADERS[16]} (column 17) is 2,000 characters long, over the limit of 1,000; raise max_field_chars "
        "(config sources.<name>.max_field_chars, or import --max-field-chars) if it is real")
    assert got[3][1]["error"].startswith("the row is 3,000,")
    assert "over the limit of 128,000 bytes (1,000 characters a field)" in got[3][1]["error"]
    assert got[0] == 397
    serial.close()
    parallel.close()


def test_after_a_failure_what_came_before_stands_and_the_indexes_are_back(
    rules: RuleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "cases.csv", _generated(300, seed=71))
    store = _new_store(tmp_path / "db.sqlite3")
    baseline = _indexes(store)
    calls: list[int] = []
    original = ChunkWriter.upsert_prepared

    def failing(self: ChunkWriter, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ChunkWriter, "upsert_prepared", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        _parallel(store, rules, path)
    kept = store.count_cases()
    assert 0 < kept < 300 and _indexes(store) == baseline  # four pieces committed, the indexes rebuilt
    monkeypatch.setattr(ChunkWriter, "upsert_prepared", original)
    assert _parallel(store, rules, path)[:3] == (300 - kept, 0, kept)
    assert _indexes(store) == baseline
    store.close()


def test_upgrade_rebuilds_indexes_an_interrupted_first_import_left_dropped(tmp_path: Path) -> None:
    store = _new_store(tmp_path / "db.sqlite3")
    baseline = _indexes(store)
    with store.engine.begin() as conn:  # as a first import killed between its drop and its rebuild
        for name, _ in baseline:
            conn.exec_driver_sql(f"DROP INDEX {name}")
    assert _indexes(store) == []
    store.upgrade()
    assert _indexes(store) == baseline
    store.close()


def applies(store: Store, path: Path) -> str | None:
    """What the import asks, with the encoding detected once as the import does."""
    return parallel_import.applies(store, path, detect_encoding(path))


def test_when_the_parallel_path_applies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = _write(tmp_path / "big.csv", _generated(100, seed=81))
    store = _new_store(tmp_path / "db.sqlite3")
    monkeypatch.setattr(parallel_import, "MIN_BYTES", 1000)
    active_count = threading.active_count
    monkeypatch.setattr(parallel_import.threading, "active_count", lambda: 1)
    assert applies(store, big) == "utf-8-sig"
    assert applies(Store("sqlite://"), big) is None  # in memory: workers cannot see it
    monkeypatch.setattr(parallel_import, "MIN_BYTES", 1 << 30)
    assert applies(store, big) is None  # small: not worth the workers
    monkeypatch.setattr(parallel_import, "MIN_BYTES", 1000)
    ascii_file = tmp_path / "ascii.csv"
    ascii_file.write_text("number,received\n" + "N1,2026-11-20 08:00\n" * 100, encoding="ascii")
    assert applies(store, ascii_file) is None  # the encoding is not decided yet
    mac = tmp_path / "mac.csv"
    mac.write_bytes(big.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r"))
    assert applies(store, mac) is None  # CR line ends: the pieces are cut at newlines
    monkeypatch.setattr(parallel_import.threading, "active_count", active_count)
    started = threading.Event()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: (started.set(), stop.wait(10)))
    thread.start()
    try:
        started.wait(5)
        assert applies(store, big) is None  # never fork a threaded process (the daemon)
    finally:
        stop.set()
        thread.join()
    store.close()


def test_import_file_takes_the_parallel_path_for_a_large_csv(rules: RuleSet, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "cases.csv", _generated(500, seed=91))
    store = _new_store(tmp_path / "db.sqlite3")
    monkeypatch.setattr(parallel_import, "applies", lambda _store, _path, _detected: "utf-8-sig")
    monkeypatch.setattr(parallel_import, "PIECE_BYTES", PIECE)
    taken: list[int] = []
    original = parallel_import.import_parallel
    monkeypatch.setattr(parallel_import, "import_parallel", lambda *a, **k: taken.append(1) or original(*a, **k))
    report = import_file(store, rules, path, now=NOW)
    assert taken == [1] and (report.inserted, report.rejected) == (500, [])
    assert import_file(store, rules, path, now=NOW).unchanged == 500
    store.close()


def test_pieces_are_whole_records(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    body = 'h1,h2\n' + ''.join(f'{i},"a\nb ""{i}"" c"\n' if i % 3 == 0 else f'{i},plain\n' for i in range(500))
    path.write_bytes(body.encode())
    start = parallel_import._body_start(path)
    assert start == len(b"h1,h2\n")
    pieces = list(parallel_import._pieces(path, start, 64, 1 << 20))
    assert pieces[0][0] == start and sum(length for _, length, _ in pieces) == len(body) - start
    assert all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(pieces)) and {p[2] for p in pieces} == {0}
    records = 0
    for offset, length, _ in pieces:
        chunk = path.read_bytes()[offset:offset + length].decode()
        parsed = list(csv.reader(chunk.splitlines(keepends=True)))
        assert all(len(r) == 2 for r in parsed), chunk
        records += len(parsed)
    assert records == 500


_ORIGINAL_WORK = parallel_import._work


def _dying_work(piece: tuple[int, int]) -> Any:
    """A worker that dies (as one killed by the OOM killer would) on a piece past the first few."""
    if piece[0] > 20_000:
        os._exit(3)
    return _ORIGINAL_WORK(piece)


@pytest.mark.timeout(60)
def test_a_dead_worker_fails_the_import_instead_of_hanging_it(rules: RuleSet, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "cases.csv", _generated(600, seed=101))
    store = _new_store(tmp_path / "db.sqlite3")
    baseline = _indexes(store)
    monkeypatch.setattr(parallel_import, "_work", _dying_work)
    with pytest.raises(BrokenProcessPool):
        _parallel(store, rules, path)
    assert store.count_cases() < 600 and _indexes(store) == baseline  # what came before stands
    store.close()


def test_a_broken_quote_rejects_its_row_on_both_paths(rules: RuleSet, tmp_path: Path) -> None:
    """An opening quote never closed swallows the rest of the file into one field: both imports reject the row
    where it began, the field over the limit named, and keep what came before (before: exit 2, "field larger
    than field limit"). A rest of the file over the record limit is skipped unread (tests/sources/test_files.py)."""
    path = _write(tmp_path / "quote.csv", _generated(3000, seed=111), encoding="utf-8")
    lines = path.read_bytes().split(b"\n")
    lines[100] = lines[100].replace(b",", b',"', 1)  # row 101
    path.write_bytes(b"\n".join(lines))
    got, serial, parallel = _both(rules, tmp_path, path, encoding="utf-8")
    assert [r["row"] for r in got[3]] == [101]
    assert got[3][0]["error"].startswith(f"{FULL_HEADERS[1]} (column 2) is 369,082 characters long, over the limit")
    assert parallel.count_cases() == 99  # rows 2-100 stand
    serial.close()
    parallel.close()


def _titled(path: Path, rows: list[list[str]]) -> Path:
    """An export with a title row and a blank row above the header (row 3)."""
    body = _write(path.with_suffix(".body"), rows).read_bytes().removeprefix(b"\xef\xbb\xbf")
    path.write_bytes("2026年11月工单明细（导出）\r\n\r\n".encode() + body)
    return path


def _both_ways(store_dir: Path, rules: RuleSet, path: Path, monkeypatch: pytest.MonkeyPatch,
               **kw: Any) -> tuple[Any, Any, Store, Store]:
    """import_file serially, and in parallel (as a large file would be), into fresh stores."""
    serial, parallel = _new_store(store_dir / "s.sqlite3"), _new_store(store_dir / "p.sqlite3")
    s = import_file(serial, rules, path, now=NOW, parallel=False, **kw)
    with monkeypatch.context() as m:
        m.setattr(parallel_import, "applies", lambda _store, _path, detected: detected[0])
        m.setattr(parallel_import, "PIECE_BYTES", PIECE)
        m.setattr(parallel_import, "MIN_PIECE_BYTES", PIECE)
        p = import_file(parallel, rules, path, now=NOW, **kw)
    return s, p, serial, parallel


def test_title_rows_and_repeated_numbers_give_the_same_rows_and_warnings(
    rules: RuleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header found below a title row, and each repeated number reported naming both rows, alike on both
    paths (before: the title row was taken as the header and the file refused)."""
    path = _titled(tmp_path / "titled.csv", _mixed(1200, repeats=True))
    s, p, serial, parallel = _both_ways(tmp_path, rules, path, monkeypatch)
    assert s.rejected and s.warnings and s.rejected[0]["row"] > 3
    assert (p.rejected, p.warnings) == (s.rejected, s.warnings)
    first = s.warnings[0]
    assert first["warning"].endswith(f"row {first['row']}, the later one, is kept")
    version = [c.name for c in cases.columns if c.name != "id"].index("deadline_version")
    rows = [[r[:version] + r[version + 1:] for r in _state(store)[0]] for store in (serial, parallel)]
    assert rows[0] == rows[1]
    serial.close()
    parallel.close()


class _Bar:
    """What the import tells its tqdm bar."""

    made: list[_Bar] = []  # noqa: RUF012 - the bars of one test

    def __init__(self, *_: Any, total: int | None = None, **kw: Any) -> None:
        self.total, self.n, self.unit = total, 0, kw.get("unit")
        _Bar.made.append(self)

    def update(self, n: int) -> None:
        self.n += n

    def close(self) -> None:
        pass


def test_the_progress_bar_counts_bytes_of_the_file_size_on_both_paths(
    rules: RuleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the file's size as the total, tqdm shows how far and the time left (before: rows, no total)."""
    import tqdm

    monkeypatch.setattr(tqdm, "tqdm", _Bar)
    _Bar.made = []
    path = _titled(tmp_path / "bar.csv", _mixed(600))
    _both_ways(tmp_path, rules, path, monkeypatch, progress=True)
    size = path.stat().st_size
    assert [(b.total, b.n, b.unit) for b in _Bar.made] == [(size, size, "B"), (size, size, "B")]


def test_a_quote_inside_an_unquoted_field_is_read_as_the_csv_reader_reads_it(rules: RuleSet, tmp_path: Path) -> None:
    """Counting quotes took a quote in an unquoted field (他说"你好) as an opening one and cut a later piece
    inside a quoted field; both paths now read the file as one csv.reader does."""
    rows = _mixed(600)
    path = _write(tmp_path / "stray.csv", rows)
    lines = path.read_bytes().split(b"\r\n")
    lines[30] = lines[30].replace(b",", ',他说"你好'.encode(), 1)  # into the 2nd column, unquoted
    path.write_bytes(b"\r\n".join(lines))
    with path.open(encoding="utf-8-sig", newline="") as fh:
        expected = sum(1 for cells in csv.reader(fh) if "".join(cells).strip()) - 1  # the header
    got, serial, parallel = _both(rules, tmp_path, path, encoding="utf-8-sig")
    assert got[0] + len(got[3]) == expected  # every non-blank record inserted or rejected, none merged
    assert any("他说" in r["error"] for r in got[3])
    serial.close()
    parallel.close()


def test_an_unknown_status_word_is_a_warned_open_case_alike_on_both_paths(
    rules: RuleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status word nobody mapped (待核实) imports the case, open at the step its times show, and warns on its
    row, naming the word and the valid ones, in row order among the repeated-number warnings, on both paths
    (before: the row was rejected and the case not watched)."""
    rows = _mixed(1200, repeats=True)
    status, signed, requested, fed_back, closed = (
        FULL_HEADERS.index(h) for h in ("办理状态", "签收时间", "退件申请时间", "反馈时间", "办结时间"))
    odd = [i for i, row in enumerate(rows) if row[status] and row[0] and row[fed_back] == row[closed] == ""][::97]
    for i in odd:
        rows[i][status] = "待核实"
    path = _titled(tmp_path / "odd_status.csv", rows)
    s, p, serial, parallel = _both_ways(tmp_path, rules, path, monkeypatch)
    assert (p.rejected, p.warnings) == (s.rejected, s.warnings)
    warned = {w["row"]: w["warning"] for w in s.warnings if "待核实" in w["warning"]}
    rejected = {r["row"] for r in s.rejected}  # an odd row bad for another reason stays rejected
    assert sorted(warned) == [i + 4 for i in odd if i + 4 not in rejected]  # below a title, a blank, the header
    assert len(warned) >= 10
    odd = [i for i in odd if i + 4 not in rejected]
    text = next(iter(warned.values()))
    assert text.startswith("办理状态 (status) '待核实' is not a known status word; valid: 待签收, 已交办")
    assert "挂起" in text and "sources.<name>.values.status" in text
    assert [w["row"] for w in s.warnings] == sorted(w["row"] for w in s.warnings)
    for store in (serial, parallel):
        with store.engine.connect() as conn:
            got = dict(conn.execute(select(cases.c.number, cases.c.status)
                                    .where(cases.c.number.in_([rows[i][0] for i in odd]))).all())
        want = {rows[i][0]: "return_requested" if rows[i][requested] else "signed" if rows[i][signed]
                else "dispatched" for i in odd if _last_row_of(rows, rows[i][0]) == i}
        assert want
        assert {n: got[n] for n in want} == want
        store.close()


def _last_row_of(rows: list[list[str]], number: str) -> int:
    return max(i for i, row in enumerate(rows) if row[0] == number)
