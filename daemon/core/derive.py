"""A case's derived columns: rule, deadline, warning instants and ``next_check_at``, memoised for imports.

Instants in and out are aware datetimes. Pure: no database, clock or network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, NamedTuple

from daemon.core.cases import FINISHED_STATUSES, CaseRecord, Priority
from daemon.core.engine import first_check
from daemon.core.rules import Rule, RuleSet, WarningPoint
from daemon.core.timeutil import LOCAL_TZ

SOURCE_FIELDS = (
    "number", "source", "category", "unit", "district", "domain", "summary", "status", "received_at",
    "signed_at", "return_requested_at", "fed_back_at", "closed_at", "extended_due_at", "satisfaction",
    "stars", "difficult", "source_updated_at",
)
#: the finished statuses as the store holds them (text, for SQL); a case is also finished once fed back or
#: closed (:func:`~daemon.core.engine.is_finished`)
FINISHED = frozenset(s.value for s in FINISHED_STATUSES)
_source_values = attrgetter(*SOURCE_FIELDS)
_LOCAL_SFX = datetime(2000, 1, 1, tzinfo=LOCAL_TZ).isoformat()[19:]  # '+08:00'


def content_hash(record: CaseRecord) -> str:
    """What the source said about the case; equal hashes mean a re-import changes nothing."""
    raw = "\x1f".join(["" if v is None else str(v) for v in _source_values(record)])
    if (record.accepted_at is not None or record.platform_due_at is not None or record.platform_overdue is not None
            or record.suspended_at is not None or record.resumed_at is not None):
        # facts added later (issue 12): a case without them keeps the hash it had
        extra = (record.accepted_at, record.platform_due_at, record.platform_overdue, record.suspended_at,
                 record.resumed_at)
        raw += "\x1e" + "\x1f".join(["" if v is None else str(v) for v in extra])
    if record.priority is not None:  # 紧急程度 (issue 12 item 4): a case without it keeps the hash it had
        raw += "\x1d" + record.priority.value
    if record.contact_tracked:  # 先行联系时间 (issue 12 item 4): a source without the column keeps the hash it had
        raw += "\x1c" + ("" if record.contacted_at is None else str(record.contacted_at))
    return hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest()


def key_hash(key: Sequence[Any]) -> str:
    """:func:`content_hash` of the record a :data:`~daemon.sources.mapping.SourceKey` stands for: times are
    canonical local text there, and ``str`` of the local datetime is that text plus '+08:00'.
    """
    (number, source, category, unit, district, domain, summary, status, received, signed, requested, fed_back,
     closed, extended, satisfaction, stars, difficult, updated) = key
    assert extended is None
    raw = "\x1f".join((
        number, source, category, unit, district or "", domain or "", summary or "", status, received + _LOCAL_SFX,
        "" if signed is None else signed + _LOCAL_SFX, "" if requested is None else requested + _LOCAL_SFX,
        "" if fed_back is None else fed_back + _LOCAL_SFX, "" if closed is None else closed + _LOCAL_SFX, "",
        satisfaction or "", "" if stars is None else str(stars), "True" if difficult else "False",
        "" if updated is None else updated + _LOCAL_SFX,
    ))
    return hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest()


def warnings_json(points: Sequence[WarningPoint]) -> list[list[Any]]:
    return [[w.level, w.at.isoformat(), w.lead] for w in points]


def suspensions_json(suspensions: Sequence[tuple[datetime, datetime]]) -> list[list[str]] | None:
    """The stored form of earlier suspensions (``cases.earlier_suspensions``): [[挂起, 解挂], ...] as local ISO
    instants with their offset, or None for none."""
    return [[s.astimezone(LOCAL_TZ).isoformat(), e.astimezone(LOCAL_TZ).isoformat()] for s, e in suspensions] or None


def suspensions_from_json(data: Any) -> tuple[tuple[datetime, datetime], ...]:
    return tuple((datetime.fromisoformat(s), datetime.fromisoformat(e)) for s, e in data or ())


def warnings_from_json(data: Any) -> tuple[WarningPoint, ...]:
    return tuple(WarningPoint(int(lv), datetime.fromisoformat(at), lead) for lv, at, lead in data or ())


class DayDeadline(NamedTuple):
    """What a day rule's deadline is for every case received on one local day (with one extension)."""

    due_at: datetime
    provisional: bool
    candidates: tuple[WarningPoint, ...]


class Warnings:
    """A case's warning points with their JSON form (shared by every case with the same points)."""

    __slots__ = ("as_json", "bound", "bound_by", "first_at", "points")

    def __init__(self, points: tuple[WarningPoint, ...]) -> None:
        self.points = points
        self.as_json = warnings_json(points)
        self.first_at = min((w.at for w in points), default=None)
        self.bound: Any = None  # the driver's value, once a bulk writer (bound_by) converted it
        self.bound_by: object = None


class RuleCache:
    """Rule matching memoised by the fields rules can match on (a few dozen distinct keys at most), and
    day-rule deadlines memoised by (rule, local day of receipt, extension): a million cases received over a
    few weeks need a few hundred deadline computations, not a million.
    """

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._cache: dict[tuple[Any, ...], tuple[Rule, Rule | None]] = {}
        self._days: dict[tuple[str, int, datetime | None], DayDeadline] = {}
        self._warnings: dict[tuple[Any, ...], Warnings] = {}
        self._leads: dict[str, tuple[tuple[int, timedelta, str], ...] | None] = {}

    def rules_for(self, record: CaseRecord) -> tuple[Rule, Rule | None]:
        key = (record.source, record.category, record.status, record.unit, record.district, record.domain,
               record.priority)
        hit = self._cache.get(key)
        return hit if hit is not None else self.rules_for_key(key)

    def rules_for_key(self, key: tuple[Any, ...]) -> tuple[Rule, Rule | None]:
        """:meth:`rules_for` by (source, category, status, unit, district, domain[, priority]); no priority
        (the fast path's keys, an export without 紧急程度) matches as ``normal``."""
        hit = self._cache.get(key)
        if hit is None:
            source, category, status, unit, district, domain = key[:6]
            priority = key[6] if len(key) > 6 and key[6] is not None else Priority.NORMAL
            view = {
                "source": source.value, "category": category.value, "status": status.value,
                "unit": unit, "district": district, "domain": domain, "priority": priority.value,
            }
            hit = (self.rules.match(view), self.rules.return_rule(view))
            if len(self._cache) < 100_000:
                self._cache[key] = hit
        return hit

    def hour_leads(self, rule: Rule) -> tuple[tuple[int, timedelta, str], ...] | None:
        """An hour rule's leads as (level, delta, text) when all are plain durations (no calendar in them):
        its deadline is then received + hours, never provisional, warnings at due - delta. None for any
        other rule.
        """
        if rule.id not in self._leads:
            leads = rule.model.warn_before
            plain = rule.hours is not None and all(not (lead.working_days or lead.natural_days) for lead in leads)
            ordered = sorted(leads, key=lambda lead: -lead.delta)  # stable, like sorting by due - delta
            self._leads[rule.id] = (
                tuple((level, lead.delta, lead.text) for level, lead in enumerate(ordered, start=1)) if plain else None
            )
        return self._leads[rule.id]

    def deadline(
        self, rule: Rule, received_at: datetime, extended_due_at: datetime | None = None
    ) -> tuple[datetime, bool, Warnings]:
        """(due_at, provisional, warnings) exactly as ``rule.deadline`` computes them (aware instants)."""
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        if not rule.counts_whole_days:  # hour periods run from the exact instant: nothing to share per day
            leads = self.hour_leads(rule)
            if leads is None or rule.hours is None:
                full = rule.deadline(received_at, extended_due_at=extended_due_at)
                return full.due_at, full.provisional, Warnings(full.warnings)
            due = received_at + timedelta(hours=rule.hours) if extended_due_at is None else extended_due_at
            points = []
            for level, delta, text in leads:
                at = due - delta
                if received_at < at < due:
                    points.append(WarningPoint(level, at, text))
            return due, False, Warnings(tuple(points))
        key = (rule.id, received_at.astimezone(LOCAL_TZ).toordinal(), extended_due_at)
        day = self._days.get(key)
        if day is None:
            full = rule.deadline(received_at, extended_due_at=extended_due_at)
            day = DayDeadline(full.due_at, full.provisional, rule.warning_candidates(full.due_at))
            if len(self._days) < 100_000:
                self._days[key] = day
        due = day.due_at
        kept = tuple(w for w in day.candidates if received_at < w.at < due)
        wkey = (key, len(kept))  # candidates are sorted: the kept ones are always the last len(kept)
        warnings = self._warnings.get(wkey)
        if warnings is None:
            warnings = Warnings(kept)
            if len(self._warnings) < 100_000:
                self._warnings[wkey] = warnings
        return due, day.provisional, warnings


class Derived(NamedTuple):
    """The stored, derived columns of a case (aware instants; warnings with their JSON form)."""

    rule_id: str
    due_at: datetime
    provisional: bool
    warnings: Warnings
    return_rule_id: str | None
    return_due_at: datetime | None
    return_warnings: Warnings | None
    next_check_at: datetime | None
    computed_due_at: datetime | None = None  # ours, when the platform's deadline was given
    deadline_source: str = "computed"  # which one due_at is (:func:`~daemon.core.rules.choose_due`)
    sign_due_at: datetime | None = None  # the rule's sign window's end (签收时限, Rule.sign_by)
    contact_due_at: datetime | None = None  # its contact window's end (先行联系), when the export observes contact


def derive_parts(record: CaseRecord, cache: RuleCache) -> Derived:
    """The derived columns through the cache's memoised deadlines (the import's hot path)."""
    rule, return_rule = cache.rules_for(record)
    computed_due, source = None, "computed"
    suspensions = record.suspensions
    if record.platform_due_at is None and not suspensions:
        due, provisional, warnings = cache.deadline(rule, record.received_at, record.extended_due_at)
    else:  # the few cases with a platform deadline or a resumed suspension: the rule's own full computation
        full = rule.deadline(record.received_at, extended_due_at=record.extended_due_at,
                             platform_due_at=record.platform_due_at, suspensions=suspensions)
        due, provisional, warnings = full.due_at, full.provisional, Warnings(full.warnings)
        computed_due, source = full.computed_due_at, full.deadline_source
    ret_due = ret_warnings = None
    if return_rule is not None:
        ret_due, _, ret_warnings = cache.deadline(return_rule, record.received_at)
    sign_by = rule.sign_by(record.received_at)
    contact_by = rule.contact_by(record.received_at) if record.contact_tracked else None
    return Derived(
        rule.id, due, provisional, warnings, return_rule.id if return_rule else None, ret_due, ret_warnings,
        _first_check(record, due, warnings, ret_due, ret_warnings, (sign_by, contact_by)), computed_due, source,
        sign_by, contact_by,
    )


def _first_check(  # noqa: PLR0917 - internal
    record: CaseRecord, due: datetime, warnings: Warnings, ret_due: datetime | None, ret_warnings: Warnings | None,
    windows: tuple[datetime | None, datetime | None],
) -> datetime | None:
    """The engine's :func:`~daemon.core.engine.first_check` on the memoised parts."""
    first = warnings.first_at
    return first_check(
        record.status, record.signed_at, record.return_requested_at, record.fed_back_at, record.closed_at,
        due if first is None or first > due else first, ret_due,
        None if ret_warnings is None else ret_warnings.first_at,
        sign_by=windows[0], contacted_at=record.contacted_at, contact_by=windows[1],
    )


def derive(record: CaseRecord, cache: RuleCache) -> dict[str, Any]:
    """The stored, derived columns of a case."""
    d = derive_parts(record, cache)
    return {
        "rule_id": d.rule_id,
        "due_at": d.due_at,
        "provisional": d.provisional,
        "warnings": d.warnings.as_json,
        "return_rule_id": d.return_rule_id,
        "return_due_at": d.return_due_at,
        "return_warnings": d.return_warnings.as_json if d.return_warnings else None,
        "next_check_at": d.next_check_at,
        "computed_due_at": d.computed_due_at,
        "deadline_source": d.deadline_source,
        "sign_due_at": d.sign_due_at,
        "contact_due_at": d.contact_due_at,
    }
