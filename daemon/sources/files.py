"""Case exports as files: CSV (UTF-8, UTF-8 with BOM, GB18030/GBK) and XLSX, read as streams.

Rows are yielded one at a time and never collected, so a million-row export is read with flat memory.
A bad row becomes a :class:`RowResult` with ``error`` and the reading goes on; a file that cannot be
read at all (missing, unknown encoding, header without required columns) raises a
:class:`~daemon.errors.UsageError`.

Duplicate 工单编号 within one file: every row is yielded in file order and the later row wins, because the
store upserts by number in that order. The reader does not remember numbers (that would cost memory in
proportion to the file); :func:`mark_duplicates` adds a note to repeated numbers when the caller can
afford it (the ``import`` command does).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from daemon.errors import UsageError
from daemon.sources.base import HeaderError, RowResult
from daemon.sources.contacts import ContactResult, contact_builder
from daemon.sources.mapping import REQUIRED_FIELDS, CaseRowError, ColumnMapping, RecordBuilder

CSV_SUFFIXES = (".csv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
_SAMPLE_BYTES = 1 << 20  # enough for thousands of rows: the first non-ASCII text decides the encoding


class EncodingError(UsageError):
    """A CSV file in none of the encodings platform exports use."""


def read_case_file(
    path: str | Path, mapping: ColumnMapping | None = None, *, sheet: str | None = None, header_row: int = 1
) -> Iterator[RowResult]:
    """Stream the cases of a CSV or XLSX export, one :class:`RowResult` per non-empty row.

    ``row`` is the spreadsheet row number (header = ``header_row``, by default row 1). ``sheet`` names an
    XLSX worksheet (default: the first). Naive times are Asia/Shanghai. Raises :class:`HeaderError` (a
    ``UsageError``) before the first row when required columns are missing, :class:`EncodingError` when a
    CSV is in no supported encoding.
    """
    builder, rows = case_table(path, mapping, sheet=sheet, header_row=header_row)
    return _cases(rows, builder)


def case_table(
    path: str | Path, mapping: ColumnMapping | None = None, *, sheet: str | None = None, header_row: int = 1,
    encoding: tuple[str, bool] | None = None,
) -> tuple[RecordBuilder, Iterator[tuple[int, Sequence[object]]]]:
    """:func:`read_case_file`'s parts: the header's record builder, and (row number, cells) of every
    non-empty row after the header, not yet built (for the import's text path, which builds only some rows).
    ``encoding``: a CSV's :func:`detect_encoding`, when the caller has it already.
    """
    path = Path(path)
    rows = _iter_table(path, sheet=sheet, header_row=header_row, encoding=encoding)
    header = next(rows, None)
    if header is None:
        raise HeaderError(f"{path}: no header row (row {header_row} is empty or missing)")
    builder = (mapping or ColumnMapping()).builder(header[1])
    missing = builder.missing_required()
    if missing:
        found = ", ".join(h for h in builder.headers if h) or "(none)"
        raise HeaderError(
            f"{path}: missing required columns {', '.join(missing)}; found: {found}; "
            f"required: {', '.join(_required_labels(builder.mapping))}. "
            "Map other header names in config sources.<name>.columns"
        )
    return builder, rows


def _cases(rows: Iterator[tuple[int, Sequence[object]]], builder: RecordBuilder) -> Iterator[RowResult]:
    for row_number, values in rows:
        try:
            yield RowResult(row_number, builder.build(values), number=builder.number_of(values))
        except CaseRowError as exc:
            yield RowResult(row_number, None, error=str(exc), number=builder.number_of(values))


def _required_labels(mapping: ColumnMapping) -> list[str]:
    return [f"{' or '.join(getattr(mapping.columns, f))} ({f})" for f in REQUIRED_FIELDS]


def mark_duplicates(results: Iterable[RowResult]) -> Iterator[RowResult]:
    """Add a note to a row whose 工单编号 appeared earlier in the same stream (the later row wins).

    Keeps one entry per distinct number: use it for imports of a size that fits in memory.
    """
    first_row: dict[str, int] = {}
    for result in results:
        number = result.number
        if result.record is not None and number is not None:
            earlier = first_row.setdefault(number, result.row)
            if earlier != result.row:
                note = f"工单编号 (number) {number!r} also in row {earlier}; this later row wins"
                yield RowResult(result.row, result.record, None, number, note)
                continue
        yield result


def read_contacts_file(path: str | Path, *, sheet: str | None = None) -> Iterator[ContactResult]:
    """Stream a contacts sheet: 单位, 姓名, 角色, 手机, 企业微信账号, 邮箱 (one row per person and unit).

    Errors name the row and the column and never contain a full mobile number (尾号1234 instead).
    """
    path = Path(path)
    rows = _iter_table(path, sheet=sheet, header_row=1)
    header = next(rows, None)
    if header is None:
        raise HeaderError(f"{path}: no header row (row 1 is empty or missing)")
    builder = contact_builder(header[1])
    if builder.missing:
        raise HeaderError(
            f"{path}: missing required columns {', '.join(builder.missing)}; "
            f"found: {', '.join(str(h) for h in header[1] if h) or '(none)'}; "
            "required: 单位 (unit), 姓名 (name); optional: 角色 (role), 手机 (mobile), "
            "企业微信账号 (wecom_id), 邮箱 (email)"
        )
    return (builder.build(row_number, values) for row_number, values in rows)


def _iter_table(
    path: Path, *, sheet: str | None, header_row: int, encoding: tuple[str, bool] | None = None
) -> Iterator[tuple[int, Sequence[object]]]:
    """(spreadsheet row number, cells) for the header and every non-empty row after it."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        if sheet is not None:
            raise UsageError(f"{path}: a CSV file has no sheets (sheet {sheet!r} given)")
        rows: Iterator[tuple[int, Sequence[object]]] = csv_rows(path, encoding)
    elif suffix in XLSX_SUFFIXES:
        rows = _xlsx_rows(path, sheet)
    elif suffix == ".xls":
        raise UsageError(f"{path}: old Excel .xls is not supported; save it as .xlsx or CSV UTF-8")
    else:
        raise UsageError(f"{path}: unknown file type {suffix!r}; expected .csv or .xlsx")
    return ((n, cells) for n, cells in rows if n == header_row or (n > header_row and not _blank(cells)))


def _blank(cells: Sequence[object]) -> bool:
    return all(c is None or c == "" or (isinstance(c, str) and not c.strip()) for c in cells)


def detect_encoding(path: Path) -> tuple[str, bool]:
    """The encoding of a CSV file from its first MiB, and whether that sample was plain ASCII.

    An ASCII-only sample decides nothing, so the reader starts with UTF-8 and switches to GB18030 if a
    later byte proves it wrong.
    """
    with path.open("rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", False
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise EncodingError(
            f"{path}: the file is UTF-16 (Excel 'Unicode text'); save it as 'CSV UTF-8' (逗号分隔) instead"
        )
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        return encoding, sample.isascii()
    raise EncodingError(undecodable_message(path, None))


def undecodable_message(path: Path, row: int | None) -> str:
    """The error for a CSV that stops decoding (at ``row`` when known): what would be valid."""
    where = f" (at row {row})" if row is not None else ""
    return (
        f"{path}: cannot decode the file as UTF-8, UTF-8 with BOM or GB18030/GBK{where}; "
        "save it from Excel as 'CSV UTF-8' (CSV UTF-8 逗号分隔)"
    )


def csv_rows(path: Path, detected: tuple[str, bool] | None = None) -> Iterator[tuple[int, Sequence[object]]]:
    """(row number, cells) of every record of a CSV, read in its :func:`detect_encoding` (``encoding`` when
    the caller detected it already: ``detected``). Raises :class:`EncodingError` or :class:`UsageError` naming
    the row."""
    encoding, undecided = detected or detect_encoding(path)
    yielded = 0
    while True:
        try:
            with path.open(encoding=encoding, newline="") as fh:
                reader = csv.reader(fh)
                for index, cells in enumerate(reader, start=1):
                    if index > yielded:
                        yielded = index
                        yield index, cells
            return
        except UnicodeDecodeError:
            if not undecided:
                raise EncodingError(undecodable_message(path, yielded + 1)) from None
            # The ASCII sample looked like UTF-8; GB18030 agrees on ASCII, so the rows already yielded stand.
            encoding, undecided = "gb18030", False
        except csv.Error as exc:
            raise UsageError(f"{path}: row {yielded + 1}: not readable as CSV: {exc}") from None


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
