"""Scheduled report jobs: the daily digest and the month-end reminders / carry-over report.

Each report is sent once per period however often the jobs are called and however many daemon instances
call them: a ``runs`` row (unique on kind and period) is inserted in the same transaction as the report's
outbox rows, so exactly one transaction commits; a loser's INSERT fails on the unique key and it sends
nothing. Called before the time, on a day off, or after the period was done, a job returns without work
beyond one indexed SELECT, so the scheduler may call them on every workday trigger and on start
(catch-up: a daemon that was down at 08:30 sends the digest when it starts, once).

The jobs are registered in one place, :data:`REPORT_JOBS` (a new report is one function and one line
there); the daemon runs them all through :func:`run_report_jobs`; `digest --send` and `month-end` call one.

Report files (HTML, XLSX) are written to ``reports.output_dir`` before the transaction (atomically, under
names fixed by the period, so a losing instance rewrites the same file) and the outbox payload carries
them as attachments, with the content pre-rendered (``payload.rendered``: docs/reports.md, "Outbox payload of
report messages"; the dispatcher sends it as is).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from daemon.config import Config, RouteConfig
from daemon.core.calendar import WorkCalendar
from daemon.core.rules import RuleSet
from daemon.core.timeutil import to_local
from daemon.pipeline.queue import enqueue
from daemon.pipeline.recipients import Delivery, Directory, sync_config_contacts
from daemon.reports import digest_render
from daemon.reports.backlog import BacklogQuery, UnitBacklog, backlog_per_unit
from daemon.reports.digest import build_digest
from daemon.reports.month_end import (
    MonthEndAction,
    RenderedReminder,
    carry_over,
    carry_over_title,
    due_actions,
    last_working_day,
    render_reminder,
    write_carry_over,
    write_unrouted_reminder,
)
from daemon.reports.tabular import HTML_MIME, XLSX_MIME, local_text, safe_filename, write_atomic
from daemon.storage.models import runs
from daemon.storage.store import Store

log = structlog.get_logger("hotline_sla.reports")

UNIT_ROUTE = RouteConfig(roles=["handler", "leader"])


def _key(*parts: str) -> str:
    """A dedupe key within the column's 200 characters (long unit names are hashed)."""
    key = ":".join(parts)
    return key if len(key) <= 200 else key[:150] + ":" + hashlib.sha256(key.encode()).hexdigest()[:40]


def is_done(store: Store, kind: str, period: str) -> bool:
    with store.engine.connect() as conn:
        return conn.execute(select(runs.c.id).where(runs.c.kind == kind, runs.c.period == period)).first() is not None


def _directory(store: Store, config: Config) -> Directory:
    try:
        with store.engine.begin() as conn:
            sync_config_contacts(conn, config)
    except (IntegrityError, OperationalError) as exc:
        # another instance is mirroring the same config.yaml contacts at this moment (a unique settings
        # key, or SQLite's lock); its result is what we would have written
        log.info("contacts_sync_raced", error=type(exc).__name__)
    with store.engine.connect() as conn:
        return Directory.load(conn, config)


def supervisor_deliveries(directory: Directory) -> list[Delivery]:
    out = []
    for person in directory.supervisors:
        for channel in person.channels or directory.default_channels:
            out.append(Delivery(person, channel))
    return out


def _attachment(path: Path, filename: str, mime: str) -> dict[str, str]:
    return {"filename": filename, "path": str(path.resolve()), "mime_type": mime}


def _rendered(  # noqa: PLR0917 - the payload's fields, internal
    subject: str, text: str, markdown: str | None, html: str | None, attachments: list[dict[str, str]],
    sms: dict[str, str], note: str | None = None,
) -> dict[str, Any]:
    if note:  # why a supervisor receives a unit's reminder
        text = f"（{note}）\n{text}"
        markdown = f"> {note}\n{markdown}" if markdown else markdown
    return {"subject": subject, "text": text, "markdown": markdown, "html": html, "attachments": attachments,
            "sms_params": sms}


def _commit(  # noqa: PLR0917 - internal
    store: Store, kind: str, period: str, now: datetime, detail: dict[str, Any],
    messages: list[tuple[Delivery, str, dict[str, Any]]],
) -> int | None:
    """Insert the runs row and the outbox rows in one transaction; None when another call already did."""
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(runs).values(kind=kind, period=period, done_at=now, detail=detail))
            queued = 0
            for dl, key, payload in messages:
                queued += enqueue(conn, kind=kind, channel=dl.channel, recipient=dl.contact.as_json(),
                                   payload=payload, dedupe_key=key, now=now)
    except IntegrityError:
        log.info("report_already_done", kind=kind, period=period)
        return None
    return queued


# --- the daily digest -----------------------------------------------------------------------------------


def run_digest_job(
    store: Store, rules: RuleSet, calendar: WorkCalendar, config: Config, now: datetime
) -> dict[str, Any] | None:
    """Build and queue today's digest for the supervisors if ``now`` (aware) is a working day at or after
    ``scheduler.digest_time`` and today's digest is not done yet. Returns a summary or None."""
    local = to_local(now)
    today = local.date()
    if not calendar.is_workday(today) or local.time() < config.scheduler.digest_time:
        return None
    period = today.isoformat()
    if is_done(store, "digest", period):
        return None
    with store.engine.connect() as conn:
        digest = build_digest(conn, rules, calendar, now, config.scheduler.digest_time)
    out = config.reports_path
    html_path, xlsx_path = out / f"digest-{period}.html", out / f"digest-{period}.xlsx"
    tables = digest_render.digest_tables(digest)
    write_atomic(html_path, digest_render.render_html(digest, tables=tables).encode())
    write_atomic(xlsx_path, digest_render.render_xlsx(digest, tables=tables))
    attachments = [_attachment(xlsx_path, f"每日超期通报-{period}.xlsx", XLSX_MIME),
                   _attachment(html_path, f"每日超期通报-{period}.html", HTML_MIME)]
    markdown, truncated = digest_render.render_markdown(
        digest, hint=f"完整清单见附件：每日超期通报-{period}.xlsx（及 .html）。")
    rendered = _rendered(
        f"12345 热线每日超期通报（{period}）", digest_render.render_text(digest), markdown,
        digest_render.render_html(digest, limit=config.reports.email_list_rows, tables=tables), attachments,
        digest_render.sms_params(digest),
    )
    o = digest.overview
    summary: dict[str, Any] = {
        "kind": "digest", "period": period, "now": local.isoformat(), "open": o.open, "overdue": o.overdue,
        "new_overdue": o.new_overdue, "due_today": o.due_today, "markdown_truncated": truncated,
        "files": [str(html_path), str(xlsx_path)],
    }
    deliveries = supervisor_deliveries(_directory(store, config))
    messages = [(dl, _key("digest", period, dl.contact.key),
                 {"rendered": rendered, "urgent": False, "report": summary}) for dl in deliveries]
    queued = _commit(store, "digest", period, now, summary, messages)
    if queued is None:
        return None
    if not deliveries:
        log.warning("digest_without_recipient", period=period, hint="configure contacts.supervisors")
    log.info("digest_queued", period=period, messages=queued, overdue=o.overdue)
    return {**summary, "recipients": len(deliveries), "outbox_rows": queued}


# --- month end ----------------------------------------------------------------------------------------------


def run_month_end_job(
    store: Store, rules: RuleSet, calendar: WorkCalendar, config: Config, now: datetime
) -> list[dict[str, Any]]:
    """Queue what is due at ``now`` (aware): today's month-end reminders to units, and last month's carry-over
    report to supervisors; each once per (kind, period). Returns one summary per report queued."""
    done = []
    for action in due_actions(calendar, rules.month_end, now):
        if is_done(store, action.kind, action.period):
            continue
        include = rules.month_end.include_carried_over
        result = (_reminders(store, calendar, config, action, now, include) if action.kind == "month_end"
                  else _carry_over(store, config, action, now))
        if result is not None:
            done.append(result)
    return done


def _reminders(  # noqa: PLR0917 - internal
    store: Store, calendar: WorkCalendar, config: Config, action: MonthEndAction, now: datetime, include: bool
) -> dict[str, Any] | None:
    """One reminder per unit with a handler or leader, the units streamed one at a time from the store (the
    memory is that of the largest unit's list); the units without one are counted, and the supervisors'
    reminder about them lists their cases from a second streamed pass."""
    directory = _directory(store, config)
    stamp = action.period.replace("/", "-")
    last_day = last_working_day(calendar, action.year, action.month).strftime("%m月%d日")
    messages: list[tuple[Delivery, str, dict[str, Any]]] = []
    units = []
    unrouted: list[UnitBacklog] = []
    fallback: dict[tuple[str, str], Delivery] = {}
    query = BacklogQuery(action.year, action.month, now, include_carried=include)
    with store.engine.connect() as conn:
        for unit, items in backlog_per_unit(conn, query):
            deliveries = directory.route(UNIT_ROUTE, unit)
            own = [dl for dl in deliveries if dl.note is None]
            for dl in deliveries:
                if dl.note is not None:  # no handler or leader: the supervisors hear once about all such units
                    fallback.setdefault((dl.contact.key, dl.channel), Delivery(dl.contact, dl.channel))
            if len(own) < len(deliveries):
                carried = sum(c.carried for c in items)
                unrouted.append(UnitBacklog(unit, len(items) - carried, carried, sum(c.overdue for c in items)))
            units.append({"unit": unit, "cases": len(items), "recipients": len(own),
                          "to_supervisors": len(own) < len(deliveries)})
            if not own:
                continue
            r = render_reminder(action, unit, items, calendar, now)
            attachments = _reminder_files(config, r, f"month-end-{stamp}-{safe_filename(unit)}.xlsx",
                                          f"月底清零-{safe_filename(unit)}-{stamp}.xlsx")
            sms = {"unit": unit, "count": str(len(items)), "overdue": str(sum(c.overdue for c in items)),
                   "last_day": last_day}
            payload = {"rendered": _rendered(r.subject, r.text, r.markdown, None, attachments, sms), "urgent": False,
                       "report": {"kind": "month_end", "period": action.period, "unit": unit, "cases": len(items)}}
            messages += [(dl, _key("month_end", action.period, dl.contact.key), payload) for dl in own]
        if unrouted:
            path = config.reports_path / f"month-end-{stamp}-unrouted.xlsx"
            r = write_unrouted_reminder(action, unrouted, calendar, now, conn, query, path)
            attachments = [_attachment(path, f"月底清零-未配置联系人单位-{stamp}.xlsx", XLSX_MIME)]
            sms = {"unit": f"{len(unrouted)}个单位", "count": str(sum(u.total for u in unrouted)),
                   "overdue": str(sum(u.overdue for u in unrouted)), "last_day": last_day}
            note = "以下单位未配置承办人/分管领导联系人，转督办人员"
            payload = {"rendered": _rendered(r.subject, r.text, r.markdown, None, attachments, sms),
                       "urgent": False, "note": note,
                       "report": {"kind": "month_end", "period": action.period,
                                  "units": sorted(u.unit for u in unrouted)}}
            messages += [(dl, _key("month_end", action.period, "unrouted", dl.contact.key), payload)
                         for dl in fallback.values()]
    summary: dict[str, Any] = {"kind": "month_end", "period": action.period, "now": to_local(now).isoformat(),
                               "units": units, "cases": sum(u["cases"] for u in units)}
    queued = _commit(store, "month_end", action.period, now, summary, messages)
    if queued is None:
        return None
    log.info("month_end_reminders_queued", period=action.period, units=len(units), messages=queued)
    return {**summary, "outbox_rows": queued}


def _reminder_files(config: Config, r: RenderedReminder, name: str, filename: str) -> list[dict[str, str]]:
    if r.xlsx is None:
        return []
    path = config.reports_path / name
    write_atomic(path, r.xlsx)
    return [_attachment(path, filename, XLSX_MIME)]


def _carry_over(store: Store, config: Config, action: MonthEndAction, now: datetime) -> dict[str, Any] | None:
    stamp = action.period
    out = config.reports_path
    html_path, xlsx_path = out / f"carry-over-{stamp}.html", out / f"carry-over-{stamp}.xlsx"
    with store.engine.connect() as conn:  # the files are written from streamed rows (bounded memory)
        report = carry_over(conn, action.year, action.month, now)
        message = write_carry_over(report, html_path, xlsx_path,
                                   hint=f"完整清单见附件：结存通报-{stamp}.xlsx（及 .html）。",
                                   email_rows=config.reports.email_list_rows)
    markdown, html, text = message.markdown, message.html, message.text
    attachments = [_attachment(xlsx_path, f"结存通报-{stamp}.xlsx", XLSX_MIME),
                   _attachment(html_path, f"结存通报-{stamp}.html", HTML_MIME)]
    rendered = _rendered(carry_over_title(report), text, markdown, html, attachments,
                         {"month": f"{action.month}月", "count": str(report.total),
                          "units": str(len(report.units))})
    summary: dict[str, Any] = {"kind": "carry_over", "period": stamp, "now": to_local(now).isoformat(),
                               "cases": report.total, "units": len(report.units),
                               "files": [str(html_path), str(xlsx_path)], "as_of": local_text(now)}
    deliveries = supervisor_deliveries(_directory(store, config))
    messages = [(dl, _key("carry_over", stamp, dl.contact.key), {"rendered": rendered, "urgent": False,
                                                                  "report": summary}) for dl in deliveries]
    queued = _commit(store, "carry_over", stamp, now, summary, messages)
    if queued is None:
        return None
    log.info("carry_over_queued", period=stamp, cases=report.total, messages=queued)
    return {**summary, "recipients": len(deliveries), "outbox_rows": queued}


# --- the registry -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportJob:
    """A scheduled report: ``run(store, rules, calendar, config, now)`` queues what is due at ``now`` (aware)
    and returns one summary per report queued (none when nothing was due or another instance did it)."""

    name: str
    kinds: tuple[str, ...]  # the outbox kinds it queues (daemon.glossary.REPORT_KINDS)
    run: Callable[[Store, RuleSet, WorkCalendar, Config, datetime], list[dict[str, Any]]]
    #: the one-shot command that runs the same job (``hotline-sla <command> --now … --json``, its summaries
    #: under ``queued``): the service runs a big report there, in a child process whose memory goes back to
    #: the system when it ends (daemon/runtime/report_process.py); None: the service runs it in-process
    command: str | None = None
    #: whether the job has work at ``now`` (one indexed SELECT per action): the service starts a child
    #: process only then
    pending: Callable[[Store, RuleSet, WorkCalendar, datetime], bool] | None = None


def _digest_reports(
    store: Store, rules: RuleSet, calendar: WorkCalendar, config: Config, now: datetime
) -> list[dict[str, Any]]:
    summary = run_digest_job(store, rules, calendar, config, now)
    return [summary] if summary else []


def month_end_pending(store: Store, rules: RuleSet, calendar: WorkCalendar, now: datetime) -> bool:
    """Whether :func:`run_month_end_job` has a reminder round or carry-over report to queue at ``now``."""
    return any(not is_done(store, a.kind, a.period) for a in due_actions(calendar, rules.month_end, now))


REPORT_JOBS: tuple[ReportJob, ...] = (
    ReportJob("digest", ("digest",), _digest_reports),
    # a million open cases: run in a child process by the service (the `month-end` command)
    ReportJob("month_end", ("month_end", "carry_over"), run_month_end_job, command="month-end",
              pending=month_end_pending),
)


def run_report_jobs(
    store: Store, rules: RuleSet, calendar: WorkCalendar, config: Config, now: datetime
) -> list[dict[str, Any]]:
    """Every job of :data:`REPORT_JOBS` in turn (cheap when nothing is due); their summaries."""
    done: list[dict[str, Any]] = []
    for job in REPORT_JOBS:
        done.extend(job.run(store, rules, calendar, config, now))
    return done
