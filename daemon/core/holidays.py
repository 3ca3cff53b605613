"""Holiday arrangements that do not come from chinese-calendar.

- :func:`statutory_holidays`: the days the law itself fixes (全国年节及纪念日放假办法, revised from 2025);
- :func:`provisional_rest_days`: a year whose arrangement is not published yet (a provisional year, 暂定):
  the statutory days, plus the compensation that 第六条 owes (补假: a statutory day that falls on a Saturday
  or Sunday is made up on the next working day), and a statutory day that coincides with another one
  (中秋 inside 国庆, 2028 and 2031) is made up the same way, so no day is lost;
- :func:`load_overrides`: the operator's files in ``sla_rules/holidays/``, one per year, copied from the
  State Council notice (国务院办公厅关于…节假日安排的通知). Example::

      year: 2027
      notice: 国办发明电〔2026〕7号
      rest_days:
        - {date: 2027-01-01, name: 元旦}
        - {date: 2027-02-05, to: 2027-02-13, name: 春节}
      make_up_workdays:
        - {date: 2027-02-14, name: 春节调休上班}

A file for year Y may also list days of December Y-1, which a notice sometimes moves (the 2019 notice:
2018-12-29 上班, 12-30..31 放假). Precedence: those days replace whatever Y-1's own source says for them
(package, override or provisional), since the notice for Y is the newer decision; the rest of Y-1 is
untouched. Y-1's own override file may not say the opposite for the same day (an error naming both files).

Errors name the file and line, and what would be valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.errors import ConfigError

if TYPE_CHECKING:
    import yaml

# yaml and lunar_python are imported where they are used: a calendar read from the compiled cache
# (daemon.core.compiled) needs neither, and they cost ~25 ms of every command's start-up.


def statutory_entitlements(year: int) -> list[tuple[date, str]]:
    """Each statutory rest day of ``year`` that the law grants, in date order; two may share a date."""
    new_year = _lunar_to_solar(year, 1, 1)
    days = [(date(year, 1, 1), "元旦")]
    days.append((new_year - timedelta(days=1), "春节"))  # 除夕, the eve: the last day of the previous lunar year
    days.extend((new_year + timedelta(days=offset), "春节") for offset in range(3))
    days.append((_qingming(year), "清明节"))
    days.extend([(date(year, 5, 1), "劳动节"), (date(year, 5, 2), "劳动节")])
    days.append((_lunar_to_solar(year, 5, 5), "端午节"))
    days.extend((date(year, 10, d), "国庆节") for d in (1, 2, 3))
    days.append((_lunar_to_solar(year, 8, 15), "中秋节"))
    return sorted(days, key=lambda item: item[0])


def statutory_holidays(year: int) -> dict[date, str]:
    """The statutory rest days of ``year`` (no weekends, no make-up days), named in Chinese; a day that
    carries two holidays (中秋 inside 国庆) is named after both (国庆节、中秋节)."""
    days: dict[date, str] = {}
    for day, name in statutory_entitlements(year):
        days[day] = f"{days[day]}、{name}" if day in days else name
    return days


def provisional_rest_days(year: int) -> dict[date, str]:
    """The rest days of a provisional year: the statutory days plus 补假 (放假办法 第六条).

    A statutory day on a Saturday or Sunday, and a statutory day that shares its date with another one, is
    made up on the next working day after it (a weekday that is not already a rest day), named
    ``<holiday>补假``. Local calendar days.
    """
    days: dict[date, str] = {}
    owed: list[tuple[date, str]] = []
    for day, name in statutory_entitlements(year):
        if day in days:
            days[day] = f"{days[day]}、{name}"
            owed.append((day, name))
            continue
        days[day] = name
        if day.weekday() >= 5:
            owed.append((day, name))
    for day, name in owed:
        extra = day + timedelta(days=1)
        while extra.weekday() >= 5 or extra in days:
            extra += timedelta(days=1)
        days[extra] = f"{name}补假"
    return dict(sorted(days.items()))


def _lunar_to_solar(year: int, month: int, day: int) -> date:
    from lunar_python import Lunar

    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def _qingming(year: int) -> date:
    """清明: the day of the solar term (April 4 or 5), from the lunar library's astronomical tables."""
    from lunar_python import Lunar

    term = Lunar.fromYmd(year, 3, 1).getJieQiTable()["清明"]
    qm = date(term.getYear(), term.getMonth(), term.getDay())
    if qm.year != year:  # the table spans two solar years; take this year's term
        term = Lunar.fromYmd(year, 2, 1).getJieQiTable()["清明"]
        qm = date(term.getYear(), term.getMonth(), term.getDay())
    return qm


class HolidayFileError(ConfigError):
    """An invalid holiday override file; the message names file and line."""


@dataclass
class HolidayOverride:
    year: int
    file: str
    notice: str | None = None
    rest_days: dict[date, str] = field(default_factory=dict)  # may include days of December year-1
    makeup_days: dict[date, str] = field(default_factory=dict)  # may include days of December year-1

    def previous_december(self) -> tuple[dict[date, str], dict[date, str]]:
        """The rest and make-up days this file sets in December of the previous year."""
        return (
            {d: n for d, n in self.rest_days.items() if d.year < self.year},
            {d: n for d, n in self.makeup_days.items() if d.year < self.year},
        )


_ALLOWED_TOP = {"year", "notice", "rest_days", "make_up_workdays"}
_ALLOWED_ITEM = {"date", "to", "name"}


def load_overrides(directory: Path) -> dict[int, HolidayOverride]:
    """Every ``*.yaml``/``*.yml`` in ``directory``; a missing directory means no overrides."""
    result: dict[int, HolidayOverride] = {}
    if not directory.is_dir():
        return result
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        override = load_override_file(path)
        if override.year in result:
            raise HolidayFileError(
                f"{path}: year {override.year} is already defined in {result[override.year].file}; "
                "keep one file per year"
            )
        result[override.year] = override
    for year, override in result.items():
        earlier = result.get(year - 1)
        if earlier is None:
            continue
        rest, makeup = override.previous_december()
        for day in sorted([*rest, *makeup]):
            said_rest = day in rest
            if (said_rest and day in earlier.makeup_days) or (not said_rest and day in earlier.rest_days):
                raise HolidayFileError(
                    f"{override.file}: {day.isoformat()} is a {'rest day' if said_rest else 'make-up working day'}"
                    f" here but a {'make-up working day' if said_rest else 'rest day'} in {earlier.file}; "
                    f"the {year} notice decides December {year - 1}'s moved days: remove it from {earlier.file}"
                )
    return result


def load_override_file(path: Path) -> HolidayOverride:  # noqa: PLR0912 - one check per documented error
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text)
    except UnicodeDecodeError:
        raise HolidayFileError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise HolidayFileError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(root, yaml.MappingNode):
        raise HolidayFileError(f"{path}:1: expected a mapping with keys year, notice, rest_days, make_up_workdays")
    top = {k.value: v for k, v in root.value}
    for key_node, _ in root.value:
        if key_node.value not in _ALLOWED_TOP:
            raise HolidayFileError(
                f"{path}:{key_node.start_mark.line + 1}: unknown key {key_node.value!r}; "
                f"valid keys: {', '.join(sorted(_ALLOWED_TOP))}"
            )
    year_node = top.get("year")
    if year_node is None or not re.fullmatch(r"\d{4}", str(year_node.value)):
        line = year_node.start_mark.line + 1 if year_node is not None else 1
        raise HolidayFileError(f"{path}:{line}: 'year' is required and must be a year like 2027")
    year = int(year_node.value)
    notice_node = top.get("notice")
    override = HolidayOverride(year, str(path), notice=str(notice_node.value) if notice_node else None)
    seen: dict[date, tuple[str, int]] = {}
    for key, target in (("rest_days", override.rest_days), ("make_up_workdays", override.makeup_days)):
        node = top.get(key)
        if node is None:
            continue
        if not isinstance(node, yaml.SequenceNode):
            raise HolidayFileError(f"{path}:{node.start_mark.line + 1}: {key} must be a list of {{date, to, name}}")
        for item in node.value:
            line = item.start_mark.line + 1
            for day, name in _expand_item(path, line, key, item, year):
                if day in seen:
                    other_key, other_line = seen[day]
                    raise HolidayFileError(
                        f"{path}:{line}: {day.isoformat()} is listed in {key} and already in "
                        f"{other_key} (line {other_line}); a day is either a rest day or a make-up working day"
                    )
                seen[day] = (key, line)
                if key == "make_up_workdays" and day.weekday() < 5:
                    raise HolidayFileError(
                        f"{path}:{line}: make-up working day {day.isoformat()} is a weekday; "
                        "make-up days (调休上班) are Saturdays or Sundays"
                    )
                target[day] = name
    return override


def _expand_item(path: Path, line: int, key: str, item: yaml.Node, year: int) -> list[tuple[date, str]]:
    import yaml

    default_name = "调休上班" if key == "make_up_workdays" else "假日"
    if isinstance(item, yaml.ScalarNode):
        fields: dict[str, Any] = {"date": item.value}
    elif isinstance(item, yaml.MappingNode):
        fields = {}
        for k, v in item.value:
            if k.value not in _ALLOWED_ITEM:
                raise HolidayFileError(
                    f"{path}:{k.start_mark.line + 1}: unknown key {k.value!r} in {key}; valid: date, to, name"
                )
            fields[k.value] = v.value
    else:
        raise HolidayFileError(f"{path}:{line}: each {key} entry is a date or {{date, to, name}}")
    if "date" not in fields:
        raise HolidayFileError(f"{path}:{line}: {key} entry without 'date' (YYYY-MM-DD)")
    start = _parse_day(path, line, fields["date"], year)
    end = _parse_day(path, line, fields["to"], year) if "to" in fields else start
    if end < start:
        raise HolidayFileError(f"{path}:{line}: 'to' {end.isoformat()} is before 'date' {start.isoformat()}")
    name = str(fields.get("name") or default_name)
    return [(start + timedelta(days=i), name) for i in range((end - start).days + 1)]


def _parse_day(path: Path, line: int, value: str, year: int) -> date:
    try:
        day = date.fromisoformat(str(value).strip())
    except ValueError:
        raise HolidayFileError(f"{path}:{line}: {value!r} is not a date; write YYYY-MM-DD, e.g. {year}-10-01") from None
    if day.year != year and not (day.year == year - 1 and day.month == 12):
        raise HolidayFileError(
            f"{path}:{line}: {day.isoformat()} is outside the file's year {year}; "
            f"put each year's days in that year's file (only December {year - 1}, which the notice for "
            f"{year} may move, can be listed here too)"
        )
    return day
