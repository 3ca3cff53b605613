"""``hotline-sla deadline --rule ID --received TIME [--json]``: compute one deadline, or many from stdin."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from daemon.core.rules import Deadline, Rule
from daemon.core.timeutil import TimeFormatError, iso_local, parse_time
from daemon.output import print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "deadline",
        help="compute a case's deadline (计算办理时限)",
        description="Compute the first overdue instant of a case received at TIME under rule ID. "
        "With --received -, read one time per line from stdin and write one JSON object per line.",
    )
    p.add_argument("--rule", required=True, metavar="ID", help="rule id, e.g. municipal_complaint")
    p.add_argument(
        "--received",
        required=True,
        metavar="TIME",
        help="'YYYY-MM-DD HH:MM[:SS]' (Asia/Shanghai) or ISO 8601 with offset; '-' reads stdin",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def deadline_json(d: Deadline) -> dict[str, Any]:
    return {
        "rule": d.rule_id,
        "received_at": iso_local(d.received_at),
        "due_at": iso_local(d.due_at),
        "provisional": d.provisional,
        "provisional_days": [day.isoformat() for day in d.provisional_days],
        "warnings": [iso_local(w.at) for w in d.warnings],
        "sign_by": iso_local(d.sign_by) if d.sign_by else None,  # 签收时限 (the rule's sign_within)
        "contact_by": iso_local(d.contact_by) if d.contact_by else None,  # 先行联系 (contact_within)
    }


def human(rule: Rule, d: Deadline) -> str:
    due_local = iso_local(d.due_at)
    lines = [
        f"{rule.name} ({rule.id}, {rule.describe_limit()}): 受理 received {iso_local(d.received_at)}",
        f"  超期起点 first overdue instant: {due_local}" + ("  【暂定 PROVISIONAL】" if d.provisional else ""),
    ]
    if d.warnings:
        lines.append("  预警 warnings: " + ", ".join(f"L{w.level} {iso_local(w.at)} ({w.lead})" for w in d.warnings))
    for label, at, window in (("签收时限 sign by", d.sign_by, rule.sign_window),
                              ("先行联系 contact by", d.contact_by, rule.contact_window)):
        if at is not None and window is not None:
            lines.append(f"  {label}: {iso_local(at)} ({window.describe_limit()})")
    if d.provisional:
        years = sorted({day.year for day in d.provisional_days})
        lines.append(
            f"  暂定: {', '.join(map(str, years))}年节假日安排尚未公布，按法定节假日推算，公布后将重新计算。"
            f"\n  Provisional: the {', '.join(map(str, years))} holiday arrangement is not published; "
            "computed from the statutory holidays, recomputed when it is."
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    rule = args.ctx.rules.get(args.rule)  # UsageError (exit 2) names the valid rules
    if args.received == "-":
        return _batch(rule)
    try:
        received = parse_time(args.received)
    except TimeFormatError as exc:
        from daemon.errors import UsageError

        raise UsageError(f"--received: {exc}") from None
    d = rule.deadline(received)
    if args.json:
        print_json(deadline_json(d))
    else:
        print(human(rule, d))
    return 0


def _batch(rule: Rule) -> int:
    """One JSON object per input line; a bad line yields ``{"line": n, "input": …, "error": …}``.

    The output of a line is ``deadline_json``'s; everything after ``received_at`` repeats across lines
    received on the same day, so it is serialised once per distinct (due, warnings, provisional days).
    """
    out = sys.stdout
    dumps = json.dumps
    compute = rule.deadline
    head = '{"rule": ' + dumps(rule.id, ensure_ascii=False) + ', "received_at": "'
    tails: dict[tuple[Any, ...], str] = {}
    failed = 0
    buffer: list[str] = []
    for n, raw in enumerate(sys.stdin, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            d = compute(parse_time(text))
        except (TimeFormatError, ValueError) as exc:
            failed += 1
            buffer.append(dumps({"line": n, "input": text, "error": str(exc)}, ensure_ascii=False) + "\n")
            continue
        key = (d.due_at, d.warnings, d.provisional_days, d.sign_by, d.contact_by)
        tail = tails.get(key)
        if tail is None:
            if len(tails) > 100_000:
                tails.clear()
            doc = deadline_json(d)
            del doc["rule"], doc["received_at"]
            tail = tails[key] = '", ' + dumps(doc, ensure_ascii=False)[1:] + "\n"
        buffer.append(head + iso_local(d.received_at) + tail)
        if len(buffer) >= 4096:
            out.write("".join(buffer))
            buffer.clear()
    out.write("".join(buffer))
    return 1 if failed else 0
