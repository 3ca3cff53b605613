"""What the operational reports (digest, month-end, carry-over) share: Chinese labels, local time text, a
table description rendered to a printable HTML page and to an XLSX workbook, and Markdown that fits a
WeCom message.

Tables are described once (:class:`ReportTable`) and each format shows them; cells are plain ``str`` or
``int`` so that 50,000 rows render without per-cell formatting work. Times are Asia/Shanghai.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from daemon.core.timeutil import to_local

Cell = str | int

WEEKDAYS = "一二三四五六日"
SOURCE_ZH = {"province": "省平台", "city": "市级", "hotline": "话务端"}
CATEGORY_ZH = {
    "complaint": "投诉", "inquiry": "咨询", "suggestion": "建议", "help": "求助", "report": "举报", "other": "其他",
}
STATUS_ZH = {
    "dispatched": "待签收", "signed": "办理中", "return_requested": "申请退件", "returned": "已退件",
    "fed_back": "已反馈", "closed": "已办结", "suspended": "挂起", "reopened": "重办",
    "extension_pending": "延期审核中",
}
OUTBOX_STATUS_ZH = {"failed": "发送失败", "dead": "多次重试失败"}

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HTML_MIME = "text/html; charset=utf-8"
WECOM_MARKDOWN_LIMIT = 4096  # bytes (UTF-8), the group robot's limit


def local_text(instant: datetime) -> str:
    """``2026-11-20 09:00`` (Asia/Shanghai)."""
    return to_local(instant).strftime("%Y-%m-%d %H:%M")


@cache
def _due_day_text(day: date) -> str:
    return f"{day.isoformat()} 24:00"


def due_text(due_at: datetime, provisional: bool = False) -> str:
    """A first-overdue instant as a supervisor reads a deadline: 00:00 is the previous day's ``24:00``
    (a day period ends at 24:00 of its last day). Provisional deadlines say so: ``（暂定）``."""
    local = to_local(due_at)
    if local.time() == time(0):
        text = _due_day_text(local.date() - timedelta(days=1))
    else:
        text = local.strftime("%Y-%m-%d %H:%M")
    return text + "（暂定）" if provisional else text


def day_text(day: date) -> str:
    """``11月20日（周五）``."""
    return f"{day.month}月{day.day}日（周{WEEKDAYS[day.weekday()]}）"


def clip(text: str | None, chars: int) -> str:
    text = (text or "").replace("\n", " ").strip()
    return text if len(text) <= chars else text[: chars - 1] + "…"


@dataclass(frozen=True)
class ReportTable:
    """One section as a table. ``total`` > len(rows) says the rows are a truncated list."""

    title: str
    sheet: str  # XLSX sheet name (<= 31 characters)
    columns: tuple[str, ...]
    rows: Sequence[Sequence[Cell]]
    note: str = ""
    total: int | None = None
    wide: frozenset[str] = field(default_factory=frozenset)  # columns shown wide (names, summaries)
    #: rows streamed after ``rows`` (each call a fresh pass, e.g. a server-side cursor), for the file
    #: writers (:func:`write_report_files`, :func:`write_xlsx_book`); give ``total`` and ``numeric`` with it
    source: Callable[[], Iterable[Sequence[Cell]]] | None = None
    numeric: tuple[bool, ...] | None = None  # which columns are numbers (else guessed from the rows)

    @property
    def count(self) -> int:
        return len(self.rows) if self.total is None else self.total


def _env() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(
        loader=PackageLoader("daemon.reports", "templates"), autoescape=select_autoescape(["j2", "html"])
    )


def _html_rows(rows: Sequence[Sequence[Cell]], numeric: Sequence[bool]) -> str:
    """The table body, escaped, built here rather than in the template: 500,000 cells in well under 1 s."""
    from markupsafe import escape

    head = tuple('<td class="num">' if n else "<td>" for n in numeric)
    special = _HTML_SPECIAL.search
    out = []
    for row in rows:
        # a row of integers and text without & < > " ' (its own escape) in one format of its shape
        shape = _html_shape(head, tuple(map(type, row)))
        if shape is not None and not special(shape[1](row)):
            out.append(shape[0](None, row))
            continue
        # else cell by cell: only a text with something to escape pays for markupsafe
        out.append("<tr>" + "".join([f"{h}{(escape(v) if special(v) else v) if isinstance(v, str) else v}</td>"
                                     for h, v in zip(head, row, strict=False)]) + "</tr>")
    return "\n".join(out)


@lru_cache(maxsize=1024)
def _html_shape(
    head: tuple[str, ...], types: tuple[type, ...]
) -> tuple[Callable[[object, Sequence[object]], str], Callable[[Sequence[Cell]], str]] | None:
    """The row of ``types`` (integers and text only, else None) under ``head`` (a :func:`format_function` of
    None and the cells), as the
    cell-by-cell path writes it when no text needs escaping, and how to join its text cells to check that
    (tests/test_month_end_stream.py holds the two paths equal)."""
    from daemon.reports.xlsx_writer import format_function

    if not all(t is int or t is str for t in types):
        return None
    template = "<tr>" + "".join(f"{h}{{{i}}}</td>" for i, (h, _) in enumerate(zip(head, types, strict=False), 1))
    template += "</tr>"
    text_at = [i for i, t in enumerate(types[: len(head)]) if t is str]

    def texts(cells: Sequence[Cell]) -> str:
        return "".join([cells[i] for i in text_at])  # type: ignore[misc]

    if len(text_at) > 1:
        pick = itemgetter(*text_at)
        texts = lambda cells: "".join(pick(cells))  # noqa: E731
    return format_function(template), texts


_HTML_SPECIAL = re.compile("[&<>\"']")  # what markupsafe.escape replaces


def render_html_page(
    title: str, subtitle: str, paragraphs: Sequence[str], tables: Sequence[ReportTable], *,
    limit: int | None = None, footer: str = "",
) -> str:
    """A self-contained printable page (inline CSS). ``limit`` caps each table's rows, with a note."""
    from markupsafe import Markup

    shown = []
    for t in tables:
        rows = t.rows if limit is None else t.rows[:limit]
        more = t.count - len(rows)
        numeric = _numeric(t, rows)
        shown.append({
            "title": t.title, "columns": t.columns, "has_rows": bool(rows), "note": t.note,
            "body": Markup(_html_rows(rows, numeric)),  # noqa: S704 - every cell escaped in _html_rows
            "more": f"（仅列出前 {len(rows)} 条，共 {t.count} 条，完整清单见附件）" if more > 0 else "",
        })
    return str(_env().get_template("report.html.j2").render(
        title=title, subtitle=subtitle, paragraphs=paragraphs, tables=shown, footer=footer,
    ))


def _numeric(t: ReportTable, rows: Sequence[Sequence[Cell]]) -> list[bool]:
    if t.numeric is not None:
        return list(t.numeric)
    return [bool(rows) and all(isinstance(r[i], int) for r in rows[:50]) for i in range(len(t.columns))]


def _html_skeleton(
    title: str, subtitle: str, paragraphs: Sequence[str], tables: Sequence[ReportTable], footer: str
) -> tuple[str, list[str]]:
    """The page with a sentinel where each table's body goes, and the sentinels."""
    from markupsafe import Markup

    marks = [f"\x00table-body-{i}\x00" for i in range(len(tables))]
    shown = [{
        "title": t.title, "columns": t.columns, "has_rows": bool(t.rows) or t.count > 0, "note": t.note,
        "body": Markup(mark), "more": "",  # noqa: S704 - a sentinel, replaced by escaped rows
    } for t, mark in zip(tables, marks, strict=True)]
    page = str(_env().get_template("report.html.j2").render(
        title=title, subtitle=subtitle, paragraphs=paragraphs, tables=shown, footer=footer,
    ))
    return page, marks


class _HtmlBody:
    """A table's rows written into an open HTML file 2,000 at a time, escaped as :func:`_html_rows`."""

    def __init__(self, fh: Any, numeric: Sequence[bool]) -> None:
        self.fh, self.numeric, self.block, self.first = fh, numeric, list[Sequence[Cell]](), True

    def add(self, row: Sequence[Cell]) -> None:
        self.block.append(row)
        if len(self.block) == _HTML_BLOCK:
            self.flush()

    def flush(self) -> None:
        if self.block:
            self.fh.write(("" if self.first else "\n").encode() + _html_rows(self.block, self.numeric).encode())
            self.block.clear()
            self.first = False


def write_report_files(  # noqa: PLR0917 - write_html_page's arguments and the workbook's path
    html_path: Path, xlsx_path: Path, title: str, subtitle: str, paragraphs: Sequence[str],
    tables: Sequence[ReportTable], footer: str = "",
) -> None:
    """:func:`render_html_page` (no ``limit``) and :func:`write_xlsx_book`, written atomically in one pass:
    each row read once from its ``source`` (one database read) goes into the sheet and into the page, 2,000
    rows at a time, so neither file is ever one string in memory."""
    from daemon.reports.xlsx_writer import PrintSetup, write_workbook

    page, marks = _html_skeleton(title, subtitle, paragraphs, tables, footer)

    def write(html: Any) -> None:
        rest = [page]

        def body(t: ReportTable, mark: str) -> Iterable[Sequence[Cell]]:  # sheets are written in table order
            head, rest[0] = rest[0].split(mark, 1)
            html.write(head.encode())
            out = _HtmlBody(html, _numeric(t, t.rows))
            block = out.block
            for row in _table_rows(t):
                block.append(row)  # out.add(row), without a call a row
                if len(block) == _HTML_BLOCK:
                    out.flush()
                yield row
            out.flush()

        sheets = _sheets(tables, stream=True)
        for sheet, t, mark in zip(sheets, tables, marks, strict=True):
            sheet.body = body(t, mark)
        write_atomic_with(xlsx_path, lambda fh: write_workbook(fh, sheets, [PrintSetup()] * len(sheets)))
        html.write(rest[0].encode())

    write_atomic_with(html_path, write)


_HTML_BLOCK = 2_000


def _table_rows(t: ReportTable) -> Iterable[Sequence[Cell]]:
    return chain(t.rows, t.source()) if t.source is not None else iter(t.rows)


def _sheets(tables: Sequence[ReportTable], *, stream: bool) -> list[Any]:
    from daemon.reports.xlsx_writer import STYLE_BOLD, STYLE_TITLE, Sheet

    sheets = []
    for t in tables:
        sheet = Sheet(t.sheet, widths=[40 if c in t.wide else max(10, 2 * len(c) + 4) for c in t.columns],
                      freeze_rows=2)
        sheet.append([t.title], STYLE_TITLE)
        sheet.append(t.columns, STYLE_BOLD)
        if stream:
            sheet.body = _table_rows(t)
            listed = t.count
        else:
            sheet.rows.extend((0, row) for row in t.rows)
            listed = len(t.rows)
        if t.total is not None and t.total > listed:
            sheet.tail.append((0, [f"（仅列出 {listed} 条，共 {t.total} 条）"]))
        if t.note:
            sheet.tail += [(0, []), (0, [t.note])]
        sheets.append(sheet)
    return sheets


def render_xlsx_book(tables: Sequence[ReportTable]) -> bytes:
    """One sheet per table (title row, header row, data, then the notes), header rows frozen; printed on
    A4 landscape, fitted to the page width, with the title and header rows repeated on every page."""
    from daemon.reports.xlsx_writer import PrintSetup, printed_workbook_bytes

    return printed_workbook_bytes([(sheet, PrintSetup()) for sheet in _sheets(tables, stream=False)])


def write_xlsx_book(path: Path, tables: Sequence[ReportTable]) -> None:
    """:func:`render_xlsx_book` written to ``path`` atomically, each table's ``source`` streamed into its
    sheet: a workbook of a million rows in a bounded amount of memory."""
    from daemon.reports.xlsx_writer import PrintSetup, write_workbook

    sheets = _sheets(tables, stream=True)
    write_atomic_with(path, lambda fh: write_workbook(fh, sheets, [PrintSetup()] * len(sheets)))


@dataclass
class MarkdownList:
    """A list section of a WeCom message: heading, items (best first), and how to say what was left out."""

    heading: str
    items: Sequence[str]
    total: int | None = None  # items may already be a prefix of a longer list
    empty: str = "无"
    more: Callable[[int], str] = field(default=lambda n: f"……另有 {n} 条，见完整清单")

    @property
    def count(self) -> int:
        return len(self.items) if self.total is None else self.total


def fit_markdown(
    head: Sequence[str], lists: Sequence[MarkdownList], footer: str, *, limit: int = WECOM_MARKDOWN_LIMIT,
    start: int = 10,
) -> tuple[str, bool]:
    """Markdown within ``limit`` UTF-8 bytes: each list shows as many items as fit (at most ``start``),
    trimming the longest lists first. Returns (markdown, truncated)."""
    caps = [min(start, len(ls.items)) for ls in lists]

    def build() -> str:
        lines = list(head)
        for ls, cap in zip(lists, caps, strict=True):
            lines += ["", ls.heading]
            if not ls.count:
                lines.append(ls.empty)
                continue
            lines += ls.items[:cap]
            if ls.count > cap:
                lines.append(ls.more(ls.count - cap))
        lines += ["", footer]
        return "\n".join(lines)

    text = build()
    while len(text.encode()) > limit and any(caps):
        longest = max(range(len(caps)), key=lambda i: caps[i])
        caps[longest] -= 1
        text = build()
    if len(text.encode()) > limit:  # even the headings do not fit: cut at a line boundary
        data = text.encode()[: limit - len(footer.encode()) - 8]
        text = data.decode(errors="ignore").rsplit("\n", 1)[0] + "\n……\n" + footer
    truncated = any(cap < ls.count for cap, ls in zip(caps, lists, strict=True))
    return text, truncated


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so a reader (or a second daemon
    instance writing the same report) never sees half a file."""
    write_atomic_with(path, lambda fh: fh.write(data))


def write_atomic_with(path: Path, write: Callable[[Any], object]) -> None:
    """:func:`write_atomic` of what ``write(file)`` writes into the open (binary) temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_filename(text: str) -> str:
    """A file-name part from free text (a unit name): no path separators or control characters."""
    cleaned = "".join("_" if ch in '/\\:*?"<>|' or ord(ch) < 32 else ch for ch in text).strip(" .")
    return cleaned[:80] or "_"
