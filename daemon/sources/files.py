"""Case exports as files: CSV (UTF-8, UTF-8 with BOM, GB18030/GBK) and XLSX, read as streams.

Rows are yielded one at a time and never collected, so a million-row export is read with flat memory.
A bad row becomes a :class:`RowResult` with ``error`` and the reading goes on; a file that cannot be
read at all (missing, unknown encoding, header without required columns) raises a
:class:`~daemon.errors.UsageError`.

Duplicate 工单编号 within one file: every row is yielded in file order and the later row wins, because the
store upserts by number in that order; the import reports each repeat as a warning naming both rows
(:class:`daemon.sources.repeats.Repeats`).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from daemon.errors import UsageError
from daemon.sources.base import HeaderError, RowResult
from daemon.sources.contacts import ContactResult, contact_builder
from daemon.sources.csv_records import (
    BLOCK_BYTES,
    DEFAULT_MAX_FIELD_CHARS,
    RowProblem,
    max_record_bytes,
    oversize_message,
    parse_block,
    problem,
    record_spans,
)
from daemon.sources.mapping import REQUIRED_FIELDS, CaseRowError, ColumnMapping, RecordBuilder
from daemon.sources.repeats import repeat_warning

CSV_SUFFIXES = (".csv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
_SAMPLE_BYTES = 1 << 20  # enough for thousands of rows: the first non-ASCII text decides the encoding
_TOLERATED_BAD = 8  # undecodable sequences in the first MiB that reject their rows rather than the file


class EncodingError(UsageError):
    """A CSV file in none of the encodings platform exports use."""


#: rows searched for the header when a source does not set ``header_row`` (title rows above it are common)
HEADER_SEARCH_ROWS = 20


def read_case_file(
    path: str | Path, mapping: ColumnMapping | None = None, *, sheet: str | None = None,
    header_row: int | None = None, max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
) -> Iterator[RowResult]:
    """Stream the cases of a CSV or XLSX export, one :class:`RowResult` per non-empty row.

    ``row`` is the spreadsheet row number. The header is the first row within the first
    :data:`HEADER_SEARCH_ROWS` that has every required column (title rows above it are skipped), or row
    ``header_row`` when given. ``sheet`` names an XLSX worksheet (default: the first). Naive times are
    Asia/Shanghai. Raises :class:`HeaderError` (a ``UsageError``) before the first row when required columns
    are missing, :class:`EncodingError` when a CSV is in no supported encoding.
    """
    builder, rows = case_table(path, mapping, sheet=sheet, header_row=header_row, max_field_chars=max_field_chars)
    return _cases(rows, builder)


def case_table(
    path: str | Path, mapping: ColumnMapping | None = None, *, sheet: str | None = None,
    header_row: int | None = None, encoding: tuple[str, bool] | None = None,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS, progress: Callable[[int], object] | None = None,
) -> tuple[RecordBuilder, Iterator[tuple[int, Sequence[object]]]]:
    """:func:`read_case_file`'s parts: the header's record builder (``builder.header_row`` is its row), and
    (row number, cells) of every non-empty row after the header, not yet built (for the import's text path,
    which builds only some rows). ``encoding``: a CSV's :func:`detect_encoding`, when the caller has it
    already; ``progress``: called with the bytes read of a CSV as it goes.
    """
    path = Path(path)
    mapping = mapping or ColumnMapping()
    rows = _iter_table(path, sheet=sheet, encoding=encoding, max_field_chars=max_field_chars, progress=progress)
    last = header_row or HEADER_SEARCH_ROWS
    builder = first = None
    for n, cells in rows:
        if type(cells) is not RowProblem and not _blank(cells) and (header_row is None or n == header_row):
            candidate = mapping.builder(cells)
            candidate.header_row = n
            if header_row is not None or not candidate.missing_required():
                builder = candidate
                break
            first = first or candidate
        if n >= last:
            break
    if builder is None and (header_row is not None or first is None):
        where = f"row {header_row} is" if header_row is not None else f"rows 1-{HEADER_SEARCH_ROWS} are"
        raise HeaderError(f"{path}: no header row ({where} empty or missing)")
    builder = builder or first
    assert builder is not None
    missing = builder.missing_required()
    if missing:
        found = ", ".join(h for h in builder.headers if h) or "(none)"
        searched = "" if header_row is not None else (
            f" (no row among the first {HEADER_SEARCH_ROWS} has them all; the first non-empty row is shown)")
        raise HeaderError(
            f"{path}: missing required columns {', '.join(missing)}; "
            f"found in row {builder.header_row}: {found}{searched}; "
            f"required: {', '.join(_required_labels(builder.mapping))}. "
            "Map other header names in config sources.<name>.columns, or set sources.<name>.header_row "
            "to the row with the column names"
        )
    return builder, ((n, cells) for n, cells in rows if not _blank(cells))


def _cases(rows: Iterator[tuple[int, Sequence[object]]], builder: RecordBuilder) -> Iterator[RowResult]:
    for row_number, values in rows:
        if type(values) is RowProblem:
            yield RowResult(row_number, None, error=values.text(builder.headers))
            continue
        try:
            record, warning = builder.build_noted(values)
            yield RowResult(row_number, record, number=builder.number_of(values), note=warning)
        except CaseRowError as exc:
            yield RowResult(row_number, None, error=str(exc), number=builder.number_of(values))


def _required_labels(mapping: ColumnMapping) -> list[str]:
    return [f"{' or '.join(getattr(mapping.columns, f))} ({f})" for f in REQUIRED_FIELDS]


def mark_duplicates(results: Iterable[RowResult]) -> Iterator[RowResult]:
    """Add a note to a row whose 工单编号 appeared earlier in the same stream (the later row wins).

    Keeps one entry per distinct number: for streams that fit in memory (the import uses :class:`Repeats`).
    """
    first_row: dict[str, int] = {}
    for result in results:
        number = result.number
        if result.record is not None and number is not None:
            earlier = first_row.setdefault(number, result.row)
            if earlier != result.row:
                yield RowResult(result.row, result.record, None, number, repeat_warning(number, earlier, result.row))
                continue
        yield result


def read_contacts_file(path: str | Path, *, sheet: str | None = None) -> Iterator[ContactResult]:
    """Stream a contacts sheet: 单位, 姓名, 角色, 手机, 企业微信账号, 邮箱 (one row per person and unit).

    Errors name the row and the column and never contain a full mobile number (尾号1234 instead).
    """
    path = Path(path)
    rows = (row for row in _iter_table(path, sheet=sheet) if row[0] == 1 or not _blank(row[1]))
    header = next(rows, None)
    if header is None or header[0] != 1:
        raise HeaderError(f"{path}: no header row (row 1 is empty or missing)")
    builder = contact_builder(header[1])
    if builder.missing:
        raise HeaderError(
            f"{path}: missing required columns {', '.join(builder.missing)}; "
            f"found: {', '.join(str(h) for h in header[1] if h) or '(none)'}; "
            "required: 单位 (unit), 姓名 (name); optional: 角色 (role), 手机 (mobile), "
            "企业微信账号 (wecom_id), 邮箱 (email)"
        )
    headers = [str(h or "") for h in header[1]]
    return (
        ContactResult(row_number, None, f"row {row_number}: {values.text(headers)}") if type(values) is RowProblem
        else builder.build(row_number, values)
        for row_number, values in rows
    )


def _iter_table(
    path: Path, *, sheet: str | None, encoding: tuple[str, bool] | None = None,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS, progress: Callable[[int], object] | None = None,
) -> Iterator[tuple[int, Sequence[object]]]:
    """(spreadsheet row number, cells) of every row, a CSV record that cannot be read as its RowProblem."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        if sheet is not None:
            raise UsageError(f"{path}: a CSV file has no sheets (sheet {sheet!r} given)")
        return csv_rows(path, encoding, max_field_chars=max_field_chars, progress=progress)
    if suffix in XLSX_SUFFIXES:
        return _xlsx_rows(path, sheet)
    if suffix == ".xls":
        raise UsageError(f"{path}: old Excel .xls is not supported; save it as .xlsx or CSV UTF-8")
    raise UsageError(f"{path}: unknown file type {suffix!r}; expected .csv or .xlsx")


def _blank(cells: Sequence[object]) -> bool:
    """An empty row (a row that cannot be read is not empty)."""
    return type(cells) is not RowProblem and all(
        c is None or c == "" or (isinstance(c, str) and not c.strip()) for c in cells
    )


def detect_encoding(path: Path) -> tuple[str, bool]:
    """The encoding of a CSV file from its first MiB, and whether that sample decided nothing (no non-ASCII
    text in it: the reader then starts with UTF-8 and switches to GB18030 if a later byte proves it wrong).

    A few undecodable bytes do not refuse the file: they reject their rows (:mod:`daemon.sources.csv_records`).
    The encoding that decodes the sample with the fewest bad sequences is taken when those are at most
    :data:`_TOLERATED_BAD` or one per hundred good characters; a file with more is in another encoding.
    """
    with path.open("rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", False
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise EncodingError(
            f"{path}: the file is UTF-16 (Excel 'Unicode text'); save it as 'CSV UTF-8' (逗号分隔) instead"
        )
    tried = []
    for encoding in ("utf-8", "gb18030"):
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)
        bad = text.count("\ufffd")
        if not bad:
            return encoding, sample.isascii()
        good = len(text) - bad - sum(1 for _ in filter(str.isascii, text))
        tried.append((bad, -good, encoding))
    bad, minus_good, encoding = min(tried)
    if bad <= max(_TOLERATED_BAD, -minus_good // 100):
        return encoding, minus_good == 0
    raise EncodingError(undecodable_message(path, None))


def undecodable_message(path: Path, row: int | None) -> str:
    """The error for a CSV in no supported encoding (at ``row`` when known): what would be valid."""
    where = f" (at row {row})" if row is not None else ""
    return (
        f"{path}: cannot decode the file as UTF-8, UTF-8 with BOM or GB18030/GBK{where}; "
        "save it from Excel as 'CSV UTF-8' (CSV UTF-8 逗号分隔)"
    )


def line_end(path: Path) -> bytes:
    """The byte a CSV's records end with: LF, or CR for old Mac files (Excel's "CSV (Macintosh)")."""
    with path.open("rb") as fh:
        sample = fh.read(1 << 16)
    return b"\r" if b"\r" in sample and b"\n" not in sample else b"\n"


def csv_rows(
    path: Path, detected: tuple[str, bool] | None = None, *, max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
    progress: Callable[[int], object] | None = None,
) -> Iterator[tuple[int, Sequence[object]]]:
    """(row number, cells) of every record of a CSV, read in its :func:`detect_encoding` (``detected`` when
    the caller has it). A record that cannot be read (a field over ``max_field_chars`` characters, a NUL
    byte, undecodable bytes) comes as its :class:`RowProblem` instead of cells, and the reading goes on;
    memory stays bounded by the limit. ``progress`` is called with the bytes read after each block.
    """
    encoding, undecided = detected or detect_encoding(path)
    max_record = max_record_bytes(max_field_chars)
    row = 0
    with path.open("rb") as fh:
        for offset, data, length, unclosed in record_spans(fh, 0, BLOCK_BYTES, max_record, newline=line_end(path)):
            if data is None:
                row += 1
                yield row, problem(oversize_message(length, max_record, max_field_chars, unclosed=unclosed))
            else:
                if undecided and not data.isascii():
                    encoding, undecided = _decide(data, encoding)
                bom = len(codecs.BOM_UTF8) if offset == 0 and encoding == "utf-8-sig" else 0
                for cells in parse_block(data[bom:], "utf-8" if encoding == "utf-8-sig" else encoding,
                                         max_field_chars, max_record, offset + bom):
                    row += 1
                    yield row, cells
            if progress is not None:
                progress(length)


def _decide(data: bytes, encoding: str) -> tuple[str, bool]:
    """The first non-ASCII block of a file whose first MiB was ASCII: GB18030 if UTF-8 cannot read it and
    GB18030 can (GB18030 agrees with ASCII, so the rows before stand)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            data.decode("gb18030")
        except UnicodeDecodeError:
            return encoding, True
        return "gb18030", False
    return encoding, False


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, Sequence[object]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise UsageError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise UsageError(f"{path}: no sheet {sheet!r}; sheets: {', '.join(workbook.sheetnames)}")
        worksheet.reset_dimensions()  # exporters often write a wrong <dimension>; read every row there is
        yield from enumerate(worksheet.iter_rows(values_only=True), start=1)
    finally:
        workbook.close()
