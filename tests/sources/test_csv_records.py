"""Cutting CSV bytes into records as the csv module reads them (daemon/sources/csv_records.py)."""

from __future__ import annotations

import csv
import io
import time

import pytest

from daemon.sources.csv_records import RecordScanner, parse_block, record_ends, record_spans

TRICKY = (
    b'h1,h2,h3\r\n'
    b'1,"a\nb ""x"" c",z\r\n'  # a quoted field over two lines, escaped quotes
    b'2,pl"ain,y\n'  # a quote inside an unquoted field: literal
    b'3,"closed"after,x\r'  # text after a closing quote; a CR line end
    b'4,"",""""\n'
    b'\n'  # a blank record
    b'5,last,"q\r\nq"'  # no line end at the end
)


def _csv_records(data: bytes) -> int:
    return len(list(csv.reader(io.StringIO(data.decode(), newline=""))))


def test_record_ends_agree_with_the_csv_reader() -> None:
    ends = list(record_ends(TRICKY))
    assert len(ends) + 1 == _csv_records(TRICKY)  # the last record has no line end
    starts = [0, *ends]
    for start, end in zip(starts, [*ends, len(TRICKY)], strict=True):
        assert _csv_records(TRICKY[start:end]) == 1
    scanner_ends, start = [], 0
    while (end := RecordScanner().feed(TRICKY[start:])) is not None:
        start += end
        scanner_ends.append(start)
    assert scanner_ends == ends


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_spans_are_whole_records_whatever_the_block(block: int) -> None:
    spans = list(record_spans(io.BytesIO(TRICKY), 0, block, 1 << 20))
    assert b"".join(data or b"" for _, data, _, _ in spans) == TRICKY
    rows = [cells for _, data, _, _ in spans for cells in parse_block(data or b"", "utf-8", 100, 1 << 20, 0)]
    assert rows == list(csv.reader(io.StringIO(TRICKY.decode(), newline="")))


@pytest.mark.timeout(60)
def test_a_stray_quote_costs_one_scan_not_one_copy_a_record() -> None:
    """A quote in an unquoted field breaks the count of quotes, so a block is cut by scanning it; the
    first version copied the rest of the block for each record (quadratic: minutes for 16 MiB)."""
    data = b'1,he said "hi,x\n' + b"2,plain text of a case,y\n" * 400_000  # ~10 MB
    began = time.process_time()
    ends = list(record_ends(data))
    assert len(ends) == 400_001 and time.process_time() - began < 10
