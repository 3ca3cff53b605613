"""Quiet hours (免打扰时段) per channel: messages are held until the period ends, never dropped.

``dispatch.quiet_hours`` maps a channel name to ``{start, end}`` (Asia/Shanghai wall-clock times; a period may
run over midnight) or to ``null`` (no quiet hours). A channel that is not listed has 22:00-07:30 when its type
holds messages at night by default (the SMS channels declare so, ``quiet_hours_by_default`` in notifiers/base.py),
and none otherwise. Urgent messages (``routes.<kind>.urgent``) bypass quiet hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from daemon.config import Config, QuietHours
from daemon.core.timeutil import LOCAL_TZ, to_local

DEFAULT_QUIET_HOURS = QuietHours()  # 22:00-07:30


def quiet_hours_for(config: Config, channel: str, *, quiet_by_default: bool) -> QuietHours | None:
    """The quiet period of ``channel``, or None when it may send at any hour.

    ``quiet_by_default``: whether the channel's type holds messages at night when ``dispatch.quiet_hours``
    does not name the channel.
    """
    if channel in config.dispatch.quiet_hours:
        return config.dispatch.quiet_hours[channel]
    return DEFAULT_QUIET_HOURS if quiet_by_default else None


def quiet_until(quiet: QuietHours, now: datetime) -> datetime | None:
    """The end of the quiet period ``now`` falls in (an aware instant), or None when ``now`` is not quiet."""
    local = to_local(now)
    t = local.time().replace(tzinfo=None)
    start, end = quiet.start, quiet.end
    if start == end:
        return None

    def at(day_offset: int) -> datetime:
        day = local.date() + timedelta(days=day_offset)
        return datetime(day.year, day.month, day.day, end.hour, end.minute, end.second, tzinfo=LOCAL_TZ)

    if start < end:  # e.g. 12:00-13:30
        return at(0) if start <= t < end else None
    if t >= start:  # over midnight, evening part
        return at(1)
    if t < end:  # over midnight, morning part
        return at(0)
    return None
