"""Report commands: ``digest``, ``month-end`` and ``report month YYYY-MM``.

``digest`` prints (or writes) the daily overdue digest as of ``--now`` / ``--date``; with ``--send`` it runs
the scheduled job instead (queue for the supervisors, once per working day). ``month-end`` runs the
month-end job (reminders to units, carry-over report). ``report month`` ranks the units (评优评差) on the
cases in the store, group by group (分组), under the configured masthead; inside the month it adds the
forecast and the units heading for 较差. ``--issue`` records the issue number (第N期) in the database;
without it the masthead is a draft showing the number the issue would get.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, time
from pathlib import Path
from typing import Any

from daemon.commands.args import add_now, now_arg
from daemon.core.timeutil import LOCAL_TZ, TimeFormatError, iso_local, parse_date, to_local
from daemon.errors import UsageError
from daemon.output import print_json

FORMATS = ("md", "html", "xlsx")
MONTH_FORMATS = (*FORMATS, "pdf")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("digest", help="the daily overdue digest for supervisors (每日超期通报)")
    when = d.add_mutually_exclusive_group()
    when.add_argument("--date", metavar="DAY", help="the digest of DAY (YYYY-MM-DD) at scheduler.digest_time")
    when.add_argument("--now", metavar="TIME", help="as of TIME (tests and drills); default: the clock")
    _add_format(d)
    d.add_argument("--send", action="store_true",
                   help="queue it for the supervisors as the scheduler does (once per working day)")
    d.add_argument("--json", action="store_true", help="with --send: print the job's summary as JSON")
    d.set_defaults(func=run_digest)

    m = sub.add_parser("month-end", help="month-end zero-backlog reminders and carry-over report (月底清零/结存)")
    add_now(m)
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=run_month_end)

    r = sub.add_parser("report", help="periodic reports (报表)")
    rsub = r.add_subparsers(dest="report_command", metavar="SUBCOMMAND", required=True)
    month = rsub.add_parser("month", help="the monthly ranking of units (评优评差) from the cases in the store")
    month.add_argument("month", metavar="YYYY-MM")
    add_now(month)
    _add_format(month, MONTH_FORMATS)
    month.add_argument("--json", action="store_true",
                       help='print {"month", "groups": [{"group", "units": [...]}]} (rates 0-100 or null)')
    month.add_argument("--issue", action="store_true",
                       help="record this 通报's issue number (第N期) as issued at --now; again: the same number")
    month.set_defaults(func=run_report_month)


def _add_format(p: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS) -> None:
    p.add_argument("--format", choices=formats, default="md", help=f"{formats[0]} (default), {', '.join(formats[1:])}")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout (required for xlsx)")


def _check_output(args: argparse.Namespace) -> None:
    if args.format in {"xlsx", "pdf"} and not args.output and not getattr(args, "json", False):
        raise UsageError(f"--format {args.format} writes a binary file: give --output FILE "
                         f"(e.g. --output report.{args.format})")


def _emit(args: argparse.Namespace, content: str | bytes) -> None:
    if args.output:
        path = Path(args.output)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        except OSError as exc:
            raise UsageError(f"--output {path}: cannot write ({exc.strerror})") from None
        print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)
    else:
        assert isinstance(content, str)
        sys.stdout.write(content if content.endswith("\n") else content + "\n")


def _digest_now(args: argparse.Namespace) -> datetime:
    if args.date:
        try:
            day = parse_date(args.date)
        except TimeFormatError:
            raise UsageError(f"--date: invalid day {args.date!r}; expected YYYY-MM-DD") from None
        at: time = args.ctx.config.scheduler.digest_time
        return datetime.combine(day, at.replace(tzinfo=None), tzinfo=LOCAL_TZ)
    return now_arg(args)


def run_digest(args: argparse.Namespace) -> int:
    ctx = args.ctx
    now = _digest_now(args)
    if args.send:
        return _send_digest(args, now)
    _check_output(args)
    from daemon.reports import digest_render
    from daemon.reports.digest import build_digest

    with ctx.store.engine.connect() as conn:
        digest = build_digest(conn, ctx.rules, ctx.calendar, now, ctx.config.scheduler.digest_time)
    content: str | bytes
    if args.format == "xlsx":
        content = digest_render.render_xlsx(digest)
    elif args.format == "html":
        content = digest_render.render_html(digest)
    else:
        content, _ = digest_render.render_markdown(
            digest, hint="完整清单：hotline-sla digest --format html|xlsx --output FILE")
    _emit(args, content)
    return 0


def _send_digest(args: argparse.Namespace, now: datetime) -> int:
    from daemon.reports.jobs import is_done, run_digest_job

    ctx = args.ctx
    result = run_digest_job(ctx.store, ctx.rules, ctx.calendar, ctx.config, now)
    local = to_local(now)
    reason = None
    if result is None:
        if not ctx.calendar.is_workday(local.date()):
            reason = f"{local.date()} is not a working day: no digest is sent"
        elif local.time() < ctx.config.scheduler.digest_time:
            reason = f"before scheduler.digest_time {ctx.config.scheduler.digest_time:%H:%M}: not sent yet"
        elif is_done(ctx.store, "digest", local.date().isoformat()):
            reason = f"the digest of {local.date()} was already queued: not sent again"
    if args.json:
        print_json({"now": iso_local(now), "queued": result, "reason": reason})
    elif result is None:
        print(reason or "nothing to send")
    else:
        print(f"digest {result['period']} queued for {result['recipients']} recipient(s) "
              f"({result['outbox_rows']} message(s)); open {result['open']}, overdue {result['overdue']}")
        for f in result["files"]:
            print(f"  {f}")
    return 0


def _require_sqlite_file(url: str) -> None:
    """Refuse a SQLite database file that does not exist rather than create an empty one: the service runs
    this command in a child process (daemon/runtime/report_process.py), and a file deleted under a running
    service must never come back empty (the service's own guard: runtime/health.py SqliteFileGuard)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if name and name != ":memory:" and not name.startswith("file:") and not Path(name).exists():
        raise UsageError(f"the SQLite database {name} does not exist (database.url); create it with "
                         "`hotline-sla db upgrade`, or restore it from a backup")


def run_month_end(args: argparse.Namespace) -> int:
    from daemon.reports.jobs import run_month_end_job
    from daemon.reports.month_end import scheduled_actions

    ctx = args.ctx
    now = now_arg(args)
    _require_sqlite_file(ctx.config.database_url)
    done = run_month_end_job(ctx.store, ctx.rules, ctx.calendar, ctx.config, now)
    today = to_local(now).date()
    upcoming = [a for ym in ((today.year, today.month), (today.year + today.month // 12, today.month % 12 + 1))
                for a in scheduled_actions(ctx.calendar, ctx.rules.month_end, *ym) if a.at > now]
    nxt = min(upcoming, key=lambda a: a.at) if upcoming else None
    doc: dict[str, Any] = {
        "now": iso_local(now), "queued": done,
        "next": {"kind": nxt.kind, "period": nxt.period, "at": iso_local(nxt.at)} if nxt else None,
    }
    if args.json:
        print_json(doc)
        return 0
    for r in done:
        if r["kind"] == "month_end":
            print(f"month-end reminders {r['period']}: {len(r['units'])} unit(s), {r['cases']} open case(s), "
                  f"{r['outbox_rows']} message(s) queued")
        else:
            print(f"carry-over report {r['period']}: {r['cases']} case(s) in {r['units']} unit(s), "
                  f"{r['outbox_rows']} message(s) queued")
    if not done:
        print("nothing due now" + (f"; next: {nxt.kind} {nxt.period} at {iso_local(nxt.at)}" if nxt else ""))
    return 0


def run_report_month(args: argparse.Namespace) -> int:
    from daemon.reports import ranking_render
    from daemon.reports.groups import imported_groups, ranking_groups
    from daemon.reports.issues import peek_issue, record_issue
    from daemon.reports.ranking import monthly_ranking
    from daemon.reports.ranking_tables import Masthead

    m = re.fullmatch(r"(\d{4})-(\d{1,2})", args.month.strip())
    if not m or not 1 <= int(m[2]) <= 12:
        raise UsageError(f"invalid month {args.month!r}; expected YYYY-MM, e.g. 2026-11")
    _check_output(args)
    year, month = int(m[1]), int(m[2])
    period = f"{year:04d}-{month:02d}"
    ctx = args.ctx
    now = now_arg(args)
    settings = ctx.config.reports.masthead
    with ctx.store.engine.begin() as conn:
        groups = ranking_groups(ctx.config, imported_groups(conn))
        issue = (record_issue if args.issue else peek_issue)(conn, settings.series, period, now)
    ranking = monthly_ranking(ranked_cases(ctx.store, year, month), year, month, now, ctx.config.scoring,
                              groups=groups)
    masthead = Masthead.of(settings, year=issue.year, number=issue.number,
                           issued_on=to_local(issue.issued_at).date(), draft=not issue.recorded)
    if args.json:
        print_json({**ranking_render.render_json(ranking),
                    "issue": {"year": issue.year, "number": issue.number, "recorded": issue.recorded,
                              "issued_on": masthead.issued_on.isoformat()}})
        return 0
    content: str | bytes
    if args.format == "xlsx":
        content = ranking_render.render_xlsx(ranking, masthead)
    elif args.format == "html":
        content = ranking_render.render_html(ranking, masthead)
    elif args.format == "pdf":
        try:
            content = ranking_render.render_pdf(ranking, masthead)
        except ModuleNotFoundError:
            raise UsageError("--format pdf needs WeasyPrint: pip install 'hotline-sla[pdf]' (and Debian's "
                             "libpango-1.0-0 and fonts-noto-cjk); or print --format html from a browser") from None
    else:
        content = ranking_render.render_markdown(ranking, masthead)
    _emit(args, content)
    return 0


def _raw_instants(stmt: Any) -> Any:
    """``stmt`` with its instant columns read as the driver returns them (no column-type conversion)."""
    from sqlalchemy import DateTime, type_coerce
    from sqlalchemy.types import NullType

    from daemon.storage.models import UTCDateTime

    return stmt.with_only_columns(*(
        type_coerce(col, NullType()).label(col.name) if isinstance(col.type, UTCDateTime | DateTime) else col
        for col in stmt.selected_columns))


def ranked_cases(store: Any, year: int, month: int) -> Iterator[Any]:
    """The month's cases from the store as :class:`RankedCase` (returned cases are not the unit's), and the
    earlier assignments (退件 → 重新派单) dispatched in the month that their unit is scored on
    (:func:`daemon.core.assignment.scored_on_unit`: all but those returned in time), each as its unit's case.
    Streamed from server-side cursors (2,000 rows a fetch): a month of a million cases is never in memory."""
    from sqlalchemy import select

    from daemon.core.assignment import scored_on_unit
    from daemon.core.cases import Satisfaction, Source, Status
    from daemon.reports.ranking import RankedCase, month_bounds
    from daemon.storage.codec import aware_utc
    from daemon.storage.models import assignments, cases

    start, end = month_bounds(year, month)
    c = cases.c
    stmt = select(c.number, c.unit, c.district, c.domain, c.source, c.received_at, c.fed_back_at, c.closed_at,
                  c.due_at, c.satisfaction, c.stars, c.difficult, c.summary).where(
        c.received_at >= start, c.received_at < end, c.status != Status.RETURNED.value)
    a = assignments.c
    earlier = select(c.number, a.unit, c.district, c.domain, c.source, a.received_at, a.fed_back_at, a.closed_at,
                     a.due_at, c.summary, a.outcome, a.return_requested_at, a.return_due_at).join_from(
        assignments, cases, a.case_id == c.id).where(a.received_at >= start, a.received_at < end)
    # the instants as the driver returns them, made aware by the codec (the column type's conversion costs
    # three calls a value), the enums looked up by value (calling the Enum costs more): a million rows
    sources = {s.value: s for s in Source}
    results = {s.value: s for s in Satisfaction}
    aware: Callable[[Any], Any] = aware_utc  # received_at and due_at are NOT NULL columns
    with store.engine.connect() as conn:
        stream = conn.execution_options(stream_results=True, yield_per=2_000)
        for (number, unit, district, domain, source, received_at, fed_back_at, closed_at, due_at, satisfaction,
             stars, difficult, summary) in stream.execute(_raw_instants(stmt)):
            yield RankedCase(
                number, unit, district, domain, sources[source], aware(received_at), aware(fed_back_at),
                aware(closed_at), aware(due_at), results[satisfaction] if satisfaction else None, stars,
                bool(difficult), summary,
            )
        for r in stream.execute(earlier):
            if r.due_at is not None and scored_on_unit(r.outcome, r.return_requested_at, r.return_due_at):
                yield RankedCase(
                    number=r.number, unit=r.unit, district=r.district, domain=r.domain,
                    source=Source(r.source), received_at=r.received_at, fed_back_at=r.fed_back_at,
                    closed_at=r.closed_at, due_at=r.due_at, summary=r.summary,
                )
