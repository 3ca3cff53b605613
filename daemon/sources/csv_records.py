"""CSV records read from bytes, with the limits a hostile or broken export needs: the serial reader
(:func:`daemon.sources.files.csv_rows`) and the parallel import's workers share every function here, so
both reject the same rows with the same messages.

- **Memory is bounded by the limits.** A file is read in blocks of whole records (:func:`record_spans`);
  a record longer than :func:`max_record_bytes` is never held: its end is found by scanning it in blocks,
  and it becomes one rejected row. Before, one 200 MB field took 660 MB and aborted the whole import.
- **A too-long field rejects its row, not the file.** The limit is in characters of one field
  (``max_field_chars``, default :data:`DEFAULT_MAX_FIELD_CHARS`).
- **A NUL byte rejects its row** (it is not text, and databases cut a string at it).
- **Undecodable bytes reject their row** (named by the byte offset in the file and the column), the
  rest of the file is read on.

The common block (no NUL, decodes, no field over the limit) costs one ``memchr``, one ``decode`` and the C
CSV parser: the checks are on the raw bytes of the block, and a block that fails one of them is split into
its records, each checked on its own.

Records are cut where the csv module's reader ends them: at a line end with an even number of ``"`` before
it, when every quote of the block opens a field or is inside a quoted one (checked by one regular
expression); else where :func:`record_ends` (the reader's own reading of quotes: a quote opens only at the
start of a field, so ``ab"c`` is literal) says. Safe in UTF-8 and GB18030, which never use the bytes of
``"`` or a line end inside a character. Counting quotes alone, as the pieces were cut before, cut inside a
quoted field after a quote in an unquoted one.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from typing import BinaryIO

#: the default limit of one field, in characters: what Python's csv module applied before (so no row that
#: imported before is rejected now), four times the 32,767 characters an Excel cell can hold
DEFAULT_MAX_FIELD_CHARS = 131_072
BLOCK_BYTES = 1 << 18  # the serial reader's block: 256 KiB (~1,200 rows) of bytes, text and cells in flight
_QUOTE_OR_NEWLINE = re.compile(rb'["\r\n]')
_QUOTE, _CR, _LF = ord('"'), ord("\r"), ord("\n")
#: text in which every quote opens a field (after a delimiter or a line end) or is inside a quoted field:
#: there, counting quotes tells where records end. Possessive, so that a failure never backtracks.
_WELL_QUOTED = re.compile(rb'(?:[^"]++|(?<![^,\r\n])"(?:[^"]++|"")*+")*+')


#: fields at the limit that a record may hold before it is skipped unread (an export has about 20 columns)
RECORD_FIELDS = 32


def max_record_bytes(max_field_chars: int) -> int:
    """The longest record (bytes) read into memory: :data:`RECORD_FIELDS` fields at the limit, at 4 bytes a
    character (the most UTF-8 and GB18030 use; a doubled quote takes 2). 16 MiB by default."""
    return 4 * max_field_chars * RECORD_FIELDS


class RowProblem(tuple[object, ...]):
    """A record that cannot be read as CSV text, in place of its cells: ``(message, column index or -1)``.
    A sequence, so that it travels where cells do; every reader of rows checks for it first
    (``type(cells) is RowProblem``) and names the column by its header (:meth:`text`)."""

    __slots__ = ()

    def text(self, headers: Sequence[str]) -> str:
        """The message, the column named by ``headers`` (the file's header row) and its position."""
        message, index = str(self[0]), int(self[1])  # type: ignore[call-overload]
        if index < 0:
            return message
        name = headers[index] if index < len(headers) and headers[index] else ""
        return message.replace("{column}", f"{name} (column {index + 1})" if name else f"column {index + 1}")


def problem(message: str, column: int = -1) -> RowProblem:
    return RowProblem((message, column))


class RecordScanner:
    """The end of a CSV record as the csv module's default dialect reads it: a ``"`` opens quoting only
    at the start of a field, ``""`` inside quotes is one quote, and CR, LF or CRLF outside quotes ends the
    record. Fed in pieces (:meth:`feed`), so a record of any length is scanned without being kept."""

    def __init__(self) -> None:
        self.quoted = False
        self.prev = b"\n"  # the byte before the next one fed: a record starts like a field
        self.pending: bytes = b""  # a ``"`` in quotes or a CR at the end of a piece: decided by the next byte

    def feed(self, data: bytes, eof: bool = False) -> int | None:
        """Scan ``data`` (the bytes after those fed before); the length of ``data`` up to and including the
        end of the record, or None when the record goes on. ``eof``: no more bytes follow."""
        if self.pending:
            data, lead = self.pending + data, len(self.pending)
            self.pending = b""
        else:
            lead = 0
        skip = -1
        for match in _QUOTE_OR_NEWLINE.finditer(data):
            p = match.start()
            if p <= skip:
                continue
            byte = data[p:p + 1]
            if p + 1 == len(data) and not eof and (byte == b"\r" or (byte == b'"' and self.quoted)):
                self.pending, self.prev = byte, data[p - 1:p] if p else self.prev
                return None
            if byte == b'"':
                if self.quoted:
                    if data[p + 1:p + 2] == b'"':
                        skip = p + 1
                    else:
                        self.quoted = False
                elif (data[p - 1:p] if p else self.prev) in b",\r\n":
                    self.quoted = True
            elif not self.quoted:
                end = p + 2 if byte == b"\r" and data[p + 1:p + 2] == b"\n" else p + 1
                return end - lead
        if data:
            self.prev = data[-1:]
        return None


def record_ends(data: bytes) -> Iterator[int]:
    """The end offset of every whole record in ``data``, in order, as the csv reader reads it (the scan of
    :class:`RecordScanner` over one buffer, without copying it: only quotes and line ends are looked at).
    A CR at the very end is not taken as an end: an LF may follow it in the next bytes."""
    quoted = False
    skip = -1
    last = len(data) - 1
    for match in _QUOTE_OR_NEWLINE.finditer(data):
        p = match.start()
        if p <= skip:
            continue
        byte = data[p]
        if byte == _QUOTE:
            if quoted:
                if p < last and data[p + 1] == _QUOTE:
                    skip = p + 1
                else:
                    quoted = False
            elif p == 0 or data[p - 1] in b",\r\n":
                quoted = True
        elif not quoted:
            if byte == _CR:
                if p == last:
                    return
                if data[p + 1] == _LF:
                    skip = p + 1
                    yield p + 2
                    continue
            yield p + 1


def _parity_cut(buf: bytes, newline: bytes) -> int:
    """The length of the longest prefix of ``buf`` that ends at a line end with an even number of quotes
    before it (0: none)."""
    pos = buf.rfind(newline)
    if pos == -1:
        return 0
    quotes = buf.count(b'"', 0, pos)
    while quotes % 2:
        prev = buf.rfind(newline, 0, pos)
        if prev == -1:
            return 0
        quotes -= buf.count(b'"', prev, pos)
        pos = prev
    return pos + 1


def record_spans(
    fh: BinaryIO, start: int, block_bytes: int, max_record: int, *, newline: bytes = b"\n"
) -> Iterator[tuple[int, bytes | None, int, bool]]:
    """(offset, bytes, length, unclosed) of consecutive blocks of whole records from ``start`` to the end.

    A block without a ``"`` is cut after its last ``newline`` (LF, or CR for old Mac files); one with quotes
    at the last line end with an even number of quotes before it, when every quote in the block opens a
    field or is inside a quoted one (one regular expression, in C), else where :func:`record_ends` says.
    A record longer than ``max_record`` that does not fit in a block read comes alone with bytes None
    (never held in memory); ``unclosed`` says that it ran to the end of the file inside quotes.
    """
    fh.seek(start)
    offset, buf, eof = start, b"", False
    while True:
        if not eof:
            block = fh.read(block_bytes)
            eof = not block
            buf += block
        if b'"' not in buf:
            cut = buf.rfind(newline) + 1
        else:
            cut = _parity_cut(buf, newline)
            if (cut and _WELL_QUOTED.fullmatch(buf, 0, cut) is None) or (not cut and len(buf) > max_record):
                cut = 0  # a quote in an unquoted field: counting quotes may cut inside a quoted field
                for end in record_ends(buf):
                    cut = end
        if eof and cut < len(buf) and len(buf) - cut <= max_record:
            cut = len(buf)  # the last record, without a line end
        if cut == 0 and not eof and len(buf) <= max_record:
            continue
        if cut == 0 and buf:  # the first record is longer than the limit: skip it, scanning
            skipped = _skip_record(fh, offset, buf, eof, block_bytes)
            yield skipped
            offset += skipped[2]
            fh.seek(offset)
            buf, eof = b"", False
            continue
        if cut:
            yield offset, buf[:cut], cut, False
            offset += cut
            buf = buf[cut:]
        if eof and not buf:
            return


def _skip_record(fh: BinaryIO, offset: int, buf: bytes, eof: bool, block_bytes: int) -> tuple[int, None, int, bool]:
    """The span of the record at ``offset`` (its first bytes in ``buf``), found by scanning it in blocks."""
    scanner = RecordScanner()
    length = 0
    end = scanner.feed(buf, eof)
    while end is None and not eof:
        length += len(buf)
        fh.seek(offset + length)
        buf = fh.read(block_bytes)
        eof = not buf
        end = scanner.feed(buf, eof)
    length += len(buf) if end is None else end
    return offset, None, length, end is None and scanner.quoted


def oversize_message(length: int, max_record: int, max_field_chars: int, *, unclosed: bool) -> str:
    if unclosed:
        return (f"a quote (\") opened in this row is never closed: the rest of the file ({length:,} bytes) would be "
                f"one field, over the limit of {max_field_chars:,} characters; nothing after it was read. "
                "Close the quote or remove it")
    return (f"the row is {length:,} bytes long, over the limit of {max_record:,} bytes "
            f"({max_field_chars:,} characters a field); it was skipped without being read. "
            "Raise max_field_chars (config sources.<name>.max_field_chars, or import --max-field-chars) if it is real")


def parse_block(
    data: bytes, encoding: str, max_field_chars: int, max_record: int, offset: int
) -> Iterator[list[str] | RowProblem]:
    """Every record of ``data`` (whole records at byte ``offset`` of the file): its cells, or the
    :class:`RowProblem` that rejects it. The fast path is one check of the block and the C parser, streamed
    (a list of the block's rows cost 0.5 µs a row more); from a record the parser refuses, the rest of the
    block is read record by record. The csv module's field limit is process-wide: it is ``max_field_chars``
    while this runs, and put back after.
    """
    done = 0
    if len(data) <= max_record and b"\0" not in data:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            pass
        else:
            old = csv.field_size_limit(max_field_chars)
            try:
                for cells in csv.reader(io.StringIO(text, newline="")):
                    done += 1
                    yield cells
                return
            except csv.Error:
                pass
            finally:
                csv.field_size_limit(old)
    start = 0
    for n, end in enumerate((*record_ends(data), len(data))):
        if n < done:
            start = end
            continue
        if end - start > max_record:
            yield problem(oversize_message(end - start, max_record, max_field_chars, unclosed=False))
        elif end > start:
            yield _one_record(data[start:end], encoding, max_field_chars, offset + start)
        start = end


def _one_record(data: bytes, encoding: str, max_field_chars: int, offset: int) -> list[str] | RowProblem:
    text = data.decode(encoding, errors="surrogateescape")
    old = csv.field_size_limit(max(len(text), 1))
    try:
        cells = next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error as exc:
        return problem(f"not readable as CSV: {exc}")
    finally:
        csv.field_size_limit(old)
    for i, cell in enumerate(cells):
        if "\0" in cell:
            at = data.index(b"\0")
            return problem(f"{{column}} contains a NUL byte (\\0) at byte {offset + at:,} of the file; "
                           "NUL is not text and would cut the value short: remove it or export the file again", i)
    for i, cell in enumerate(cells):
        bad = next((j for j, ch in enumerate(cell) if "\udc80" <= ch <= "\udcff"), None)
        if bad is not None:
            at = _undecodable_offset(data, encoding)
            return problem(f"{{column}} has bytes that are not {_name(encoding)} at byte {offset + at:,} of the file "
                           f"({data[at:at + 4]!r}); the row is skipped, the rest of the file is read. "
                           "Save the export as 'CSV UTF-8' to keep every row", i)
    for i, cell in enumerate(cells):
        if len(cell) > max_field_chars:
            return problem(f"{{column}} is {len(cell):,} characters long, over the limit of {max_field_chars:,}; "
                           "raise max_field_chars (config sources.<name>.max_field_chars, or import "
                           "--max-field-chars) if it is real", i)
    return cells


def _undecodable_offset(data: bytes, encoding: str) -> int:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        return exc.start
    return 0


def _name(encoding: str) -> str:
    return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gb18030": "GB18030"}.get(encoding, encoding)
