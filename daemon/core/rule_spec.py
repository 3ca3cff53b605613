"""A validated rule as plain data: what :class:`daemon.core.rules.Rule` computes with.

The rule files are validated by the pydantic schema (:mod:`daemon.core.rule_schema`), which then converts
each rule to a :class:`RuleSpec`. These classes import nothing heavy, so a command that reads its rules
from the compiled cache (:mod:`daemon.core.compiled`) never imports pydantic (~0.1 s of start-up). They
are frozen and pickled by the cache: a changed field is a changed module, which is a new cache key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta

from daemon.core.workhours import DEFAULT_SCHEDULE, WorkSchedule


@dataclass(frozen=True)
class WarnLead:
    """A warning lead time (see the schema's ``WarnLeadModel`` for how each is written and what it means).

    Exactly one of ``delta`` (a duration before the due instant), ``working_days``, ``natural_days`` (at the
    start of business on the period's last day or the day(s) before it) or ``working_hours`` is set.
    """

    text: str
    delta: timedelta = timedelta(0)
    working_days: int = 0
    natural_days: int = 0
    working_hours: int = 0


@dataclass(frozen=True)
class RuleSpec:
    """One validated rule. Exactly one deadline kind is set (``same_day`` is a bool)."""

    id: str
    name: str
    purpose: str  # resolve | return
    match: Mapping[str, tuple[str, ...]]
    natural_days: int | None
    working_days: int | None
    hours: int | None
    working_hours: int | None  # 工作小时
    same_day: bool  # 当日
    roll_to_workday: bool
    end_of_day: str  # HH:MM, 24:00 by default
    working_day_starts: time
    warn_before: tuple[WarnLead, ...]
    deadline_source: str  # computed | platform | earlier
    #: the rule's own working schedule, else its file's (already resolved)
    working_schedule: WorkSchedule = DEFAULT_SCHEDULE
    #: 签收时限 / 先行联系: each window as a rule of its own (the same calendar, schedule and end of day, no
    #: warnings, no windows of its own), its deadline the instant a case not yet signed / contacted is late
    sign_within: RuleSpec | None = None
    contact_within: RuleSpec | None = None

    @property
    def end_of_day_delta(self) -> timedelta:
        hh, mm = self.end_of_day.split(":")
        return timedelta(hours=int(hh), minutes=int(mm))


@dataclass(frozen=True)
class MonthEndSettings:
    """Month-end zero backlog (月底清零): when units are reminded of their open cases (validated by the schema's
    ``MonthEndModel``; these defaults are its defaults)."""

    enabled: bool = True
    #: reminders N working days before the month's last working day …
    reminder_working_days_before: tuple[int, ...] = (3, 1)
    #: … and on the morning of the last working day itself
    remind_on_last_working_day: bool = True
    reminder_time: time = time(9, 0)
    #: include cases carried over from earlier months (上月结存) as well as this month's
    include_carried_over: bool = True
    #: the carry-over report (结存) to supervisors on the first working day of the next month
    carry_over_report: bool = True
    carry_over_report_time: time = time(9, 0)


@dataclass(frozen=True)
class CompiledRules:
    """Every rule file of a directory, validated, as plain data: independent of the calendar, so it is what
    the compiled rules cache stores (:func:`daemon.core.rules.bind_rules` binds it to a calendar)."""

    rules: tuple[tuple[RuleSpec, str], ...]  # (rule, the file it came from), in match order
    month_end: MonthEndSettings
    files: tuple[str, ...]
    #: each file's validated content as canonical JSON, in file order: the rule set's fingerprint is built
    #: from these and the calendar's
    documents: tuple[str, ...]
