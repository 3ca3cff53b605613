"""Working hours (工作小时) and same-day (当日) deadlines on the official calendar.

Pure arithmetic: no clock, database or network. A :class:`WorkSchedule` is the office's working periods
of a working day (default 08:30-12:00 and 13:30-17:30); working days are the official calendar's
(:class:`~daemon.core.calendar.WorkCalendar`: weekends and holidays off, make-up days on). All instants
are aware; days are Asia/Shanghai calendar days.

- :func:`add_working_time`: the instant a period of working time that starts at an instant ends; a
  24-working-hour window opened Friday 17:00 runs 30 minutes on Friday and then from Monday 08:30 on.
  The result is the first overdue instant; a period that ends exactly at a period's end (17:30) ends then.
- :func:`sub_working_time`: the instant that much working time before another (warning leads).
- :func:`working_time_between`: the working time inside an interval (suspensions of working-hour rules).
- :func:`same_day_due`: 当日: the end of the day of dispatch, or of the next working day when dispatched
  after the working day ends or on a rest day.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from daemon.core.timeutil import LOCAL_TZ

if TYPE_CHECKING:
    from daemon.core.calendar import WorkCalendar

__all__ = ["DEFAULT_SCHEDULE", "WorkSchedule", "add_working_time", "same_day_due", "sub_working_time",
           "working_time_between"]

_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_MAX_DAYS = 366 * 20  # a bound on the walk: past it the calendar has run out long before


@dataclass(frozen=True)
class WorkSchedule:
    """The working periods of a working day, sorted and not overlapping, as (start, end) times."""

    periods: tuple[tuple[time, time], ...]

    @classmethod
    def parse(cls, texts: list[str] | tuple[str, ...]) -> WorkSchedule:
        """From ``["08:30-12:00", "13:30-17:30"]``; a ValueError names the bad entry and what is valid."""
        if not texts:
            raise ValueError("give at least one working period, e.g. ['08:30-12:00', '13:30-17:30']")
        periods: list[tuple[time, time]] = []
        for text in texts:
            m = _PERIOD.match(str(text))
            bad = f"{text!r} is not a working period; write HH:MM-HH:MM, e.g. '08:30-12:00', within a day"
            if not m:
                raise ValueError(bad)
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
                raise ValueError(bad)
            start, end = time(h1, m1), time(h2, m2)
            if end <= start:
                raise ValueError(f"{text!r}: a working period must end after it starts")
            periods.append((start, end))
        periods.sort()
        for (_, end), (start, _) in itertools.pairwise(periods):
            if start < end:
                raise ValueError(f"working periods overlap: {', '.join(map(str, texts))}")
        return cls(tuple(periods))

    @property
    def day_end(self) -> time:
        """When the working day ends (the last period's end)."""
        return self.periods[-1][1]

    def texts(self) -> list[str]:
        return [f"{a:%H:%M}-{b:%H:%M}" for a, b in self.periods]


DEFAULT_SCHEDULE = WorkSchedule(((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30))))


def _intervals(day: date, schedule: WorkSchedule) -> list[tuple[datetime, datetime]]:
    return [(datetime.combine(day, a, tzinfo=LOCAL_TZ), datetime.combine(day, b, tzinfo=LOCAL_TZ))
            for a, b in schedule.periods]


def _days(start: date, step: int) -> Iterator[date]:
    for i in range(_MAX_DAYS):
        yield start + timedelta(days=i * step)
    raise ValueError("working time runs past any calendar")  # pragma: no cover - the calendar raises first


def add_working_time(start: datetime, amount: timedelta, schedule: WorkSchedule, calendar: WorkCalendar) -> datetime:
    """The instant ``amount`` of working time after ``start`` (aware) has run out."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    left = amount
    local = start.astimezone(LOCAL_TZ)
    for day in _days(local.date(), 1):
        if not calendar.is_workday(day):
            continue
        for opens, closes in _intervals(day, schedule):
            a = max(opens, local)
            if a >= closes:
                continue
            if closes - a >= left:
                return a + left
            left -= closes - a
    raise AssertionError("unreachable")  # pragma: no cover


def sub_working_time(end: datetime, amount: timedelta, schedule: WorkSchedule, calendar: WorkCalendar) -> datetime:
    """The instant ``amount`` of working time before ``end`` (aware)."""
    left = amount
    local = end.astimezone(LOCAL_TZ)
    for day in _days(local.date(), -1):
        if not calendar.is_workday(day):
            continue
        for opens, closes in reversed(_intervals(day, schedule)):
            b = min(closes, local)
            if b <= opens:
                continue
            if b - opens >= left:
                return b - left
            left -= b - opens
    raise AssertionError("unreachable")  # pragma: no cover


def working_time_between(
    start: datetime, end: datetime, schedule: WorkSchedule, calendar: WorkCalendar
) -> timedelta:
    """The working time inside [start, end); zero when ``end`` is not after ``start``."""
    total = timedelta(0)
    if end <= start:
        return total
    first, last = start.astimezone(LOCAL_TZ), end.astimezone(LOCAL_TZ)
    day = first.date()
    while day <= last.date():
        if calendar.is_workday(day):
            for opens, closes in _intervals(day, schedule):
                a, b = max(opens, first), min(closes, last)
                if b > a:
                    total += b - a
        day += timedelta(days=1)
    return total


def same_day_due(received_at: datetime, schedule: WorkSchedule, calendar: WorkCalendar,
                 end_of_day: timedelta) -> datetime:
    """当日: the end (``end_of_day`` after midnight, default 24:00) of the day of dispatch when that is a
    working day and dispatch is before the working day ends; otherwise of the next working day."""
    local = received_at.astimezone(LOCAL_TZ)
    day = local.date()
    if not calendar.is_workday(day) or local.timetz().replace(tzinfo=None) >= schedule.day_end:
        day = calendar.next_workday(day)
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ) + end_of_day
