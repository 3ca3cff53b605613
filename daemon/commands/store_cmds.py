"""Store-facing commands: ``db upgrade``, ``tick``, ``cases list|explain``, ``outbox list``."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from sqlalchemy import select

from daemon.commands.args import add_now, now_arg
from daemon.core.timeutil import iso_local, parse_time, to_local
from daemon.errors import UsageError
from daemon.output import print_json
from daemon.storage.models import cases, outbox
from daemon.storage.store import FINISHED


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema (数据库)")
    dsub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    up = dsub.add_parser("upgrade", help="apply the migrations (Alembic) up to the current schema")
    up.set_defaults(func=run_db_upgrade)

    t = sub.add_parser("tick", help="evaluate the cases that are due and queue their alerts (一次检查)")
    add_now(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=run_tick_cmd)

    c = sub.add_parser("cases", help="open cases (工单)")
    csub = c.add_subparsers(dest="cases_command", metavar="SUBCOMMAND", required=True)
    ls = csub.add_parser("list", help="open cases, soonest deadline first")
    ls.add_argument("--unit", help="only this handling unit (承办单位)")
    ls.add_argument("--overdue", action="store_true", help="only overdue cases (超期)")
    ls.add_argument("--limit", type=int, default=200)
    add_now(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_cases_list)
    ex = csub.add_parser("explain", help="why a case has its deadline, and what was sent about it")
    ex.add_argument("case", metavar="CASE", help="case number (工单编号)")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(func=run_cases_explain)
    register_mutes(csub)

    o = sub.add_parser("outbox", help="messages queued for delivery (待发送消息)")
    osub = o.add_subparsers(dest="outbox_command", metavar="SUBCOMMAND", required=True)
    ol = osub.add_parser("list", help="queued and recent messages")
    ol.add_argument("--status", choices=["pending", "sending", "sent", "failed", "dead", "superseded"])
    ol.add_argument("--limit", type=int, default=100)
    ol.add_argument("--json", action="store_true")
    ol.set_defaults(func=run_outbox_list)


def run_db_upgrade(args: argparse.Namespace) -> int:
    store = args.ctx.store  # migrates on open
    print(f"database {store.safe_url} at revision {store.revision()}")
    return 0


def run_tick_cmd(args: argparse.Namespace) -> int:
    from daemon.pipeline.recompute import recompute_if_changed
    from daemon.pipeline.tick import run_tick

    now = now_arg(args)
    ctx = args.ctx
    recompute = recompute_if_changed(ctx.store, ctx.rules, now, months=ctx.config.reports.recompute_months)
    result = run_tick(ctx.store, ctx.rules, ctx.calendar, ctx.config, now)
    doc: dict[str, Any] = {
        "now": iso_local(now),
        "evaluated": result.evaluated,
        "failed": result.failed,
        "alerts": [{k: a[k] for k in ("case", "kind", "level", "unit", "due_at", "folded")}
                   for a in result.alerts],
        "outbox_rows": result.outbox_rows,
        "deadlines_moved": len(recompute.moved),
        "finished_deadlines_moved": recompute.finished_moved,
        "corrections_queued": recompute.corrections,
    }
    if args.json:
        print_json(doc)
    else:
        print(f"tick at {doc['now']}: evaluated {result.evaluated}, new alerts {len(result.alerts)}, "
              f"queued messages {result.outbox_rows}" + (f", failed {result.failed}" if result.failed else ""))
        for a in result.alerts:
            print(f"  {a['kind']:<14} L{a['level']}  {a['case']:<16} {a['unit']}  due {a['due_at']}"
                  + ("  (recorded, not sent: a later step states it)" if a["folded"] else ""))
    return 1 if result.failed else 0


def _case_json(row: Any, now: datetime) -> dict[str, Any]:
    from daemon.reports.case_views import suspensions_doc

    finished = row.status in FINISHED or row.fed_back_at is not None or row.closed_at is not None
    return {
        "case": row.number, "unit": row.unit, "status": row.status, "rule": row.rule_id,
        "accepted_at": iso_local(row.accepted_at or row.received_at),
        "received_at": iso_local(row.received_at), "due_at": iso_local(row.due_at),
        "platform_due_at": iso_local(row.platform_due_at) if row.platform_due_at else None,
        "priority": row.priority or "normal",
        "deadline_source": row.deadline_source,
        # 签收时限 and 先行联系 (the rule's sign_within / contact_within; contact only where the export has it)
        "sign_by": iso_local(row.sign_due_at) if row.sign_due_at else None,
        "signed_at": iso_local(row.signed_at) if row.signed_at else None,
        "contact_by": iso_local(row.contact_due_at) if row.contact_due_at else None,
        "contacted_at": iso_local(row.contacted_at) if row.contacted_at else None,
        "provisional": bool(row.provisional), "overdue": (not finished) and row.due_at <= now,
        "next_check_at": iso_local(row.next_check_at) if row.next_check_at else None, "summary": row.summary,
        # every suspension (挂起) of this cycle, oldest first; the deadline moved by each resumed one
        "suspensions": suspensions_doc(row),
    }


def run_cases_list(args: argparse.Namespace) -> int:
    now = now_arg(args)
    stmt = select(cases).where(cases.c.status.not_in(list(FINISHED)), cases.c.fed_back_at.is_(None),
                               cases.c.closed_at.is_(None))
    if args.unit:
        stmt = stmt.where(cases.c.unit == args.unit)
    if args.overdue:
        stmt = stmt.where(cases.c.due_at <= now)
    stmt = stmt.order_by(cases.c.due_at, cases.c.number).limit(args.limit)
    with args.ctx.store.engine.connect() as conn:
        rows = [_case_json(r, now) for r in conn.execute(stmt)]
    if args.json:
        print_json({"now": iso_local(now), "cases": rows})
        return 0
    for r in rows:
        flag = "超期" if r["overdue"] else "    "
        prov = " 暂定" if r["provisional"] else ""
        print(f"{flag} {r['case']:<16} due {r['due_at']}{prov}  {r['rule']:<22} {r['unit']}  {r['summary'] or ''}")
    print(f"{len(rows)} case(s)")
    return 0


def run_cases_explain(args: argparse.Namespace) -> int:
    from daemon.reports.case_views import explain_case

    ctx = args.ctx
    with ctx.store.engine.connect() as conn:
        doc = explain_case(conn, ctx.rules, ctx.calendar, args.case)
    if doc is None:
        raise UsageError(f"no case {args.case!r} in {ctx.store.safe_url}; see `hotline-sla cases list`")
    if args.json:
        print_json(doc)
    else:
        print(format_explain(doc))
    return 0


def _masked(recipient: dict[str, Any], mask: Any) -> str:
    name = recipient.get("name", "?")
    return f"{name}({mask(recipient['mobile'])})" if recipient.get("mobile") else str(name)


def format_explain(doc: dict[str, Any]) -> str:
    lines = [
        f"工单 {doc['case']}  {doc['unit']}  状态 {doc['status']}"
        + ("  【紧急】" if doc.get("priority") == "urgent" else "") + f"  {doc['summary'] or ''}",
        f"规则 rule: {doc['rule']['name']} ({doc['rule']['id']}, {doc['rule']['limit']})",
        f"受理 accepted: {doc['accepted_at']}   交办 received (the unit's clock): {doc['received_at']}",
        f"超期起点 due: {doc['due_at']} ({doc['deadline_source']})"
        + ("  【暂定】" if doc["provisional"] else "") + f"   deadline version {doc['deadline_version']}",
    ]
    if doc["platform_due_at"]:
        lines.append(f"时限 ours {doc['computed_due_at']}, platform's {doc['platform_due_at']}"
                     + ("  【时限不一致】" if doc["deadlines_differ"] else "") + f": {doc['deadline_reason']}")
    if doc["extended_due_at"]:
        lines.append(f"延期 extension approved until {doc['extended_due_at']}")
    for pause in doc.get("suspensions") or []:  # oldest first
        lines.append(f"挂起 suspended at {pause['suspended_at']}" + (
            f", resumed at {pause['resumed_at']}: the deadline moved by the time suspended, in the rule's unit"
            if pause["resumed_at"] else "; no warnings or breaches until it resumes"))
    if doc["return_window_ends"]:
        lines.append(f"退件时限 return window ends: {doc['return_window_ends']}")
    lines.extend(format_windows(doc))
    if doc.get("mute"):
        lines.append(format_mute(doc["mute"]))
    if doc["days"]:
        lines.append("计时 counted days (the day of receipt is not counted):")
        n = 0
        for d in doc["days"]:
            if d["counted"]:
                n += 1
            mark = f"第{n}天" if d["counted"] else "不计"
            label = {"makeup": "调休上班", "holiday": "法定假日", "weekend": "周末", "workday": "工作日"}[d["kind"]]
            extra = f" {d['name']}" if d["name"] and d["kind"] != "weekend" else ""
            lines.append(f"  {d['date']} {mark:<5} {label}{extra}{' 暂定' if d['provisional'] else ''}")
    lines.extend(format_assignments(doc.get("assignments") or []))
    for h in doc["history"]:
        lines.append(f"变更 {h['at']} {h['field']}: {h['old']} → {h['new']} ({h['reason']})")
    for a in doc["alerts"]:
        lines.append(f"提醒 alert {a['kind']} L{a['level']} (v{a['deadline_version']}) at {a['created_at']}")
    for m in doc["messages"]:
        lines.append(f"  → {m['channel']} {m['to']}: {m['status']}, {m['attempts']} attempt(s)"
                     + (f", {m['last_error']}" if m["last_error"] else ""))
    return "\n".join(lines)


def format_windows(doc: dict[str, Any]) -> list[str]:
    """The sign (签收时限) and first-contact (先行联系) windows, and where the case stands on each."""
    lines = []
    sign, contact = doc.get("sign") or {}, doc.get("contact") or {}
    if sign.get("by"):
        lines.append(f"签收时限 sign by: {sign['by']} ({sign['window']}): "
                     + (f"signed at {sign['signed_at']}" if sign["signed_at"] else "not signed"))
    if contact.get("by"):
        lines.append(f"先行联系 contact by: {contact['by']} ({contact['window']}): "
                     + (f"contacted at {contact['contacted_at']}" if contact["contacted_at"] else "not contacted"))
    elif contact.get("window"):
        lines.append(f"先行联系 contact within {contact['window']}: not observed (the export has no 先行联系时间 "
                     "column), so no first_contact alert")
    return lines


def format_assignments(assignments: list[dict[str, Any]]) -> list[str]:
    """Each unit's own assignment (退件 → 重新派单), when the case had more than one."""
    if len(assignments) < 2:
        return []
    return [
        f"派单 {a['unit']}: 交办 {a['received_at']}, due {a['due_at']}, {a['outcome']}"
        + (f" (退件申请 {a['return_requested_at']}, window ends {a['return_window_ends']})"
           if a["return_requested_at"] else "")
        + ("  current" if a["current"] else f", ended {a['ended_at']}")
        + ("" if a["scored"] else "  not scored (returned in time)")
        for a in assignments
    ]


def run_outbox_list(args: argparse.Namespace) -> int:
    from daemon.pipeline.queue import full_payload, select_rows
    from notifiers.base import mask_mobile

    stmt = select_rows().order_by(outbox.c.id.desc()).limit(args.limit)
    if args.status:
        stmt = stmt.where(outbox.c.status == args.status)
    with args.ctx.store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    docs = [{
        "id": r.id, "kind": r.kind, "channel": r.channel, "to": _masked(r.recipient, mask_mobile),
        "case": (full_payload(r).get("case") or {}).get("number"), "status": r.status, "attempts": r.attempts,
        "not_before": iso_local(r.not_before), "last_error": r.last_error,
    } for r in rows]
    if args.json:
        print_json({"messages": docs})
        return 0
    for d in docs:
        print(f"#{d['id']:<6} {d['status']:<8} {d['channel']:<10} {d['kind']:<14} {d['case'] or '':<16} "
              f"{d['to']}  not before {to_local(parse_time(d['not_before'])).strftime('%m-%d %H:%M')}")
    print(f"{len(docs)} message(s)")
    return 0


# --- mutes (暂停提醒) -------------------------------------------------------------------------------------


def register_mutes(csub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = csub.add_parser(
        "mute", help="pause a case's warnings and breaches until TIME, with a reason (暂停提醒)",
        epilog='example: hotline-sla cases mute 2611100019 --until "2026-11-27 18:00" --reason 复核中 --by 张三')
    m.add_argument("case", metavar="CASE", help="case number (工单编号)")
    m.add_argument("--until", metavar="TIME", required=True, help="the mute's end (alerts resume then)")
    m.add_argument("--reason", metavar="TEXT", required=True, help="why, recorded in the history (e.g. 复核中)")
    m.add_argument("--by", metavar="NAME", help="who mutes (default: the operating-system user)")
    add_now(m)
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=run_cases_mute)
    u = csub.add_parser("unmute", help="end a case's mute now: its current state is alerted at the next tick",
                        epilog="example: hotline-sla cases unmute 2611100019")
    u.add_argument("case", metavar="CASE", help="case number (工单编号)")
    u.add_argument("--by", metavar="NAME", help="who unmutes (default: the operating-system user)")
    add_now(u)
    u.add_argument("--json", action="store_true")
    u.set_defaults(func=run_cases_unmute)


def _operator(args: argparse.Namespace) -> str:
    import getpass

    if args.by:
        return str(args.by).strip()[:100] or "?"
    try:
        return getpass.getuser()[:100]
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return "?"


def _time_arg(option: str, value: str) -> datetime:
    from daemon.core.timeutil import TimeFormatError

    try:
        return parse_time(value)
    except TimeFormatError as exc:
        raise UsageError(f"{option}: {exc}") from None


def run_cases_mute(args: argparse.Namespace) -> int:
    from daemon.pipeline.mutes import mute_case

    now = now_arg(args)
    until = _time_arg("--until", args.until)
    change = mute_case(args.ctx.store, args.case, until=until, reason=args.reason, by=_operator(args), now=now)
    doc = {"case": change.case, "unit": change.unit, "muted_until": iso_local(until), "reason": change.reason,
           "by": change.by, "replaced_until": iso_local(change.previous_until) if change.previous_until else None}
    if args.json:
        print_json(doc)
    else:
        print(f"muted {change.case} ({change.unit}) until {doc['muted_until']}: {change.reason}")
    return 0


def run_cases_unmute(args: argparse.Namespace) -> int:
    from daemon.pipeline.mutes import unmute_case

    now = now_arg(args)
    change = unmute_case(args.ctx.store, args.case, by=_operator(args), now=now)
    doc = {"case": change.case, "unit": change.unit, "was_muted_until": iso_local(change.previous_until)
           if change.previous_until else None, "by": change.by}
    if args.json:
        print_json(doc)
    else:
        print(f"unmuted {change.case} ({change.unit}); alerts resume at the next tick")
    return 0


def format_mute(mute: dict[str, Any]) -> str:
    return f"暂停提醒 muted until {mute['until']} by {mute['by']}: {mute['reason']}"
