"""Render the monthly 通报 (:class:`~daemon.reports.ranking.MonthlyRanking`) as Markdown, HTML (A4 print,
inline SVG charts), PDF (optional, WeasyPrint), XLSX (A4 landscape, print titles, borders) and JSON.

Every format shows the same sections (:func:`daemon.reports.ranking_tables.ranking_sections`) under the
same masthead (:class:`~daemon.reports.ranking_tables.Masthead`); without one (tests, a quick look) a draft
masthead from the default settings is used.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from markupsafe import Markup

from daemon.config import MastheadConfig
from daemon.core.timeutil import to_local
from daemon.escaping import markdown_text
from daemon.reports import charts
from daemon.reports.ranking import MonthlyRanking
from daemon.reports.ranking_tables import (
    Chart,
    Kind,
    Masthead,
    Section,
    Table,
    Value,
    closing_lines,
    fmt,
    formula_note,
    ranking_sections,
    summary,
    title,
)
from daemon.reports.xlsx_writer import (
    BORDERED,
    STYLE_BOLD,
    STYLE_TITLE,
    Cell,
    PrintSetup,
    Sheet,
    excel_date,
    fitted_widths,
    printed_workbook_bytes,
    wrap_text,
    wrapped_heights,
)

__all__ = ["Masthead", "draft_masthead", "render_html", "render_json", "render_markdown", "render_pdf",
           "render_xlsx"]


def draft_masthead(ranking: MonthlyRanking) -> Masthead:
    """An unnumbered masthead from the default settings, dated at the ranking's as-of day."""
    return Masthead.of(MastheadConfig(), year=to_local(ranking.as_of).year, number=0,
                       issued_on=to_local(ranking.as_of).date(), draft=True)


def _masthead_lines(m: Masthead) -> list[str]:
    return [m.title, *([m.subtitle] if m.subtitle else []), m.office, m.issue_line]


def render_markdown(ranking: MonthlyRanking, masthead: Masthead | None = None) -> str:
    """The 通报 as Markdown (WeCom messages, e-mail): masthead, sections, tables, the closing block."""
    m = masthead or draft_masthead(ranking)
    lines = [*(f"**{line}**  " for line in _masthead_lines(m)), "", f"# {title(ranking)}", "", summary(ranking), ""]
    for section in ranking_sections(ranking):
        lines += [f"## {section.title}", "", *(p + "\n" for p in section.paragraphs)]
        for table in section.tables:
            lines += [f"### {table.title}", ""]
            if not table.rows:
                lines += ["（无）", ""]
            else:
                lines.append("| " + " | ".join(name for name, _ in table.columns) + " |")
                lines.append("|" + "|".join("---:" if k not in {"text", "date"} else "---" for _, k in table.columns)
                             + "|")
                for row in table.rows:
                    cells = (  # unit names and summaries are data: shown as text, a "|" cannot split a cell
                        markdown_text(fmt(v, k)) for v, (_, k) in zip(row, table.columns, strict=True)
                    )
                    lines.append("| " + " | ".join(cells) + " |")
                lines.append("")
            if table.note:
                lines += [table.note, ""]
    lines += ["---", *(f"{label}：{text}  " for label, text in closing_lines(m)), "", m.issued_text]
    return "\n".join(lines)


def _chart_svg(chart: Chart) -> Markup:
    svg = charts.pie_chart(chart.title, chart.items) if chart.kind == "pie" else charts.bar_chart(
        chart.title, chart.items)
    return Markup(svg)  # noqa: S704 - every label escaped in daemon.reports.charts


def render_html(ranking: MonthlyRanking, masthead: Masthead | None = None) -> str:
    """A self-contained HTML 通报 for A4 paper (inline CSS and SVG, no script, no external resource)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("daemon.reports", "templates"), autoescape=select_autoescape(["j2", "html"])
    )
    env.filters["fmt"] = fmt
    env.filters["svg"] = _chart_svg
    m = masthead or draft_masthead(ranking)
    return env.get_template("ranking.html.j2").render(
        masthead=m, title=title(ranking), summary=summary(ranking), sections=ranking_sections(ranking),
        closing=closing_lines(m), note=formula_note(ranking),
    )


def render_pdf(ranking: MonthlyRanking, masthead: Masthead | None = None) -> bytes:
    """The HTML 通报 as PDF through WeasyPrint (the optional ``pdf`` extra; no browser). Raises
    ModuleNotFoundError when WeasyPrint is not installed."""
    from weasyprint import HTML

    pdf: bytes = HTML(string=render_html(ranking, masthead)).write_pdf()
    return pdf


def _rate(value: Decimal | None) -> float | None:
    return None if value is None else float((value * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def render_json(ranking: MonthlyRanking) -> dict[str, Any]:
    """``{"month", "groups": [{"group", "ranked", "units": [{"unit", "rank", "score", "assigned", "closed",
    "satisfaction", "on_time", "closed_rate", "bonus", "penalty"}]}]}``; rates 0-100 (two decimals) or
    null where there is no denominator; rank is within the group."""
    return {
        "month": f"{ranking.year:04d}-{ranking.month:02d}",
        "final": ranking.final,
        "groups": [
            {
                "group": g.name,
                "ranked": g.ranked,
                "units": [
                    {
                        "unit": u.unit, "rank": u.rank, "score": float(u.score), "assigned": u.dispatched,
                        "closed": u.closed, "satisfaction": _rate(u.satisfaction_rate),
                        "on_time": _rate(u.on_time_rate), "closed_rate": _rate(u.completion_rate),
                        "bonus": float(u.bonus), "penalty": float(u.penalty),
                    }
                    for u in g.units
                ],
                "best": [u.unit for u in g.best],
                "worst": [u.unit for u in g.worst],
                "summoned": [u.unit for u in g.summoned],
            }
            for g in ranking.groups
        ],
    }


def _xlsx_cell(value: Value, kind: Kind) -> Cell:
    if value is None or isinstance(value, str):
        return fmt(value, kind)
    if isinstance(value, date):
        return excel_date(value)
    return value


_KIND_STYLE: dict[str, int] = {"text": BORDERED["text"], "int": BORDERED["int"], "pct": BORDERED["percent"],
                               "score": BORDERED["decimal"], "date": BORDERED["date"]}


def render_xlsx(ranking: MonthlyRanking, masthead: Masthead | None = None) -> bytes:
    """An XLSX workbook: a cover sheet (masthead, summary, 报送/抄送, date of issue), then one sheet per
    table: bordered cells, numbers as numbers (0.00%, 0.00), dates as date cells, widths that fit the text
    (CJK counts double), A4 landscape fitted to the page width with the title and header rows repeated.
    Text is written by the one XLSX writer, which never writes a formula."""
    m = masthead or draft_masthead(ranking)
    cover = Sheet("通报", widths=[14, 90])
    cover.append([m.title], STYLE_TITLE)
    for line in _masthead_lines(m)[1:]:
        cover.append([line], STYLE_BOLD)
    cover.append([title(ranking)], STYLE_TITLE)
    cover.append(["概况", summary(ranking)], [BORDERED["header"], BORDERED["text"]])
    for label, text in closing_lines(m):
        cover.append([label, text], [BORDERED["header"], BORDERED["text"]])
    cover.append(["印发日期", excel_date(m.issued_on)], [BORDERED["header"], BORDERED["date"]])
    heights = wrapped_heights([cells for _, cells in cover.rows], cover.widths)
    heights = {n: h for n, h in heights.items() if n > len(_masthead_lines(m)) + 1}  # titles run on
    sheets: list[tuple[Sheet, PrintSetup]] = [(cover, PrintSetup(title_rows=0, row_heights=heights))]
    for section in ranking_sections(ranking):
        for table in section.tables:
            sheet = _table_sheet(section, table)
            body = [cells for _, cells in sheet.rows[1 : 2 + len(table.rows)]]  # header and data rows
            sheets.append((sheet, PrintSetup(row_heights=wrapped_heights(body, sheet.widths, first_row=2, minimum=18))))
    return printed_workbook_bytes(sheets)


def _table_sheet(section: Section, table: Table) -> Sheet:
    header = [name for name, _ in table.columns]
    shown = [[fmt(v, k) for v, (_, k) in zip(row, table.columns, strict=True)] for row in table.rows]
    sheet = Sheet(table.sheet, widths=fitted_widths([header, *shown], minimum=8, maximum=40), freeze_rows=2)
    if section.appendix:
        heading = section.title
    else:
        heading = table.title if table.title.startswith("表") else f"{section.title} {table.title}"
    sheet.append([heading], STYLE_TITLE)
    sheet.append(header, BORDERED["header"])
    styles = [_KIND_STYLE[k] for _, k in table.columns]
    for row in table.rows:
        sheet.append([_xlsx_cell(v, k) for v, (_, k) in zip(row, table.columns, strict=True)], styles)
    if not table.rows:
        sheet.append(["（无）"])
    if table.note:
        sheet.append([])
        for line in wrap_text(table.note, sum(sheet.widths) - 2):
            sheet.append([line])
    return sheet
