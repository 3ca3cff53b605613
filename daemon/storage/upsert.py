"""Upserting cases by number in chunks: new ones inserted, changed ones updated with history, the rest left.

An import of a million cases spends its time here, so the writes skip SQLAlchemy's per-row, per-column
type processing: each statement is compiled once for the dialect and run as one ``executemany`` on the
driver, with values already in the driver's form (:class:`CaseValues`, from :mod:`daemon.storage.codec`:
instants as naive UTC, JSON through the column type's own processor, memoised for the shared deadline
parts). What lands in the database is what SQLAlchemy would have written; ``tests/test_upsert.py`` compares
them per dialect. Every decision about a case (its deadlines, its first check) is the core's.

About 480 lines, over the house's 400: the chunk writer and its text-row fast path share the
per-import memos and the column order, and splitting them would pass both across a module boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Dialect, bindparam, insert, or_, select, update

from daemon.core.cases import CaseRecord
from daemon.core.derive import (
    Derived,
    RuleCache,
    Warnings,
    content_hash,
    derive_parts,
    key_hash,
    suspensions_from_json,
    suspensions_json,
)
from daemon.core.engine import first_check
from daemon.core.lifecycle import remembered_suspensions
from daemon.core.rules import Rule
from daemon.core.timeutil import LOCAL_TZ
from daemon.storage.assignments import CASE_COLUMNS as ENDED_COLUMNS
from daemon.storage.assignments import ended_assignment, write_ended
from daemon.storage.codec import BoundedMemo, BulkInsert, BulkStatement, DriverValues
from daemon.storage.models import UTCDateTime, case_history, cases

if TYPE_CHECKING:
    from daemon.sources.mapping import RecordBuilder, SourceKey

#: received_at and return_requested_at: a reopen (重办) or a re-dispatch to another unit starts a new clock; the
#: earlier cycle or assignment (unit, dispatch, return request, deadline) stays in the history
HISTORY_FIELDS = (
    "status", "unit", "received_at", "return_requested_at", "extended_due_at", "fed_back_at", "closed_at", "rule_id",
    "due_at",
)

#: the order of the values :meth:`ChunkWriter.record_row` builds; a schema change that moves a column fails here, loudly
INSERT_COLUMNS = (
    "number", "source", "category", "unit", "district", "domain", "summary", "status", "received_at",
    "signed_at", "return_requested_at", "fed_back_at", "closed_at", "extended_due_at", "satisfaction", "stars",
    "difficult", "source_name", "source_updated_at", "content_hash", "rule_id", "due_at", "provisional",
    "warnings", "return_rule_id", "return_due_at", "return_warnings", "deadline_version", "next_check_at",
    "check_failures", "created_at", "updated_at", "accepted_at", "platform_due_at", "platform_overdue",
    "computed_due_at", "deadline_source", "suspended_at", "resumed_at", "priority", "contacted_at", "contact_tracked",
    "sign_due_at", "contact_due_at", "earlier_suspensions",
)
assert tuple(c.name for c in cases.columns if c.name != "id") == INSERT_COLUMNS, "cases columns changed"
UPDATE_COLUMNS = tuple(c for c in INSERT_COLUMNS if c != "created_at")
_CREATED_AT = INSERT_COLUMNS.index("created_at")
#: the columns of facts added later (issue 12) that a case from a plain export leaves NULL
PLAIN_COLUMNS = ("accepted_at", "platform_due_at", "platform_overdue", "computed_due_at", "suspended_at", "resumed_at",
                 "priority", "earlier_suspensions")
#: whether a stored case was ever suspended in its cycle: only those have their suspensions read for
#: :func:`~daemon.core.lifecycle.remembered_suspensions` (a second query, so that a changed case never suspended
#: pays one flag: reading the three columns for every changed case cost it ~5 µs of its ~60)
PAUSED = or_(cases.c.suspended_at.is_not(None), cases.c.earlier_suspensions.is_not(None)).label("paused")
LOOKUP_BATCH = 20_000  # numbers per lookup: below SQLite's 32,766 host parameters and PostgreSQL's 65,535

#: a case prepared for :meth:`ChunkWriter.upsert_prepared`: (number, content hash, the insert row in the
#: driver's form or None, the index its records callback knows it by)
Prepared = tuple[str, str, "tuple[Any, ...] | None", int]


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: list[str] = field(default_factory=list)  # case numbers whose deadline moved

    def add(self, other: UpsertResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.moved.extend(other.moved)


class TextRow:
    """A case from a plain row, kept as its key (:meth:`RecordBuilder.source_key`) until the writer knows
    what it needs: nothing for an unchanged case, the insert row straight from the key for a new one
    (:meth:`ChunkWriter.fast_row`), the :class:`CaseRecord` (:meth:`RecordBuilder.record_of`) for a changed one.
    """

    __slots__ = ("builder", "digest", "key", "number")

    def __init__(self, builder: RecordBuilder, key: SourceKey) -> None:
        self.builder = builder
        self.key = key
        self.number: str = key[0]
        self.digest = key_hash(key)

    def record(self) -> CaseRecord:
        return self.builder.record_of(self.key)


_NO_LATER_FACTS = (None,) * len(PLAIN_COLUMNS)
_RECORD_PATH = object()  # a memo entry meaning "this rule/day takes the record path"


_UTC_OFFSET = LOCAL_TZ.utcoffset(None)


class CaseValues(DriverValues):
    """:class:`DriverValues` of the ``cases`` table, with the import's own conversions."""

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect, flag_type=cases.c.provisional.type, json_type=cases.c.warnings.type)
        self._to_utc: BoundedMemo[str, str] = BoundedMemo(200_000)

    def local_text(self, text: str | None) -> Any:
        """:attr:`instant` of the local time a canonical 'YYYY-MM-DD HH:MM:SS' text names (fixed +08:00),
        through a memo of the UTC 'YYYY-MM-DD HH:MM' per local one.
        """
        if text is None:
            return None
        head = text[:16]
        utc = self._to_utc.get(head)
        if utc is None:
            utc = self._to_utc.put(head, (datetime.fromisoformat(head) - _UTC_OFFSET).isoformat(" ")[:16])
        if self.text_mode:
            return utc + text[16:] + ".000000"
        return datetime.fromisoformat(utc + text[16:])

    def warnings(self, warnings: Warnings | None) -> Any:
        if warnings is None:
            return self.json_null
        if warnings.bound_by is not self:
            warnings.bound, warnings.bound_by = self.json(warnings.as_json), self
        return warnings.bound


class ChunkWriter:
    """Upserts chunks of cases on one dialect; holds the compiled statements and the deadline memo."""

    def __init__(self, dialect: Dialect, cache: RuleCache) -> None:
        self.cache = cache
        self.values = CaseValues(dialect)
        # a chunk of cases without the facts added later (intake apart, platform deadline, suspension, 紧急程度:
        # a text row never has them) is inserted without those columns (:class:`BulkInsert`)
        self._insert = BulkInsert(dialect, cases, INSERT_COLUMNS, PLAIN_COLUMNS)
        self._update = BulkStatement(
            dialect,
            update(cases).where(cases.c.id == bindparam("_id")).values({c: bindparam(c) for c in UPDATE_COLUMNS}),
            (*UPDATE_COLUMNS, "_id"),
        )
        # a chunk of changed cases that had none of the later facts and still have none leaves those columns out
        # of its UPDATE: NULL stays NULL, and SQLite then leaves ix_cases_platform_due_at alone
        plain_update = [c for c in UPDATE_COLUMNS if c not in PLAIN_COLUMNS]
        self._update_plain = BulkStatement(
            dialect,
            update(cases).where(cases.c.id == bindparam("_id")).values({c: bindparam(c) for c in plain_update}),
            (*plain_update, "_id"),
        )
        self._plain_of_update = itemgetter(*(i for i, c in enumerate((*UPDATE_COLUMNS, "_id"))
                                             if c not in PLAIN_COLUMNS))
        self._plain_of_row = itemgetter(*(INSERT_COLUMNS.index(c) for c in PLAIN_COLUMNS))
        quote = dialect.identifier_preparer.quote
        self._lookup_sql = (f"SELECT {quote('number')}, {quote('content_hash')} FROM {quote('cases')} "
                            f"WHERE {quote('number')} IN (@)")
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._fast_days: dict[tuple[str, str], Any] = {}
        self._fast_returns: dict[str, Any] = {}
        for column in INSERT_COLUMNS:  # every type this module converts by hand must be one it knows
            kind = cases.c[column].type
            known = isinstance(kind, UTCDateTime) or column in (
                "provisional", "difficult", "platform_overdue", "contact_tracked", "warnings", "return_warnings",
                "earlier_suspensions")
            assert known or kind.dialect_impl(dialect).bind_processor(dialect) is None, column

    def stored_digests(self, conn: Connection, numbers: list[str]) -> dict[str, str]:
        """The content hash of every stored case among ``numbers``.

        Plain driver SQL: SQLAlchemy renders an ``IN`` list element by element at every execution, which
        cost an import ~2 µs per case.
        """
        out: dict[str, str] = {}
        for start in range(0, len(numbers), LOOKUP_BATCH):
            part = numbers[start:start + LOOKUP_BATCH]
            sql = self._lookup_sql.replace("@", ", ".join([self._mark] * len(part)))
            out.update(conn.exec_driver_sql(sql, tuple(part)).all())
        return out

    def upsert(
        self, conn: Connection, chunk: Sequence[CaseRecord | TextRow], now: datetime, source_name: str
    ) -> UpsertResult:
        """One chunk (distinct numbers) in the caller's transaction."""
        result = UpsertResult()
        digests = {
            item.number: item.digest if type(item) is TextRow else content_hash(item)  # type: ignore[arg-type]
            for item in chunk
        }
        stored = self.stored_digests(conn, list(digests))
        inserts: list[tuple[Any, ...]] = []
        changed: list[CaseRecord] = []
        now_bound = self.values.instant(now)
        for item in chunk:
            digest = digests[item.number]
            old_digest = stored.get(item.number)
            if old_digest is None:
                inserts.append(self.new_row(item, digest, source_name, now_bound))
            elif old_digest != digest:
                changed.append(item.record() if type(item) is TextRow else item)  # type: ignore[arg-type]
            else:
                result.unchanged += 1
        self._insert.run(conn, inserts)
        result.inserted = len(inserts)
        if changed:
            self._update_changed(conn, changed, digests, now, now_bound, source_name, result)
        return result

    def new_row(self, item: CaseRecord | TextRow, digest: str, source_name: str, now_bound: Any) -> tuple[Any, ...]:
        """The insert row (:data:`INSERT_COLUMNS`, driver values) of a new case: a text row's straight from its
        text (:meth:`fast_row`) where the rules allow, else from its record (built from the cells only then).
        """
        if type(item) is TextRow:
            row = self.fast_row(item.key, digest, source_name, now_bound)
            if row is not None:
                return row
            rec = item.record()
        else:
            rec = item  # type: ignore[assignment]
        return self.record_row(rec, digest, derive_parts(rec, self.cache), source_name, 1, now_bound)

    def upsert_prepared(
        self, conn: Connection, items: Sequence[Prepared], now: datetime, source_name: str,
        records: Callable[[list[int]], dict[int, CaseRecord]],
    ) -> UpsertResult:
        """:meth:`upsert` of rows prepared elsewhere (:mod:`daemon.pipeline.parallel_import`): ``items`` are
        (number, digest, insert row or None, index) with distinct numbers. What is stored decides, as in
        :meth:`upsert`; a new case without a prepared row and a changed case are written from their record,
        which ``records(indexes)`` gives by index.
        """
        result = UpsertResult()
        stored = self.stored_digests(conn, [item[0] for item in items])
        inserts: list[tuple[Any, ...]] = []
        unprepared: list[tuple[str, int]] = []
        changed: list[int] = []
        digests: dict[str, str] = {}
        for number, digest, row, index in items:
            old_digest = stored.get(number)
            if old_digest is None:
                if row is not None:
                    inserts.append(row)
                else:
                    unprepared.append((digest, index))
            elif old_digest != digest:
                changed.append(index)
                digests[number] = digest
            else:
                result.unchanged += 1
        needed = [index for _, index in unprepared] + changed
        built = records(needed) if needed else {}
        now_bound = self.values.instant(now)
        for digest, index in unprepared:
            rec = built[index]
            inserts.append(self.record_row(rec, digest, derive_parts(rec, self.cache), source_name, 1, now_bound))
        self._insert.run(conn, inserts)
        result.inserted = len(inserts)
        if changed:
            self._update_changed(conn, [built[index] for index in changed], digests, now, now_bound, source_name,
                                 result)
        return result

    def _update_changed(  # noqa: PLR0917 - internal
        self, conn: Connection, changed: list[CaseRecord], digests: dict[str, str], now: datetime,
        now_bound: Any, source_name: str, result: UpsertResult,
    ) -> None:
        # the later facts last but one (the plain check below reads them there), then whether it was ever suspended
        cols = [*(cases.c[c] for c in dict.fromkeys(("id", "number", "deadline_version", *HISTORY_FIELDS,
                                                      *ENDED_COLUMNS, *PLAIN_COLUMNS))), PAUSED]
        existing = {
            row.number: row
            for row in conn.execute(select(*cols).where(cases.c.number.in_([r.number for r in changed])))
        }
        paused = [row.id for row in existing.values() if row.paused]
        suspensions = {row.id: row for row in conn.execute(
            select(cases.c.id, cases.c.received_at, cases.c.suspended_at, cases.c.resumed_at,
                   cases.c.earlier_suspensions).where(cases.c.id.in_(paused)))} if paused else {}
        updates: list[tuple[Any, ...]] = []
        history: list[dict[str, Any]] = []
        ended: list[dict[str, Any]] = []  # re-dispatched to another unit: the earlier unit's assignment
        plain = True  # every case without the later facts, before and after (self._update_plain)
        for incoming in changed:
            old = existing[incoming.number]
            if old.unit != incoming.unit:
                ended.append(ended_assignment(old.id, old, now))
            stored = suspensions.get(old.id) if old.paused else None  # never suspended: nothing to remember
            rec = incoming if stored is None else _with_earlier_suspensions(incoming, stored)
            derived = derive_parts(rec, self.cache)
            moved = derived.due_at != old.due_at or derived.rule_id != old.rule_id
            if moved:
                result.moved.append(rec.number)
            after = {
                "status": rec.status.value, "unit": rec.unit, "received_at": rec.received_at,
                "return_requested_at": rec.return_requested_at, "extended_due_at": rec.extended_due_at,
                "fed_back_at": rec.fed_back_at, "closed_at": rec.closed_at, "rule_id": derived.rule_id,
                "due_at": derived.due_at,
            }
            for f in HISTORY_FIELDS:
                before = getattr(old, f)
                if before != after[f]:
                    history.append({
                        "case_id": old.id, "at": now, "field": f, "old_value": _text(before),
                        "new_value": _text(after[f]), "reason": f"import:{source_name}",
                    })
            row = self.record_row(rec, digests[rec.number], derived, source_name,
                            old.deadline_version + (1 if moved else 0), now_bound)
            updates.append((*row[:_CREATED_AT], *row[_CREATED_AT + 1:], old.id))
            plain = plain and self._plain_of_row(row) == old[-len(PLAIN_COLUMNS) - 1:-1] == _NO_LATER_FACTS
        if plain:
            self._update_plain.run(conn, list(map(self._plain_of_update, updates)))
        else:
            self._update.run(conn, updates)
        result.updated = len(updates)
        if history:
            conn.execute(insert(case_history), history)
        write_ended(conn, ended)

    def fast_row(self, key: SourceKey, digest: str, source_name: str, now_bound: Any) -> tuple[Any, ...] | None:
        """:meth:`record_row` of a new case from its :data:`SourceKey`, the deadline parts memoised as driver values
        per (rule, local day of receipt); None when the rules need the record path for it (an hour rule as
        the resolve rule, a day whose warning could fall on the day of receipt, leads that are not whole
        minutes). Gives the row :meth:`record_row` gives (``tests/test_fastimport.py``).
        """
        (number, source, category, unit, district, domain, summary, status, received, signed, requested, fed_back,
         closed, _, satisfaction, stars, difficult, updated) = key
        rule, return_rule = self.cache.rules_for_key((source, category, status, unit, district, domain))
        day_key = (rule.id, received[:10])
        day = self._fast_days.get(day_key)
        if day is None:
            day = self._fast_days[day_key] = self._fast_day(rule, received[:10])
        if day is _RECORD_PATH:
            return None
        due_bound, provisional, warnings, first_text, first_bound = day
        v = self.values
        local = v.local_text
        requested_due = return_id = return_due = ret_first = None
        return_warnings = v.json_null
        if return_rule is not None:
            ret = self._fast_returns.get(return_rule.id)
            if ret is None:
                ret = self._fast_returns[return_rule.id] = self._fast_return(return_rule)
            if ret is _RECORD_PATH:
                return None
            return_id, due_shift, point_shifts, template, labels, first_i = ret
            head, tail = received[:16], received[16:]
            requested_due = (due_shift[0].get(head) or self._shifted(due_shift, head)) + tail
            return_due = local(requested_due)
            ats = [(memo.get(head) or self._shifted((memo, delta), head)) + tail for memo, delta in point_shifts]
            isos = [f"{at[:10]}T{at[11:]}+08:00" for at in ats]
            if template is not None:
                return_warnings = template[0] + "".join([iso + t for iso, t in zip(isos, template[1:], strict=True)])
            else:
                return_warnings = v.json([[lv, iso, text] for (lv, text), iso in zip(labels, isos, strict=True)])
            if first_i is not None:
                ret_first = ats[first_i]
        # the engine's decision, on the canonical local texts
        first = first_check(status, signed, requested, fed_back, closed, first_text, requested_due, ret_first)
        next_check = None if first is None else first_bound if first is first_text else local(first)
        return (
            number, source._value_, category._value_, unit, district, domain, summary, status._value_,
            local(received), None if signed is None else local(signed),
            None if requested is None else local(requested), None if fed_back is None else local(fed_back),
            None if closed is None else local(closed), None, None if satisfaction is None else satisfaction._value_,
            stars, v.flag[difficult], source_name, None if updated is None else local(updated), digest, rule.id,
            due_bound, provisional, warnings, return_id, return_due, return_warnings, 1, next_check, 0, now_bound,
            # a text row has no intake apart, no platform deadline, no suspension, no 紧急程度, no contact column
            # and no sign or contact window (the record path takes those)
            now_bound, None, None, None, None, "computed", None, None, None, None, v.flag[False], None, None,
            None,
        )

    @staticmethod
    def _shifted(shift: tuple[dict[str, str], timedelta], head: str) -> str:
        """Local 'YYYY-MM-DD HH:MM' ``head`` moved by the shift's whole minutes, remembered in its memo."""
        memo, delta = shift
        out = (datetime.fromisoformat(head) + delta).isoformat(" ")[:16]
        if len(memo) < 200_000:
            memo[head] = out
        return out

    def _fast_day(self, rule: Rule, day: str) -> Any:
        """(due, provisional, warnings, first check as local text, first check) in driver values for a day
        rule and a local day of receipt when they are the same for every instant of that day, else _RECORD_PATH.
        """
        if not rule.counts_whole_days or rule.has_windows:  # a window's end depends on the instant of receipt
            return _RECORD_PATH
        start = datetime.fromisoformat(day).replace(tzinfo=LOCAL_TZ)
        full = rule.deadline(start)
        due = full.due_at
        candidates = rule.warning_candidates(due)
        if any(w.at < due and w.at < start + timedelta(days=1) for w in candidates):
            return _RECORD_PATH  # kept or not depends on the instant of receipt
        v = self.values
        warnings = Warnings(tuple(w for w in candidates if w.at < due))
        first = due if warnings.first_at is None or warnings.first_at > due else warnings.first_at
        first_text = first.astimezone(LOCAL_TZ).replace(tzinfo=None).isoformat(" ")
        return (v.shared_instant(due), v.flag[full.provisional], v.warnings(warnings), first_text,
                v.shared_instant(first))

    def _fast_return(self, rule: Rule) -> Any:
        """(id, due shift, warning shifts, JSON template or None, (level, lead text) per warning, index of the
        first warning) for an hour rule whose warnings are the same for every case, else _RECORD_PATH. A shift is
        (memo, whole minutes after receipt), see :meth:`_shifted`.
        """
        leads = self.cache.hour_leads(rule)
        if rule.hours is None or leads is None:
            return _RECORD_PATH
        period = timedelta(hours=rule.hours)
        minute = timedelta(minutes=1)
        if any(not timedelta(0) < delta < period or delta % minute for _, delta, _ in leads):
            return _RECORD_PATH  # every lead strictly inside the period: then every case keeps every warning
        points = {period - delta: (level, text) for level, delta, text in leads}
        if len(points) != len(leads):
            return _RECORD_PATH
        marks = [f"@@hsla{i}@@" for i in range(len(points))]
        template: list[str] | None = None
        dumped = self.values.json([[lv, mark, text] for (lv, text), mark in zip(points.values(), marks,
                                                                                strict=True)])
        if isinstance(dumped, str) and all(dumped.count(mark) == dumped.count(f'"{mark}"') == 1 for mark in marks):
            template = []  # the JSON around each warning's instant: template[0] + at0 + template[1] + at1 ...
            rest = dumped
            for mark in marks:
                head, rest = rest.split(mark)
                template.append(head)
            template.append(rest)
        offsets = list(points)
        first_i = offsets.index(min(offsets)) if offsets else None
        return (rule.id, ({}, period), [({}, offset) for offset in offsets], template, list(points.values()),
                first_i)

    def record_row(  # noqa: PLR0917 - the hot path
        self, rec: CaseRecord, digest: str, d: Derived, source_name: str, version: int, now_bound: Any
    ) -> tuple[Any, ...]:
        """The values of :data:`INSERT_COLUMNS`, in the driver's form."""
        v = self.values
        instant, shared = v.instant, v.shared_instant
        satisfaction = rec.satisfaction
        return (
            rec.number, rec.source.value, rec.category.value, rec.unit, rec.district, rec.domain, rec.summary,
            rec.status.value, instant(rec.received_at), instant(rec.signed_at), instant(rec.return_requested_at),
            instant(rec.fed_back_at), instant(rec.closed_at), instant(rec.extended_due_at),
            None if satisfaction is None else satisfaction.value, rec.stars, v.flag[rec.difficult], source_name,
            instant(rec.source_updated_at), digest, d.rule_id, shared(d.due_at), v.flag[d.provisional],
            v.warnings(d.warnings), d.return_rule_id, instant(d.return_due_at), v.warnings(d.return_warnings),
            version, shared(d.next_check_at), 0, now_bound, now_bound, instant(rec.accepted_at),
            instant(rec.platform_due_at), None if rec.platform_overdue is None else v.flag[rec.platform_overdue],
            shared(d.computed_due_at), d.deadline_source, instant(rec.suspended_at), instant(rec.resumed_at),
            None if rec.priority is None else rec.priority.value, instant(rec.contacted_at),
            v.flag[rec.contact_tracked], instant(d.sign_due_at), instant(d.contact_due_at),
            v.json(suspensions_json(earlier)) if (earlier := rec.earlier_suspensions) else None,
        )


def _with_earlier_suspensions(rec: CaseRecord, old: Any) -> CaseRecord:
    """``rec`` with the earlier suspensions the core remembers over the stored case ``old`` (a new cycle, another
    dispatch instant, forgets them)."""
    earlier = remembered_suspensions(
        suspensions_from_json(old.earlier_suspensions), old.suspended_at, old.resumed_at, rec.suspended_at,
        new_cycle=old.received_at != rec.received_at)
    return replace(rec, earlier_suspensions=earlier) if earlier else rec


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
