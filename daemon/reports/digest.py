"""The daily overdue digest (每日超期通报) for supervisors, built from the store as of ``now``.

Work is proportional to what is overdue, not to what is open: every count (overview, per unit, month-end
progress) comes from one grouped SQL aggregate over the open cases; only the overdue rows, and capped
lists of late returns, catch-all cases and failed deliveries, are fetched. A case is open when it is
neither fed back, closed nor returned. "New overdue" means the deadline passed after the previous digest
(``digest_time`` on the previous working day). Deadlines are shown local (Asia/Shanghai) and marked 暂定
when they rely on a calendar year whose arrangement is not published. Rendering is in digest_render.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from daemon.calendar import DaySource, WorkCalendar
from daemon.models import cases, outbox
from daemon.rules import RuleSet
from daemon.store import _FINISHED
from daemon.timeutil import LOCAL_TZ, to_local

LIST_CAP = 500  # late returns, catch-all cases, failed deliveries: the newest this many are listed
FAILED_LOOKBACK = timedelta(days=7)

OPEN = and_(cases.c.status.not_in(sorted(_FINISHED)), cases.c.fed_back_at.is_(None), cases.c.closed_at.is_(None))


@dataclass(frozen=True)
class DigestWindow:
    """The instants a digest counts with (aware)."""

    now: datetime
    today: date  # local
    today_end: datetime  # 00:00 tomorrow: a deadline "today" is due_at in (now, today_end]
    next_workday: date
    next_workday_end: datetime
    since: datetime  # the previous digest: digest_time on the previous working day
    month_start: datetime

    @classmethod
    def at(cls, now: datetime, calendar: WorkCalendar, digest_time: time) -> DigestWindow:
        local = to_local(now)
        today = local.date()
        nxt = calendar.add_working_days(today, 1)
        prev = calendar.sub_working_days(today, 1)
        return cls(
            now=now,
            today=today,
            today_end=datetime.combine(today + timedelta(days=1), time(0), tzinfo=LOCAL_TZ),
            next_workday=nxt,
            next_workday_end=datetime.combine(nxt + timedelta(days=1), time(0), tzinfo=LOCAL_TZ),
            since=datetime.combine(prev, digest_time.replace(tzinfo=None), tzinfo=LOCAL_TZ),
            month_start=datetime(today.year, today.month, 1, tzinfo=LOCAL_TZ),
        )


@dataclass(frozen=True)
class UnitLine:
    """One unit's open cases (在办). ``longest_overdue_days``: whole working days since its oldest breach."""

    unit: str
    open: int
    overdue: int
    due_today: int
    due_next: int
    new_overdue: int
    provisional: int
    this_month: int  # open cases received this month (本月)
    carried: int  # open cases received before this month (结存)
    catch_all: int
    oldest_due_at: datetime | None
    longest_overdue_days: int


@dataclass(frozen=True)
class Overview:
    open: int
    due_today: int
    due_next: int  # due after now and by the end of the next working day (today's included)
    overdue: int
    new_overdue: int
    provisional: int
    this_month: int
    carried: int


@dataclass(frozen=True)
class OverdueCase:
    number: str
    summary: str | None
    unit: str
    rule_id: str
    rule_name: str
    status: str
    received_at: datetime
    due_at: datetime
    provisional: bool
    overdue_working_days: int  # whole working days after the deadline
    overdue_hours: int  # hours since the deadline (calendar time)


@dataclass(frozen=True)
class LateReturn:
    """A return (退件) asked for at or after its window's end: pending, or asked since the last digest."""

    number: str
    summary: str | None
    unit: str
    status: str
    received_at: datetime
    return_due_at: datetime
    return_requested_at: datetime
    late_hours: int


@dataclass(frozen=True)
class CatchAllCase:
    number: str
    summary: str | None
    unit: str
    source: str
    category: str
    received_at: datetime
    due_at: datetime
    provisional: bool


@dataclass(frozen=True)
class FailedDelivery:
    """A message that will not arrive (outbox failed / dead). ``mobile`` is already masked (尾号1234)."""

    kind: str
    case_number: str | None
    name: str
    role: str
    unit: str | None
    mobile: str | None
    channel: str
    status: str
    attempts: int
    error: str
    created_at: datetime


@dataclass(frozen=True)
class Digest:
    window: DigestWindow
    overview: Overview
    units: tuple[UnitLine, ...]  # worst first
    overdue: tuple[OverdueCase, ...]  # longest overdue first
    late_returns: tuple[LateReturn, ...]
    late_returns_total: int
    catch_all_rule: str  # the catch-all rules' names
    catch_all_total: int
    catch_all_kinds: tuple[tuple[str, str, int], ...]  # (source, category, open cases), most first
    catch_all: tuple[CatchAllCase, ...]  # newest first, at most LIST_CAP
    failed: tuple[FailedDelivery, ...]
    failed_total: int
    calendar_notice: str | None


def whole_working_days_after(due_at: datetime, now: datetime, calendar: WorkCalendar) -> int:
    """Working days lying entirely within [due_at, now), as local days (the engine's count of 超期工作日)."""
    due_local = to_local(due_at)
    first = due_local.date() + timedelta(days=0 if due_local.time() == time(0) else 1)
    last = to_local(now).date() - timedelta(days=1)
    if last < first:
        return 0
    return calendar.working_days_between(first - timedelta(days=1), last)


def build_digest(conn: Connection, rules: RuleSet, calendar: WorkCalendar, now: datetime, digest_time: time) -> Digest:
    """The digest as of ``now`` (aware); ``digest_time`` (local) places "since the previous digest"."""
    w = DigestWindow.at(now, calendar, digest_time)
    catch_ids = sorted(r.id for r in rules.rules if r.purpose == "resolve" and r.is_catch_all)
    units = _units(conn, w, calendar, catch_ids)
    overview = Overview(*(sum(getattr(u, f) for u in units) for f in (
        "open", "due_today", "due_next", "overdue", "new_overdue", "provisional", "this_month", "carried")))
    late, late_total = _late_returns(conn, w)
    kinds, catch_all = _catch_all(conn, catch_ids)
    failed, failed_total = _failed(conn, w)
    return Digest(
        window=w,
        overview=overview,
        units=units,
        overdue=_overdue(conn, w, rules, calendar),
        late_returns=late,
        late_returns_total=late_total,
        catch_all_rule="、".join(r.name for r in rules.rules if r.id in catch_ids),
        catch_all_total=sum(u.catch_all for u in units),
        catch_all_kinds=kinds,
        catch_all=catch_all,
        failed=failed,
        failed_total=failed_total,
        calendar_notice=calendar_notice(calendar, w.today, overview.provisional),
    )


def _count(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


def _units(conn: Connection, w: DigestWindow, calendar: WorkCalendar, catch_ids: list[str]) -> tuple[UnitLine, ...]:
    due = cases.c.due_at
    overdue = due <= w.now
    stmt = (
        select(
            cases.c.unit,
            func.count().label("open"),
            _count(overdue).label("overdue"),
            _count(and_(due > w.now, due <= w.today_end)).label("due_today"),
            _count(and_(due > w.now, due <= w.next_workday_end)).label("due_next"),
            _count(and_(overdue, due > w.since)).label("new_overdue"),
            _count(cases.c.provisional.is_(True)).label("provisional"),
            _count(cases.c.received_at >= w.month_start).label("this_month"),
            _count(cases.c.rule_id.in_(catch_ids or ["-"])).label("catch_all"),
            func.min(case((overdue, due), else_=None)).label("oldest_due_at"),
        )
        .where(OPEN)
        .group_by(cases.c.unit)
    )
    lines = []
    for r in conn.execute(stmt):
        oldest = r.oldest_due_at
        if isinstance(oldest, str):  # SQLite returns MIN() over a CASE as text on some versions
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:  # stored naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        lines.append(UnitLine(
            unit=r.unit, open=int(r.open), overdue=int(r.overdue or 0), due_today=int(r.due_today or 0),
            due_next=int(r.due_next or 0), new_overdue=int(r.new_overdue or 0),
            provisional=int(r.provisional or 0), this_month=int(r.this_month or 0),
            carried=int(r.open) - int(r.this_month or 0), catch_all=int(r.catch_all or 0), oldest_due_at=oldest,
            longest_overdue_days=whole_working_days_after(oldest, w.now, calendar) if oldest else 0,
        ))
    lines.sort(key=lambda u: (-u.overdue, -u.longest_overdue_days, -u.due_today, -u.open, u.unit))
    return tuple(lines)


def _overdue(conn: Connection, w: DigestWindow, rules: RuleSet, calendar: WorkCalendar) -> tuple[OverdueCase, ...]:
    c = cases.c
    stmt = (
        select(c.number, c.summary, c.unit, c.rule_id, c.status, c.received_at, c.due_at, c.provisional)
        .where(OPEN, c.due_at <= w.now)
        .order_by(c.due_at, c.number)
    )
    names = {r.id: r.name for r in rules.rules}
    days_cache: dict[datetime, int] = {}
    out = []
    for r in conn.execute(stmt):
        days = days_cache.get(r.due_at)
        if days is None:
            days = days_cache[r.due_at] = whole_working_days_after(r.due_at, w.now, calendar)
        out.append(OverdueCase(
            number=r.number, summary=r.summary, unit=r.unit, rule_id=r.rule_id,
            rule_name=names.get(r.rule_id, r.rule_id), status=r.status, received_at=r.received_at,
            due_at=r.due_at, provisional=bool(r.provisional), overdue_working_days=days,
            overdue_hours=int((w.now - r.due_at).total_seconds() // 3600),
        ))
    return tuple(out)


def _late_returns(conn: Connection, w: DigestWindow) -> tuple[tuple[LateReturn, ...], int]:
    c = cases.c
    cond = and_(
        c.return_requested_at.is_not(None), c.return_due_at.is_not(None), c.return_requested_at >= c.return_due_at,
        or_(c.status == "return_requested", c.return_requested_at > w.since),
    )
    total = int(conn.execute(select(func.count()).select_from(cases).where(cond)).scalar_one())
    rows = conn.execute(
        select(c.number, c.summary, c.unit, c.status, c.received_at, c.return_due_at, c.return_requested_at)
        .where(cond).order_by(c.return_requested_at.desc(), c.number).limit(LIST_CAP)
    )
    return tuple(
        LateReturn(r.number, r.summary, r.unit, r.status, r.received_at, r.return_due_at, r.return_requested_at,
                   int((r.return_requested_at - r.return_due_at).total_seconds() // 3600))
        for r in rows
    ), total


def _catch_all(
    conn: Connection, catch_ids: list[str]
) -> tuple[tuple[tuple[str, str, int], ...], tuple[CatchAllCase, ...]]:
    if not catch_ids:
        return (), ()
    c = cases.c
    cond = and_(OPEN, c.rule_id.in_(catch_ids))
    kinds = conn.execute(
        select(c.source, c.category, func.count().label("n")).where(cond).group_by(c.source, c.category)
    ).all()
    rows = conn.execute(
        select(c.number, c.summary, c.unit, c.source, c.category, c.received_at, c.due_at, c.provisional)
        .where(cond).order_by(c.received_at.desc(), c.number).limit(LIST_CAP)
    )
    return (
        tuple(sorted(((k.source, k.category, int(k.n)) for k in kinds), key=lambda k: (-k[2], k[0], k[1]))),
        tuple(CatchAllCase(r.number, r.summary, r.unit, r.source, r.category, r.received_at, r.due_at,
                           bool(r.provisional)) for r in rows),
    )


def _failed(conn: Connection, w: DigestWindow) -> tuple[tuple[FailedDelivery, ...], int]:
    from notifiers.base import mask_mobile, mask_mobiles_in

    o = outbox.c
    cond = and_(o.status.in_(["failed", "dead"]), o.created_at >= w.now - FAILED_LOOKBACK)
    total = int(conn.execute(select(func.count()).select_from(outbox).where(cond)).scalar_one())
    rows = conn.execute(
        select(o.kind, o.channel, o.recipient, o.payload, o.status, o.attempts, o.last_error, o.created_at)
        .where(cond).order_by(o.created_at.desc(), o.id.desc()).limit(LIST_CAP)
    )
    out = []
    for r in rows:
        who = r.recipient or {}
        payload = r.payload or {}
        case_info = payload.get("case") if isinstance(payload.get("case"), dict) else {}
        out.append(FailedDelivery(
            kind=r.kind, case_number=(case_info or {}).get("number"), name=str(who.get("name") or "?"),
            role=str(who.get("role") or ""), unit=who.get("unit"),
            mobile=mask_mobile(who["mobile"]) if who.get("mobile") else None, channel=r.channel, status=r.status,
            attempts=int(r.attempts or 0), error=mask_mobiles_in(r.last_error or ""), created_at=r.created_at,
        ))
    return tuple(out), total


def calendar_notice(calendar: WorkCalendar, today: date, provisional_open: int) -> str | None:
    """Say when deadlines are provisional (暂定) because a year's holiday arrangement is not published."""
    years = [y for y in (today.year, today.year + 1) if y <= calendar.last_year
             and calendar.year_source(y) is DaySource.PROVISIONAL]
    if not years or (provisional_open == 0 and (today.year not in years and today.month < 10)):
        return None
    listed = "、".join(f"{y} 年" for y in years)
    text = (f"{listed}节假日安排尚未发布（或尚未载入），涉及该年份的期限按法定节假日暂定计算（仅周末和法定节日"
            f"放假，不含调休），标注“暂定”；安排发布并载入后自动重算。")
    if provisional_open:
        text += f"当前在办工单中有 {provisional_open} 件期限为暂定。"
    return text
