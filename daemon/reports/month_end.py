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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Connection, and_, exists, or_, select

from daemon.core.calendar import WorkCalendar
from daemon.core.cases import FINISHED_STATUSES
from daemon.core.rule_schema import MonthEndSettings
from daemon.core.timeutil import LOCAL_TZ, to_local
from daemon.escaping import markdown_text as md
from daemon.reports.digest import OPEN
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
)
from daemon.storage.models import case_history, cases

CARRY_OVER_CATCH_UP_WORKING_DAYS = 2


# --- which days (pure) ------------------------------------------------------------------------------------


def month_last_day(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + month // 12, month % 12 + 1)


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


# --- what they list -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacklogCase:
    number: str
    summary: str | None
    unit: str
    received_at: datetime
    due_at: datetime
    provisional: bool
    carried: bool  # received before the month in question (上月及以前结存)
    overdue: bool


def open_at(instant: datetime) -> ColumnElement[bool]:
    """Cases that were open at ``instant`` (aware), from the stored instants and the case history, whatever
    happened since: received before it, not fed back and not closed before it. A finished status without
    an instant (退件, or 已办结 without 办结时间) counts from when the history saw the status change; a case
    first imported already finished, with no instant, counts as finished before."""
    c, h = cases.c, case_history.c
    finished = sorted(s.value for s in FINISHED_STATUSES)
    status_changed_since = exists().where(
        h.case_id == c.id, h.field == "status", h.new_value == c.status, h.at >= instant)
    return and_(
        c.received_at < instant,
        or_(c.fed_back_at.is_(None), c.fed_back_at >= instant),
        or_(c.closed_at.is_(None), c.closed_at >= instant),
        or_(c.status.not_in(finished), c.fed_back_at >= instant, c.closed_at >= instant, status_changed_since),
    )


def backlog(
    conn: Connection, *, year: int, month: int, now: datetime, include_carried: bool = True,
    at_month_end: bool = False,
) -> dict[str, list[BacklogCase]]:
    """Open cases per unit received in ``year``-``month`` (and, with ``include_carried``, earlier), oldest
    first; units in name order. Open now (``now``), or with ``at_month_end`` open at 24:00 of the month's
    last day (whenever it is asked: a case closed since still counts), overdue as of that instant."""
    start = datetime(year, month, 1, tzinfo=LOCAL_TZ)
    end = datetime(*next_month(year, month), 1, tzinfo=LOCAL_TZ)
    c = cases.c
    still_open = open_at(end) if at_month_end else OPEN
    if at_month_end:
        now = min(now, end)
    cond = and_(still_open, c.received_at < end, *([] if include_carried else [c.received_at >= start]))
    rows = conn.execute(
        select(c.number, c.summary, c.unit, c.received_at, c.due_at, c.provisional)
        .where(cond).order_by(c.unit, c.received_at, c.number)
    )
    out: dict[str, list[BacklogCase]] = {}
    for r in rows:
        out.setdefault(r.unit, []).append(BacklogCase(
            r.number, r.summary, r.unit, r.received_at, r.due_at, bool(r.provisional),
            carried=r.received_at < start, overdue=r.due_at <= now,
        ))
    return out


# --- what they say -----------------------------------------------------------------------------------------

_CASE_COLUMNS = ("序号", "工单编号", "问题摘要", "承办单位", "受理时间", "办理期限", "类别", "是否超期")


def _case_rows(items: list[BacklogCase]) -> list[tuple[int | str, ...]]:
    return [
        (i, c.number, c.summary or "", c.unit, local_text(c.received_at), due_text(c.due_at, c.provisional),
         "上月及以前结存" if c.carried else "本月受理", "已超期" if c.overdue else "")
        for i, c in enumerate(items, start=1)
    ]


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
             f"截至 {local_text(now)}，贵单位尚有 {len(items)} 件未办结（本月受理 {this_month} 件，"
             f"上月及以前结存 {carried} 件，其中已超期 {overdue} 件），请在月底前办结并反馈。")
    def line(i: int, c: BacklogCase, esc: Callable[[str], str]) -> str:
        return (f"{i}. {esc(c.number)}｜受理 {local_text(c.received_at)[5:]}｜期限 "
                f"{due_text(c.due_at, c.provisional)[5:]}{'｜已超期' if c.overdue else ''}"
                f"{'｜结存' if c.carried else ''}｜{esc(clip(c.summary, 20))}")

    lines = [line(i, c, str) for i, c in enumerate(items, start=1)]
    md_lines = [line(i, c, md) for i, c in enumerate(items[:200], start=1)]  # citizen text as text
    markdown, truncated = fit_markdown(
        [f"# 月底清零提醒：{md(unit)}", "", intro],
        [MarkdownList("**待办结工单**（受理时间早的在前）", md_lines, total=len(lines),
                      more=lambda n: f"……另有 {n} 件，完整清单见附件")],
        "请逐件核实办理进度，确需延期的按程序申请。", start=200,
    )
    text = "\n".join([subject, intro, *lines[:20], *([f"……另有 {len(lines) - 20} 件"] if len(lines) > 20 else [])])
    xlsx = None
    if truncated or len(lines) > 20:
        xlsx = render_xlsx_book([ReportTable(f"{unit} 月底清零待办结工单（截至 {local_text(now)}）", "待办结工单",
                                             _CASE_COLUMNS, _case_rows(items), wide=frozenset({"问题摘要"}))])
    return RenderedReminder(subject, text, markdown, truncated, xlsx)


def render_unrouted_reminder(
    action: MonthEndAction, by_unit: dict[str, list[BacklogCase]], calendar: WorkCalendar, now: datetime
) -> RenderedReminder:
    """One reminder for the supervisors about the units that have no handler or leader to remind."""
    total = sum(len(v) for v in by_unit.values())
    subject = f"【月底清零提醒】{len(by_unit)} 个单位未配置联系人，共 {total} 件诉求待办结"
    intro = (f"{_when(action, calendar)}。以下承办单位未配置承办人/分管领导联系人，月底清零提醒转督办人员，"
             f"请督促其在月底前办结（截至 {local_text(now)}）。")
    ordered = sorted(by_unit.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    lines, md_lines = ([f"{i}. {esc(unit)}：{len(items)} 件（结存 {sum(c.carried for c in items)} 件，"
                        f"已超期 {sum(c.overdue for c in items)} 件）"
                        for i, (unit, items) in enumerate(ordered, start=1)] for esc in (str, md))
    markdown, truncated = fit_markdown(
        ["# 月底清零提醒（未配置联系人的单位）", "", intro],
        [MarkdownList("**各单位待办结工单**", md_lines, more=lambda n: f"……另有 {n} 个单位，见附件")],
        "逐件清单见附件。", start=200,
    )
    every = [c for unit in sorted(by_unit) for c in by_unit[unit]]
    xlsx = render_xlsx_book([ReportTable(f"未配置联系人单位的月底清零待办结工单（截至 {local_text(now)}）",
                                         "待办结工单", _CASE_COLUMNS, _case_rows(every),
                                         wide=frozenset({"问题摘要", "承办单位"}))])
    text = "\n".join([subject, intro, *lines[:20]])
    return RenderedReminder(subject, text, markdown, truncated, xlsx)


@dataclass(frozen=True)
class CarryOver:
    """The carry-over (结存) of ``year``-``month``: what was open at 24:00 of its last day (``as_of``),
    reported at ``now``."""

    year: int
    month: int
    now: datetime
    by_unit: dict[str, list[BacklogCase]]

    @property
    def as_of(self) -> datetime:
        return datetime(*next_month(self.year, self.month), 1, tzinfo=LOCAL_TZ)

    @property
    def as_of_text(self) -> str:
        return f"{self.year} 年 {self.month} 月 {month_last_day(self.year, self.month).day} 日 24:00"

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_unit.values())

    def unit_rows(self) -> list[tuple[str, int, int, int]]:
        """(unit, of the month, carried from earlier, overdue), most first."""
        rows = [(u, sum(not c.carried for c in v), sum(c.carried for c in v), sum(c.overdue for c in v))
                for u, v in self.by_unit.items()]
        return sorted(rows, key=lambda r: (-(r[1] + r[2]), r[0]))


def carry_over_tables(report: CarryOver) -> list[ReportTable]:
    units = report.unit_rows()
    every = [c for u, *_ in units for c in report.by_unit[u]]
    return [
        ReportTable(f"一、各承办单位结存情况（{report.month} 月底未清零）", "各单位结存",
                    ("序号", "承办单位", f"{report.month}月受理未办结", "更早结存未办结", "合计", "其中已超期"),
                    [(i, u, a, b, a + b, o) for i, (u, a, b, o) in enumerate(units, start=1)],
                    wide=frozenset({"承办单位"})),
        ReportTable("二、结存工单清单", "结存工单", _CASE_COLUMNS, _case_rows(every),
                    note="“本月受理”指结存月份内受理；期限后标注“暂定”的，依赖尚未发布的节假日安排。",
                    wide=frozenset({"问题摘要", "承办单位"})),
    ]


def carry_over_title(report: CarryOver) -> str:
    return f"{report.year} 年 {report.month} 月 12345 热线诉求结存情况通报"


def carry_over(conn: Connection, year: int, month: int, now: datetime) -> CarryOver:
    """The carry-over report of ``year``-``month`` as of its end, asked at ``now`` (aware)."""
    return CarryOver(year, month, now,
                     backlog(conn, year=year, month=month, now=now, include_carried=True, at_month_end=True))


def carry_over_summary(report: CarryOver) -> str:
    units = report.unit_rows()
    this_month = sum(r[1] for r in units)
    return (f"截至 {report.as_of_text}，{report.year} 年 {report.month} 月底未清零的诉求共 {report.total} 件，"
            f"涉及 {len(units)} 个承办单位，其中 {report.month} 月受理 {this_month} 件，更早结存 "
            f"{report.total - this_month} 件。请相关单位尽快办结，督办人员跟踪落实。")


def render_carry_over(report: CarryOver, *, hint: str) -> tuple[str, str, bytes, str]:
    """(markdown, html, xlsx, plain text) of the carry-over report."""
    tables = carry_over_tables(report)
    html = render_html_page(carry_over_title(report),
                            f"统计截至 {report.as_of_text}（北京时间），生成于 {local_text(report.now)}",
                            [carry_over_summary(report)], tables)
    lines, md_lines = ([f"{i}. {esc(u)}：{a + b} 件（{report.month}月 {a} 件，更早 {b} 件，超期 {o} 件）"
                        for i, (u, a, b, o) in enumerate(report.unit_rows(), start=1)] for esc in (str, md))
    markdown, _ = fit_markdown([f"# {carry_over_title(report)}", "", carry_over_summary(report)],
                               [MarkdownList("**各单位结存**", md_lines, more=lambda n: f"……另有 {n} 个单位")],
                               hint, start=100)
    text = "\n".join([carry_over_title(report), carry_over_summary(report), *lines[:10], hint])
    return markdown, html, render_xlsx_book(tables), text
