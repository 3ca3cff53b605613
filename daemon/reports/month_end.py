"""Month-end zero backlog (月底清零): which days units are reminded, what each reminder lists, and the
carry-over report (结存) to supervisors on the first working day of the next month.

The bulletin asks every unit to clear, by the month's end, its open cases of the month and those carried
over from earlier months. The days are pure calendar arithmetic (``month_end:`` in sla_rules):
reminders ``N`` working days before the month's last working day (default 3 and 1) and on the morning of
that day; the carry-over report on the first working day of the next month. A make-up working day
(调休上班) counts as a working day, a holiday does not. Days are local (Asia/Shanghai) calendar days.

A reminder is due on its day from its time on (``reminder_time``), and only that day: the next reminder
supersedes a missed one. The carry-over report, once due, stays due for two more working days, so a
daemon that was down on the first working day still sends it (once), while a daemon installed in the
middle of a month does not send last month's.

A little over the house's 400 lines: the reminder schedule and the carry-over share the month's working-day
arithmetic; the streamed case lists are in backlog.py, their rows in case_list.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine

from daemon.core.calendar import WorkCalendar
from daemon.core.rule_spec import MonthEndSettings
from daemon.core.timeutil import LOCAL_TZ, to_local
from daemon.escaping import markdown_text as md
from daemon.reports.backlog import (
    BacklogCase,
    BacklogQuery,
    UnitBacklog,
    backlog_cases,
    backlog_raw_rows,
    backlog_units,
    next_month,
)
from daemon.reports.case_list import case_rows, listed_rows
from daemon.reports.tabular import (
    MarkdownList,
    ReportTable,
    clip,
    day_text,
    due_text,
    fit_markdown,
    local_text,
    render_html_page,
    render_xlsx_book,
    write_report_files,
    write_xlsx_book,
)

CARRY_OVER_CATCH_UP_WORKING_DAYS = 2


# --- which days (pure) ------------------------------------------------------------------------------------


def month_last_day(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def last_working_day(calendar: WorkCalendar, year: int, month: int) -> date:
    """The month's last working day (a make-up Saturday can be it: 2026-02-28)."""
    last = month_last_day(year, month)
    return last if calendar.is_workday(last) else calendar.sub_working_days(last, 1)


def first_working_day(calendar: WorkCalendar, year: int, month: int) -> date:
    """The month's first working day (2025-10-09 after 国庆, 2025-02-05 after 春节)."""
    return calendar.next_workday(date(year, month, 1), include=True)


def reminder_days(calendar: WorkCalendar, settings: MonthEndSettings, year: int, month: int) -> list[tuple[date, int]]:
    """(day, working days before the last working day) for the month's reminders, earliest first; 0 is the
    last working day itself. A day that would fall in the previous month is left out."""
    last = last_working_day(calendar, year, month)
    days: dict[date, int] = {}
    for n in settings.reminder_working_days_before:
        day = calendar.sub_working_days(last, n)
        if (day.year, day.month) == (year, month):
            days.setdefault(day, n)
    if settings.remind_on_last_working_day:
        days[last] = 0
    return sorted(days.items())


@dataclass(frozen=True)
class MonthEndAction:
    """One thing that is due: a reminder round to units, or the carry-over report to supervisors."""

    kind: Literal["month_end", "carry_over"]
    period: str  # the runs table's period: "2026-11/T-3" (reminders) or "2026-11" (carry-over of November)
    year: int  # the month whose backlog it is about
    month: int
    day: date  # the day it is scheduled for
    at: datetime  # from when it is due (aware, local)
    days_before: int  # reminders: working days before the last working day (0: that day); carry-over: -1


def scheduled_actions(
    calendar: WorkCalendar, settings: MonthEndSettings, year: int, month: int
) -> list[MonthEndAction]:
    """Every action about ``year``-``month``: its reminders, then its carry-over report (next month)."""
    if not settings.enabled:
        return []
    out = [
        MonthEndAction("month_end", f"{year:04d}-{month:02d}/T-{n}", year, month, day,
                       datetime.combine(day, settings.reminder_time.replace(tzinfo=None), tzinfo=LOCAL_TZ), n)
        for day, n in reminder_days(calendar, settings, year, month)
    ]
    if settings.carry_over_report:
        day = first_working_day(calendar, *next_month(year, month))
        at = datetime.combine(day, settings.carry_over_report_time.replace(tzinfo=None), tzinfo=LOCAL_TZ)
        out.append(MonthEndAction("carry_over", f"{year:04d}-{month:02d}", year, month, day, at, -1))
    return out


def due_actions(calendar: WorkCalendar, settings: MonthEndSettings, now: datetime) -> list[MonthEndAction]:
    """What is due at ``now`` (aware): today's reminder once its time has come, and last month's carry-over
    report from its day and time until the end of the month it is sent in."""
    today = to_local(now).date()
    due = []
    for action in scheduled_actions(calendar, settings, today.year, today.month):
        if action.kind == "month_end" and action.day == today and now >= action.at:
            due.append(action)
    for action in scheduled_actions(calendar, settings, *previous_month(today.year, today.month)):
        if action.kind == "carry_over" and now >= action.at and today <= calendar.add_working_days(
            action.day, CARRY_OVER_CATCH_UP_WORKING_DAYS
        ):
            due.append(action)
    return due


# --- what they say -----------------------------------------------------------------------------------------

_CASE_COLUMNS = ("序号", "工单编号", "问题摘要", "承办单位", "交办时间", "办理期限", "类别", "是否超期")


_CASE_NUMERIC = (True, *([False] * (len(_CASE_COLUMNS) - 1)))


def _case_rows(items: list[BacklogCase]) -> list[tuple[int | str, ...]]:
    return list(case_rows(items))


def _when(action: MonthEndAction, calendar: WorkCalendar) -> str:
    last = last_working_day(calendar, action.year, action.month)
    if action.days_before == 0:
        return f"今天 {day_text(last)}是本月最后一个工作日"
    return f"距本月最后一个工作日 {day_text(last)}还有 {action.days_before} 个工作日"


@dataclass(frozen=True)
class RenderedReminder:
    subject: str
    text: str
    markdown: str
    truncated: bool
    xlsx: bytes | None  # the unit's full list, when the message could not hold it


def render_reminder(
    action: MonthEndAction, unit: str, items: list[BacklogCase], calendar: WorkCalendar, now: datetime
) -> RenderedReminder:
    """One unit's reminder: its open cases of the month and carried over, oldest first."""
    this_month = sum(not c.carried for c in items)
    carried = len(items) - this_month
    overdue = sum(c.overdue for c in items)
    subject = f"【月底清零提醒】{unit}：{len(items)} 件诉求待办结"
    intro = (f"{_when(action, calendar)}。按要求，各承办单位每月月底把当月及上月结存的诉求案件全部清零。"
             f"截至 {local_text(now)}，贵单位尚有 {len(items)} 件未办结（本月交办 {this_month} 件，"
             f"上月及以前结存 {carried} 件，其中已超期 {overdue} 件），请在月底前办结并反馈。")
    def line(i: int, c: BacklogCase, esc: Callable[[str], str]) -> str:
        return (f"{i}. {esc(c.number)}｜交办 {local_text(c.received_at)[5:]}｜期限 "
                f"{due_text(c.due_at, c.provisional)[5:]}{'｜已超期' if c.overdue else ''}"
                f"{'｜结存' if c.carried else ''}｜{esc(clip(c.summary, 20))}")

    lines = [line(i, c, str) for i, c in enumerate(items, start=1)]
    md_lines = [line(i, c, md) for i, c in enumerate(items[:200], start=1)]  # citizen text as text
    markdown, truncated = fit_markdown(
        [f"# 月底清零提醒：{md(unit)}", "", intro],
        [MarkdownList("**待办结工单**（交办时间早的在前）", md_lines, total=len(lines),
                      more=lambda n: f"……另有 {n} 件，完整清单见附件")],
        "请逐件核实办理进度，确需延期的按程序申请。", start=200,
    )
    text = "\n".join([subject, intro, *lines[:20], *([f"……另有 {len(lines) - 20} 件"] if len(lines) > 20 else [])])
    xlsx = None
    if truncated or len(lines) > 20:
        xlsx = render_xlsx_book([ReportTable(f"{unit} 月底清零待办结工单（截至 {local_text(now)}）", "待办结工单",
                                             _CASE_COLUMNS, _case_rows(items), wide=frozenset({"问题摘要"}))])
    return RenderedReminder(subject, text, markdown, truncated, xlsx)


def _unrouted_message(
    action: MonthEndAction, units: list[UnitBacklog], calendar: WorkCalendar, now: datetime
) -> tuple[str, str, str, bool]:
    total = sum(u.total for u in units)
    subject = f"【月底清零提醒】{len(units)} 个单位未配置联系人，共 {total} 件诉求待办结"
    intro = (f"{_when(action, calendar)}。以下承办单位未配置承办人/分管领导联系人，月底清零提醒转督办人员，"
             f"请督促其在月底前办结（截至 {local_text(now)}）。")
    ordered = sorted(units, key=lambda u: (-u.total, u.unit))
    lines, md_lines = ([f"{i}. {esc(u.unit)}：{u.total} 件（结存 {u.carried} 件，已超期 {u.overdue} 件）"
                        for i, u in enumerate(ordered, start=1)] for esc in (str, md))
    markdown, truncated = fit_markdown(
        ["# 月底清零提醒（未配置联系人的单位）", "", intro],
        [MarkdownList("**各单位待办结工单**", md_lines, more=lambda n: f"……另有 {n} 个单位，见附件")],
        "逐件清单见附件。", start=200,
    )
    return subject, "\n".join([subject, intro, *lines[:20]]), markdown, truncated


def _unrouted_table(now: datetime, rows: list[tuple[int | str, ...]],
                    source: Callable[[], Iterator[tuple[int | str, ...]]] | None = None,
                    total: int | None = None) -> ReportTable:
    return ReportTable(f"未配置联系人单位的月底清零待办结工单（截至 {local_text(now)}）", "待办结工单",
                       _CASE_COLUMNS, rows, wide=frozenset({"问题摘要", "承办单位"}), source=source, total=total,
                       numeric=_CASE_NUMERIC)


def _unit_counts(unit: str, items: list[BacklogCase]) -> UnitBacklog:
    carried = sum(c.carried for c in items)
    return UnitBacklog(unit, len(items) - carried, carried, sum(c.overdue for c in items))


def render_unrouted_reminder(
    action: MonthEndAction, by_unit: dict[str, list[BacklogCase]], calendar: WorkCalendar, now: datetime
) -> RenderedReminder:
    """One reminder for the supervisors about the units that have no handler or leader to remind."""
    counts = [_unit_counts(unit, items) for unit, items in by_unit.items()]
    subject, text, markdown, truncated = _unrouted_message(action, counts, calendar, now)
    every = [c for unit in sorted(by_unit) for c in by_unit[unit]]
    xlsx = render_xlsx_book([_unrouted_table(now, _case_rows(every))])
    return RenderedReminder(subject, text, markdown, truncated, xlsx)


def write_unrouted_reminder(  # noqa: PLR0917 - the reminder's inputs and where its list goes
    action: MonthEndAction, units: list[UnitBacklog], calendar: WorkCalendar, now: datetime,
    conn: Connection, query: BacklogQuery, path: Path,
) -> RenderedReminder:
    """:func:`render_unrouted_reminder` from the units' counts, its full list of the ``units``' cases
    streamed from the store into the workbook at ``path`` (``xlsx`` is None: the file is written)."""
    subject, text, markdown, truncated = _unrouted_message(action, units, calendar, now)
    names = {u.unit for u in units}

    def rows() -> Iterator[tuple[int | str, ...]]:
        return case_rows(c for c in backlog_cases(conn, query) if c.unit in names)

    write_xlsx_book(path, [_unrouted_table(now, [], rows, sum(u.total for u in units))])
    return RenderedReminder(subject, text, markdown, truncated, None)


@dataclass(frozen=True)
class CarryOver:
    """The carry-over (结存) of ``year``-``month``: what was open at 24:00 of its last day (``as_of``),
    reported at ``now``: the per-unit counts (aggregated in the database) and, from ``engine``, the cases
    streamed (:meth:`cases`, each pass on its own connection and server-side cursor), never all in memory."""

    year: int
    month: int
    now: datetime
    units: list[UnitBacklog]
    engine: Engine

    @property
    def query(self) -> BacklogQuery:
        return BacklogQuery(self.year, self.month, self.now, include_carried=True, at_month_end=True)

    @property
    def as_of(self) -> datetime:
        return self.query.end

    @property
    def as_of_text(self) -> str:
        return f"{self.year} 年 {self.month} 月 {month_last_day(self.year, self.month).day} 日 24:00"

    @property
    def total(self) -> int:
        return sum(u.total for u in self.units)

    def cases(self) -> Iterator[BacklogCase]:
        """The carried-over cases, units most first (as :attr:`units`), each unit's oldest first."""
        with self.engine.connect() as conn:
            yield from backlog_cases(conn, self.query, units=[u.unit for u in self.units])

    def listed(self) -> Iterator[tuple[int | str, ...]]:
        """The case list's rows (序号 … 是否超期) in the order of :meth:`cases`, made from plain store rows."""
        with self.engine.connect() as conn:
            yield from listed_rows(backlog_raw_rows(conn, self.query, units=[u.unit for u in self.units]),
                                    self.query)

    @property
    def by_unit(self) -> dict[str, list[BacklogCase]]:
        """The cases per unit as lists (small stores, tests): the jobs stream :meth:`cases`."""
        out: dict[str, list[BacklogCase]] = {}
        for c in self.cases():
            out.setdefault(c.unit, []).append(c)
        return out

    def unit_rows(self) -> list[tuple[str, int, int, int]]:
        """(unit, of the month, carried from earlier, overdue), most first."""
        return [(u.unit, u.this_month, u.carried, u.overdue) for u in self.units]


def carry_over_tables(
    report: CarryOver, *, listed: int | None = None,
    source: Callable[[], Iterator[tuple[int | str, ...]]] | None = None,
) -> list[ReportTable]:
    """The report's two tables; the case list streamed from the store (``source``, by default every case),
    or with ``listed`` only its first ``listed`` rows (an e-mail body)."""
    units = report.unit_rows()
    if listed is None and source is None:
        def source() -> Iterator[tuple[int | str, ...]]:
            return report.listed()
    cases_table = ReportTable(
        "二、结存工单清单", "结存工单", _CASE_COLUMNS,
        [] if listed is None else list(islice(report.listed(), listed)),
        note="“本月交办”指结存月份内交办到承办单位（办理时限的起算时间）；期限后标注“暂定”的，依赖尚未发布的节假日安排。",
        total=report.total, wide=frozenset({"问题摘要", "承办单位"}), numeric=_CASE_NUMERIC,
        source=None if listed is not None else source,
    )
    return [
        ReportTable(f"一、各承办单位结存情况（{report.month} 月底未清零）", "各单位结存",
                    ("序号", "承办单位", f"{report.month}月交办未办结", "更早结存未办结", "合计", "其中已超期"),
                    [(i, u, a, b, a + b, o) for i, (u, a, b, o) in enumerate(units, start=1)],
                    wide=frozenset({"承办单位"})),
        cases_table,
    ]


def carry_over_title(report: CarryOver) -> str:
    return f"{report.year} 年 {report.month} 月 12345 热线诉求结存情况通报"


def carry_over(conn: Connection, year: int, month: int, now: datetime) -> CarryOver:
    """The carry-over report of ``year``-``month`` as of its end, asked at ``now`` (aware): the per-unit
    counts read on ``conn`` now, the cases streamed from its engine when rendered."""
    query = BacklogQuery(year, month, now, include_carried=True, at_month_end=True)
    return CarryOver(year, month, now, backlog_units(conn, query), conn.engine)


def carry_over_summary(report: CarryOver) -> str:
    units = report.unit_rows()
    this_month = sum(r[1] for r in units)
    return (f"截至 {report.as_of_text}，{report.year} 年 {report.month} 月底未清零的诉求共 {report.total} 件，"
            f"涉及 {len(units)} 个承办单位，其中 {report.month} 月交办 {this_month} 件，更早结存 "
            f"{report.total - this_month} 件。请相关单位尽快办结，督办人员跟踪落实。")


def _carry_over_subtitle(report: CarryOver) -> str:
    return f"统计截至 {report.as_of_text}（北京时间），生成于 {local_text(report.now)}"


@dataclass(frozen=True)
class CarryOverMessage:
    markdown: str
    html: str  # the e-mail body: the unit table and the first rows of the case list
    text: str


def write_carry_over(
    report: CarryOver, html_path: Path, xlsx_path: Path, *, hint: str, email_rows: int = 200
) -> CarryOverMessage:
    """Write the full report to ``html_path`` and ``xlsx_path`` (each streamed from the store, atomically)
    and return the message: Markdown, an e-mail HTML body listing ``email_rows`` cases, plain text."""
    title, subtitle, paragraphs = carry_over_title(report), _carry_over_subtitle(report), [carry_over_summary(report)]
    first: list[tuple[int | str, ...]] = []  # the e-mail body's rows, kept from the one pass over the cases

    def source() -> Iterator[tuple[int | str, ...]]:
        rows = report.listed()
        if email_rows > 0:
            for row in rows:
                first.append(row)
                yield row
                if len(first) == email_rows:
                    break
        yield from rows

    tables = carry_over_tables(report, source=source)
    write_report_files(html_path, xlsx_path, title, subtitle, paragraphs, tables)
    tables[1] = replace(tables[1], rows=first, source=None)
    html = render_html_page(title, subtitle, paragraphs, tables)
    markdown, text = _carry_over_markdown_text(report, hint)
    return CarryOverMessage(markdown, html, text)


def _carry_over_markdown_text(report: CarryOver, hint: str) -> tuple[str, str]:
    lines, md_lines = ([f"{i}. {esc(u)}：{a + b} 件（{report.month}月 {a} 件，更早 {b} 件，超期 {o} 件）"
                        for i, (u, a, b, o) in enumerate(report.unit_rows(), start=1)] for esc in (str, md))
    markdown, _ = fit_markdown([f"# {carry_over_title(report)}", "", carry_over_summary(report)],
                               [MarkdownList("**各单位结存**", md_lines, more=lambda n: f"……另有 {n} 个单位")],
                               hint, start=100)
    text = "\n".join([carry_over_title(report), carry_over_summary(report), *lines[:10], hint])
    return markdown, text


def render_carry_over(report: CarryOver, *, hint: str) -> tuple[str, str, bytes, str]:
    """(markdown, html, xlsx, plain text) of the carry-over report, all in memory: for small stores and
    tests; the job writes the files streamed (:func:`write_carry_over`)."""
    tables = carry_over_tables(report, listed=report.total)
    html = render_html_page(carry_over_title(report), _carry_over_subtitle(report), [carry_over_summary(report)],
                            tables)
    markdown, text = _carry_over_markdown_text(report, hint)
    return markdown, html, render_xlsx_book(tables), text
