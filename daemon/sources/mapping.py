"""From a platform's row (Chinese headers, Chinese value words) to a :class:`~daemon.core.cases.CaseRecord`.

The mapping is configuration (pydantic v2): which header names each field may have, and which value words
mean what. Defaults are the platform's own headers (工单编号, 来源, 受理时间 …) and words (省平台, 投诉类 …);
the English field names and enum values are always accepted too, which suits SQL aliases and JSON APIs.
Configured value words are added to the defaults (and override a default word of the same spelling).

About 690 lines, over the house's 400: the fast parsers (:meth:`RecordBuilder.source_key` for the import's
text rows, ``_build_fast`` for any source's plain cells) and the checked one must decide every row alike, and
they read the same column positions and word tables; keeping them in one class keeps that in view. A split
of the configuration models from the builder is the natural cut.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

import daemon.sources.values as v
from daemon.core.cases import CaseRecord, Category, Priority, Satisfaction, Source, Status
from daemon.core.timeutil import LOCAL_TZ, TimeFormatError

E = TypeVar("E", bound=StrEnum)

#: fields a case cannot do without; a file lacking one of these columns is rejected as a whole
REQUIRED_FIELDS = ("number", "source", "category", "received_at", "unit")
TIME_FIELDS = (
    "received_at", "signed_at", "return_requested_at", "fed_back_at", "closed_at", "extended_due_at",
    "source_updated_at", "accepted_at", "platform_due_at", "suspended_at", "resumed_at", "contacted_at",
)  # fmt: skip
#: columns the fast parsers leave to the checked path when a row fills them (rare in bulk exports)
_CHECKED_ONLY = (
    "extended_due_at", "accepted_at", "platform_due_at", "platform_overdue", "suspended_at", "resumed_at",
    "priority", "contacted_at",
)  # fmt: skip
#: urgency words (紧急程度); an operator maps more in config ``sources.<name>.values.priority``; an unknown
#: word is a normal case and a warning for its row (:meth:`RecordBuilder.row_warning`)
DEFAULT_PRIORITIES: dict[str, Priority] = {
    "紧急": Priority.URGENT, "特急": Priority.URGENT, "加急": Priority.URGENT, "急": Priority.URGENT,
    "一般": Priority.NORMAL, "普通": Priority.NORMAL, "正常": Priority.NORMAL,
}  # fmt: skip
#: status words of the case life (issue 12), beside :data:`daemon.sources.values.DEFAULT_STATUSES`; an
#: operator maps more, or other meanings, in config ``sources.<name>.values.status``
LIFE_STATUSES: dict[str, Status] = {
    "挂起": Status.SUSPENDED, "暂停": Status.SUSPENDED, "暂停计时": Status.SUSPENDED, "已挂起": Status.SUSPENDED,
    "重办": Status.REOPENED, "退回重办": Status.REOPENED, "重新办理": Status.REOPENED,
    "退回": Status.RETURNED, "已退回": Status.RETURNED,
    "延期审核中": Status.EXTENSION_PENDING, "延期申请中": Status.EXTENSION_PENDING,
    "已回访": Status.CLOSED, "已归档": Status.CLOSED, "已评价": Status.CLOSED,
    "待办理": Status.SIGNED,
}  # fmt: skip
#: times that cannot precede receipt (受理时间)
_AFTER_RECEIPT = ("signed_at", "fed_back_at", "closed_at", "contacted_at")
_DATE_ONLY = re.compile(r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?|\d{5}")
_HOURS = frozenset(f"{h:02d}" for h in range(24))
_SIXTY = frozenset(f"{m:02d}" for m in range(60))

#: a record as text (:meth:`RecordBuilder.source_key`), in :data:`daemon.core.derive.SOURCE_FIELDS` order: str
#: and enum members as the record has them, times as canonical local text, stars int, difficult bool
SourceKey = tuple[Any, ...]


def _names(value: object) -> object:
    return [value] if isinstance(value, str) else value


class ColumnNames(BaseModel):
    """Accepted header names per field; the first one present in a file is used. A string is one name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: tuple[str, ...] = ("工单编号",)
    source: tuple[str, ...] = ("来源",)
    category: tuple[str, ...] = ("诉求类型",)
    # the unit's clock starts at dispatch (交办/派单/转办/接件); intake (受理/来电) only when nothing else is there
    received_at: tuple[str, ...] = ("交办时间", "派单时间", "转办时间", "接件时间", "受理时间", "来电时间")
    accepted_at: tuple[str, ...] = ("受理时间", "来电时间")
    unit: tuple[str, ...] = ("承办单位",)
    status: tuple[str, ...] = ("办理状态",)
    signed_at: tuple[str, ...] = ("签收时间",)
    return_requested_at: tuple[str, ...] = ("退件申请时间",)
    fed_back_at: tuple[str, ...] = ("反馈时间",)
    closed_at: tuple[str, ...] = ("办结时间",)
    extended_due_at: tuple[str, ...] = ("延期至",)
    satisfaction: tuple[str, ...] = ("满意度",)
    stars: tuple[str, ...] = ("评星",)
    difficult: tuple[str, ...] = ("疑难件",)
    district: tuple[str, ...] = ("属地",)
    domain: tuple[str, ...] = ("涉及领域",)
    summary: tuple[str, ...] = ("问题摘要",)
    source_updated_at: tuple[str, ...] = ("更新时间",)
    platform_due_at: tuple[str, ...] = ("办理时限", "办结时限", "截止时间", "承诺时限")
    platform_overdue: tuple[str, ...] = ("是否超期",)
    suspended_at: tuple[str, ...] = ("挂起时间", "暂停时间")
    resumed_at: tuple[str, ...] = ("解挂时间", "恢复时间", "恢复计时时间")
    priority: tuple[str, ...] = ("紧急程度", "紧急度")
    # the unit's first contact with the citizen (先行联系); a source without this column cannot observe it
    contacted_at: tuple[str, ...] = ("先行联系时间", "首次联系时间", "联系时间")

    _normalise = field_validator("*", mode="before")(_names)

    @field_validator("*")
    @classmethod
    def _not_empty(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names or any(not name.strip() for name in names):
            raise ValueError("give at least one non-empty header name")
        return tuple(name.strip() for name in names)

    def accepted(self, field: str) -> tuple[str, ...]:
        """The configured names, then the English field name itself."""
        names: tuple[str, ...] = getattr(self, field)
        return names if field in names else (*names, field)


class ValueWords(BaseModel):
    """Extra value words per field, e.g. ``source: {市直: city}``; they extend the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: dict[str, Source] = {}
    category: dict[str, Category] = {}
    status: dict[str, Status] = {}
    satisfaction: dict[str, Satisfaction] = {}
    difficult: dict[str, bool] = {}
    priority: dict[str, Priority] = {}


class ColumnMapping(BaseModel):
    """How a source's rows map onto :class:`CaseRecord` (``columns`` and ``values`` of a source's config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: ColumnNames = ColumnNames()
    values: ValueWords = ValueWords()
    #: where the operator fixes this mapping, for error messages (``sources.<name>``)
    config_key: str = "sources.<name>"

    def header(self, field: str) -> str:
        """The header an operator knows the field by (the first configured name)."""
        names: tuple[str, ...] = getattr(self.columns, field)
        return names[0]

    def for_source(self, name: str) -> ColumnMapping:
        """This mapping with error messages pointing at ``sources.<name>`` in the config."""
        if self.config_key != ColumnMapping.model_fields["config_key"].default:
            return self
        return self.model_copy(update={"config_key": f"sources.{name}"})

    def builder(self, headers: Iterable[object]) -> RecordBuilder:
        return RecordBuilder(self, [v.clean_text(h).lstrip("\ufeff") for h in headers])


class _Words:
    """One field's value words, defaults + configured, with the list an error message shows."""

    def __init__(self, enum: type[E], defaults: Mapping[str, E], extra: Mapping[str, E]) -> None:
        self.table: dict[str, object] = {v.lookup_key(m.value): m for m in enum}
        for word, member in (*defaults.items(), *extra.items()):
            self.table[v.lookup_key(word)] = member
        self.shown = list(dict.fromkeys((*defaults, *extra)))


class CaseRowError(ValueError):
    """A row that cannot become a case. ``field`` is the column as the file names it."""

    def __init__(self, field: str, value: object, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class RecordBuilder:
    """Builds records from rows that share one header row (a file, a SQL result). Resolve once, build many."""

    def __init__(self, mapping: ColumnMapping, headers: Sequence[str]) -> None:
        self.mapping = mapping
        self.headers = list(headers)
        self.header_row = 1  # the file row the headers came from (set by the file reader)
        positions = {h.casefold(): i for i, h in reversed(list(enumerate(self.headers)))}
        self.index: dict[str, int] = {}
        self.used_header: dict[str, str] = {}
        for field in ColumnNames.model_fields:
            for name in mapping.columns.accepted(field):
                if name.casefold() in positions:
                    self.index[field] = positions[name.casefold()]
                    self.used_header[field] = self.headers[self.index[field]]
                    break
        if self.index.get("accepted_at", -1) == self.index.get("received_at", -2):
            del self.index["accepted_at"]  # one instant only (e.g. just 受理时间): it is the unit's clock
            del self.used_header["accepted_at"]
        words = mapping.values
        self._words = {
            "source": _Words(Source, v.DEFAULT_SOURCES, words.source),
            "category": _Words(Category, v.DEFAULT_CATEGORIES, words.category),
            "status": _Words(Status, {**v.DEFAULT_STATUSES, **LIFE_STATUSES}, words.status),
            "satisfaction": _Words(Satisfaction, v.DEFAULT_SATISFACTIONS, words.satisfaction),
            "priority": _Words(Priority, DEFAULT_PRIORITIES, words.priority),
        }
        self._flags = {v.lookup_key(k): b for k, b in (*v.DEFAULT_FLAGS.items(), *words.difficult.items())}
        # the fast parser (source_key): column positions, and value words memoised by their exact text
        self._width = max(self.index.values(), default=-1) + 1
        self._at = {field: self.index.get(field, -1) for field in ColumnNames.model_fields}
        self._seen: dict[str, dict[object, object]] = {f: {} for f in (*self._words, "stars", "difficult")}
        self._days: set[str] = set()  # 'YYYY-MM-DD' texts seen to be real dates (source_key)
        self._checked_only = tuple(self._at[f] for f in _CHECKED_ONLY if self._at[f] >= 0)
        #: the source maps a first-contact column (先行联系时间): its cases' contact is observed, even when empty
        self.tracks_contact = "contacted_at" in self.index

    def missing_required(self) -> list[str]:
        """Required fields with no column, shown as '工单编号 (number)'; 'a or b' when several names work."""
        return [
            f"{' or '.join(getattr(self.mapping.columns, f))} ({f})"
            for f in REQUIRED_FIELDS
            if f not in self.index
        ]

    def _label(self, field: str) -> str:
        return self.used_header.get(field) or self.mapping.header(field)

    def cell(self, values: Sequence[object], field: str) -> object:
        i = self.index.get(field)
        if i is None or i >= len(values):
            return None
        return values[i]

    def number_of(self, values: Sequence[object]) -> str | None:
        return v.clean_text(self.cell(values, "number")) or None

    def updated_at_of(self, values: Sequence[object]) -> datetime | None:
        """The row's 更新时间 if it parses (also for bad rows: a watermark must move past them)."""
        raw = self.cell(values, "source_updated_at")
        try:
            return None if v.clean_text(raw) == "" else v.parse_cell_time(raw)
        except (TimeFormatError, ValueError):
            return None

    def build(self, values: Sequence[object]) -> CaseRecord:
        """One row (cells in header order) → a record. Raises :class:`CaseRowError`."""
        return self.build_noted(values)[0]

    def build_noted(self, values: Sequence[object]) -> tuple[CaseRecord, str | None]:
        """:meth:`build`, and the row's warning: a remark on a row that is imported all the same (an unknown
        办理状态 word: the case is watched as open, :meth:`_status`; an unknown 紧急程度 word: taken as normal,
        :meth:`row_warning`). Raises :class:`CaseRowError`."""
        record: CaseRecord | None = None
        warning: str | None = None
        if len(values) >= self._width:
            with contextlib.suppress(_NotPlainText):  # the fast path takes known status words only
                record = self._build_fast(values)
        if record is None:
            record, warning = self._build_checked(values)
        remark = self.row_warning(values)  # an unknown 紧急程度 word, taken as normal
        if remark is not None:
            warning = remark if warning is None else f"{warning}; {remark}"
        return record, warning

    def _build_fast(self, values: Sequence[object]) -> CaseRecord:
        """The common row (every column present, text or datetime cells, well-formed) without the checks'
        bookkeeping. Raises :class:`_NotPlainText` for anything else: :meth:`_build_checked` then decides, so a
        row gives the same record, or the same error, either way.
        """
        at = self._at
        number = _fast_text(values, at["number"])
        unit = _fast_text(values, at["unit"])
        received_at = _fast_time(values, at["received_at"])
        if not number or not unit or received_at is None:
            raise _NotPlainText
        signed_at = _fast_time(values, at["signed_at"])
        fed_back_at = _fast_time(values, at["fed_back_at"])
        closed_at = _fast_time(values, at["closed_at"])
        return_requested_at = _fast_time(values, at["return_requested_at"])
        if (
            (signed_at is not None and signed_at < received_at)
            or (fed_back_at is not None and fed_back_at < received_at)
            or (closed_at is not None and closed_at < received_at)
            or (self._checked_only and self._has_checked_only(values))
        ):
            raise _NotPlainText
        status = self._fast_word(values, "status")
        if status is None:
            status = _infer_status({
                "closed_at": closed_at, "fed_back_at": fed_back_at, "return_requested_at": return_requested_at,
                "signed_at": signed_at,
            })
        return CaseRecord(
            number=number,
            source=self._fast_word(values, "source") or _not_plain_text(),
            category=self._fast_word(values, "category") or _not_plain_text(),
            unit=unit,
            received_at=received_at,
            status=status,
            district=_fast_text(values, at["district"]) or None,
            domain=_fast_text(values, at["domain"]) or None,
            summary=_fast_text(values, at["summary"]) or None,
            signed_at=signed_at,
            return_requested_at=return_requested_at,
            fed_back_at=fed_back_at,
            closed_at=closed_at,
            satisfaction=self._fast_word(values, "satisfaction"),
            stars=self._fast_memo(values, "stars", v.parse_stars),
            difficult=bool(self._fast_memo(values, "difficult", self._flag)),
            source_updated_at=_fast_time(values, at["source_updated_at"]),
            contact_tracked=self.tracks_contact,
        )


    def record_of(self, key: SourceKey) -> CaseRecord:
        """The record a :meth:`source_key` key stands for (times Asia/Shanghai)."""
        (number, source, category, unit, district, domain, summary, status, received, signed, requested, fed_back,
         closed, _, satisfaction, stars, difficult, updated) = key
        parse, tz = _fromisoformat, LOCAL_TZ  # each time as :func:`_local` reads it, without a call per field
        return CaseRecord(
            number=number, source=source, category=category, unit=unit,
            received_at=parse(received).replace(tzinfo=tz), status=status, district=district, domain=domain,
            summary=summary, signed_at=None if signed is None else parse(signed).replace(tzinfo=tz),
            return_requested_at=None if requested is None else parse(requested).replace(tzinfo=tz),
            fed_back_at=None if fed_back is None else parse(fed_back).replace(tzinfo=tz),
            closed_at=None if closed is None else parse(closed).replace(tzinfo=tz),
            satisfaction=satisfaction, stars=stars, difficult=difficult,
            source_updated_at=None if updated is None else parse(updated).replace(tzinfo=tz),
        )

    def source_key(self, values: Sequence[object]) -> SourceKey | None:
        """The fast parser: what :meth:`build` makes of a plain row, as the :data:`SourceKey` of the record,
        times as canonical local ``YYYY-MM-DD HH:MM:SS`` text. None for any row this does not take (the
        caller then uses :meth:`build`, which decides it, errors included). :meth:`record_of` gives the
        record; the import writes a new case straight from the key (``tests/test_fastimport.py``).
        """
        if len(values) < self._width or self.tracks_contact:  # a key has no place for the contact facts
            return None
        at = self._at
        try:
            number = _fast_text(values, at["number"])
            unit = _fast_text(values, at["unit"])
            received = self._canon_time(values, at["received_at"])
            if not number or not unit or received is None or (
                self._checked_only and self._has_checked_only(values)  # no call per row when the file has none
            ):
                return None
            signed = self._canon_time(values, at["signed_at"])
            fed_back = self._canon_time(values, at["fed_back_at"])
            closed = self._canon_time(values, at["closed_at"])
            requested = self._canon_time(values, at["return_requested_at"])
            if (
                (signed is not None and signed < received)  # canonical local text sorts as time
                or (fed_back is not None and fed_back < received)
                or (closed is not None and closed < received)
            ):
                return None
            status = self._fast_word(values, "status")
            if status is None:
                status = _infer_status({
                    "closed_at": closed, "fed_back_at": fed_back, "return_requested_at": requested,
                    "signed_at": signed,
                })
            source = self._fast_word(values, "source")
            category = self._fast_word(values, "category")
            if source is None or category is None:
                return None
            return (
                number, source, category, unit, _fast_text(values, at["district"]) or None,
                _fast_text(values, at["domain"]) or None, _fast_text(values, at["summary"]) or None, status,
                received, signed, requested, fed_back, closed, None, self._fast_word(values, "satisfaction"),
                self._fast_memo(values, "stars", v.parse_stars),
                bool(self._fast_memo(values, "difficult", self._flag)),
                self._canon_time(values, at["source_updated_at"]),
            )
        except _NotPlainText:
            return None

    def _has_checked_only(self, values: Sequence[object]) -> bool:
        """The row fills a column only the checked path reads (:data:`_CHECKED_ONLY`)."""
        for i in self._checked_only:  # noqa: SIM110 - no generator per row; usually none or 延期至 alone
            if _fast_text(values, i):
                return True
        return False

    def _canon_time(self, values: Sequence[object], i: int) -> str | None:
        """A 'YYYY-MM-DD HH:MM[:SS]' text cell, or a naive datetime cell (XLSX) in whole seconds, as
        'YYYY-MM-DD HH:MM:SS' (what ``str`` of the local datetime starts with); None when empty;
        _NotPlainText for anything else (an aware datetime keeps its own offset: the checked path takes it).
        """
        if i < 0:
            return None
        raw = values[i]
        if type(raw) is not str:
            if raw is None:
                return None
            if type(raw) is datetime and raw.tzinfo is None and not raw.microsecond and raw.year >= 1000:
                return raw.isoformat(" ")
            raise _NotPlainText
        text = raw.strip()
        if not text:
            return None
        n = len(text)
        if n == 19:
            if text[16] != ":" or text[17:] not in _SIXTY:
                raise _NotPlainText
        elif n == 16:
            text += ":00"
        else:
            raise _NotPlainText
        if text[10] != " " or text[13] != ":" or text[11:13] not in _HOURS or text[14:16] not in _SIXTY:
            raise _NotPlainText
        if text[:10] not in self._days:
            self._check_day(text[:10])
        return text

    def _check_day(self, day: str) -> None:
        try:
            ok = day.isascii() and date.fromisoformat(day).isoformat() == day
        except ValueError:
            ok = False
        if not ok:
            raise _NotPlainText
        if len(self._days) < 100_000:
            self._days.add(day)

    def _fast_word(self, values: Sequence[object], field: str) -> Any:
        """The member a non-empty text cell names, None for an empty cell or column; _NotPlainText otherwise."""
        i = self._at[field]
        if i < 0:
            return None
        raw = values[i]
        if raw is None or raw == "":
            return None
        seen = self._seen[field]
        member = seen.get(raw)
        if member is None:
            if type(raw) is not str or not raw.strip():
                raise _NotPlainText
            member = self._words[field].table.get(v.lookup_key(raw))
            if member is None:
                raise _NotPlainText
            if len(seen) < 1000:
                seen[raw] = member
        return member

    def _fast_memo(self, values: Sequence[object], field: str, parse: Any) -> Any:
        """A stars or 疑难件 text cell through ``parse``, memoised; None when empty; _NotPlainText otherwise."""
        i = self._at[field]
        if i < 0:
            return None
        raw = values[i]
        if type(raw) is not str:
            if raw is None:
                return None
            raise _NotPlainText
        seen = self._seen[field]
        if raw in seen:
            return seen[raw]
        if not raw.strip():
            return None
        try:
            parsed = parse(raw)
        except (ValueError, KeyError):
            raise _NotPlainText from None
        if len(seen) < 1000:
            seen[raw] = parsed
        return parsed

    def _flag(self, raw: str) -> bool:
        flag = self._flags.get(v.lookup_key(raw))
        if flag is None:
            raise ValueError(raw)
        return flag

    def _build_checked(self, values: Sequence[object]) -> tuple[CaseRecord, str | None]:
        """Every row the fast path declines: full checks, errors that name the cell, and the row's warning."""
        width = len(values)
        cells = {field: values[i] for field, i in self.index.items() if i < width}
        text: dict[str, str] = {}
        for field in ("number", "unit"):
            text[field] = self._required_text(cells, field)
        times = {f: self._time(cells, f) for f in TIME_FIELDS}
        accepted_at = times["accepted_at"]
        received_at = times["received_at"] or accepted_at  # not dispatched yet (交办 empty): from intake
        if received_at is None:
            raise self._error("received_at", None, "is empty; the SLA clock starts at receipt")
        status, warning = self._status(cells)
        if status is Status.REOPENED:  # 重办: signed, contacted, fed back before this dispatch: the earlier cycle's
            for field in ("signed_at", "contacted_at", "fed_back_at", "closed_at"):
                earlier = times[field]
                if earlier is not None and earlier < received_at:
                    times[field] = None
        suspended_at, resumed_at = times["suspended_at"], times["resumed_at"]
        if resumed_at is not None and (suspended_at is None or resumed_at < suspended_at):
            raise self._error(
                "resumed_at", cells.get("resumed_at"),
                f"needs a {self._label('suspended_at')} at or before it"
                + (f" (found {suspended_at:%Y-%m-%d %H:%M})" if suspended_at is not None else " (the cell is empty)"),
            )  # fmt: skip
        if accepted_at is not None and accepted_at > received_at:
            raise self._error(
                "accepted_at", cells.get("accepted_at"),
                f"is after {self._label('received_at')} ({received_at:%Y-%m-%d %H:%M}); the hotline takes a case "
                "in (受理) before it dispatches it (交办): check both cells",
            )  # fmt: skip
        for field in _AFTER_RECEIPT:
            instant = times[field]
            if instant is not None and instant < received_at:
                raise self._error(
                    field, cells.get(field),
                    f"is before {self._label('received_at')} ({received_at:%Y-%m-%d %H:%M}); "
                    "check both cells",
                )  # fmt: skip
        if status is None:
            status = _infer_status(times)
            if warning is not None:
                warning += f": {status.value}"
        satisfaction = None
        if v.clean_text(cells.get("satisfaction")):
            satisfaction = self._word(cells, "satisfaction", Satisfaction)
        return CaseRecord(
            number=text["number"],
            source=self._word(cells, "source", Source),
            category=self._word(cells, "category", Category),
            unit=text["unit"],
            received_at=received_at,
            status=status,
            district=self._optional_text(cells, "district"),
            domain=self._optional_text(cells, "domain"),
            summary=self._optional_text(cells, "summary"),
            signed_at=times["signed_at"],
            return_requested_at=times["return_requested_at"],
            fed_back_at=times["fed_back_at"],
            closed_at=times["closed_at"],
            extended_due_at=times["extended_due_at"],
            satisfaction=satisfaction,
            stars=self._stars(cells),
            difficult=self._difficult(cells),
            source_updated_at=times["source_updated_at"],
            accepted_at=accepted_at,
            platform_due_at=times["platform_due_at"],
            platform_overdue=self._optional_flag(cells, "platform_overdue"),
            suspended_at=times["suspended_at"],
            resumed_at=times["resumed_at"],
            priority=self._priority(cells),
            contacted_at=times["contacted_at"],
            contact_tracked=self.tracks_contact,
        ), warning

    def _status(self, cells: dict[str, object]) -> tuple[Status | None, str | None]:
        """The 办理状态 cell's status (None: empty, the times decide), and a warning for a word not in the
        tables: such a case is not rejected (a rejected row is a case nobody watches) but imported as if the
        cell were empty: open at the step its times show (closed only when it has a 办结/反馈时间), and the
        import names the word and the valid ones (issue 12 item 3)."""
        raw = v.clean_text(cells.get("status"))
        if not raw:
            return None, None
        words = self._words["status"]
        member = words.table.get(v.lookup_key(raw))
        if member is not None:
            assert isinstance(member, Status)
            return member, None
        valid = ", ".join(words.shown)
        named = self._label("status")
        named = named if named == "status" else f"{named} (status)"
        return None, (
            f"{named} {raw!r} is not a known status word; valid: {valid} (or "
            f"{', '.join(m.value for m in Status)}), or map it in config {self.mapping.config_key}.values.status; "
            "the case is imported (and watched while open) with the status its times show"
        )

    def _priority(self, cells: dict[str, object]) -> Priority | None:
        """紧急程度: None when empty; an unknown word is a normal case (:meth:`row_warning` reports it)."""
        raw = v.clean_text(cells.get("priority"))
        if not raw:
            return None
        member = self._words["priority"].table.get(v.lookup_key(raw))
        return member if isinstance(member, Priority) else Priority.NORMAL

    def row_warning(self, values: Sequence[object]) -> str | None:
        """A remark for a row that was imported but not as written: an unknown 紧急程度 word (taken as
        normal), naming the column, the word and the valid ones. None for every other row (the common case
        costs one index test)."""
        i = self._at["priority"]
        if i < 0 or i >= len(values):
            return None
        raw = v.clean_text(values[i])
        words = self._words["priority"]
        if not raw or v.lookup_key(raw) in words.table:
            return None
        label = self._label("priority")
        return (f"{label} (priority) {raw!r} is not a known priority; taken as normal (一般); valid: "
                f"{', '.join(words.shown)} (or urgent, normal), or map it in config "
                f"{self.mapping.config_key}.values.priority")

    def _optional_flag(self, cells: dict[str, object], field: str, hint: str = "") -> bool | None:
        """A yes/no cell (是否超期, 是否疑难); None when empty. ``hint`` ends the error (where to map other words)."""
        raw = cells.get(field)
        if isinstance(raw, bool):
            return raw
        text = v.clean_text(raw)
        if not text:
            return None
        flag = self._flags.get(v.lookup_key(text))
        if flag is None:
            raise self._error(field, raw, "is not yes/no; valid: 是, 否 (or yes, no, 1, 0)" + hint)
        return flag

    def _error(self, field: str, value: object, problem: str) -> CaseRowError:
        label = self._label(field)
        shown = "" if value is None or v.clean_text(value) == "" else f" {v.clean_text(value)!r}"
        named = label if label == field else f"{label} ({field})"
        return CaseRowError(label, value, f"{named}{shown} {problem}")

    def _required_text(self, cells: dict[str, object], field: str) -> str:
        if field not in self.index:
            raise self._error(field, None, "is missing: the row has no such column")
        value = v.clean_text(cells.get(field))
        if not value:
            raise self._error(field, None, "is empty; every case needs one")
        return value

    def _optional_text(self, cells: dict[str, object], field: str) -> str | None:
        return v.clean_text(cells.get(field)) or None

    def _time(self, cells: dict[str, object], field: str) -> datetime | None:
        raw = cells.get(field)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if field == "received_at" and field not in self.index:
                raise self._error(field, None, "is missing: the row has no such column")
            return None
        try:
            if field == "extended_due_at":
                return _extension(raw)
            if field == "platform_due_at":
                return platform_due(raw)
            return v.parse_cell_time(raw, date_only_ok=False)
        except (TimeFormatError, ValueError, OverflowError):
            raise self._error(field, raw, f"is not a time (with a time of day); expected {v.TIME_FORMS}") from None

    def _word(self, cells: dict[str, object], field: str, enum: type[E]) -> E:
        if field not in self.index:
            raise self._error(field, None, "is missing: the row has no such column")
        raw = v.clean_text(cells.get(field))
        words = self._words[field]
        member = words.table.get(v.lookup_key(raw))
        if member is None:
            if not raw:
                raise self._error(field, None, "is empty")
            valid = ", ".join(words.shown[:10]) + (" …" if len(words.shown) > 10 else "")
            raise self._error(
                field, raw,
                f"is not a known {field}; valid: {valid} (or {', '.join(m.value for m in enum)}), "
                f"or map it in config {self.mapping.config_key}.values.{field}",
            )  # fmt: skip
        assert isinstance(member, enum)
        return member

    def _stars(self, cells: dict[str, object]) -> int | None:
        raw = cells.get("stars")
        if v.clean_text(raw) == "":
            return None
        try:
            return v.parse_stars(raw)
        except (ValueError, KeyError):
            raise self._error("stars", raw, "is not a star rating; valid: 1 to 5") from None

    def _difficult(self, cells: dict[str, object]) -> bool:
        return bool(self._optional_flag(
            cells, "difficult", f", or map it in config {self.mapping.config_key}.values.difficult"))


class _NotPlainText(Exception):
    """A row the fast path leaves to the checked path."""


_fromisoformat = datetime.fromisoformat


def _not_plain_text() -> Any:
    raise _NotPlainText



def _fast_text(values: Sequence[object], i: int) -> str:
    """A text cell trimmed ('' for an empty cell or a missing column); other cell types via clean_text."""
    if i < 0:
        return ""
    raw = values[i]
    if type(raw) is str:
        return raw.strip()
    return v.clean_text(raw)


def _fast_time(values: Sequence[object], i: int) -> datetime | None:
    """'YYYY-MM-DD HH:MM[:SS]' text (Asia/Shanghai) or a datetime cell; None when empty; else _NotPlainText."""
    if i < 0:
        return None
    raw = values[i]
    if type(raw) is str:
        text = raw.strip()
        if not text:
            return None
        n = len(text)
        # the fixed-width forms the general parser reads the same way (naive → Asia/Shanghai)
        if (n in (16, 19) and text[4] == "-" and text[7] == "-" and text[10] == " " and text[13] == ":"
                and (n == 16 or text[16] == ":") and text.isascii()):
            try:
                return _fromisoformat(text).replace(tzinfo=LOCAL_TZ)
            except ValueError:
                raise _NotPlainText from None
        raise _NotPlainText
    if raw is None:
        return None
    if type(raw) is datetime:
        return raw if raw.tzinfo is not None else raw.replace(tzinfo=LOCAL_TZ)
    raise _NotPlainText



def _extension(raw: object) -> datetime:
    """延期至: a date means 'through that day', so the first overdue instant is 00:00 the next day."""
    if (
        (isinstance(raw, date) and not isinstance(raw, datetime))
        or (isinstance(raw, str) and _DATE_ONLY.fullmatch(raw.strip()))
        or (isinstance(raw, int | float) and not isinstance(raw, bool) and float(raw).is_integer())  # a serial
    ):
        return v.parse_cell_time(raw) + timedelta(days=1)
    return v.parse_cell_time(raw, date_only_ok=False)


def platform_due(raw: object) -> datetime:
    """办理时限 → the first overdue instant: a date alone (like 延期至), or 23:59 / 23:59:59 of a day, means
    through that day, i.e. 00:00 of the next day (Asia/Shanghai); any other time is the instant itself."""
    instant = _extension(raw)
    local = instant.astimezone(LOCAL_TZ)
    if local.hour == 23 and local.minute == 59 and local.second in (0, 59):
        return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=LOCAL_TZ)
    return instant


def _infer_status(times: Mapping[str, object]) -> Status:
    """No 办理状态 cell: the latest step with a time is where the case is."""
    for field, status in (
        ("closed_at", Status.CLOSED),
        ("fed_back_at", Status.FED_BACK),
        ("return_requested_at", Status.RETURN_REQUESTED),
        ("signed_at", Status.SIGNED),
    ):
        if times[field] is not None:
            return status
    return Status.DISPATCHED


def to_record(row: Mapping[str, Any], mapping: ColumnMapping | None = None) -> CaseRecord:
    """One row keyed by header name (a dict from a JSON API, a CSV DictReader) → a record.

    Raises :class:`CaseRowError` naming the column, the value and what would be valid. Times without an offset
    are Asia/Shanghai.
    """
    builder = (mapping or ColumnMapping()).builder(row.keys())
    return builder.build(list(row.values()))
