"""Read a unit score table (CSV or XLSX) the way the bulletins print it, for ``hotline-sla score``.

Required columns (matched by prefix, so ``满意率 (权重3)`` is 满意率): 受理单位, 满意率, 及时办结率 or
按时反馈率, 办结率, 加分, 减分. Other columns (名次, 序号, 交办总量, 办结总量 …) are ignored, except 总分,
which is kept so the caller can compare it with the computed score. A header row repeated further down
(several bulletin tables stacked in one file) starts a new table with its own column order.

Rates are percentages (``99.22%``) or fractions (``0.9922``); an XLSX numeric cell holds the fraction
whether or not it is formatted as a percent. A bad row is reported with its row number (as a spreadsheet
shows it: the header is row 1) and column, and the good rows are still returned.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from daemon.errors import UsageError

Cell = object  # str, int, float, Decimal, datetime or None, as CSV or openpyxl hands it over

# (key, accepted header prefixes); the first prefix is the name used in messages
_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unit", ("受理单位", "承办单位")),
    ("satisfaction", ("满意率",)),
    ("on_time", ("及时办结率", "按时反馈率")),
    ("completion", ("办结率",)),
    ("bonus", ("加分",)),
    ("penalty", ("减分",)),
)
_OPTIONAL: tuple[tuple[str, tuple[str, ...]], ...] = (("printed_score", ("总分",)),)
REQUIRED_COLUMNS = ("受理单位", "满意率", "及时办结率 (或 按时反馈率)", "办结率", "加分", "减分")

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_HEADER_SCAN_ROWS = 20
_FLOAT_PLACES = Decimal("1e-10")  # drops binary noise from XLSX floats, keeps any real precision
RATE_HINT = "应为 0-100% 的百分比（如 99.22%）或 0-1 的小数（如 0.9922）"
AMOUNT_HINT = "应为不小于 0 的数字（如 0.28）"


@dataclass(frozen=True)
class ScoreRow:
    """One unit's row. Rates are fractions; ``penalty`` is the positive amount subtracted (减分)."""

    row_number: int
    unit: str
    satisfaction_rate: Decimal
    on_time_rate: Decimal
    completion_rate: Decimal
    bonus: Decimal
    penalty: Decimal
    printed_score: Decimal | None = None  # 总分 as the file prints it, when it has that column


@dataclass(frozen=True)
class RowError:
    """A rejected row: where (row number, column as headed in the file), the value, and what is valid."""

    row_number: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"第 {self.row_number} 行「{self.column}」{self.value!r}: {self.message}"


def read_score_table(path: str | Path) -> tuple[list[ScoreRow], list[RowError]]:
    """Read ``path`` (CSV in UTF-8, UTF-8 with BOM or GB18030; or XLSX). Returns the good rows in file
    order and the row errors. An unreadable file or a missing column raises UsageError naming the file."""
    file = Path(path)
    grid = _read_xlsx(file) if _is_xlsx(file) else _read_csv(file)
    return _parse_grid(file, grid)


def _is_xlsx(file: Path) -> bool:
    if file.suffix.lower() == ".xls":
        raise UsageError(f"{file}: old .xls workbooks are not supported; save it as .xlsx or CSV")
    if file.suffix.lower() in {".xlsx", ".xlsm"}:
        return True
    try:
        with file.open("rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError as exc:
        raise UsageError(f"{file}: cannot read ({exc.strerror or exc})") from None


def _read_csv(file: Path) -> list[tuple[int, list[Cell]]]:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{file}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise UsageError(f"{file}: not a CSV in UTF-8 or GB18030 (save it as CSV UTF-8)") from None
    first_line = text.lstrip().split("\n", 1)[0]
    delimiter = max(",\t;", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[Cell]]] = []
    start = 1
    for record in reader:
        rows.append((start, list(record)))
        start = reader.line_num + 1
    return rows


def _read_xlsx(file: Path) -> list[tuple[int, list[Cell]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, InvalidFileException, KeyError, ValueError) as exc:
        raise UsageError(f"{file}: not a readable XLSX workbook ({exc})") from None
    try:
        sheet = workbook.worksheets[0]
        return [
            (number, list(values))
            for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1)
        ]
    finally:
        workbook.close()


def _text(cell: Cell) -> str:
    return "" if cell is None else str(cell).strip()


def _header_name(cell: Cell) -> str:
    return re.sub(r"[\s\u3000\ufeff\u200b]+", " ", _text(cell)).strip()


def _match(header: Sequence[Cell]) -> dict[str, int]:
    """Column index per key; the first header that starts with an accepted prefix wins."""
    found: dict[str, int] = {}
    for key, prefixes in (*_COLUMNS, *_OPTIONAL):
        for index, cell in enumerate(header):
            if _header_name(cell).startswith(prefixes):
                found[key] = index
                break
    return found


def _is_header(row: Sequence[Cell]) -> bool:
    return any(_header_name(cell).startswith(_COLUMNS[0][1]) for cell in row)


def _tables(file: Path, grid: list[tuple[int, list[Cell]]]) -> Iterator[tuple[list[Cell], int, list[Cell]]]:
    """Yield (header, row number, row) for each data row; the header is the one in force."""
    rows = [(number, row) for number, row in grid if any(_text(cell) for cell in row)]
    if not rows:
        raise UsageError(f"{file}: the file is empty; expected a header row: {', '.join(REQUIRED_COLUMNS)}")
    header_at = next((i for i, (_, row) in enumerate(rows[:_HEADER_SCAN_ROWS]) if _is_header(row)), None)
    if header_at is None:
        _missing_columns(file, rows[0][1], {})
        return  # unreachable: _missing_columns raises
    header = rows[header_at][1]
    _check_header(file, header)
    for number, row in rows[header_at + 1 :]:
        if _is_header(row):
            header = row
            _check_header(file, header, number)
            continue
        yield header, number, row


def _check_header(file: Path, header: Sequence[Cell], row_number: int | None = None) -> None:
    found = _match(header)
    if any(key not in found for key, _ in _COLUMNS):
        _missing_columns(file, header, found, row_number)


def _missing_columns(
    file: Path, header: Sequence[Cell], found: dict[str, int], row_number: int | None = None
) -> None:
    missing = [" 或 ".join(prefixes) for key, prefixes in _COLUMNS if key not in found]
    present = [name for name in (_header_name(c) for c in header) if name]
    where = f" (header row {row_number})" if row_number else ""
    raise UsageError(
        f"{file}{where}: missing column(s) {', '.join(missing)}; "
        f"found: {', '.join(present) or '(none)'}; required: {', '.join(REQUIRED_COLUMNS)}"
    )


def _parse_grid(file: Path, grid: list[tuple[int, list[Cell]]]) -> tuple[list[ScoreRow], list[RowError]]:
    good: list[ScoreRow] = []
    errors: list[RowError] = []
    for header, number, row in _tables(file, grid):
        parsed = _parse_row(header, number, row)
        if isinstance(parsed, ScoreRow):
            good.append(parsed)
        else:
            errors.extend(parsed)
    return good, errors


def _parse_row(header: list[Cell], number: int, row: list[Cell]) -> ScoreRow | list[RowError]:
    columns = _match(header)
    cells = {key: (row[index] if index < len(row) else None) for key, index in columns.items()}
    names = {key: _header_name(header[index]) for key, index in columns.items()}
    row_errors: list[RowError] = []
    values: dict[str, Decimal] = {}
    unit = _text(cells["unit"])
    if not unit:
        row_errors.append(RowError(number, names["unit"], "", "单位名称为空"))
    for key in ("satisfaction", "on_time", "completion", "bonus", "penalty"):
        try:
            values[key] = parse_amount(cells[key]) if key in {"bonus", "penalty"} else parse_rate(cells[key])
        except ValueError as exc:
            row_errors.append(RowError(number, names[key], _text(cells[key]), str(exc)))
    printed: Decimal | None = None
    printed_cell = cells.get("printed_score")
    if _text(printed_cell):
        try:
            printed = parse_amount(printed_cell, allow_negative=True)
        except ValueError as exc:
            row_errors.append(RowError(number, names["printed_score"], _text(printed_cell), str(exc)))
    if row_errors:
        return row_errors
    return ScoreRow(
        row_number=number,
        unit=unit,
        satisfaction_rate=values["satisfaction"],
        on_time_rate=values["on_time"],
        completion_rate=values["completion"],
        bonus=values["bonus"],
        penalty=values["penalty"],
        printed_score=printed,
    )


def _number(cell: Cell, hint: str) -> tuple[Decimal, bool]:
    """(value, written as a percentage). Raises ValueError with ``hint`` for anything else."""
    if isinstance(cell, bool):
        raise ValueError(f"不是数字，{hint}")
    if isinstance(cell, int | Decimal):
        return Decimal(cell), False
    if isinstance(cell, float):
        if not math.isfinite(cell):
            raise ValueError(f"不是数字，{hint}")
        return Decimal(repr(cell)).quantize(_FLOAT_PLACES).normalize(), False
    text = re.sub(r"\s+", "", _text(cell))
    if not text:
        raise ValueError(f"为空，{hint}")
    percent = text.endswith(("%", "％"))
    digits = text[:-1] if percent else text
    if not _NUMBER.match(digits):
        raise ValueError(f"不是数字，{hint}")
    return Decimal(digits), percent


def parse_rate(cell: Cell) -> Decimal:
    """A rate cell as a fraction: ``99.22%`` → 0.9922, ``0.9922`` → 0.9922. Raises ValueError."""
    value, percent = _number(cell, RATE_HINT)
    if percent:
        value /= 100
    elif value > 1:
        raise ValueError(f"{value} 超出 0-1，若是百分比请写 {value}%；{RATE_HINT}")
    if not 0 <= value <= 1:
        raise ValueError(f"超出 0-100%，{RATE_HINT}")
    return value


def parse_amount(cell: Cell, *, allow_negative: bool = False) -> Decimal:
    """A 加分 / 减分 / 总分 cell; an empty bonus or penalty cell counts as 0."""
    if not allow_negative and _text(cell) == "":
        return Decimal(0)
    value, percent = _number(cell, AMOUNT_HINT)
    if percent or (value < 0 and not allow_negative):
        raise ValueError(AMOUNT_HINT)
    return value
