"""The month-end case list's rows (序号, 工单编号, 问题摘要, 承办单位, 交办时间, 办理期限, 类别, 是否超期): from
:class:`BacklogCase` records (the reminders, a unit at a time) and straight from the driver's rows (the
carry-over's million-row list), held equal by tests/test_month_end_stream.py on the three databases.

What is decided here is decided by :class:`BacklogQuery` (carried, overdue), once per distinct deadline and
once per received hour; the texts are :mod:`daemon.reports.tabular`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from daemon.core.timeutil import LOCAL_TZ
from daemon.reports.backlog import BacklogCase, BacklogQuery, BacklogRawRow
from daemon.reports.tabular import due_text, local_text
from daemon.storage.codec import BoundedMemo, aware_utc

_THIS_MONTH, _CARRIED, _OVERDUE = "本月交办", "上月及以前结存", "已超期"


def case_rows(items: Iterable[BacklogCase]) -> Iterator[tuple[int | str, ...]]:
    """The case list's rows (序号, 工单编号, 问题摘要, 承办单位, 交办时间, 办理期限, 类别, 是否超期) of ``items``."""
    for i, c in enumerate(items, start=1):
        yield (i, c.number, c.summary or "", c.unit, local_text(c.received_at), due_text(c.due_at, c.provisional),
               _CARRIED if c.carried else _THIS_MONTH, _OVERDUE if c.overdue else "")


#: Asia/Shanghai is UTC+08:00 (LOCAL_TZ): a local time text is its UTC hour's text and the same minutes
_WHOLE_HOUR_OFFSET = (LOCAL_TZ.utcoffset(None) or timedelta(0)) % timedelta(hours=1) == timedelta(0)


def listed_rows(rows: Iterable[BacklogRawRow], query: BacklogQuery) -> Iterator[tuple[int | str, ...]]:
    """:func:`case_rows` straight from the driver's rows (no record per case): each distinct deadline made
    aware, shown and judged overdue once; each received hour's local text made once and the minutes added
    (a whole-hour offset), and 本月交办 / 结存 decided once for the hour unless the month starts inside it:
    the carry-over's million-row list (tests/test_month_end_stream.py holds the rows equal to :func:`case_rows`)."""
    dues: BoundedMemo[Any, tuple[str, str, str]] = BoundedMemo()
    hours: BoundedMemo[datetime, tuple[str, str | None]] = BoundedMemo()
    texts_by_hour: BoundedMemo[str, tuple[str, str | None]] = BoundedMemo()
    for i, (number, summary, unit, raw_received, raw_due, provisional) in enumerate(rows, start=1):
        due = dues.get(raw_due)
        if due is None:
            due = dues.put(raw_due, _due_texts(number, raw_due, query))
        if _naive_text(raw_received):  # SQLite's text: its hour is its first 13 characters, then :MM
            text_hour = texts_by_hour.get(raw_received[:13])
            if text_hour is None:
                hour_at = _aware(number, raw_received[:13] + ":00:00")
                text_hour = texts_by_hour.put(raw_received[:13], _hour_texts(hour_at, query))
            received, kind = text_hour[0] + raw_received[14:16], text_hour[1]
            if kind is None:
                kind = _CARRIED if query.carried(_aware(number, raw_received)) else _THIS_MONTH
            yield (i, number, summary or "", unit, received, due[1] if provisional else due[0], kind, due[2])
            continue
        received_at = _aware(number, raw_received)
        if _WHOLE_HOUR_OFFSET:
            key = received_at.replace(minute=0, second=0, microsecond=0)
            hour = hours.get(key)
            if hour is None:
                hour = hours.put(key, _hour_texts(key, query))
            received, kind = f"{hour[0]}{received_at.minute:02d}", hour[1]
        else:
            received, kind = local_text(received_at), None
        yield (i, number, summary or "", unit, received, due[1] if provisional else due[0],
               kind or (_CARRIED if query.carried(received_at) else _THIS_MONTH), due[2])


def _naive_text(raw: Any) -> bool:
    """``raw`` is an instant as SQLite keeps it, ``YYYY-MM-DD HH:MM:SS.ffffff`` (naive UTC, no offset), and the
    local time is a whole number of hours from UTC: its local text is its hour's and its own minutes."""
    return (type(raw) is str and len(raw) == 26 and raw[13] == ":" and raw[16] == ":" and raw[19] == "."
            and raw.isascii() and raw[20:].isdigit() and raw[14:16].isdigit() and _WHOLE_HOUR_OFFSET)


def _aware(number: str, raw: Any) -> datetime:
    value = aware_utc(raw)
    if value is None:  # a NOT NULL column
        raise ValueError(f"case {number}: a NULL instant where the store holds one")
    return value


def _due_texts(number: str, raw_due: Any, query: BacklogQuery) -> tuple[str, str, str]:
    """A deadline's text, its text when provisional, and 已超期 or nothing (:meth:`BacklogQuery.overdue`)."""
    due_at = aware_utc(raw_due)
    if due_at is None:  # a NOT NULL column
        raise ValueError(f"case {number}: a NULL instant where the store holds one")
    return due_text(due_at), due_text(due_at, provisional=True), _OVERDUE if query.overdue(due_at) else ""


def _hour_texts(hour: datetime, query: BacklogQuery) -> tuple[str, str | None]:
    """The local text of ``hour`` up to its minutes, and 本月交办 / 结存 for a case received in it when its
    first and last instants say the same (:meth:`BacklogQuery.carried` is monotone), else None."""
    first, last = query.carried(hour), query.carried(hour + timedelta(hours=1, microseconds=-1))
    return local_text(hour)[:-2], ((_CARRIED if first else _THIS_MONTH) if first == last else None)
