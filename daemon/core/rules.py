"""SLA rules (办理时限规则): load ``sla_rules/*.yaml``, match a case to its rule, compute its Deadline.

Counting follows 民法典 第二百零一条 and 第二百零二条: the day of receipt is not counted, a day period ends at
24:00 of its last day (we store the first overdue instant, 00:00 of the next day), hour periods run from
the exact receipt instant. 第二百零三条 (a last day on a legal rest day moves to the day after it) is off by
default for natural days: the bulletin stipulates 自然日 (第二百零四条) and the earlier deadline is the safe
side; ``roll_to_workday`` turns it on. Receipt is the unit's clock: dispatch (交办), not intake (受理).
All instants are aware datetimes; days are Asia/Shanghai calendar days.

Every case gets two rules: the first matching ``purpose: resolve`` rule (the deadline to close and feed
back, 办结反馈) and the first matching ``purpose: return`` rule (the window to ask for a return, 退件).

Deadline kinds: natural_days, working_days, hours, working_hours (工作小时) and same_day (当日); the last two
on the rule's working schedule (daemon/core/workhours.py). A resolve rule may also give a sign window
(``sign_within``, 签收时限) and a first-contact window (``contact_within``, 先行联系) in the same vocabulary,
counted from the same receipt on the same calendar and schedule (:meth:`Rule.sign_by`, :meth:`Rule.contact_by`).
Over ~400 lines: the Rule class is one decision
(a case's deadline and warnings) and is kept whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from daemon.core.calendar import WorkCalendar
from daemon.core.lifecycle import Suspension, choose_due, merge_suspensions, suspended_due
from daemon.core.rule_spec import CompiledRules, MonthEndSettings, RuleSpec, WarnLead
from daemon.core.timeutil import LOCAL_TZ
from daemon.core.workhours import (
    add_working_time,
    same_day_due,
    sub_working_time,
    working_time_between,
)
from daemon.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from daemon.core.rule_schema import RuleFile

__all__ = ["Deadline", "Rule", "RuleError", "RuleSet", "WarningPoint", "bind_rules", "compile_rules", "load_rules"]


class RuleError(ConfigError):
    """An invalid rule file; the message names the file, the rule id and the key."""


@dataclass(frozen=True)
class WarningPoint:
    level: int  # 1 = the earliest warning (longest lead), higher = closer to the deadline
    at: datetime
    lead: str  # as written in the rule, e.g. "24h" or "1 working day"


@dataclass(frozen=True)
class Deadline:
    """A computed deadline. ``due_at`` is the first overdue instant (aware)."""

    rule_id: str
    rule_name: str
    received_at: datetime
    due_at: datetime
    warnings: tuple[WarningPoint, ...]
    provisional_days: tuple[date, ...] = ()
    extended_from: datetime | None = None  # the rule's due_at when an approved extension (延期) replaced it
    platform_due_at: datetime | None = None  # the platform's own deadline (办理时限) as a first overdue instant
    computed_due_at: datetime | None = None  # ours, when the platform's was given (it may not be due_at)
    deadline_source: str = "computed"  # which one due_at is: 'computed' (ours) or 'platform'
    suspension_moved_from: datetime | None = None  # ours before a resumed suspension (挂起) moved it
    # the first instant at which a case not yet signed (签收) / contacted (先行联系) is late: received_at plus the
    # rule's sign_within / contact_within (None: no such window, or, for contact, not observed in the export)
    sign_by: datetime | None = None
    contact_by: datetime | None = None

    @property
    def disagrees(self) -> bool:
        """The platform's deadline and ours differ (时限不一致): a supervisor should see it."""
        return (self.platform_due_at is not None and self.computed_due_at is not None
                and self.platform_due_at != self.computed_due_at)

    @property
    def provisional(self) -> bool:
        """True when a day the computation relied on comes from a provisional (暂定) calendar year."""
        return bool(self.provisional_days)


class DrivingDeadline(NamedTuple):
    """:meth:`Rule.drive`: the deadline that drives, where it comes from, and its warnings when it is the
    platform's (None: the computed deadline's warnings stand)."""

    due_at: datetime
    source: str
    warnings: tuple[WarningPoint, ...] | None


class Rule:
    """One validated rule (:class:`RuleSpec`, plain data) bound to a calendar."""

    def __init__(self, model: RuleSpec, calendar: WorkCalendar, file: str) -> None:
        self.model = model
        self.calendar = calendar
        self.file = file
        self.id = model.id
        self.name = model.name
        self.purpose = model.purpose
        self.natural_days = model.natural_days
        self.working_days = model.working_days
        self.hours = model.hours
        self.working_hours = model.working_hours  # 工作小时 on ``schedule``
        self.same_day = model.same_day  # 当日
        #: the working periods of a working day: the rule's own, else its file's (daemon/core/workhours.py)
        self.schedule = model.working_schedule
        self._end_of_day = model.end_of_day_delta
        self._workday_start = model.working_day_starts
        self._match = {k: frozenset(v) for k, v in model.match.items()}
        # day-count rules: everything but the warning filter depends only on the local day of receipt
        self._by_day: dict[int, tuple[datetime, tuple[WarningPoint, ...], tuple[date, ...]]] = {}
        self._due_by_day: dict[int, datetime] = {}
        self.sign_window = self._window(model.sign_within)
        self.contact_window = self._window(model.contact_within)

    def _window(self, spec: RuleSpec | None) -> Rule | None:
        """A sign or contact window as a rule of its own (no warnings, no windows; the schema builds its spec
        from this rule's): one arithmetic for every period kind, on this rule's calendar, schedule and end of
        day."""
        return None if spec is None else Rule(spec, self.calendar, self.file)

    def sign_by(self, received_at: datetime) -> datetime | None:
        """The first instant (aware) at which a case received at ``received_at`` and not yet signed (签收) is
        late: ``received_at`` + ``sign_within``, counted like the deadline. None without ``sign_within``."""
        return None if self.sign_window is None else self.sign_window.due_at(received_at)

    def contact_by(self, received_at: datetime) -> datetime | None:
        """:meth:`sign_by` for the first contact with the citizen (先行联系, ``contact_within``)."""
        return None if self.contact_window is None else self.contact_window.due_at(received_at)

    @property
    def has_windows(self) -> bool:
        """The rule gives a sign or a contact window: its cases' first check depends on the exact receipt."""
        return self.sign_window is not None or self.contact_window is not None

    @property
    def basis(self) -> str:
        if self.hours is not None:
            return "hours"
        if self.working_hours is not None:
            return "working_hours"
        if self.same_day:
            return "same_day"
        return "working_days" if self.working_days is not None else "natural_days"

    @property
    def counts_whole_days(self) -> bool:
        """A period of natural or working days: its due instant and warning candidates depend only on the local
        day of receipt, so callers may memoise them per day. Any other kind (hours, working hours, same day)
        depends on the exact instant of receipt."""
        return self.natural_days is not None or self.working_days is not None

    @property
    def is_catch_all(self) -> bool:
        return not self._match

    def describe_limit(self) -> str:
        """Chinese, e.g. ``5个工作日``."""
        if self.hours is not None:
            return f"{self.hours}小时"
        if self.working_hours is not None:
            return f"{self.working_hours}个工作小时"
        if self.same_day:
            return "当日"
        if self.working_days is not None:
            return f"{self.working_days}个工作日"
        return f"{self.natural_days}个自然日"

    def matches(self, case: Mapping[str, Any]) -> bool:
        for key, allowed in self._match.items():
            value = case.get(key)
            if value is None and key == "priority":
                value = "normal"  # no 紧急程度: a normal case
            if value is None or str(value) not in allowed:
                return False
        return True

    # --- the arithmetic ------------------------------------------------------------------------------

    def due_at(self, received_at: datetime) -> datetime:
        """The first overdue instant for a case received at ``received_at`` (aware). The hot path."""
        if self.hours is not None:
            return received_at + timedelta(hours=self.hours)
        if self.working_hours is not None:
            return add_working_time(received_at, timedelta(hours=self.working_hours), self.schedule, self.calendar)
        if self.same_day:
            return same_day_due(received_at, self.schedule, self.calendar, self._end_of_day)
        ordinal = received_at.astimezone(LOCAL_TZ).toordinal()
        due = self._due_by_day.get(ordinal)
        if due is None:
            if len(self._due_by_day) >= self._DAY_CACHE_MAX:
                self._due_by_day.clear()
            due = self._due_by_day[ordinal] = self._due_for_day(ordinal)
        return due

    def _due_for_day(self, ordinal: int) -> datetime:
        if self.working_days is not None:
            last = self.calendar.add_working_days_ordinal(ordinal, self.working_days)
        else:
            assert self.natural_days is not None
            last = ordinal + self.natural_days
            if self.model.roll_to_workday and not self.calendar.is_workday(date.fromordinal(last)):
                last = self.calendar.add_working_days_ordinal(last, 1)
        d = date.fromordinal(last)
        return datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ) + self._end_of_day

    def last_day(self, received_at: datetime) -> date | None:
        """The last counted day (None for hour and working-hour rules)."""
        if self.hours is not None or self.working_hours is not None:
            return None
        return (self.due_at(received_at) - self._end_of_day).date()

    def counted_days(self, received_at: datetime) -> list[date]:
        """The days the period runs over, from the day after receipt to the last day (for `explain`)."""
        last = self.last_day(received_at)
        if last is None:
            return []
        first = received_at.astimezone(LOCAL_TZ).date() + timedelta(days=1)
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def drive(
        self, received_at: datetime, computed_due: datetime, platform_due: datetime | None, *, extended: bool = False
    ) -> DrivingDeadline:
        """:func:`choose_due` under this rule's ``deadline_source``; the platform's deadline gets this rule's
        warning leads counted back from it."""
        due, source = choose_due(computed_due, platform_due, self.model.deadline_source, extended=extended)
        if source == "computed":
            return DrivingDeadline(due, source, None)
        return DrivingDeadline(due, source, self.warning_points(received_at, due))

    def suspended_due(self, due: datetime, suspended_at: datetime, resumed_at: datetime) -> datetime:
        """``due`` moved by a resumed suspension (挂起), in this rule's own unit (:func:`.lifecycle.suspended_due`).

        Working-hour rules get back the working time inside the suspension; same-day (当日) rules count like
        natural days."""
        if self.working_hours is not None:
            if resumed_at <= suspended_at:
                return due
            given_back = working_time_between(suspended_at, resumed_at, self.schedule, self.calendar)
            return add_working_time(due, given_back, self.schedule, self.calendar) if given_back else due
        return suspended_due(due, suspended_at, resumed_at, basis=self.basis, calendar=self.calendar,
                             end_of_day=self._end_of_day)

    def suspensions_due(
        self, due: datetime, suspensions: Sequence[Suspension], since: datetime | None = None
    ) -> datetime:
        """``due`` moved by every resumed suspension (挂起), each in this rule's own unit (:meth:`suspended_due`,
        so a suspension started and resumed on one day moves a day rule by nothing). Overlapping or touching
        suspensions, in any order, are merged first (:func:`.lifecycle.merge_suspensions`): time is given back once;
        time before ``since`` (the cycle's dispatch) is not given back.
        """
        for suspended_at, resumed_at in merge_suspensions(suspensions, since):
            due = self.suspended_due(due, suspended_at, resumed_at)
        return due

    def deadline(
        self, received_at: datetime, *, extended_due_at: datetime | None = None,
        platform_due_at: datetime | None = None, suspensions: Sequence[Suspension] = (),
        contact_observed: bool = True,
    ) -> Deadline:
        """The full deadline: due instant, warning instants and provisional days.

        The resumed ``suspensions`` (挂起 … 解挂: the case's earlier ones and its current one once resumed,
        :attr:`~daemon.core.cases.CaseRecord.suspensions`) move ours (:meth:`suspensions_due`; an approved
        extension replaces it); with the platform's own deadline (``platform_due_at``) the one :meth:`drive` chooses
        drives, and both are kept. ``sign_by`` and ``contact_by`` are the rule's windows (:meth:`sign_by`);
        ``contact_observed`` False (the export has no 先行联系时间 column) leaves ``contact_by`` None: a contact
        that cannot be seen is never late."""
        ours = self._computed_deadline(received_at, extended_due_at=extended_due_at)
        if self.has_windows:
            ours = replace(ours, sign_by=self.sign_by(received_at),
                           contact_by=self.contact_by(received_at) if contact_observed else None)
        if suspensions and extended_due_at is None:
            moved = self.suspensions_due(ours.due_at, suspensions, received_at)
            if moved != ours.due_at:
                ours = replace(ours, due_at=moved, warnings=self.warning_points(received_at, moved),
                               provisional_days=self._provisional_days(received_at, moved),
                               suspension_moved_from=ours.due_at)
        if platform_due_at is None:
            return ours
        driving = self.drive(received_at, ours.due_at, platform_due_at, extended=extended_due_at is not None)
        if driving.warnings is None:
            return replace(ours, platform_due_at=platform_due_at, computed_due_at=ours.due_at)
        return replace(
            ours, due_at=driving.due_at, warnings=driving.warnings, provisional_days=(),
            platform_due_at=platform_due_at, computed_due_at=ours.due_at, deadline_source=driving.source,
        )

    def _computed_deadline(self, received_at: datetime, *, extended_due_at: datetime | None = None) -> Deadline:
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        if self.counts_whole_days and extended_due_at is None:
            return self._day_deadline(received_at)
        due = self.due_at(received_at)
        extended_from = None
        if extended_due_at is not None and extended_due_at != due:
            extended_from, due = due, extended_due_at
        return Deadline(
            rule_id=self.id,
            rule_name=self.name,
            received_at=received_at,
            due_at=due,
            warnings=self.warning_points(received_at, due),
            provisional_days=self._provisional_days(received_at, due),
            extended_from=extended_from,
        )

    _DAY_CACHE_MAX = 50_000  # ~137 years of receipt days: bounded even for a long-running daemon

    def _day_deadline(self, received_at: datetime) -> Deadline:
        """:meth:`deadline` for a day-count rule, memoised per local day of receipt (the batch hot path)."""
        ordinal = received_at.astimezone(LOCAL_TZ).toordinal()
        cached = self._by_day.get(ordinal)
        if cached is None:
            if len(self._by_day) >= self._DAY_CACHE_MAX:
                self._by_day.clear()
            due = self.due_at(received_at)
            cached = (due, self.warning_candidates(due), self._provisional_days(received_at, due))
            self._by_day[ordinal] = cached
        due, points, provisional = cached
        return Deadline(
            rule_id=self.id,
            rule_name=self.name,
            received_at=received_at,
            due_at=due,
            warnings=tuple(p for p in points if received_at < p.at < due),
            provisional_days=provisional,
        )

    def _provisional_days(self, received_at: datetime, due: datetime) -> tuple[date, ...]:
        if self.hours is not None or (self.natural_days is not None and not self.model.roll_to_workday):
            relied_first = None  # hour and plain natural-day periods do not depend on the calendar
        else:
            relied_first = received_at.astimezone(LOCAL_TZ).date()
        days: list[date] = []
        if relied_first is not None:
            days.extend(self.calendar.provisional_days(relied_first, (due - timedelta(microseconds=1)).date()))
        last_moment = (due - timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()
        for lead in self.model.warn_before:
            if lead.working_days:  # counting back relies on the calendar too
                start = self.calendar.sub_working_days(last_moment, lead.working_days)
                days.extend(self.calendar.provisional_days(start, last_moment))
            elif lead.working_hours:
                start = self._warning_instant(lead, due).astimezone(LOCAL_TZ).date()
                days.extend(self.calendar.provisional_days(start, last_moment))
        return tuple(sorted(set(days)))

    def warning_points(self, received_at: datetime, due: datetime) -> tuple[WarningPoint, ...]:
        """Warning instants strictly between receipt and ``due``; level 1 is the longest lead."""
        return tuple(w for w in self.warning_candidates(due) if received_at < w.at < due)

    def warning_candidates(self, due: datetime) -> tuple[WarningPoint, ...]:
        """Every lead's instant for ``due``, levelled, before leaving out those not after receipt.

        Depends on ``due`` only, so the store computes it once per distinct due instant.
        """
        points = sorted(((self._warning_instant(lead, due), lead.text) for lead in self.model.warn_before),
                        key=lambda p: p[0])
        return tuple(WarningPoint(level, at, text) for level, (at, text) in enumerate(points, start=1))

    def _warning_instant(self, lead: WarnLead, due: datetime) -> datetime:
        if lead.working_hours:
            return sub_working_time(due, timedelta(hours=lead.working_hours), self.schedule, self.calendar)
        if lead.working_days:
            # "N working days before": on the N-th working day counted back from the last instant before
            # due (the due day's own working day is the 1st), at the start of business.
            last_moment = (due - timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()
            if self.calendar.is_workday(last_moment):
                day = (
                    last_moment
                    if lead.working_days == 1
                    else self.calendar.sub_working_days(last_moment, lead.working_days - 1)
                )
            else:
                day = self.calendar.sub_working_days(last_moment, lead.working_days)
            return datetime.combine(day, self._workday_start, tzinfo=LOCAL_TZ)
        if lead.natural_days:
            last_moment = (due - timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()
            day = last_moment - timedelta(days=lead.natural_days - 1)
            return datetime.combine(day, self._workday_start, tzinfo=LOCAL_TZ)
        return due - lead.delta


@dataclass(frozen=True)
class RuleSet:
    """All rules, in match order, plus the month-end settings."""

    rules: tuple[Rule, ...]
    month_end: MonthEndSettings
    files: tuple[str, ...]
    fingerprint: str  # changes when any rule or the calendar changes

    @cached_property
    def by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}

    def find(self, rule_id: str) -> Rule | None:
        """The rule, or None (a stored case may name a rule that an edit has since removed)."""
        return self.by_id.get(rule_id)

    def get(self, rule_id: str) -> Rule:
        rule = self.by_id.get(rule_id)
        if rule is not None:
            return rule
        raise UsageError(f"unknown rule {rule_id!r}; valid rules: {', '.join(r.id for r in self.rules)}")

    def match(self, case: Mapping[str, Any]) -> Rule:
        """The first ``resolve`` rule that matches; a catch-all guarantees one does."""
        for rule in self.rules:
            if rule.purpose == "resolve" and rule.matches(case):
                return rule
        raise AssertionError("rule set has no catch-all rule")  # load_rules refuses such a set

    def return_rule(self, case: Mapping[str, Any]) -> Rule | None:
        for rule in self.rules:
            if rule.purpose == "return" and rule.matches(case):
                return rule
        return None


def load_rules(directory: Path, calendar: WorkCalendar) -> RuleSet:
    """Load every ``*.yaml`` in ``directory`` (not its subfolders), in file-name order.

    The full parse and validation every time; :func:`daemon.core.compiled.load_rules` goes through the cache.
    """
    return bind_rules(compile_rules(directory), calendar)


def compile_rules(directory: Path) -> CompiledRules:
    """The rule files validated and turned into plain data; :class:`RuleError` lists every problem."""
    errors = check_rules(directory)
    if errors:
        raise RuleError("; ".join(errors))
    specs: list[tuple[RuleSpec, str]] = []
    month_end = MonthEndSettings()
    documents: list[str] = []
    files = rule_files(directory)
    for path in files:
        parsed, _ = _parse_file(path)
        assert parsed is not None
        if parsed.month_end is not None:
            month_end = parsed.month_end.to_spec()
        specs.extend((model.to_spec(parsed.working_schedule), str(path)) for model in parsed.rules)
        documents.append(json.dumps(parsed.model_dump(mode="json"), sort_keys=True))
    return CompiledRules(tuple(specs), month_end, tuple(str(p) for p in files), tuple(documents))


def bind_rules(compiled: CompiledRules, calendar: WorkCalendar) -> RuleSet:
    """The rule set of ``compiled`` on ``calendar``; its fingerprint covers both."""
    digest = hashlib.sha256(calendar.fingerprint.encode())
    for document in compiled.documents:
        digest.update(document.encode())
    rules = tuple(Rule(spec, calendar, file) for spec, file in compiled.rules)
    return RuleSet(rules, compiled.month_end, compiled.files, digest.hexdigest()[:16])


def check_rules(directory: Path) -> list[str]:
    """Every problem in the rule files, each naming file, rule and key; empty when valid."""
    errors: list[str] = []
    files = rule_files(directory)
    if not files:
        return [f"{directory}: no rule files (*.yaml) found"]
    ids: dict[str, str] = {}
    month_end_files: list[str] = []
    has_catch_all = False
    for path in files:
        parsed, file_errors = _parse_file(path)
        errors.extend(file_errors)
        if parsed is None:
            continue
        if parsed.month_end is not None:
            month_end_files.append(str(path))
        for rule in parsed.rules:
            if rule.id in ids:
                errors.append(f"{path}: rule {rule.id!r}: id: duplicate; already defined in {ids[rule.id]}")
            ids[rule.id] = str(path)
            if rule.purpose == "resolve" and not rule.match:
                has_catch_all = True
    if len(month_end_files) > 1:
        errors.append(f"month_end: defined in several files ({', '.join(month_end_files)}); keep it in one")
    if not errors and not has_catch_all:
        errors.append(
            f"{directory}: no catch-all rule: add a last rule with 'match: {{}}' so that no case is without a rule"
        )
    return errors


def rule_files(directory: Path) -> list[Path]:
    """The rule files of ``directory`` in load order (``*.yaml`` and ``*.yml``, not its subfolders)."""
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def _parse_file(path: Path) -> tuple[RuleFile | None, list[str]]:
    import yaml
    from pydantic import ValidationError

    from daemon.core.rule_schema import RuleFile, format_validation_error

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: cannot read ({exc.__class__.__name__}: {exc})"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        return None, [f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})"]
    if not isinstance(data, dict):
        return None, [f"{path}: expected a mapping with 'rules:' (and optionally 'month_end:')"]
    try:
        return RuleFile.model_validate(data), []
    except ValidationError as exc:
        return None, format_validation_error(str(path), exc, data)
