"""The daily overdue digest (每日超期通报) for supervisors, built from the store as of ``now``.

Work is proportional to what is overdue, not to what is open: every count (overview, per unit, month-end
progress) comes from one grouped SQL aggregate over the open cases; only the overdue rows, and capped
lists of late returns, catch-all cases and failed deliveries, are fetched. A case is open when it is
neither fed back, closed nor returned. "New overdue" means the deadline passed after the previous digest
(``digest_time`` on the previous working day). Deadlines are shown local (Asia/Shanghai) and marked 暂定
when they rely on a calendar year whose arrangement is not published. Rendering is in digest_render.

A little over the house's 400 lines: each section's query sits beside the dataclass it fills; the
renderings are in digest_render.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from daemon.core.calendar import PROVISIONAL_HORIZON, WorkCalendar, calendar_readiness
from daemon.core.cases import Status
from daemon.core.engine import whole_working_days_overdue
from daemon.core.rules import RuleSet
from daemon.core.timeutil import LOCAL_TZ, to_local
from daemon.storage.models import cases, mutes, outbox
from daemon.storage.store import FINISHED

LIST_CAP = 500  # late returns, catch-all cases, failed deliveries: the newest this many are listed
FAILED_LOOKBACK = timedelta(days=7)

_NOT_FINISHED = (cases.c.fed_back_at.is_(None), cases.c.closed_at.is_(None))
#: open cases, for a scan of all of them (NOT IN: planners scan the table instead of walking an index)
OPEN = and_(cases.c.status.not_in(sorted(FINISHED)), *_NOT_FINISHED)
#: the same cases, by an index range on (status, due_at): for the overdue ones only
OPEN_BY_STATUS = and_(cases.c.status.in_(sorted(s.value for s in Status if s.value not in FINISHED)), *_NOT_FINISHED)


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
class DeadlineMismatch:
    """An open case whose platform deadline (办理时限) is not ours (时限不一致); ``due_at`` drives."""

    number: str
    unit: str
    computed_due_at: datetime  # ours
    platform_due_at: datetime  # the platform's
    deadline_source: str  # which one drives: 'computed' or 'platform'


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
    muted: tuple[MutedCase, ...] = ()  # open cases whose alerts are paused at now (暂停提醒), soonest end first
    mismatches: tuple[DeadlineMismatch, ...] = ()  # 时限不一致, at most LIST_CAP, earliest deadline first
    mismatches_total: int = 0


@dataclass(frozen=True)
class MutedCase:
    """An open case muted at the digest's instant: no warnings or breaches until ``muted_until``."""

    number: str
    summary: str | None
    unit: str
    due_at: datetime
    provisional: bool
    muted_until: datetime
    reason: str | None
    muted_by: str | None


def build_digest(conn: Connection, rules: RuleSet, calendar: WorkCalendar, now: datetime, digest_time: time) -> Digest:
    """The digest as of ``now`` (aware); ``digest_time`` (local) places "since the previous digest"."""
    w = DigestWindow.at(now, calendar, digest_time)
    catch_ids = sorted(r.id for r in rules.rules if r.purpose == "resolve" and r.is_catch_all)
    overdue = _overdue(conn, w, rules, calendar)
    units, kinds = _units(conn, w, calendar, catch_ids, overdue)
    overview = Overview(*(sum(getattr(u, f) for u in units) for f in (
        "open", "due_today", "due_next", "overdue", "new_overdue", "provisional", "this_month", "carried")))
    late, late_total = _late_returns(conn, w)
    catch_all_total = sum(u.catch_all for u in units)
    catch_all = _catch_all(conn, catch_ids, catch_all_total)
    failed, failed_total = _failed(conn, w)
    mismatches, mismatches_total = _mismatches(conn)
    return Digest(
        window=w,
        overview=overview,
        units=units,
        overdue=overdue,
        late_returns=late,
        late_returns_total=late_total,
        catch_all_rule="、".join(r.name for r in rules.rules if r.id in catch_ids),
        catch_all_total=catch_all_total,
        catch_all_kinds=kinds,
        catch_all=catch_all,
        failed=failed,
        failed_total=failed_total,
        calendar_notice=calendar_notice(calendar, w.today, overview.provisional,
                                        provisional_relied_on(conn, now)),
        muted=muted_cases(conn, now),
        mismatches=mismatches,
        mismatches_total=mismatches_total,
    )


def _mismatches(conn: Connection) -> tuple[tuple[DeadlineMismatch, ...], int]:
    """Open cases whose platform deadline differs from ours (ix_cases_platform_due_at: only cases with one)."""
    c = cases.c
    cond = and_(c.platform_due_at.is_not(None), OPEN, c.computed_due_at.is_not(None),
                c.platform_due_at != c.computed_due_at)
    total = int(conn.execute(select(func.count()).select_from(cases).where(cond)).scalar_one())
    if not total:
        return (), 0
    rows = conn.execute(
        select(c.number, c.unit, c.computed_due_at, c.platform_due_at, c.deadline_source)
        .where(cond).order_by(c.due_at, c.number).limit(LIST_CAP)
    )
    return tuple(DeadlineMismatch(r.number, r.unit, r.computed_due_at, r.platform_due_at, r.deadline_source)
                 for r in rows), total


def _count(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


def _units(
    conn: Connection, w: DigestWindow, calendar: WorkCalendar, catch_ids: list[str], overdue: Sequence[OverdueCase]
) -> tuple[tuple[UnitLine, ...], tuple[tuple[str, str, int], ...]]:
    """Per unit, and the catch-all cases by (source, category), from one pass over the open cases; the
    overdue figures from the overdue cases (oldest first) already fetched."""
    due = cases.c.due_at
    stmt = (
        select(
            cases.c.source,
            cases.c.category,
            cases.c.unit,
            func.count().label("open"),
            _count(and_(due > w.now, due <= w.today_end)).label("due_today"),
            _count(and_(due > w.now, due <= w.next_workday_end)).label("due_next"),
            _count(cases.c.provisional.is_(True)).label("provisional"),
            _count(cases.c.received_at >= w.month_start).label("this_month"),
            _count(cases.c.rule_id.in_(catch_ids or ["-"])).label("catch_all"),
        )
        .where(OPEN)
        # source and category first: SQLite then scans the table once instead of walking ix_cases_unit
        .group_by(cases.c.source, cases.c.category, cases.c.unit)
    )
    fields = ("open", "due_today", "due_next", "provisional", "this_month", "catch_all", "overdue", "new_overdue")
    sums: dict[str, list[int]] = {}
    kinds: dict[tuple[str, str], int] = {}
    for r in conn.execute(stmt):
        acc = sums.setdefault(r.unit, [0] * len(fields))
        for i, f in enumerate(fields[:6]):
            acc[i] += int(getattr(r, f) or 0)
        if r.catch_all:
            kinds[(r.source, r.category)] = kinds.get((r.source, r.category), 0) + int(r.catch_all)
    oldest: dict[str, datetime] = {}
    for c in overdue:
        acc = sums.setdefault(c.unit, [0] * len(fields))
        acc[6] += 1
        acc[7] += c.due_at > w.since
        oldest.setdefault(c.unit, c.due_at)
    lines = []
    for unit, acc in sums.items():
        v = dict(zip(fields, acc, strict=True))
        first = oldest.get(unit)
        lines.append(UnitLine(
            unit=unit, carried=v["open"] - v["this_month"], oldest_due_at=first,
            longest_overdue_days=whole_working_days_overdue(first, w.now, calendar) if first else 0, **v,
        ))
    lines.sort(key=lambda u: (-u.overdue, -u.longest_overdue_days, -u.due_today, -u.open, u.unit))
    return tuple(lines), tuple(sorted(((s, c, n) for (s, c), n in kinds.items()), key=lambda k: (-k[2], k[0], k[1])))


def _overdue(conn: Connection, w: DigestWindow, rules: RuleSet, calendar: WorkCalendar) -> tuple[OverdueCase, ...]:
    c = cases.c
    stmt = (
        select(c.number, c.summary, c.unit, c.rule_id, c.status, c.received_at, c.due_at, c.provisional)
        .where(OPEN_BY_STATUS, c.due_at <= w.now)
        .order_by(c.due_at, c.number)
    )
    names = {r.id: r.name for r in rules.rules}
    days_cache: dict[datetime, int] = {}  # deadlines mostly fall at 00:00: few distinct values
    now = w.now
    out = []
    for number, summary, unit, rule_id, status, received_at, due_at, provisional in conn.execute(stmt):
        days = days_cache.get(due_at)
        if days is None:
            days = days_cache[due_at] = whole_working_days_overdue(due_at, now, calendar)
        out.append(OverdueCase(
            number, summary, unit, rule_id, names.get(rule_id, rule_id), status, received_at, due_at,
            bool(provisional), days, int((now - due_at).total_seconds() // 3600),
        ))
    return tuple(out)


def _late_returns(conn: Connection, w: DigestWindow) -> tuple[tuple[LateReturn, ...], int]:
    c = cases.c
    cond = and_(  # by the status index: asked for and pending, or returned since the last digest
        c.status.in_([Status.RETURN_REQUESTED.value, Status.RETURNED.value]),
        c.return_requested_at.is_not(None), c.return_due_at.is_not(None), c.return_requested_at >= c.return_due_at,
        or_(c.status == Status.RETURN_REQUESTED.value, c.return_requested_at > w.since),
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


def _catch_all(conn: Connection, catch_ids: list[str], total: int) -> tuple[CatchAllCase, ...]:
    """The newest open cases on a catch-all rule (walks ix_cases_received_at backwards, stops at LIST_CAP)."""
    if not catch_ids or not total:
        return ()
    c = cases.c
    rows = conn.execute(
        select(c.number, c.summary, c.unit, c.source, c.category, c.received_at, c.due_at, c.provisional)
        .where(OPEN, c.rule_id.in_(catch_ids)).order_by(c.received_at.desc(), c.number).limit(LIST_CAP)
    )
    return tuple(CatchAllCase(r.number, r.summary, r.unit, r.source, r.category, r.received_at, r.due_at,
                              bool(r.provisional)) for r in rows)


def _failed(conn: Connection, w: DigestWindow) -> tuple[tuple[FailedDelivery, ...], int]:
    from daemon.pipeline.queue import full_payload, select_rows
    from notifiers.base import mask_mobile, mask_mobiles_in

    o = outbox.c
    cond = and_(o.status.in_(["failed", "dead"]), o.created_at >= w.now - FAILED_LOOKBACK)
    total = int(conn.execute(select(func.count()).select_from(outbox).where(cond)).scalar_one())
    rows = conn.execute(
        select_rows(o.kind, o.channel, o.recipient, o.payload, o.status, o.attempts, o.last_error, o.created_at)
        .where(cond).order_by(o.created_at.desc(), o.id.desc()).limit(LIST_CAP)
    )
    out = []
    for r in rows:
        who = r.recipient or {}
        payload = full_payload(r)
        case_info = payload.get("case") if isinstance(payload.get("case"), dict) else {}
        out.append(FailedDelivery(
            kind=r.kind, case_number=(case_info or {}).get("number"), name=str(who.get("name") or "?"),
            role=str(who.get("role") or ""), unit=who.get("unit"),
            mobile=mask_mobile(who["mobile"]) if who.get("mobile") else None, channel=r.channel, status=r.status,
            attempts=int(r.attempts or 0), error=mask_mobiles_in(r.last_error or ""), created_at=r.created_at,
        ))
    return tuple(out), total


def open_and_overdue_by_unit(conn: Connection, now: datetime) -> dict[str, tuple[int, int]]:
    """Per unit, its open cases and how many of them are overdue at ``now``: the digest's :data:`OPEN` and its
    overdue test (``due_at <= now``), in one grouped aggregate (for /metrics)."""
    stmt = (select(cases.c.unit, func.count(), _count(cases.c.due_at <= now))
            .where(OPEN).group_by(cases.c.unit))
    return {unit: (int(n), int(late or 0)) for unit, n, late in conn.execute(stmt)}


def muted_cases(conn: Connection, now: datetime, limit: int = LIST_CAP) -> tuple[MutedCase, ...]:
    """Open cases muted at ``now`` (``now < muted_until``: :func:`daemon.core.engine.muted`), soonest end first."""
    c, m = cases.c, mutes.c
    rows = conn.execute(
        select(c.number, c.summary, c.unit, c.due_at, c.provisional, m.muted_until, m.reason, m.muted_by)
        .select_from(mutes.join(cases, c.id == m.case_id))
        .where(m.muted_until > now, OPEN).order_by(m.muted_until, c.number).limit(limit)
    )
    return tuple(MutedCase(r.number, r.summary, r.unit, r.due_at, bool(r.provisional), r.muted_until, r.reason,
                           r.muted_by) for r in rows)


def provisional_relied_on(conn: Connection, now: datetime) -> int:
    """Open cases whose provisional (暂定) deadline falls before ``now`` + PROVISIONAL_HORIZON."""
    stmt = select(func.count()).select_from(cases).where(
        OPEN, cases.c.provisional.is_(True), cases.c.due_at <= now + PROVISIONAL_HORIZON)
    return int(conn.execute(stmt).scalar() or 0)


def calendar_notice(calendar: WorkCalendar, today: date, provisional_open: int, relied_on: int = 0) -> str | None:
    """Say when deadlines are provisional (暂定) because a year's holiday arrangement is not loaded, and the
    command that loads it (the same decision as ``status``: :func:`daemon.core.calendar.calendar_readiness`)."""
    readiness = calendar_readiness(calendar, today, relied_on, provisional_open)
    if readiness is None:
        return None
    text = readiness.text_zh()
    if provisional_open:
        text += f"当前在办工单中有 {provisional_open} 件期限为暂定。"
    return text
