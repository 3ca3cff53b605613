"""``hotline-sla calendar status|show YEAR|import-notice FILE``: where each year's working days come from,
and the override file written from the State Council notice."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from daemon.core.calendar import DaySource, WorkCalendar, calendar_readiness
from daemon.core.holidays import load_override_file
from daemon.core.notice import Notice, NoticeError, decode_notice, describe, override_yaml, parse_notice
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
    im = csub.add_parser(
        "import-notice",
        help="write sla_rules/holidays/YYYY.yaml from the State Council notice text (节假日安排通知)",
    )
    im.add_argument("file", metavar="FILE", help="the notice as text (UTF-8 or GB18030); - reads stdin")
    im.add_argument("--year", type=int, metavar="YYYY", help="the notice's year (default: from its title)")
    im.add_argument("--output", metavar="PATH", help="the file to write (default: <holidays dir>/YYYY.yaml)")
    im.add_argument("--force", action="store_true", help="overwrite an existing file")
    im.add_argument("--json", action="store_true")
    im.set_defaults(func=run_import_notice)


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
    readiness = calendar_readiness(cal, now.date(), 0)  # no database here: `status` counts the cases
    warning = f"{readiness.text_zh()} / {readiness.text_en()}" if readiness else None
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
        print("  暂定 provisional: statutory holidays (法定节假日) and 补假 only, no make-up days (not yet published)")
    print("  放假 rest days:")
    for d in rest:
        print(f"    {d.day.isoformat()} 周{weekday_zh[d.day.weekday()]}  {d.name}")
    print("  调休上班 make-up working days:" + ("" if makeup else " none"))
    for d in makeup:
        print(f"    {d.day.isoformat()} 周{weekday_zh[d.day.weekday()]}  {d.name}")
    return 0


def _notice_json(notice: Notice) -> dict[str, Any]:
    return {
        "year": notice.year,
        "notice": notice.number,
        "blocks": [
            {
                "name": b.name,
                "total": b.total,
                "rest_days": [d.isoformat() for d in b.rest_days],
                "makeup_days": [d.isoformat() for d in b.makeup_days],
            }
            for b in notice.blocks
        ],
    }


def _read_stdin() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)  # a text-only stdin (tests, some wrappers) has no bytes
    return buffer.read() if buffer is not None else sys.stdin.read().encode("utf-8")


def run_import_notice(args: argparse.Namespace) -> int:
    """Parse the notice, check it, write the override file; exit 2 with the failing sentence."""
    source = "stdin" if args.file == "-" else args.file
    try:
        data = _read_stdin() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"{source}: cannot read the notice ({exc.strerror})") from None
    try:
        notice = parse_notice(decode_notice(data), year=args.year)
    except NoticeError as exc:
        if args.json:
            print_json({"ok": False, "file": source, "error": exc.reason, "sentence": exc.sentence})
            return 2
        raise UsageError(f"{source}: {exc}") from None
    target = Path(args.output) if args.output else args.ctx.config.holidays_path / f"{notice.year}.yaml"
    if target.exists() and not args.force:
        raise UsageError(f"{target} exists; compare it with the notice, then pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    text = override_yaml(notice)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_override_file(tmp)  # the file we write must be one the calendar accepts
    except Exception:
        tmp.unlink()
        raise
    tmp.replace(target)
    if args.json:
        print_json({"ok": True, "file": str(target), **_notice_json(notice)})
        return 0
    print("\n".join(describe(notice)))
    print(f"已写入 {target}。请与通知原文逐日核对。")
    warn(f"wrote {target}; next: `hotline-sla rules check`, then reload the service "
         "(`systemctl reload hotline-sla`) so that open deadlines are recomputed")
    return 0
