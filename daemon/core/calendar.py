"""WorkCalendar: which days are working days (工作日), on the official Chinese holiday calendar.

Three sources, in order of precedence, decided per year:

1. **override**: an operator's YAML file in ``sla_rules/holidays/`` copied from the State Council notice
   (节假日安排通知, ``hotline-sla calendar import-notice``); it replaces the whole year, and the days it lists
   in December of the year before replace that year's status for those days (the newer notice wins);
2. **official**: the arrangement shipped in ``chinese-calendar`` (2004-2026 in 1.11);
3. **provisional** (暂定): any other year: weekends plus the statutory holidays fixed by law
   (全国年节及纪念日放假办法, as revised from 2025) and the 补假 its 第六条 owes for a statutory day on a
   weekend or on another holiday (:func:`daemon.core.holidays.provisional_rest_days`), no make-up working
   days. Every day of such a year is marked provisional, and so is every deadline that relies on one.

All arithmetic is O(1): the calendar is precomputed into per-day arrays indexed by the day's ordinal.
Dates are local (Asia/Shanghai) calendar days.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from itertools import accumulate
from pathlib import Path

from daemon.core.holidays import HolidayOverride, load_overrides, provisional_rest_days

FIRST_YEAR = 2004
DEFAULT_LAST_YEAR = 2060


class DaySource(StrEnum):
    OFFICIAL = "official"  # chinese-calendar package
    OVERRIDE = "override"  # operator file in sla_rules/holidays/
    PROVISIONAL = "provisional"  # 暂定: statutory days only, arrangement not yet published


class CalendarRangeError(ValueError):
    """A date outside the years the calendar covers."""

    def __init__(self, day: date, first: date, last: date) -> None:
        super().__init__(f"date {day.isoformat()} is outside the calendar ({first.isoformat()} .. {last.isoformat()})")
        self.day = day


# chinese-calendar names holidays in English; users read Chinese.
HOLIDAY_NAMES_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


@dataclass(frozen=True)
class DayInfo:
    day: date
    workday: bool
    source: DaySource
    name: str | None  # holiday name (Chinese) for a rest day or a make-up day; "周末" for a plain weekend
    makeup: bool  # a make-up working day (调休上班) on a weekend

    @property
    def provisional(self) -> bool:
        return self.source is DaySource.PROVISIONAL

    @property
    def kind(self) -> str:
        """``workday``, ``makeup`` (调休上班), ``holiday`` (法定假日) or ``weekend``."""
        if self.makeup:
            return "makeup"
        if self.workday:
            return "workday"
        return "weekend" if self.name in (None, "周末") else "holiday"


@dataclass(frozen=True)
class YearArrangement:
    """One year's rest days and make-up days, with where they came from."""

    year: int
    source: DaySource
    rest_days: dict[date, str]  # statutory rest days (weekends not listed unless named in the arrangement)
    makeup_days: dict[date, str]  # weekend days that are working days
    notice: str | None = None  # e.g. 国办发明电〔2026〕N号
    file: str | None = None
    amended_by: str | None = None  # the next year's override file that moved some of this December's days


PROVISIONAL_HORIZON = timedelta(days=14)  # a provisional deadline this close is a problem, not a warning
IMPORT_COMMAND = "hotline-sla calendar import-notice NOTICE.txt"


@dataclass(frozen=True)
class CalendarReadiness:
    """Whether the calendar is ready for the deadlines that matter now (status and the digest say this).

    ``years``: the provisional years that matter (this year, and next year from 1 November or as soon as an
    open case's deadline is provisional); ``relied_on``: open cases whose provisional deadline falls within
    :data:`PROVISIONAL_HORIZON` (or has passed). A warning when ``years`` is not empty; a problem when cases
    already rely on it.
    """

    years: tuple[int, ...]
    relied_on: int

    @property
    def problem(self) -> bool:
        return bool(self.years) and self.relied_on > 0

    def text_zh(self) -> str:
        listed = "、".join(f"{y}年" for y in self.years)
        text = (f"{listed}节假日安排尚未载入，涉及该年份的期限按法定节假日及补假暂定计算（不含调休），标注“暂定”。")
        if self.relied_on:
            text += f"已有{self.relied_on}件在办工单的暂定办理时限在{PROVISIONAL_HORIZON.days}天内（或已届满）。"
        return text + (f"国务院公布安排后，请运行「{IMPORT_COMMAND}」（NOTICE.txt为通知原文），再运行"
                       "「hotline-sla rules check」并重新加载服务（systemctl reload hotline-sla），期限将自动重算。")

    def text_en(self) -> str:
        listed = ", ".join(str(y) for y in self.years)
        text = (f"the {listed} holiday arrangement is not loaded: deadlines that reach into it are provisional "
                "(statutory days and 补假 only, no make-up days)")
        if self.relied_on:
            text += (f"; {self.relied_on} open case(s) have a provisional deadline within "
                     f"{PROVISIONAL_HORIZON.days} days (or already past)")
        return text + (f". When the State Council publishes it, run `{IMPORT_COMMAND}` with the notice's text, "
                       "then `hotline-sla rules check` and `systemctl reload hotline-sla`")


def calendar_readiness(
    calendar: WorkCalendar, today: date, relied_on: int, provisional_open: int = 0
) -> CalendarReadiness | None:
    """See :class:`CalendarReadiness`; None when no provisional year matters on ``today`` (a local day).
    ``provisional_open``: open cases with any provisional deadline (they make next year matter too)."""
    years = []
    if today.year <= calendar.last_year and calendar.year_source(today.year) is DaySource.PROVISIONAL:
        years.append(today.year)
    next_year = today.year + 1
    unloaded = next_year > calendar.last_year or calendar.year_source(next_year) is DaySource.PROVISIONAL
    # from 1 November working-day deadlines start to reach into next year
    if unloaded and (today >= date(today.year, 11, 1) or relied_on or provisional_open):
        years.append(next_year)
    return CalendarReadiness(tuple(years), relied_on) if years else None


def official_years() -> range:
    """The years chinese-calendar has data for (it raises NotImplementedError outside them)."""
    import chinese_calendar  # here, not at the top: a calendar read from the cache never needs it

    years = {d.year for d in chinese_calendar.holidays}
    return range(min(years), max(years) + 1)


def _official_arrangement(year: int) -> YearArrangement:
    import chinese_calendar

    rest = {
        d: HOLIDAY_NAMES_ZH.get(str(name), str(name))
        for d, name in chinese_calendar.holidays.items()
        if d.year == year
    }
    makeup = {
        d: HOLIDAY_NAMES_ZH.get(str(name), str(name)) + "调休上班"
        for d, name in chinese_calendar.workdays.items()
        if d.year == year
    }
    return YearArrangement(year, DaySource.OFFICIAL, rest, makeup)


def _provisional_arrangement(year: int) -> YearArrangement:
    return YearArrangement(year, DaySource.PROVISIONAL, provisional_rest_days(year), {})


def _amend(arr: YearArrangement, rest: dict[date, str], makeup: dict[date, str], file: str) -> YearArrangement:
    """``arr`` with the days a later notice moved: those days take the later notice's status."""
    new_rest = {d: n for d, n in arr.rest_days.items() if d not in makeup} | rest
    new_makeup = {d: n for d, n in arr.makeup_days.items() if d not in rest} | makeup
    return replace(arr, rest_days=new_rest, makeup_days=new_makeup, amended_by=file)


class WorkCalendar:
    """The working-day calendar over ``[first_year, last_year]``; all queries are O(1)."""

    def __init__(self, arrangements: Iterable[YearArrangement]) -> None:
        by_year = {a.year: a for a in arrangements}
        if not by_year:
            raise ValueError("a calendar needs at least one year")
        self.first_year = min(by_year)
        self.last_year = max(by_year)
        missing = [y for y in range(self.first_year, self.last_year + 1) if y not in by_year]
        if missing:
            raise ValueError(f"calendar years missing: {missing}")
        self.years = by_year
        self.first = date(self.first_year, 1, 1)
        self.last = date(self.last_year, 12, 31)
        self._base = self.first.toordinal()
        n_days = self.last.toordinal() - self._base + 1
        workday = bytearray(n_days)
        provisional = bytearray(n_days)
        for year, arr in by_year.items():
            start = date(year, 1, 1).toordinal() - self._base
            end = date(year, 12, 31).toordinal() - self._base
            is_prov = arr.source is DaySource.PROVISIONAL
            for i in range(start, end + 1):
                d = date.fromordinal(i + self._base)
                if d in arr.makeup_days:
                    workday[i] = 1
                elif d in arr.rest_days or d.weekday() >= 5:
                    workday[i] = 0
                else:
                    workday[i] = 1
                provisional[i] = is_prov
        self._workday = bytes(workday)
        # _cum[i] = number of working days among days [0, i); len n_days + 1
        self._cum = [0, *accumulate(self._workday)]
        self._prov_cum = [0, *accumulate(provisional)]
        # ordinals of working days, ascending: the k-th working day is _wd_ords[k]
        self._wd_ords = [i + self._base for i, w in enumerate(self._workday) if w]

    # --- construction -------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        overrides_dir: Path | None = None,
        *,
        first_year: int = FIRST_YEAR,
        last_year: int = DEFAULT_LAST_YEAR,
    ) -> WorkCalendar:
        """Official years, then operator overrides on top, then provisional years for the rest.

        Raises :class:`daemon.core.holidays.HolidayFileError` (names file and line) for an invalid override.
        """
        overrides: dict[int, HolidayOverride] = load_overrides(overrides_dir) if overrides_dir else {}
        official = official_years()
        arrangements = []
        for year in range(first_year, max(last_year, *overrides, first_year) + 1):
            if year in overrides:
                o = overrides[year]
                arrangements.append(
                    YearArrangement(year, DaySource.OVERRIDE, o.rest_days, o.makeup_days, o.notice, o.file)
                )
            elif year in official:
                arrangements.append(_official_arrangement(year))
            else:
                arrangements.append(_provisional_arrangement(year))
        by_year = {a.year: a for a in arrangements}
        for year, o in overrides.items():
            rest, makeup = o.previous_december()
            if (rest or makeup) and year - 1 in by_year:
                by_year[year - 1] = _amend(by_year[year - 1], rest, makeup, o.file)
        return cls(by_year.values())

    # --- queries --------------------------------------------------------------------------------------

    def _index(self, day: date) -> int:
        i = day.toordinal() - self._base
        if i < 0 or i >= len(self._workday):
            raise CalendarRangeError(day, self.first, self.last)
        return i

    def is_workday(self, day: date) -> bool:
        return bool(self._workday[self._index(day)])

    def is_provisional(self, day: date) -> bool:
        return self.years[day.year].source is DaySource.PROVISIONAL if self.first <= day <= self.last else False

    def year_source(self, year: int) -> DaySource:
        return self.years[year].source

    def day(self, day: date) -> DayInfo:
        """Everything known about one day."""
        workday = self.is_workday(day)
        arr = self.years[day.year]
        if day in arr.makeup_days:
            return DayInfo(day, True, arr.source, arr.makeup_days[day], True)
        if day in arr.rest_days:
            return DayInfo(day, workday, arr.source, arr.rest_days[day], False)
        return DayInfo(day, workday, arr.source, None if workday else "周末", False)

    def add_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (``day`` itself not counted; n ≥ 1). O(1)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        i = self._index(day)
        k = self._cum[i + 1] + n - 1  # index into _wd_ords of the n-th working day after day
        if k >= len(self._wd_ords):
            raise CalendarRangeError(day + timedelta(days=n), self.first, self.last)
        return date.fromordinal(self._wd_ords[k])

    def add_working_days_ordinal(self, ordinal: int, n: int) -> int:
        """:meth:`add_working_days` on day ordinals, for hot loops (no date objects built)."""
        i = ordinal - self._base
        if i < 0 or i >= len(self._workday) or n < 1:
            raise CalendarRangeError(date.fromordinal(max(ordinal, 1)), self.first, self.last)
        k = self._cum[i + 1] + n - 1
        if k >= len(self._wd_ords):
            raise CalendarRangeError(date.fromordinal(ordinal), self.first, self.last)
        return self._wd_ords[k]

    def sub_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day before ``day`` (``day`` itself not counted; n ≥ 1). O(1)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        k = self._cum[self._index(day)] - n
        if k < 0:
            raise CalendarRangeError(day - timedelta(days=n), self.first, self.last)
        return date.fromordinal(self._wd_ords[k])

    def next_workday(self, day: date, *, include: bool = False) -> date:
        """The first working day on or after ``day`` (``include``) or strictly after it."""
        if include and self.is_workday(day):
            return day
        return self.add_working_days(day, 1)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in the half-open interval ``(start, end]``; negative when end < start. O(1)."""
        return self._cum[self._index(end) + 1] - self._cum[self._index(start) + 1]

    def provisional_days(self, start: date, end: date) -> tuple[date, ...]:
        """The provisional days in ``[start, end]`` (empty when none), O(1) when none."""
        if end < start:
            return ()
        i, j = self._index(start), self._index(end)
        if self._prov_cum[j + 1] == self._prov_cum[i]:
            return ()
        return tuple(
            date.fromordinal(k + self._base)
            for k in range(i, j + 1)
            if self.years[date.fromordinal(k + self._base).year].source is DaySource.PROVISIONAL
        )

    def rest_and_makeup(self, year: int) -> tuple[list[DayInfo], list[DayInfo]]:
        """The year's non-weekend-only rest days (holidays) and its make-up working days."""
        arr = self.years[year]
        rest = [self.day(d) for d in sorted(arr.rest_days)]
        makeup = [self.day(d) for d in sorted(arr.makeup_days)]
        return rest, makeup

    def rest_day_count(self, year: int) -> int:
        """All non-working days of the year (weekends included)."""
        start, end = self._index(date(year, 1, 1)), self._index(date(year, 12, 31))
        days = end - start + 1
        return days - (self._cum[end + 1] - self._cum[start])

    @property
    def fingerprint(self) -> str:
        """Changes whenever any day's working status or provenance changes (drives recomputation)."""
        h = hashlib.sha256(self._workday)
        h.update(bytes(a.source is DaySource.PROVISIONAL for _, a in sorted(self.years.items())))
        return h.hexdigest()[:16]
