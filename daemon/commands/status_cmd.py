"""``hotline-sla status [--json] [--now TIME]``: is the service doing its job, and if not, what is wrong.

Reads the database only (works while ``run`` is running, on any host that reaches the database): the last
sync of each source, the last tick, the outbox backlog and its oldest row, dead letters, the calendar's
coverage and who leads. Exit 1 when it finds a problem (listed under ``problems``), 0 otherwise; a
provisional next year is a warning (exit 0) until open cases' deadlines within 14 days rely on it.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from daemon.commands.args import add_now, now_arg
from daemon.config import Config
from daemon.core.calendar import DaySource, WorkCalendar, calendar_readiness
from daemon.core.timeutil import iso_local, to_local
from daemon.output import print_json
from daemon.reports.digest import provisional_relied_on
from daemon.runtime.health import LAST_TICK_KEY, stale_after
from daemon.runtime.leader import current_leader
from daemon.storage.models import outbox, settings, source_state
from daemon.storage.store import Store

OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "dead")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="the service's state: sync, tick, outbox, calendar, leader (运行状态)")
    add_now(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_status)


def _age(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else int((now - then).total_seconds())


def calendar_coverage(calendar: WorkCalendar, now: datetime, relied_on: int = 0) -> dict[str, Any]:
    """Which years are official, operator overrides or provisional, up to next year. A provisional year
    that matters now is a ``warning`` (exit 0); open cases whose provisional deadline falls within 14 days
    make it a ``problem`` (exit 1): :func:`daemon.core.calendar.calendar_readiness` decides both."""
    local = to_local(now)
    by_source: dict[str, list[int]] = {s.value: [] for s in DaySource}
    for year in range(calendar.first_year, min(calendar.last_year, local.year + 1) + 1):
        by_source[calendar.year_source(year).value].append(year)
    readiness = calendar_readiness(calendar, local.date(), relied_on)
    official = by_source[DaySource.OFFICIAL.value]
    return {
        "official": f"{official[0]}-{official[-1]}" if official else None,
        "override": by_source[DaySource.OVERRIDE.value],
        "provisional": by_source[DaySource.PROVISIONAL.value],
        "warning": f"{readiness.text_zh()} / {readiness.text_en()}" if readiness else None,
        "provisional_due_soon": relied_on,
        "problem": bool(readiness and readiness.problem),
    }


def collect_status(store: Store, config: Config, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    """The status document at ``now`` (aware). Problems are listed in ``problems``."""
    problems: list[str] = []
    with store.engine.connect() as conn:
        states = {r.name: r for r in conn.execute(select(source_state))}
        last_tick_raw = conn.execute(select(settings.c.value).where(settings.c.key == LAST_TICK_KEY)).scalar()
        by_status = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
        counts: dict[str, int] = {str(status): int(n) for status, n in by_status}
        oldest = conn.execute(
            select(func.min(outbox.c.created_at)).where(outbox.c.status.in_(["pending", "sending"]))
        ).scalar()
        holder = current_leader(conn)
        relied_on = provisional_relied_on(conn, now)
    if oldest is not None and not isinstance(oldest, datetime):  # SQLite: MIN() loses the column type
        oldest = datetime.fromisoformat(str(oldest))
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)

    sources = []
    configured = {s.name: s for s in config.sources}
    for name in [*configured, *sorted(set(states) - set(configured))]:
        st = states.get(name)
        entry = {
            "name": name,
            "enabled": configured[name].enabled if name in configured else None,
            "last_attempt_at": iso_local(st.last_attempt_at) if st and st.last_attempt_at else None,
            "last_ok_at": iso_local(st.last_ok_at) if st and st.last_ok_at else None,
            "last_error": st.last_error if st else None,
        }
        sources.append(entry)
        if entry["last_error"]:
            problems.append(f"source {name}: last sync failed: {entry['last_error']}")

    last_tick = datetime.fromisoformat(last_tick_raw) if last_tick_raw else None
    tick_age = _age(now, last_tick)
    if last_tick is None:
        problems.append("no tick has run yet")
    elif tick_age is not None and tick_age > stale_after(config).total_seconds():
        problems.append(f"last tick {tick_age} s ago: is `hotline-sla run` running (and leading)?")

    backlog = int(counts.get("pending", 0)) + int(counts.get("sending", 0))
    dead = int(counts.get("dead", 0))
    if dead:
        problems.append(f"{dead} dead letter(s): see `hotline-sla outbox list --status dead`")

    leader = None
    if holder is not None and holder.owner:
        leader = {"instance": holder.owner, "until": iso_local(holder.until) if holder.until else None,
                  "live": holder.live(now)}
    if leader is None or not leader["live"]:
        problems.append("no instance holds the leader lease: schedules (sync, tick, reports) are not running")

    cal = calendar_coverage(calendar, now, relied_on)
    if cal["problem"]:
        problems.append(cal["warning"])
    return {
        "now": iso_local(now),
        "database": store.safe_url,
        "sources": sources,
        "last_tick_at": iso_local(last_tick) if last_tick else None,
        "last_tick_age_seconds": tick_age,
        "outbox": {
            **{s: int(counts.get(s, 0)) for s in OUTBOX_STATUSES},
            "backlog": backlog,
            "oldest_unsent_at": iso_local(oldest) if oldest else None,
            "oldest_unsent_age_seconds": _age(now, oldest),
        },
        "dead_letters": dead,
        "failed": int(counts.get("failed", 0)),
        "calendar": cal,
        "leader": leader,
        "problems": problems,
    }


def run_status(args: argparse.Namespace) -> int:
    now = now_arg(args)
    ctx = args.ctx
    doc = collect_status(ctx.store, ctx.config, ctx.calendar, now)
    if args.json:
        print_json(doc)
    else:
        print(format_status(doc))
    return 1 if doc["problems"] else 0


def format_status(doc: dict[str, Any]) -> str:
    lines = [f"hotline-sla status at {doc['now']}  ({doc['database']})"]
    leader = doc["leader"]
    if leader:
        state = "live" if leader["live"] else "EXPIRED"
        lines.append(f"leader 主实例: {leader['instance']} until {leader['until']} ({state})")
    else:
        lines.append("leader 主实例: none")
    age = doc["last_tick_age_seconds"]
    ago = f" ({age} s ago)" if age is not None else ""
    lines.append(f"last tick 最近检查: {doc['last_tick_at'] or 'never'}{ago}")
    lines.append("sources 数据源:")
    for s in doc["sources"]:
        ok = s["last_ok_at"] or "never"
        err = f"  ERROR: {s['last_error']}" if s["last_error"] else ""
        lines.append(f"  {s['name']:<16} last ok {ok}{err}")
    ob = doc["outbox"]
    oldest = ""
    if ob["oldest_unsent_at"]:
        oldest = f", oldest since {ob['oldest_unsent_at']} ({ob['oldest_unsent_age_seconds']} s)"
    lines.append(f"outbox 待发送: {ob['backlog']} unsent{oldest}; sent {ob['sent']}, failed {ob['failed']}, "
                 f"dead letters 死信 {ob['dead']}")
    cal = doc["calendar"]
    lines.append(f"calendar 日历: official {cal['official']}, override {cal['override'] or '-'}, "
                 f"provisional {cal['provisional'] or '-'}")
    if cal["warning"]:
        lines.append(f"  warning: {cal['warning']}")
    for p in doc["problems"]:
        lines.append(f"problem 问题: {p}")
    if not doc["problems"]:
        lines.append("ok")
    return "\n".join(lines)
