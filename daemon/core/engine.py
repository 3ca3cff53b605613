"""The decision engine (决策引擎): which alerts are due for one case at one instant, and when to look again.

Pure: no clock, no database, no network. ``evaluate`` is a function of the case as the store knows it, its
deadlines and ``now``; the tick and the upsert path call it and write what it returns.

**Current state, stable keys.** An evaluation returns every alert that the situation at ``now`` calls for,
not only what changed since the last look: the breach is returned on every evaluation after ``due_at``.
Each decision's ``(kind, level)`` is stable for a given deadline, and the store's unique key
(case, kind, level, deadline version) turns a repeat into a no-op. That makes evaluation idempotent and
crash-safe (a lost transaction is simply redone) and needs no memory of earlier evaluations.

**After an outage** only the latest due step of each ladder is returned: the current warning level (not
every missed one), the breach instead of any warning once ``due_at`` has passed, and the latest breach
repeat (not one per missed working day).

**Breach repeats** (超期重复提醒) fall at ``breach_repeat_at`` (Asia/Shanghai) on each working day strictly
after the local date of ``due_at``. The breach itself usually fires at 00:00 (a day period ends at 24:00);
a repeat a few hours later, on the same morning, would only echo it. So with the 2024 calendar a breach at
Fri 2024-10-11 00:00 repeats on Sat Oct 12 (a make-up working day) 09:00 as level 20241012, Mon Oct 14 09:00
as level 20241014, and so on: a repeat is keyed by the working day it is for (:func:`repeat_level`), not by a
running count that a recompute would renumber, so a moved deadline never yields a second repeat on one day.

**A moved deadline** (extension 延期, calendar or rule change) needs nothing special: the engine only reads
the ``Deadline`` it is given, and the store keys alerts by deadline version, so the new deadline's warnings
are armed afresh. The first evaluation under the new deadline returns its current state (its latest due
warning, if any, which tells the unit where it now stands); the rest fire at their instants.

**A suspended case** (挂起, :func:`clock_stopped`) yields nothing but a late-return notice: its clock has
stopped. On resumption the store holds a moved deadline (:meth:`~daemon.core.rules.Rule.suspensions_due`) under
a new version, and its warnings are armed afresh.

**The case is taken as the store knows it at ``now``.** A finished case (fed back, closed or returned)
yields nothing but a late-return notice, even when it was fed back after ``due_at`` and no breach was ever
sent (an alert prompts action; lateness is scored from ``fed_back_at``, not from alerts). Signed means a
``signed_at`` or a status past 已交办. A return asked for at or after the window's end (its first late
instant, like ``due_at``) is a ``late_return``; a pending return request does not stop the resolution clock.

**Sign and first-contact windows** (签收时限, 先行联系; a rule's ``sign_within``/``contact_within``, carried by
the ``Deadline`` as ``sign_by``/``contact_by``): a case that at ``now >= sign_by`` still awaits its signature
(:func:`awaits_signing`: no ``signed_at``, no return request, status 已交办 or 重办) yields ``unsigned``; one
with no ``contacted_at`` at ``now >= contact_by`` yields ``first_contact``. ``sign_by`` is the first late
instant, like ``due_at`` (the ``>=`` of every window here), and the case is taken as the store knows it at
``now``: a case signed at ``sign_by`` itself is signed when that instant is evaluated, so it gets no alert.
Each window alerts once: its ``level`` is the window's end (:func:`window_level`) and it is in
:data:`ONCE_KINDS`, so a recompute that bumps the deadline version does not repeat it, while a new cycle
(重办) or assignment, with its own ``received_at`` and so its own window, gets its own. A suspended or
finished case yields neither; a mute silences both (:data:`MUTED_KINDS`).

All instants are timezone-aware and compared as instants (UTC); calendar days are Asia/Shanghai days.

**The switch** (a new calendar or rule moves deadlines, issue 13): :func:`stale_reason` says whether an
alert queued under an earlier deadline may still be sent, :func:`correction_due` whether a delivered breach
calls for a ``deadline_moved`` correction; both ask :func:`evaluate` rather than restate its rule, which is
why they live here and this module runs past 400 lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, TypeVar

from daemon.core.calendar import WorkCalendar
from daemon.core.cases import FINISHED_STATUSES, CaseRecord, Status
from daemon.core.rules import Deadline, WarningPoint
from daemon.core.timeutil import LOCAL_TZ

if TYPE_CHECKING:
    from daemon.config import AlertsConfig

__all__ = [
    "ONCE_KINDS",
    "CaseState",
    "Decision",
    "DecisionKind",
    "EngineSettings",
    "Evaluation",
    "SentAlert",
    "announced",
    "awaiting_signature",
    "awaits_signing",
    "clock_stopped",
    "correction_due",
    "evaluate",
    "first_check",
    "first_check_at",
    "is_finished",
    "is_late_return",
    "is_overdue",
    "mute_in_force",
    "muted",
    "reads_return_warnings",
    "repeat_day",
    "repeat_level",
    "stale_reason",
    "whole_working_days_overdue",
    "window_level",
]

#: an instant as the callers of :func:`first_check` hold it: an aware datetime, or the canonical local text
#: 'YYYY-MM-DD HH:MM:SS' of an import row (one fixed offset, so text order is time order)
Instant = TypeVar("Instant", datetime, str)

DecisionKind = Literal[
    "warning", "breach", "breach_repeat", "return_window", "late_return", "unsigned", "first_contact"
]

# decisions with the same fire_at are listed in this order (for stable output and readable digests)
_KIND_ORDER: dict[str, int] = {
    "late_return": 0, "return_window": 1, "unsigned": 2, "first_contact": 3, "warning": 4, "breach": 5,
    "breach_repeat": 6,
}
#: kinds whose ``level`` identifies the alert across deadline versions: a breach repeat's day, a sign or
#: contact window's end, a late return's window end. The store never decides one of these twice for a case,
#: whatever the version (a recompute that moves the resolution deadline does not repeat a late-return notice).
ONCE_KINDS: frozenset[str] = frozenset({"breach_repeat", "unsigned", "first_contact", "late_return"})
#: the window kinds, in the order :func:`_open_windows` gives their ends
_WINDOW_KINDS: tuple[DecisionKind, DecisionKind] = ("unsigned", "first_contact")


@dataclass(frozen=True)
class CaseState:
    """What the engine needs to know about a case: the facts the store holds at ``now`` (aware instants)."""

    number: str  # 工单编号
    status: Status
    received_at: datetime
    signed_at: datetime | None = None  # 签收
    return_requested_at: datetime | None = None  # 申请退件
    fed_back_at: datetime | None = None  # 反馈
    closed_at: datetime | None = None  # 办结
    contacted_at: datetime | None = None  # 先行联系

    @classmethod
    def from_record(cls, record: CaseRecord) -> CaseState:
        return cls(
            number=record.number,
            status=record.status,
            received_at=record.received_at,
            signed_at=record.signed_at,
            return_requested_at=record.return_requested_at,
            fed_back_at=record.fed_back_at,
            closed_at=record.closed_at,
            contacted_at=record.contacted_at,
        )

    @property
    def finished(self) -> bool:
        """:func:`is_finished`."""
        return is_finished(self.status, self.fed_back_at, self.closed_at)

    @property
    def awaiting_signature(self) -> bool:
        """:func:`awaiting_signature`."""
        return awaiting_signature(self.status, self.signed_at, self.return_requested_at, self.finished)


def awaits_signing(status: Status, signed_at: object | None, return_requested_at: object | None, /) -> bool:
    """Not yet signed (签收) in this cycle: no ``signed_at``, no return request, and a status before signing
    (已交办, or 重办: a reopened cycle is dispatched afresh). Whether the case is finished or suspended is
    the caller's to check. Instants as aware datetimes or text; only whether they are there matters."""
    return signed_at is None and return_requested_at is None and status in _UNSIGNED_STATUSES


_UNSIGNED_STATUSES = frozenset({Status.DISPATCHED, Status.REOPENED})


def window_level(end: datetime) -> int:
    """The ``level`` of a sign or contact window's alert: its end (aware) in whole minutes since 1970 UTC. It
    names the window, so a new cycle's window (another receipt) is another alert and a recompute's is not."""
    return int(end.timestamp()) // 60


def clock_stopped(status: Status) -> bool:
    """Suspended (挂起): no warnings or breaches until the clock resumes (the deadline then moves, rules.py)."""
    return status is Status.SUSPENDED


def is_finished(status: Status, fed_back_at: object | None, closed_at: object | None) -> bool:
    """The unit owes nothing more: fed back, closed or returned. The SLA clock has stopped.

    Instants as aware datetimes or as text; only whether they are there matters."""
    return status in FINISHED_STATUSES or fed_back_at is not None or closed_at is not None


def awaiting_signature(
    status: Status, signed_at: object | None, return_requested_at: object | None, finished: bool, /
) -> bool:
    """Dispatched, neither signed (签收) nor asked to be returned, not finished: the return window still
    concerns it (its warnings are sent)."""
    return status is Status.DISPATCHED and signed_at is None and return_requested_at is None and not finished


@dataclass(frozen=True)
class EngineSettings:
    """The engine's switches, from ``config.yaml``'s ``alerts:`` section."""

    breach_repeat: bool = True
    breach_repeat_at: time = time(9, 0)  # local (Asia/Shanghai) wall-clock time; any tzinfo is ignored
    return_window_warning: bool = True

    @classmethod
    def from_config(cls, alerts: AlertsConfig) -> EngineSettings:
        return cls(
            breach_repeat=alerts.breach_repeat,
            breach_repeat_at=alerts.breach_repeat_at,
            return_window_warning=alerts.return_window_warning,
        )


@dataclass(frozen=True)
class Decision:
    """One alert that is due. ``(kind, level)`` is its identity under one deadline version.

    ``level``: for ``warning`` and ``return_window`` the rule's warning level (1 = longest lead); for
    ``breach_repeat`` the local working day it is for as YYYYMMDD (:func:`repeat_level`: a recompute that
    moves the breach's date cannot renumber it); for ``unsigned``, ``first_contact`` and ``late_return`` the
    window's end (:func:`window_level`; for a late return, the return window's); 0 for ``breach``.
    """

    kind: DecisionKind
    level: int
    fire_at: datetime  # the instant it became due (for a late return: when the return was requested)
    due_at: datetime  # the deadline it is about: the resolution due_at, or the return window's end
    # for breach repeats: whole working days (local days entirely after due_at) that had passed at fire_at
    overdue_working_days: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.level)


@dataclass(frozen=True)
class Evaluation:
    decisions: tuple[Decision, ...]  # ordered by fire_at
    # the earliest instant > now at which evaluate could return something new; None when nothing can
    # happen any more unless the case or its deadline changes (and the store re-evaluates on every change)
    next_check_at: datetime | None

    @property
    def keys(self) -> tuple[tuple[str, int], ...]:
        return tuple(d.key for d in self.decisions)


class _LadderMemo:
    """The breach ladder (the breach, its latest due repeat, the next repeat's instant) per ``due_at``, for the
    latest (now, calendar, settings) that :func:`evaluate` was called with.

    A ladder depends on nothing else, and thousands of overdue cases share a due day, so a tick (many cases,
    one ``now``) computes each once. The decisions are immutable and say nothing about the case, so sharing
    them is safe. The state is swapped whole, so a call from another thread at another ``now`` only costs a
    recomputation, never a wrong ladder.
    """

    def __init__(self) -> None:
        self._state: tuple[datetime, WorkCalendar, EngineSettings, dict[datetime, _Ladder]] | None = None

    def get(self, due: datetime, now: datetime, calendar: WorkCalendar, settings: EngineSettings) -> _Ladder:
        state = self._state
        if (state is None or state[0] != now or state[1] is not calendar
                or not (state[2] is settings or state[2] == settings)):
            state = self._state = (now, calendar, settings, {})
        ladders = state[3]
        ladder = ladders.get(due)
        if ladder is None:
            ladder = _breach_ladder(due, now, calendar, settings)
            if len(ladders) < 100_000:
                ladders[due] = ladder
        return ladder


_Ladder = tuple[tuple[Decision, ...], datetime | None]
_LADDERS = _LadderMemo()


def reads_return_warnings(case: CaseState, settings: EngineSettings) -> bool:
    """Whether :func:`evaluate` reads the warnings of ``case``'s return deadline (only while it awaits its
    signature, with return-window warnings on); otherwise a caller may pass the return deadline without them.
    """
    return settings.return_window_warning and case.awaiting_signature


def evaluate(
    case: CaseState,
    deadline: Deadline,
    return_deadline: Deadline | None,
    now: datetime,
    *,
    calendar: WorkCalendar,
    settings: EngineSettings,
) -> Evaluation:
    """The alerts due for ``case`` at ``now`` (aware) under ``deadline`` (resolution, 办结反馈) and
    ``return_deadline`` (the return window, 退件时限; None when no return rule applies), and when to look again.

    Only the return deadline's ``due_at`` is read unless :func:`reads_return_warnings`. The breach ladder of
    a ``due_at`` is memoised inside the engine for the cases evaluated at one ``now`` (a tick's).

    Raises ValueError for a naive ``now``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    decisions: list[Decision] = []
    candidates: list[datetime] = []

    late = _late_return(case, return_deadline)
    if late is not None:
        decisions.append(late)

    if not case.finished and not clock_stopped(case.status):
        found, upcoming = _resolution(deadline, now, calendar=calendar, settings=settings)
        decisions.extend(found)
        if upcoming is not None:
            candidates.append(upcoming)
        if return_deadline is not None and reads_return_warnings(case, settings):
            found, upcoming = _return_window(return_deadline, now)
            decisions.extend(found)
            if upcoming is not None:
                candidates.append(upcoming)
        for kind, end in zip(_WINDOW_KINDS, _open_windows(case, deadline), strict=True):
            if end is None:
                continue
            if now >= end:  # the window's end is its first late instant, like due_at
                decisions.append(Decision(kind, window_level(end), fire_at=end, due_at=end))
            else:
                candidates.append(end)

    if len(decisions) > 1:
        decisions.sort(key=lambda d: (d.fire_at, _KIND_ORDER[d.kind], d.level))
    next_check_at = min(candidates) if candidates else None
    assert next_check_at is None or next_check_at > now  # a tick must never spin on one case
    return Evaluation(tuple(decisions), next_check_at)


#: the steps of the resolution ladder: each later one states the case's state at its instant in full (a warning
#: how near the deadline is, a breach that it has passed, a repeat how long ago)
_LADDER_KINDS = frozenset({"warning", "breach", "breach_repeat"})


def announced(new: Sequence[Decision]) -> tuple[Decision, ...]:
    """Which of ``new`` (the decisions due at once for one case and not yet recorded) get a message.

    After an outage, a restart or a mute's end one evaluation can return both the breach and its latest
    repeat: sent together the unit reads 已超期 and 超期仍未办结 for one case in one second. Only the latest
    step of the resolution ladder (warning, breach, breach repeat) is announced: it states the case's current
    state, and the earlier one is still recorded (so it is never decided again) but says nothing the latest
    does not. Decisions about other things (the return window, a late return) are kept. Order is kept.
    """
    ladder = [d for d in new if d.kind in _LADDER_KINDS]
    if len(ladder) < 2:  # nothing to fold
        return tuple(new)
    latest = max(ladder, key=lambda d: (d.fire_at, _KIND_ORDER[d.kind], d.level))
    return tuple(d for d in new if d.kind not in _LADDER_KINDS or d is latest)


def is_late_return(requested_at: Instant, window_end: Instant) -> bool:
    """Whether a return asked for at ``requested_at`` is late: at or after the window's end (its first late
    instant, like ``due_at``). Both aware datetimes, or both canonical local texts."""
    return requested_at >= window_end


def _open_windows(case: CaseState, deadline: Deadline) -> tuple[datetime | None, datetime | None]:
    """The sign and contact windows' ends that still concern an open, running ``case`` (None for a window the
    rule does not give, the export does not observe, or the case has satisfied)."""
    return (
        deadline.sign_by if awaits_signing(case.status, case.signed_at, case.return_requested_at) else None,
        deadline.contact_by if case.contacted_at is None else None,
    )


def first_check(  # noqa: PLR0917 - the facts the decision reads, positional: the import calls it per row
    status: Status, signed_at: Instant | None, requested_at: Instant | None, fed_back_at: Instant | None,
    closed_at: Instant | None, resolution_first: Instant, window_end: Instant | None, return_first: Instant | None,
    /, *, sign_by: Instant | None = None, contacted_at: Instant | None = None, contact_by: Instant | None = None,
) -> Instant | None:
    """The first instant at which :func:`evaluate` can return anything for a case, whatever ``now``.

    The case's status and instants; ``resolution_first``: the earliest of the resolution deadline's warnings
    and its ``due_at``; ``window_end``: the return deadline's ``due_at`` (None without a return rule);
    ``return_first``: its earliest warning (None when it has none). Instants are aware datetimes or, all of
    them, canonical local texts (the import's rows): the order is the same. None when nothing can happen
    any more unless the case changes. ``sign_by``/``contact_by``: the deadline's sign and contact windows
    (``contacted_at`` the case's first contact). :func:`first_check_at` is this on a case and its deadlines.
    """
    late = requested_at is not None and window_end is not None and is_late_return(requested_at, window_end)
    if is_finished(status, fed_back_at, closed_at) or clock_stopped(status):
        return requested_at if late else None
    first = resolution_first
    if late:
        assert requested_at is not None
        first = min(first, requested_at)
    elif (return_first is not None and return_first < first
            and awaiting_signature(status, signed_at, requested_at, False)):
        first = return_first
    if sign_by is not None and sign_by < first and awaits_signing(status, signed_at, requested_at):
        first = sign_by
    if contact_by is not None and contacted_at is None and contact_by < first:
        first = contact_by
    return first


def first_check_at(case: CaseState, deadline: Deadline, return_deadline: Deadline | None) -> datetime | None:
    """The first instant (aware) at which :func:`evaluate` can return anything for ``case`` under these
    deadlines, whatever ``now``: what the store writes as ``next_check_at`` when a case is inserted or changes.
    A past instant is fine: the next tick evaluates the case and stores the next one.
    """
    resolution_first = min((w.at for w in deadline.warnings), default=deadline.due_at)
    return first_check(
        case.status, case.signed_at, case.return_requested_at, case.fed_back_at, case.closed_at,
        min(resolution_first, deadline.due_at),
        None if return_deadline is None else return_deadline.due_at,
        None if return_deadline is None else min((w.at for w in return_deadline.warnings), default=None),
        sign_by=deadline.sign_by, contacted_at=case.contacted_at, contact_by=deadline.contact_by,
    )


def _late_return(case: CaseState, return_deadline: Deadline | None) -> Decision | None:
    """A late return (:func:`is_late_return`): a notice for supervisors."""
    if return_deadline is None or case.return_requested_at is None:
        return None
    if not is_late_return(case.return_requested_at, return_deadline.due_at):
        return None
    return Decision("late_return", window_level(return_deadline.due_at), fire_at=case.return_requested_at,
                    due_at=return_deadline.due_at)


def _latest_and_next(points: tuple[WarningPoint, ...], now: datetime) -> tuple[WarningPoint | None, datetime | None]:
    """The latest point at or before ``now`` and the instant of the first one after it."""
    latest: WarningPoint | None = None
    for point in sorted(points, key=lambda p: (p.at, p.level)):
        if point.at <= now:
            latest = point
        else:
            return latest, point.at
    return latest, None


def _resolution(
    deadline: Deadline, now: datetime, *, calendar: WorkCalendar, settings: EngineSettings
) -> tuple[Sequence[Decision], datetime | None]:
    """Warnings before due_at; the breach (超期) and its repeats from due_at on. With the next instant."""
    due = deadline.due_at
    if now < due:
        latest, upcoming = _latest_and_next(deadline.warnings, now)
        warning = [] if latest is None else [Decision("warning", latest.level, fire_at=latest.at, due_at=due)]
        return warning, upcoming if upcoming is not None else due
    return _LADDERS.get(due, now, calendar, settings)


def _breach_ladder(
    due: datetime, now: datetime, calendar: WorkCalendar, settings: EngineSettings
) -> tuple[tuple[Decision, ...], datetime | None]:
    """From ``due`` (<= ``now``) on: the breach, its latest due repeat, and the next repeat's instant."""
    breach = Decision("breach", 0, fire_at=due, due_at=due)
    if not settings.breach_repeat:
        return (breach,), None
    breach_day = due.astimezone(LOCAL_TZ).date()
    done = _repeats_done(breach_day, now, calendar, settings.breach_repeat_at)
    next_repeat = _repeat_instant(calendar.add_working_days(breach_day, done + 1), settings.breach_repeat_at)
    if not done:
        return (breach,), next_repeat
    fire_at = _repeat_instant(calendar.add_working_days(breach_day, done), settings.breach_repeat_at)
    repeat = Decision(
        "breach_repeat", repeat_level(fire_at.astimezone(LOCAL_TZ).date()), fire_at=fire_at, due_at=due,
        overdue_working_days=whole_working_days_overdue(due, fire_at, calendar),
    )
    return (breach, repeat), next_repeat


def _repeat_instant(day: date, at: time) -> datetime:
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=LOCAL_TZ)


def _repeats_done(breach_day: date, now: datetime, calendar: WorkCalendar, at: time) -> int:
    """How many repeat instants (``at`` on each working day after ``breach_day``) are at or before ``now``."""
    today = now.astimezone(LOCAL_TZ).date()
    if today <= breach_day:
        return 0
    done = calendar.working_days_between(breach_day, today)  # working days in (breach_day, today]
    if calendar.is_workday(today) and now < _repeat_instant(today, at):
        done -= 1  # today's repeat is still ahead
    return done


def whole_working_days_overdue(due: datetime, instant: datetime, calendar: WorkCalendar) -> int:
    """Working days lying entirely within ``[due, instant)``, as Asia/Shanghai calendar days (超期工作日): the
    count that breach messages, routing (escalation) and the digest's longest-overdue column use."""
    due_local = due.astimezone(LOCAL_TZ)
    first = due_local.date()
    if due_local.timetz().replace(tzinfo=None) != time(0):
        first += timedelta(days=1)  # the day due_at falls in is only partly overdue
    last = instant.astimezone(LOCAL_TZ).date() - timedelta(days=1)  # the day `instant` falls in is not over
    if last < first:
        return 0
    return calendar.working_days_between(first - timedelta(days=1), last)  # working days in [first, last]


def _return_window(return_deadline: Deadline, now: datetime) -> tuple[list[Decision], datetime | None]:
    """Warn a unit that has not signed before its return window closes; a closed window is no breach."""
    window_end = return_deadline.due_at
    if now >= window_end:
        return [], None
    latest, upcoming = _latest_and_next(return_deadline.warnings, now)
    if latest is None:
        return [], upcoming
    return [Decision("return_window", latest.level, fire_at=latest.at, due_at=window_end)], upcoming


# --- the switch: alerts decided under a deadline that has since moved (issue 13) -------------------------


def repeat_level(day: date) -> int:
    """The key (``level``) of the breach repeat for local working ``day``: YYYYMMDD, e.g. 20241012."""
    return day.year * 10_000 + day.month * 100 + day.day


def repeat_day(level: int) -> date:
    """The local day a breach repeat's ``level`` (:func:`repeat_level`) is for."""
    return date(level // 10_000, level // 100 % 100, level % 100)


@dataclass(frozen=True)
class SentAlert:
    """What a queued or delivered alert said: its kind, the deadline version it was decided under and the
    deadline (``due_at``, aware) it is about."""

    kind: str
    deadline_version: int
    due_at: datetime


def is_overdue(
    case: CaseState, deadline: Deadline, now: datetime, *, calendar: WorkCalendar, settings: EngineSettings
) -> bool:
    """Whether ``case`` is past ``deadline`` at ``now`` (aware): still open and :func:`evaluate` returns its
    breach, or fed back (else closed) at or after ``due_at`` (its first late instant, as the ranking scores
    it). A case returned without feedback is not."""
    if not case.finished:
        return _breach_returned(case, deadline, now, calendar, settings)
    finished_at = case.fed_back_at or case.closed_at
    return finished_at is not None and finished_at >= deadline.due_at


def stale_reason(
    alert: SentAlert, case: CaseState, deadline: Deadline, deadline_version: int, now: datetime, *,
    calendar: WorkCalendar, settings: EngineSettings,
) -> str | None:
    """Why an alert queued earlier must not be sent at ``now``, or None when it is still true.

    ``deadline``/``deadline_version``: the case's current ones. An alert decided under another version is
    superseded (the tick decides afresh under the current one). A breach or repeat is sent only while
    :func:`evaluate` still returns the breach it is about at ``now``; a ``deadline_moved`` correction only
    while the case is not overdue (:func:`is_overdue`). An ``unsigned`` or ``first_contact`` alert is sent
    while :func:`evaluate` still returns it for the same window, whatever the version (:data:`ONCE_KINDS`); a
    ``late_return`` while the return request it names is still there and late for the window it names.
    The reason is English, for the outbox row and the log.
    """
    if alert.kind == "late_return":
        requested = case.return_requested_at
        still = requested is not None and is_late_return(requested, alert.due_at)
        return None if still else "superseded: the return request is gone or no longer late"
    if alert.kind in _WINDOW_KINDS:
        still = any(d.kind == alert.kind and d.due_at == alert.due_at for d in
                    evaluate(case, deadline, None, now, calendar=calendar, settings=settings).decisions)
        return None if still else "superseded: signed or contacted since, finished, suspended, or another window"
    if alert.deadline_version != deadline_version:
        return f"superseded: deadline version {alert.deadline_version} replaced by {deadline_version}"
    if alert.kind in ("breach", "breach_repeat") and (
        alert.due_at != deadline.due_at or not _breach_returned(case, deadline, now, calendar, settings)
    ):
        return "superseded: no longer overdue (fed back, closed or returned, or the deadline is later)"
    if alert.kind == "deadline_moved" and is_overdue(case, deadline, now, calendar=calendar, settings=settings):
        return "superseded: overdue again under the current deadline"
    return None


def correction_due(
    delivered: SentAlert, case: CaseState, deadline: Deadline, now: datetime, *,
    calendar: WorkCalendar, settings: EngineSettings,
) -> bool:
    """Whether a delivered breach (or repeat) calls for a correction (``deadline_moved``, 时限已调整) at
    ``now``: the case's deadline is no longer the one it named, and under the new one it is not overdue."""
    return (delivered.kind in ("breach", "breach_repeat") and deadline.due_at != delivered.due_at
            and not is_overdue(case, deadline, now, calendar=calendar, settings=settings))


def _breach_returned(
    case: CaseState, deadline: Deadline, now: datetime, calendar: WorkCalendar, settings: EngineSettings
) -> bool:
    evaluation = evaluate(case, deadline, None, now, calendar=calendar, settings=settings)
    return any(d.kind == "breach" for d in evaluation.decisions)


#: what a mute (暂停提醒) silences: the unit's warnings, breaches and sign/contact reminders. A late return is a
#: fact about the past for supervisors, not a reminder, and is still recorded.
MUTED_KINDS: frozenset[str] = frozenset(
    {"warning", "breach", "breach_repeat", "return_window", "unsigned", "first_contact"}
)


def mute_in_force(muted_until: datetime | None, now: datetime) -> bool:
    """Whether a mute ending at ``muted_until`` (aware; None: no mute) silences the case at ``now``: until its
    end, not at it (the stores' queries say ``muted_until > now``: the same instants)."""
    return muted_until is not None and now < muted_until


def muted(evaluation: Evaluation, muted_until: datetime | None, now: datetime) -> Evaluation:
    """``evaluation`` of a case whose alerts are muted until ``muted_until`` (aware; None: not muted), at ``now``.

    While ``now < muted_until`` the warnings and breaches (:data:`MUTED_KINDS`) are dropped and the next check
    is the mute's end, when the case's current state (its latest warning, or its breach and latest repeat)
    is returned as after an outage, so a mute defers, and never loses, the alert that is still due then. A
    mute that has ended changes nothing. A case with nothing left to happen stays without a next check.
    """
    if not mute_in_force(muted_until, now):
        return evaluation
    assert muted_until is not None
    kept = tuple(d for d in evaluation.decisions if d.kind not in MUTED_KINDS)
    silenced = len(kept) < len(evaluation.decisions)
    next_check_at = muted_until if silenced or evaluation.next_check_at is not None else None
    return Evaluation(kept, next_check_at)
