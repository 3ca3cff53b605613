"""The case life's deadline decisions (工单生命周期): which deadline drives, how suspensions move one, and which
earlier suspensions the store remembers.

Pure: no clock, database or network. :class:`~daemon.core.rules.Rule` calls these with its own settings
(:meth:`~daemon.core.rules.Rule.drive`, :meth:`~daemon.core.rules.Rule.suspensions_due`); the import reaches
them only through the rule, and :func:`remembered_suspensions` directly. All instants are aware; days are
Asia/Shanghai calendar days.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from daemon.core.timeutil import LOCAL_TZ

if TYPE_CHECKING:
    from daemon.core.calendar import WorkCalendar

__all__ = ["Suspension", "choose_due", "merge_suspensions", "remembered_suspensions", "suspended_due"]

#: one resumed suspension (挂起时间, 解挂时间): aware instants, start before end
Suspension = tuple[datetime, datetime]


def choose_due(
    computed: datetime, platform: datetime | None, option: str, *, extended: bool = False
) -> tuple[datetime, str]:
    """Which deadline drives warnings and breaches: (first overdue instant, 'computed' | 'platform').

    ``option`` is the rule's ``deadline_source``: ``computed`` (ours), ``platform`` (the export's 办理时限)
    or ``earlier`` (the safe side: the platform's only when strictly earlier than ours). Without a
    platform deadline, or with an approved extension (延期至 replaces both), ours drives.
    """
    if platform is None or extended or option == "computed":
        return computed, "computed"
    if option == "platform" or platform < computed:
        return platform, "platform"
    return computed, "computed"


def suspended_due(
    due: datetime, suspended_at: datetime, resumed_at: datetime, *, basis: str, calendar: WorkCalendar,
    end_of_day: timedelta,
) -> datetime:
    """``due`` moved by a suspension (挂起) from ``suspended_at`` to ``resumed_at``, in the rule's own unit
    (``basis``: ``hours``, ``working_days`` or ``natural_days``; ``end_of_day``: the rule's end of a day).

    Hour rules: by the exact time suspended. Day rules count like a period (民法典 第二百零一条): the day the
    clock stops is the unit's, and every day after it up to and including the day it resumes is given back,
    as working days for a working-day rule (the official calendar: holidays and weekends in the suspension
    give nothing back, make-up working days do) and natural days for a natural-day rule. So a suspension
    that starts and ends on one day moves nothing, and one from Mon 2024-09-30 10:00 to Tue 2024-10-08
    10:00 (National Day in between) gives back one working day (Oct 8) or eight natural days. A resumption
    not after the suspension moves nothing.
    """
    if resumed_at <= suspended_at:
        return due
    if basis == "hours":
        return due + (resumed_at - suspended_at)
    first = suspended_at.astimezone(LOCAL_TZ).date()
    last = resumed_at.astimezone(LOCAL_TZ).date()
    if basis != "working_days":
        return due + timedelta(days=(last - first).days)
    given_back = calendar.working_days_between(first, last)  # working days in (first, last]
    if not given_back:
        return due
    last_day = (due.astimezone(LOCAL_TZ) - end_of_day).date()
    moved = calendar.add_working_days(last_day, given_back)
    return datetime(moved.year, moved.month, moved.day, tzinfo=LOCAL_TZ) + end_of_day


def merge_suspensions(suspensions: Iterable[Suspension], since: datetime | None = None) -> tuple[Suspension, ...]:
    """Resumed suspensions in time order, overlapping or touching ones merged into one, empty ones (an end
    not after its start) dropped: time suspended twice is given back once, whatever order the exports came in.

    ``since`` (the cycle's dispatch, ``received_at``): time suspended before it is not on this cycle's clock,
    so each suspension is cut to start there at the earliest (a 重办 row that still carries the previous
    cycle's 挂起 pair gives the new cycle nothing back).
    """
    if since is not None:
        suspensions = [(max(start, since), end) for start, end in suspensions]
    merged: list[Suspension] = []
    for start, end in sorted(s for s in suspensions if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def remembered_suspensions(
    earlier: Sequence[Suspension], stored_start: datetime | None, stored_end: datetime | None,
    incoming_start: datetime | None, *, new_cycle: bool,
) -> tuple[Suspension, ...]:
    """The earlier completed suspensions of the current cycle after an import brings ``incoming_start`` (挂起时间,
    or None) where the store held the pair (``stored_start``, ``stored_end``) and the list ``earlier``.

    An export carries one pair per row, the latest. When a row brings a different suspension start and the
    stored pair was resumed at or before it, the stored pair is a completed earlier suspension and is kept;
    the same pair again, a row without a suspension, or a stored pair still open changes nothing. A new cycle
    (``new_cycle``: another dispatch instant, a reopen 重办 or a re-dispatch to another unit) starts a new clock
    and forgets them all. A suspension that began and ended between two imports was never seen and cannot be
    known.
    """
    if new_cycle:
        return ()
    kept = tuple(earlier)
    if (incoming_start is None or stored_start is None or stored_end is None or incoming_start == stored_start
            or stored_end > incoming_start or (stored_start, stored_end) in kept):
        return kept
    return (*kept, (stored_start, stored_end))
