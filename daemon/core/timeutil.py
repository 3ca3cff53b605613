"""Times: parse what operators type, store UTC, show Asia/Shanghai.

China has had no daylight saving since 1991, so local time is a fixed UTC+08:00 offset; a fixed offset
needs no tz database on the host and always prints ``+08:00``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

LOCAL_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

_LOCAL_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")
_DATE_ONLY = re.compile(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}$")


class TimeFormatError(ValueError):
    """A time string that is neither local ``YYYY-MM-DD HH:MM[:SS]`` nor ISO 8601 with an offset."""

    def __init__(self, value: str) -> None:
        super().__init__(
            f"invalid time {value!r}: expected 'YYYY-MM-DD HH:MM[:SS]' (Asia/Shanghai) "
            "or ISO 8601 with an offset, e.g. '2024-09-27T16:30:00+08:00' or '2024-09-27T08:30:00Z'"
        )
        self.value = value


def parse_time(value: str, *, allow_date: bool = False) -> datetime:
    """Parse an operator-typed instant; naive values are Asia/Shanghai. Returns an aware datetime."""
    text = value.strip()
    if not text:
        raise TimeFormatError(value)
    if allow_date and _DATE_ONLY.match(text):
        y, m, d = (int(p) for p in re.split(r"[-/]", text))
        try:
            return datetime(y, m, d, tzinfo=LOCAL_TZ)
        except ValueError:
            raise TimeFormatError(value) from None
    if len(text) in {16, 19} and text[10] == " " and text[4] == "-" and text[7] == "-":
        # the common case (what exports and operators write): C-speed fromisoformat, same result as below
        try:
            fast = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return fast.replace(tzinfo=LOCAL_TZ) if fast.tzinfo is None else fast
    for fmt in _LOCAL_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=LOCAL_TZ)
        except ValueError:
            continue
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    if "T" not in iso and " " not in iso:
        raise TimeFormatError(value)
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise TimeFormatError(value) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=LOCAL_TZ)
    return parsed


def parse_date(value: str) -> date:
    """Parse ``YYYY-MM-DD`` (a local calendar day)."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise TimeFormatError(value) from None


def to_local(instant: datetime) -> datetime:
    """An aware instant shown in Asia/Shanghai. Naive datetimes are taken as UTC (how the store keeps them)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(LOCAL_TZ)


def to_utc_naive(instant: datetime) -> datetime:
    """The form instants are stored in: naive UTC (portable across SQLite, PostgreSQL and MariaDB)."""
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: attach a timezone before storing")
    return instant.astimezone(UTC).replace(tzinfo=None)


def iso_local(instant: datetime) -> str:
    """ISO 8601 in Asia/Shanghai, e.g. ``2024-10-11T00:00:00+08:00``."""
    return to_local(instant).isoformat()


def local_day_start(day: date) -> datetime:
    """00:00 Asia/Shanghai on ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


def utcnow() -> datetime:
    """The wall clock. Only the outermost layer (CLI, scheduler) may call this."""
    return datetime.now(UTC)
