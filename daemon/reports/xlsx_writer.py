"""The one XLSX (SpreadsheetML) writer of every workbook we produce (digest, month-end, ranking): text and
number cells, a bold header, percent and 0.00 number formats, column widths and frozen header rows.

Text that a spreadsheet would take for a formula (starting with ``= + - @``, a tab or a CR: a unit name
``=HYPERLINK(...)`` typed into the platform) is always written as text with Excel's quote prefix, so
that neither opening nor editing the cell turns it into a formula (formula injection, OWASP "CSV
injection"); no cell is ever written as a formula.

Why not openpyxl here: the digest's overdue sheet can hold 50,000 rows × 10 columns. openpyxl's write-only
mode measured 6.0 s for 500,000 cells (4.9 s with lxml), XlsxWriter 3.0 s; the digest must build and render
in under 10 s. Writing the sheet XML directly takes 0.4 s. openpyxl still reads these files in the tests.
The ranking's small workbook is written here too, so that one place guards every cell. Strings are inline
(no shared-string table), which every spreadsheet program reads.

Over the house's 400 lines (~500): the plain-row and row-shape fast paths and the print finishing below
must stay beside the one cell writer they are held equal to.
"""

from __future__ import annotations

import functools
import io
import operator
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from itertools import chain
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape, quoteattr

Cell = str | int | float | Decimal

# characters XML 1.0 forbids (a stray control character in a case summary must not break the workbook)
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")

STYLE_PLAIN, STYLE_BOLD, STYLE_TITLE, STYLE_PERCENT, STYLE_DECIMAL = 0, 1, 2, 3, 4
#: the same look with Excel's quote prefix ("this is text"), for text that looks like a formula
_GUARDED_STYLE = {STYLE_PLAIN: 5, STYLE_BOLD: 6, STYLE_TITLE: 7, STYLE_PERCENT: 5, STYLE_DECIMAL: 5}
#: first characters that make a spreadsheet read a typed value as a formula
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(text: str) -> bool:
    """True for text a spreadsheet would evaluate if it were typed in (``=1+1``, ``@SUM(..)``, ``-2+3``)."""
    return text.startswith(FORMULA_TRIGGERS)


@dataclass
class Sheet:
    name: str
    widths: Sequence[float] = ()
    freeze_rows: int = 0
    # (style, cells): one style for the row, or one per cell
    rows: list[tuple[int | Sequence[int], Sequence[Cell | None]]] = field(default_factory=list)
    #: rows streamed after ``rows`` (plain style), read once while the sheet is written: a million-row
    #: listing never held as a list; then ``tail`` (notes under the table)
    body: Iterable[Sequence[Cell | None]] = ()
    tail: list[tuple[int | Sequence[int], Sequence[Cell | None]]] = field(default_factory=list)

    def append(self, cells: Sequence[Cell | None], style: int | Sequence[int] = STYLE_PLAIN) -> None:
        self.rows.append((style, cells))

    def all_rows(self) -> Iterator[tuple[int | Sequence[int], Sequence[Cell | None]]]:
        return chain(self.rows, ((STYLE_PLAIN, cells) for cells in self.body), self.tail)


@cache
def column_letter(index: int) -> str:
    """1 → A, 27 → AA."""
    letters = ""
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


@functools.cache
def _column_letter_cached(index: int) -> str:
    return column_letter(index)


def _cell(ref: str, value: Cell | None, style: int) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        s = f' s="{style}"' if style else ""
        return f'<c r="{ref}"{s}><v>{value}</v></c>'
    raw = _ILLEGAL.sub("", str(value))
    if looks_like_formula(raw):
        style = _GUARDED_STYLE[style]
    elif style in {STYLE_PERCENT, STYLE_DECIMAL}:
        style = STYLE_PLAIN
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{escape(raw)}</t></is></c>'


#: text that needs more than writing as is: a formula trigger first, or a character to filter or escape
_NOT_PLAIN_TEXT = re.compile("^[=+\\-@\t\r]|[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@cache
def _letters(count: int) -> tuple[str, ...]:
    """The letters of the first ``count`` columns (A, B, …)."""
    return tuple(column_letter(i) for i in range(1, count + 1))


def _plain_row(n: int, cells: Sequence[Cell | None]) -> str:
    """The cells of row ``n`` in the plain style, exactly as :func:`_cell` writes each: a row of integers and
    text with nothing to filter, escape or guard in one format of its shape (:func:`_row_shape`), any other
    row cell by cell, each integer or plain text directly and the rest through :func:`_cell`
    (tests/test_month_end_stream.py holds the three equal): 2.5 µs a row of the carry-over against 4.4."""
    shape = _row_shape(tuple(map(type, cells)), tuple(map(bool, cells)))
    if shape is not None:
        template, texts, _ = shape
        joined = texts(cells)
        if not (_LINE_TRIGGER.search(joined) or _FILTER_OR_ESCAPE.search(joined)):
            return template(n, cells)
    letters = _letters(len(cells))
    special = _NOT_PLAIN_TEXT.search
    return "".join([
        f'<c r="{letter}{n}"><v>{value}</v></c>' if type(value) is int
        else f'<c r="{letter}{n}" t="inlineStr"><is><t xml:space="preserve">{value}</t></is></c>'
        if type(value) is str and value and not special(value)
        else _cell(f"{letter}{n}", value, STYLE_PLAIN)
        for letter, value in zip(letters, cells, strict=False)
    ])


#: :data:`_NOT_PLAIN_TEXT` over a row's text cells, each after a newline: a trigger at the start of any line
#: (a cell's, or one inside a cell, which only sends the row the slow way), a character to filter or escape
#: (two searches: 0.46 µs for a carry-over row against 1.07 for one with ``^`` in multi-line mode)
_LINE_TRIGGER = re.compile("\n[=+\\-@\t\r]")
_FILTER_OR_ESCAPE = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


_FIELD = re.compile(r"\{(\d+)\}")


def format_function(template: str) -> Callable[[object, Sequence[object]], str]:
    """``template.format(first, *cells)`` as a function ``(first, cells)`` compiled once into an f-string:
    half the time of ``str.format`` for a row of a million-row sheet (0.95 against 1.89 µs). ``template``
    is our own (tags, column letters, ``{0}``, ``{1}`` …, no other braces); the values stay arguments."""
    fields = _FIELD.split(template)  # literal, index, literal, index, …, literal
    if any("{" in part or "}" in part for part in fields[::2]):
        raise ValueError(f"a row template with braces that are not fields: {template!r}")
    source = "".join(part if i % 2 == 0 else ("{first}" if part == "0" else f"{{cells[{int(part) - 1}]}}")
                     for i, part in enumerate(fields))
    return eval(f"lambda first, cells: f{source!r}", {"__builtins__": {}})  # type: ignore[no-any-return]  # noqa: S307


@functools.lru_cache(maxsize=1024)
def _row_shape(
    types: tuple[type, ...], filled: tuple[bool, ...]
) -> tuple[Callable[[object, Sequence[object]], str], Callable[[Sequence[Cell | None]], str],
           Callable[[object, Sequence[object]], str]] | None:
    """For a row of integers and text (``types``; ``filled``: which cells are not empty): its cells as
    :func:`_cell` writes each when it is plain (a :func:`format_function` of the row number and the cells), how
    to join its text cells, each after a newline, for :data:`_LINE_TRIGGER`, and the cells with their ``<row>``
    element; None for any other row (booleans, floats, None)."""
    if not all(t is int or t is str for t in types):
        return None
    letters = _letters(len(types))
    parts = []
    for i, (letter, t, full) in enumerate(zip(letters, types, filled, strict=True), start=1):
        if t is int:
            parts.append(f'<c r="{letter}{{0}}"><v>{{{i}}}</v></c>')
        elif full:  # an empty text writes no cell
            parts.append(f'<c r="{letter}{{0}}" t="inlineStr"><is><t xml:space="preserve">{{{i}}}</t></is></c>')
    text_at = [i for i, t in enumerate(types) if t is str]

    def texts(cells: Sequence[Cell | None]) -> str:
        return "".join(["\n" + cells[i] for i in text_at])  # type: ignore[operator]

    if len(text_at) > 1:
        pick = operator.itemgetter(*text_at)
        texts = lambda cells: "\n" + "\n".join(pick(cells))  # noqa: E731
    cells = "".join(parts)
    return format_function(cells), texts, format_function(f'<row r="{{0}}">{cells}</row>')


def _write_sheet(stream: IO[bytes], sheet: Sheet, setup: PrintSetup | None) -> None:
    """The sheet's XML, written to ``stream`` a block of rows at a time (a 50,000-row sheet is never one
    string); with ``setup``, its page setup and row heights in the same pass."""
    head = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">']
    if setup is not None and setup.fit_width:
        head.append('<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>')
    if sheet.freeze_rows:
        top = f"A{sheet.freeze_rows + 1}"
        head.append(f'<sheetViews><sheetView workbookViewId="0"><pane ySplit="{sheet.freeze_rows}" topLeftCell="{top}"'
                    ' activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>')
    if sheet.widths:
        head.append("<cols>" + "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                                       for i, w in enumerate(sheet.widths, start=1)) + "</cols>")
    head.append("<sheetData>")
    stream.write("".join(head).encode())
    heights = setup.row_heights if setup is not None else {}
    block: list[str] = []
    n = _write_rows(stream, block, sheet.rows, 0, heights)
    n = _write_body(stream, block, sheet.body, n, heights)
    _write_rows(stream, block, sheet.tail, n, heights)
    block.append("</sheetData>")
    if setup is not None:
        block.append(_page_xml(setup))
    block.append("</worksheet>")
    stream.write("".join(block).encode())


def _write_rows(
    stream: IO[bytes], block: list[str], rows: Iterable[tuple[int | Sequence[int], Sequence[Cell | None]]],
    last: int, heights: Mapping[int, float],
) -> int:
    """Rows after row ``last`` into ``block`` (written to ``stream`` when full); the last row's number."""
    n = last
    for style, cells in rows:
        n += 1
        block.append(_row_xml(n, style, cells, heights))
        if len(block) == _ROWS_PER_WRITE:
            stream.write("".join(block).encode())
            block.clear()
    return n


def _write_body(
    stream: IO[bytes], block: list[str], body: Iterable[Sequence[Cell | None]], n: int, heights: Mapping[int, float]
) -> int:
    """:func:`_write_rows` of streamed plain rows: a row of integers and plain text of its own height in one
    format of its shape, with its ``<row>`` element (a million-row listing), any other as :func:`_row_xml`."""
    for cells in body:
        n += 1
        shape = _row_shape(tuple(map(type, cells)), tuple(map(bool, cells)))
        if shape is not None and n not in heights:
            _, texts, row_template = shape
            joined = texts(cells)
            plain = not (_LINE_TRIGGER.search(joined) or _FILTER_OR_ESCAPE.search(joined))
            row = row_template(n, cells) if plain else _row_xml(n, STYLE_PLAIN, cells, heights)
        else:
            row = _row_xml(n, STYLE_PLAIN, cells, heights)
        block.append(row)
        if len(block) == _ROWS_PER_WRITE:
            stream.write("".join(block).encode())
            block.clear()
    return n


def _row_xml(n: int, style: int | Sequence[int], cells: Sequence[Cell | None], heights: Mapping[int, float]) -> str:
    letter = _column_letter_cached
    if style == STYLE_PLAIN:
        row = _plain_row(n, cells)
    elif isinstance(style, int):
        row = "".join(_cell(f"{letter(i)}{n}", v, style) for i, v in enumerate(cells, start=1))
    else:
        row = "".join(_cell(f"{letter(i)}{n}", v, st)
                      for i, (v, st) in enumerate(zip(cells, style, strict=False), start=1))
    height = heights.get(n)
    attrs = f' ht="{height:g}" customHeight="1"' if height else ""
    return f'<row r="{n}"{attrs}>{row}</row>'


_ROWS_PER_WRITE = 2_000


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "{sheets}</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="3"><font><sz val="11"/><name val="等线"/></font>'
    '<font><b/><sz val="11"/><name val="等线"/></font><font><b/><sz val="13"/><name val="等线"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '</fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="8"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="10" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'  # 0.00%
    '<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'  # 0.00
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" quotePrefix="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1" quotePrefix="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)


def sheet_name(text: str, used: set[str]) -> str:
    """A valid, unique sheet name (<= 31 characters, none of []:*?/\\)."""
    name = _SHEET_NAME_BAD.sub("_", text)[:31] or "Sheet"
    base, n = name, 1
    while name.lower() in {u.lower() for u in used}:
        n += 1
        name = f"{base[:28]}_{n}"
    used.add(name)
    return name


def workbook_bytes(sheets: Sequence[Sheet], setups: Sequence[PrintSetup] | None = None) -> bytes:
    """The workbook of ``sheets``; with ``setups`` (one per sheet), finished for print in the same pass: the
    bordered styles of :data:`BORDERED` (with the date format), each sheet's page setup, and its title rows
    as print titles (``_xlnm.Print_Titles``)."""
    out = io.BytesIO()
    write_workbook(out, sheets, setups)
    return out.getvalue()


def write_workbook(
    target: IO[bytes] | Path, sheets: Sequence[Sheet], setups: Sequence[PrintSetup] | None = None
) -> None:
    """:func:`workbook_bytes` written into ``target`` (a file or a binary stream): with streamed sheets
    (:attr:`Sheet.body`) and a file, a workbook of any length in a bounded amount of memory."""
    used: set[str] = set()
    names = [sheet_name(s.name, used) for s in sheets]
    titles = "".join(
        f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">'
        f"{escape(_quoted_sheet(name))}!$1:${setup.title_rows}</definedName>"
        for i, (name, setup) in enumerate(zip(names, setups or (), strict=False)) if setup.title_rows
    )
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(1, len(sheets) + 1))
        z.writestr("[Content_Types].xml", _CONTENT_TYPES.format(sheets=overrides))
        z.writestr("_rels/.rels", _ROOT_RELS)
        z.writestr("xl/workbook.xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
            + "".join(f'<sheet name={quoteattr(n)} sheetId="{i}" r:id="rId{i}"/>' for i, n in enumerate(names, 1))
            + "</sheets>" + (f"<definedNames>{titles}</definedNames>" if titles else "") + "</workbook>"))
        z.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                      f'relationships/worksheet" Target="worksheets/sheet{i}.xml"/>' for i in range(1, len(names) + 1))
            + f'<Relationship Id="rId{len(names) + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/styles" Target="styles.xml"/></Relationships>'))
        z.writestr("xl/styles.xml", _PRINT_STYLES if setups is not None else _STYLES)
        for i, sheet in enumerate(sheets, start=1):
            with z.open(f"xl/worksheets/sheet{i}.xml", "w") as stream:
                _write_sheet(stream, sheet, setups[i - 1] if setups is not None else None)


# --- printing: bordered cell styles, fitted widths, date cells, A4 page setup (additive helpers) ----------
#
# A workbook written by workbook_bytes() is finished here for print: borders, real date cells, A4
# landscape fitted to the page width, header rows repeated on every page. The extra cell styles are
# appended after the base styles, so their numbers are computed from the base count. The section keeps
# its own imports, so that it merges as one block with other changes to the module's head.

import unicodedata  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from datetime import date  # noqa: E402

_BASE_XF_COUNT = int(re.search(r'<cellXfs count="(\d+)"', _STYLES)[1])  # type: ignore[index]
_BASE_BORDER_COUNT = int(re.search(r'<borders count="(\d+)"', _STYLES)[1])  # type: ignore[index]
_BASE_FILL_COUNT = int(re.search(r'<fills count="(\d+)"', _STYLES)[1])  # type: ignore[index]
DATE_FORMAT_ID = 164  # the first custom number format
_BORDERED_XFS = (  # (name, numFmtId, fontId, fill, alignment, quotePrefix)
    ("text", 0, 0, False, '<alignment vertical="center" wrapText="1"/>', True),
    ("header", 0, 1, True, '<alignment horizontal="center" vertical="center" wrapText="1"/>', True),
    ("int", 1, 0, False, '<alignment horizontal="right" vertical="center"/>', False),
    ("percent", 10, 0, False, '<alignment horizontal="right" vertical="center"/>', False),
    ("decimal", 2, 0, False, '<alignment horizontal="right" vertical="center"/>', False),
    ("date", DATE_FORMAT_ID, 0, False, '<alignment horizontal="center" vertical="center"/>', False),
)
#: style numbers of the bordered cells: BORDERED["text"], BORDERED["header"], BORDERED["date"] …
BORDERED = {name: _BASE_XF_COUNT + i for i, (name, *_) in enumerate(_BORDERED_XFS)}
_EXCEL_EPOCH = date(1899, 12, 30)


def excel_date(day: date) -> int:
    """A date as a spreadsheet's day number (1900 date system), for a cell styled ``BORDERED["date"]``."""
    return (day - _EXCEL_EPOCH).days


def display_width(text: str) -> int:
    """Columns ``text`` takes in a spreadsheet: wide (CJK, full-width) characters count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fitted_widths(rows: Sequence[Sequence[Cell | None]], *, minimum: float = 6, maximum: float = 48) -> list[float]:
    """Column widths that fit the widest cell of each column (plus padding), within [minimum, maximum];
    longer text wraps (the bordered text style wraps)."""
    widths: list[float] = []
    for cells in rows:
        for i, value in enumerate(cells):
            need = display_width(str(value)) + 2 if value not in (None, "") else 0
            if i == len(widths):
                widths.append(minimum)
            widths[i] = max(widths[i], min(maximum, need))
    return widths


@dataclass(frozen=True)
class PrintSetup:
    """How a sheet prints: paper 9 is A4; ``fit_width`` scales the columns onto one page width (pages run
    down only); ``title_rows`` rows from the top repeat on every printed page."""

    landscape: bool = True
    paper: int = 9
    fit_width: bool = True
    title_rows: int = 2
    row_heights: Mapping[int, float] = field(default_factory=dict)  # row (1-based) → points, for wrapped text


LINE_HEIGHT = 15.0  # points per line of 11-point text


def wrap_text(text: str, width: float) -> list[str]:
    """``text`` cut into lines of at most ``width`` display columns (CJK counts double): a long note under
    a table goes on several rows instead of running off the page."""
    lines, line, used = [], "", 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > width and line:
            lines.append(line)
            line, used = "", 0
        line += ch
        used += w
    return [*lines, line] if line else lines


def wrapped_heights(rows: Sequence[Sequence[Cell | None]], widths: Sequence[float], *, first_row: int = 1,
                    minimum: float = 0) -> dict[int, float]:
    """Heights of the rows whose text wraps in its column (spreadsheets do not all fit rows on opening):
    the most lines any cell of the row needs, times :data:`LINE_HEIGHT`; every row at least ``minimum``."""
    heights: dict[int, float] = {}
    for n, cells in enumerate(rows, start=first_row):
        lines = max((len(wrap_text(v, max(1.0, widths[i] - 1))) for i, v in enumerate(cells)
                     if isinstance(v, str) and i < len(widths)), default=1)
        if lines > 1 or minimum:
            heights[n] = max(minimum, lines * LINE_HEIGHT + 3 if lines > 1 else 0)
    return heights


_APPLY_FILL, _QUOTE_PREFIX = ' applyFill="1"', ' quotePrefix="1"'


def _print_styles(styles: str) -> str:
    borders = _BASE_BORDER_COUNT + 1
    fills = _BASE_FILL_COUNT + 1
    sides = ("left", "right", "top", "bottom")
    thin = "".join(f'<{side} style="thin"><color rgb="FF000000"/></{side}>' for side in sides)
    xfs = "".join(
        f'<xf numFmtId="{fmt}" fontId="{font}" fillId="{_BASE_FILL_COUNT if fill else 0}" '
        f'borderId="{_BASE_BORDER_COUNT}" xfId="0" applyNumberFormat="1" applyFont="1" applyBorder="1" '
        f'applyAlignment="1"{_APPLY_FILL if fill else ""}{_QUOTE_PREFIX if quote else ""}>{align}</xf>'
        for _, fmt, font, fill, align, quote in _BORDERED_XFS
    )
    count = _BASE_XF_COUNT + len(_BORDERED_XFS)
    styles = re.sub(r'<cellXfs count="\d+">(.*?)</cellXfs>',
                    lambda m: f'<cellXfs count="{count}">{m[1]}{xfs}</cellXfs>', styles, flags=re.S)
    styles = re.sub(r'<borders count="\d+">(.*?)</borders>',
                    lambda m: f'<borders count="{borders}">{m[1]}<border>{thin}<diagonal/></border></borders>',
                    styles, flags=re.S)
    styles = re.sub(r'<fills count="\d+">(.*?)</fills>',
                    lambda m: f'<fills count="{fills}">{m[1]}<fill><patternFill patternType="solid">'
                              '<fgColor rgb="FFE7E6E6"/><bgColor indexed="64"/></patternFill></fill></fills>',
                    styles, flags=re.S)
    numfmt = f'<numFmts count="1"><numFmt numFmtId="{DATE_FORMAT_ID}" formatCode="yyyy-mm-dd"/></numFmts>'
    return re.sub(r"(<styleSheet[^>]*>)", lambda m: m[1] + numfmt, styles, count=1)


def _page_xml(setup: PrintSetup) -> str:
    return (
        '<printOptions horizontalCentered="1"/>'
        '<pageMargins left="0.4" right="0.4" top="0.6" bottom="0.6" header="0.3" footer="0.3"/>'
        f'<pageSetup paperSize="{setup.paper}" orientation="{"landscape" if setup.landscape else "portrait"}"'
        + (' fitToWidth="1" fitToHeight="0"' if setup.fit_width else "") + "/>"
        "<headerFooter><oddFooter>&amp;C第 &amp;P 页，共 &amp;N 页</oddFooter></headerFooter>"
    )


def _quoted_sheet(name: str) -> str:
    """A sheet name as a formula reference writes it: in single quotes, a quote doubled."""
    return "'" + name.replace("'", "''") + "'"


def printed_workbook_bytes(sheets: Sequence[tuple[Sheet, PrintSetup]]) -> bytes:
    """:func:`workbook_bytes` of ``(sheet, setup)`` pairs, finished for print."""
    return workbook_bytes([sheet for sheet, _ in sheets], [setup for _, setup in sheets])


_PRINT_STYLES = _print_styles(_STYLES)

# formula-looking text in a bordered cell stays bordered text (the bordered text style has the quote prefix)
_GUARDED_STYLE.update(dict.fromkeys(BORDERED.values(), BORDERED["text"]))
_GUARDED_STYLE[BORDERED["header"]] = BORDERED["header"]
