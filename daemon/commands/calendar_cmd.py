"""``hotline-sla calendar status|show YEAR``: where each year's working days come from."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from daemon.core.calendar import DaySource, WorkCalendar
from daemon.core.timeutil import parse_time, to_local, utcnow
from daemon.errors import UsageError
from daemon.output import print_json, warn

SOURCE_ZH = {DaySource.OFFICIAL: "官方", DaySource.OVERRIDE: "运维覆盖", DaySource.PROVISIONAL: "暂定"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("calendar", help="holiday calendar coverage (节假日日历)")
    csub = p.add_subparsers(dest="calendar_command", metavar="SUBCOMMAND", required=True)
    st = csub.add_parser("status", help="each year's source and counts, 2004 to next year")
    st.add_argument("--json", action="store_true")
    st.add_argument("--now", metavar="TIME", help="the current time (default: the clock)")
    st.set_defaults(func=run_status)
    sh = csub.add_parser("show", help="the rest days and make-up working days of YEAR")
    sh.add_argument("year", type=int, metavar="YEAR")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=run_show)


def year_status(cal: WorkCalendar, year: int) -> dict[str, Any]:
    rest, makeup = cal.rest_and_makeup(year)
    arr = cal.years[year]
    return {
        "year": year,
        "source": arr.source.value,
        "holidays": len(rest),  # arranged/statutory rest days (weekends inside a holiday block included)
        "rest_days": cal.rest_day_count(year),  # all non-working days, weekends included
        "makeup_days": len(makeup),
        "notice": arr.notice,
        "file": arr.file,
    }


def run_status(args: argparse.Namespace) -> int:
    now = to_local(parse_time(args.now) if args.now else utcnow())
    cal: WorkCalendar = args.ctx.calendar
    next_year = now.year + 1
    if next_year > cal.last_year:
        raise UsageError(f"--now {now.isoformat()}: the calendar covers {cal.first_year}-{cal.last_year} only")
    years = [year_status(cal, y) for y in range(cal.first_year, next_year + 1)]
    warning = None
    if cal.year_source(next_year) is DaySource.PROVISIONAL and now.date() >= date(now.year, 11, 1):
        warning = (
            f"{next_year}年节假日安排尚未加载，跨年时限为暂定 / the {next_year} holiday arrangement is not loaded: "
            f"deadlines that reach into {next_year} are provisional. Add {args.ctx.config.holidays_path}/"
            f"{next_year}.yaml from the State Council notice, or upgrade chinesecalendar."
        )
    if args.json:
        print_json({"years": years, "warning": warning})
    else:
        print(f"{'year':<6}{'source':<13}{'holidays':>9}{'rest':>6}{'makeup':>8}  notice")
        for y in years:
            src = f"{y['source']}({SOURCE_ZH[DaySource(y['source'])]})"
            print(
                f"{y['year']:<6}{src:<13}{y['holidays']:>9}{y['rest_days']:>6}{y['makeup_days']:>8}  "
                f"{y['notice'] or ''}"
            )
        if warning:
            warn(f"warning: {warning}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    cal: WorkCalendar = args.ctx.calendar
    if not cal.first_year <= args.year <= cal.last_year:
        raise UsageError(f"year {args.year}: the calendar covers {cal.first_year}-{cal.last_year}")
    rest, makeup = cal.rest_and_makeup(args.year)
    arr = cal.years[args.year]

    def row(d: Any) -> dict[str, Any]:
        return {
            "date": d.day.isoformat(), "weekday": d.day.isoweekday(), "name": d.name, "source": d.source.value,
        }

    if args.json:
        print_json(
            {
                "year": args.year,
                "source": arr.source.value,
                "provisional": arr.source is DaySource.PROVISIONAL,
                "notice": arr.notice,
                "rest_days": [row(d) for d in rest],
                "makeup_days": [row(d) for d in makeup],
            }
        )
        return 0
    weekday_zh = "一二三四五六日"
    print(f"{args.year}: {arr.source.value} ({SOURCE_ZH[arr.source]}){' ' + arr.notice if arr.notice else ''}")
    if arr.source is DaySource.PROVISIONAL:
        print("  暂定 provisional: statutory holidays only (法定节假日), no make-up days (not yet published)")
    print("  放假 rest days:")
    for d in rest:
        print(f"    {d.day.isoformat()} 周{weekday_zh[d.day.weekday()]}  {d.name}")
    print("  调休上班 make-up working days:" + ("" if makeup else " none"))
    for d in makeup:
        print(f"    {d.day.isoformat()} 周{weekday_zh[d.day.weekday()]}  {d.name}")
    return 0
