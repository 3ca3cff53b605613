"""Render a :class:`~daemon.reports.ranking.MonthlyRanking` as Markdown, HTML or XLSX, in Chinese.

The three formats share one description of the tables (:func:`ranking_tables`), so a column added once
appears everywhere. Values stay typed (int, Decimal fraction, Decimal score) until a format shows them:
text formats print ``99.22%`` and ``10.12``; XLSX keeps numbers with a percent or 0.00 number format.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from daemon.core.timeutil import to_local
from daemon.escaping import markdown_text
from daemon.reports.ranking import MonthlyRanking, RankedCase, UnitScore

Kind = Literal["text", "int", "pct", "score"]
Value = str | int | Decimal

SATISFACTION_LABELS = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}


@dataclass(frozen=True)
class Table:
    title: str
    sheet: str  # XLSX sheet name (<= 31 characters)
    columns: tuple[tuple[str, Kind], ...]
    rows: tuple[tuple[Value, ...], ...]
    note: str = ""


def fmt(value: Value, kind: Kind) -> str:
    """A value as the bulletins print it: 99.22%, 10.12, 0.28."""
    if kind == "pct" and isinstance(value, Decimal):
        return f"{(value * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}%"
    if kind == "score" and isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return str(value)


def title(ranking: MonthlyRanking) -> str:
    return f"{ranking.year} 年 {ranking.month} 月 12345 热线承办单位“评优评差”情况"


def summary(ranking: MonthlyRanking) -> str:
    as_of = to_local(ranking.as_of).strftime("%Y-%m-%d %H:%M")
    state = "" if ranking.final else "（月中数据，非最终结果）"
    completion = (
        fmt(Decimal(ranking.total_closed) / ranking.total_dispatched, "pct")
        if ranking.total_dispatched
        else "-"
    )
    satisfaction = (
        fmt(Decimal(ranking.total_satisfied) / ranking.total_rated, "pct") if ranking.total_rated else "-"
    )
    return (
        f"统计截至 {as_of}{state}。本月共交办 {ranking.total_dispatched} 件，办结 {ranking.total_closed} 件，"
        f"办结率 {completion}；评价 {ranking.total_rated} 件，满意 {ranking.total_satisfied} 件，"
        f"满意率 {satisfaction}；参与排名承办单位 {len(ranking.units)} 家。"
    )


def formula_note(ranking: MonthlyRanking) -> str:
    c = ranking.config
    high = f"{c.high_star_min} 星及以上" if c.high_star_min is not None else "不计"
    on_time = "反馈量" if c.on_time_basis == "fed_back" else "（反馈量 + 未反馈已超期量）"
    satisfied = "满意 + 基本满意" if c.basically_satisfied_counts else "满意"
    return (
        f"注：总分 = {c.satisfaction_weight}×满意率 + {c.on_time_weight}×及时办结率 + "
        f"{c.completion_weight}×办结率 + 加分 − 减分，四舍五入到 0.01。"
        f"满意率 = 满意量（{satisfied}）/ 总评星量；办结率 = 办结量 / 交办量；"
        f"及时办结率 = 按时反馈量 / {on_time}。"
        f"加分：五星件每件 {c.five_star_bonus}，疑难件每件 {c.difficult_bonus}，"
        f"高星件（{high}）每件 {c.high_star_bonus}；"
        f"减分：{c.penalty_stars_below} 星以下件每件 {c.low_star_penalty}，超期件每件 {c.overdue_penalty}。"
    )


def _unit_columns(ranking: MonthlyRanking, first: str = "名次") -> tuple[tuple[str, Kind], ...]:
    c = ranking.config
    return (
        (first, "int"),
        ("受理单位", "text"),
        ("交办总量", "int"),
        ("办结总量", "int"),
        (f"满意率 (权重{c.satisfaction_weight})", "pct"),
        (f"及时办结率 (权重{c.on_time_weight})", "pct"),
        (f"办结率 (权重{c.completion_weight})", "pct"),
        ("加分", "score"),
        ("减分", "score"),
        ("总分", "score"),
    )


def _unit_row(position: int, u: UnitScore) -> tuple[Value, ...]:
    return (
        position,
        u.unit,
        u.dispatched,
        u.closed,
        u.satisfaction_rate,
        u.on_time_rate,
        u.completion_rate,
        u.bonus,
        u.penalty,
        u.score,
    )


def _status(case: RankedCase, ranking: MonthlyRanking) -> str:
    if case.closed_at is not None and case.closed_at <= ranking.as_of:
        return "已结案"
    if case.fed_back_at is not None and case.fed_back_at <= ranking.as_of:
        return "已反馈"
    return "跟踪"


def _case_rows(
    cases: tuple[RankedCase, ...], ranking: MonthlyRanking, stars: bool
) -> tuple[tuple[Value, ...], ...]:
    return tuple(
        (
            i,
            c.number,
            c.summary or "",
            c.unit,
            (str(c.stars) if c.stars is not None else "-")
            if stars
            else SATISFACTION_LABELS.get(str(c.satisfaction), "-"),
            _status(c, ranking),
        )
        for i, c in enumerate(cases, start=1)
    )


def ranking_tables(ranking: MonthlyRanking) -> list[Table]:
    """Every section's table, in the bulletin's order."""
    c = ranking.config
    tables = [
        Table(
            "一、受理及办理情况（一）从管辖属地看",
            "属地",
            (
                ("属地", "text"),
                ("受理量", "int"),
                ("占比", "pct"),
                ("办结率", "pct"),
                ("满意件", "int"),
                ("满意率", "pct"),
            ),
            tuple(
                (g.name, g.dispatched, g.share, g.completion_rate, g.satisfied, g.satisfaction_rate)
                for g in ranking.districts
            ),
        ),
        Table(
            "（二）从涉及领域看",
            "领域",
            (("涉及领域", "text"), ("受理量", "int"), ("占受理总量", "pct")),
            tuple((g.name, g.dispatched, g.share) for g in ranking.domains),
        ),
        Table(
            f"表一：“十佳”承办单位（前 {c.top_n} 名）",
            "十佳",
            _unit_columns(ranking),
            tuple(_unit_row(u.rank, u) for u in ranking.best),
        ),
        Table(
            f"表二：“较差”承办单位（后 {c.bottom_n} 名，名次 1 为最差）",
            "较差",
            _unit_columns(ranking),
            tuple(_unit_row(i, u) for i, u in enumerate(ranking.worst, start=1)),
        ),
        Table(
            "附表：全部承办单位得分及加减分明细",
            "全部单位",
            (
                *_unit_columns(ranking),
                ("五星件", "int"),
                ("疑难件", "int"),
                ("高星件", "int"),
                (f"{c.penalty_stars_below}星以下件", "int"),
                ("超期件", "int"),
                ("省平台交办件", "int"),
            ),
            tuple(
                (
                    *_unit_row(u.rank, u),
                    u.five_star,
                    u.difficult,
                    u.high_star,
                    u.below_four_star,
                    u.overdue,
                    u.provincial,
                )
                for u in ranking.units
            ),
            formula_note(ranking),
        ),
        Table(
            "提请约谈承办单位",
            "约谈",
            (
                ("名次", "int"),
                ("受理单位", "text"),
                ("总分", "score"),
                ("省平台交办件", "int"),
                ("原因", "text"),
            ),
            tuple(
                (
                    u.rank,
                    u.unit,
                    u.score,
                    u.provincial,
                    "“较差”单位"
                    if u in ranking.worst
                    else f"办理省平台交办件 {c.summon_provincial_min} 件以上且排名后 {c.summon_bottom_n} 位",
                )
                for u in ranking.summoned
            ),
        ),
        Table(
            f"三、突出问题（一）低星件汇总（{c.low_star_max} 星及以下，需“回头看”）",
            "低星件",
            (
                ("序号", "int"),
                ("工单编号", "text"),
                ("问题摘要", "text"),
                ("办理部门", "text"),
                ("总评星", "text"),
                ("办理状态", "text"),
            ),
            _case_rows(ranking.low_star_cases, ranking, stars=True),
        ),
        Table(
            "（二）不满意件汇总（需“回头看”）",
            "不满意件",
            (
                ("序号", "int"),
                ("工单编号", "text"),
                ("问题摘要", "text"),
                ("办理部门", "text"),
                ("满意度", "text"),
                ("办理状态", "text"),
            ),
            _case_rows(ranking.dissatisfied_cases, ranking, stars=False),
        ),
    ]
    if ranking.forecast is not None:
        f = ranking.forecast
        heading = {u.unit for u in f.heading_for_worst}
        tables.append(
            Table(
                f"四、月中预测（本月已过 {fmt(f.elapsed_fraction, 'pct')}）",
                "月中预测",
                (
                    ("预测名次", "int"),
                    ("受理单位", "text"),
                    ("当前总分", "score"),
                    ("预计月末总分", "score"),
                    ("预警", "text"),
                ),
                tuple(
                    (i, u.unit, u.score, u.projected_score, "可能“较差”" if u.unit in heading else "")
                    for i, u in enumerate(f.units, start=1)
                ),
                "预测方法：满意率、及时办结率保持当前水平；办结率只计已到期或已办结的工单；"
                "加分、减分按本月已过天数的比例线性外推到月末。",
            )
        )
    return tables


def render_markdown(ranking: MonthlyRanking) -> str:
    """The ranking as Markdown (for WeCom messages and e-mail)."""
    lines = [f"# {title(ranking)}", "", summary(ranking), ""]
    for table in ranking_tables(ranking):
        lines += [f"## {table.title}", ""]
        if not table.rows:
            lines += ["（无）", ""]
        else:
            lines.append("| " + " | ".join(name for name, _ in table.columns) + " |")
            lines.append(
                "|" + "|".join("---:" if kind != "text" else "---" for _, kind in table.columns) + "|"
            )
            for row in table.rows:
                cells = (  # unit names are data: shown as text (daemon/escaping.py), a "|" cannot split a cell
                    markdown_text(fmt(v, kind)) for v, (_, kind) in zip(row, table.columns, strict=True)
                )
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        if table.note:
            lines += [table.note, ""]
    return "\n".join(lines)


def render_html(ranking: MonthlyRanking) -> str:
    """A self-contained, printable HTML page (inline CSS, no external resources)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("daemon.reports", "templates"), autoescape=select_autoescape(["j2", "html"])
    )
    env.filters["fmt"] = fmt
    template = env.get_template("ranking.html.j2")
    return template.render(title=title(ranking), summary=summary(ranking), tables=ranking_tables(ranking))


def render_xlsx(ranking: MonthlyRanking) -> bytes:
    """An XLSX workbook: one sheet per section, Chinese headers, numbers kept as numbers.

    Written by the one XLSX writer of every report, which writes a unit name such as ``=HYPERLINK(..)``
    as text, never as a formula.
    """
    from daemon.reports.xlsx_writer import (
        STYLE_BOLD,
        STYLE_DECIMAL,
        STYLE_PERCENT,
        STYLE_PLAIN,
        STYLE_TITLE,
        Sheet,
        workbook_bytes,
    )

    kind_style = {"pct": STYLE_PERCENT, "score": STYLE_DECIMAL}
    sheets = []
    for table in ranking_tables(ranking):
        widths = [36 if kind == "text" and name in {"受理单位", "问题摘要"} else 14 for name, kind in table.columns]
        sheet = Sheet(table.sheet[:31], widths=widths, freeze_rows=2)
        sheet.append([table.title], STYLE_TITLE)
        sheet.append([name for name, _ in table.columns], STYLE_BOLD)
        styles = [kind_style.get(kind, STYLE_PLAIN) for _, kind in table.columns]
        for row in table.rows:
            sheet.append(list(row), styles)
        if table.note:
            sheet.append([])
            sheet.append([table.note])
        sheets.append(sheet)
    return workbook_bytes(sheets)
