"""APScheduler wiring for ``hotline-sla run``, and the "working days at HH:MM" trigger.

APScheduler 3.11 (BlockingScheduler, in-memory job store) only decides *when* a job runs. *Whether* there is
work is decided by the database: the tick reads ``next_check_at``, the report jobs look up their ``runs``
row. So catch-up after downtime needs no misfire handling: the service calls the report jobs at start (and
when it becomes the leader) as well as on their trigger, and a restart at 08:31 still sends today's digest
once. Every job runs at most one instance at a time and late runs coalesce into one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.core.calendar import CalendarRangeError, WorkCalendar
from daemon.core.timeutil import LOCAL_TZ, to_local


class WorkdayTrigger(BaseTrigger):  # type: ignore[misc]  # apscheduler has no type information
    """Fires at ``at`` (Asia/Shanghai) on every working day of ``calendar``: make-up days (调休上班) included,
    statutory holidays and ordinary weekends skipped. Returns None past the calendar's last year.

    APScheduler calls :meth:`get_next_fire_time` with the previous fire time (None the first time) and the
    current time; both are aware datetimes and nothing here reads a clock.
    """

    def __init__(self, calendar: WorkCalendar, at: time) -> None:
        self.calendar = calendar
        self.at = at.replace(tzinfo=None)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The first working-day slot strictly after ``previous_fire_time``, or at/after ``now`` when the
        trigger has not fired yet."""
        after = previous_fire_time if previous_fire_time is not None else now
        inclusive = previous_fire_time is None
        day: date = to_local(after).date()
        for _ in range(400):  # the longest run of rest days is ~9; a year bounds any calendar gap
            try:
                workday = self.calendar.is_workday(day)
            except CalendarRangeError:
                return None
            if workday:
                slot = datetime.combine(day, self.at, LOCAL_TZ)
                if slot > after or (inclusive and slot == after):
                    return slot
            day += timedelta(days=1)
        return None

    def __str__(self) -> str:
        return f"workdays at {self.at.strftime('%H:%M')} Asia/Shanghai"

    def __repr__(self) -> str:
        return f"<WorkdayTrigger at={self.at.isoformat('minutes')} calendar={self.calendar.first_year}-" \
               f"{self.calendar.last_year}>"


def every(seconds: float) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, timezone=UTC)


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: ``func`` takes no argument (it reads the clock through the service)."""

    id: str
    func: Callable[[], Any]
    trigger: BaseTrigger
    run_at_start: bool = False


def build_scheduler(jobs: Sequence[JobSpec], *, now: datetime) -> BlockingScheduler:
    """A BlockingScheduler with ``jobs`` added: one instance per job at a time, late runs coalesced.

    ``misfire_grace_time=None`` runs a late job (once) however late: a busy pool must not silently skip a
    dispatch round. Catch-up of a whole missed day is not APScheduler's job but the database's (see module
    docstring). Jobs with ``run_at_start`` run as soon as the scheduler starts (``now``).
    """
    scheduler = BlockingScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=len(jobs) + 2)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
    )
    for job in jobs:
        kwargs: dict[str, Any] = {"next_run_time": now} if job.run_at_start else {}
        scheduler.add_job(job.func, job.trigger, id=job.id, name=job.id, **kwargs)
    return scheduler
