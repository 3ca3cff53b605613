"""``hotline-sla import FILE``, ``hotline-sla sync`` and ``hotline-sla contacts import FILE``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert

from daemon.commands.args import add_now, now_arg
from daemon.output import print_json
from daemon.storage.models import contacts


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import", help="import a CSV/XLSX export of cases (导入工单)")
    p.add_argument("file", metavar="FILE", type=Path)
    p.add_argument("--source", help="use the column/value mapping, header_row and max_field_chars of this "
                   "configured source")
    p.add_argument("--header-row", type=_positive, metavar="N",
                   help="the row with the column names (default: the source's header_row, else found within the "
                   "first 20 rows)")
    p.add_argument("--max-field-chars", type=_positive, metavar="N",
                   help="a CSV field longer than N characters rejects its row (default: the source's "
                   "max_field_chars, else 131072)")
    add_now(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_import)

    s = sub.add_parser("sync", help="run every configured source once (同步); exit 1 if one failed or rows "
                       "were rejected")
    add_now(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_sync)

    c = sub.add_parser("contacts", help="unit contacts and supervisors (联系人)")
    csub = c.add_subparsers(dest="contacts_command", metavar="SUBCOMMAND", required=True)
    ci = csub.add_parser("import", help="replace the imported contacts with a CSV/XLSX file")
    ci.add_argument("file", metavar="FILE", type=Path)
    ci.add_argument("--json", action="store_true")
    ci.set_defaults(func=run_contacts_import)


def run_import(args: argparse.Namespace) -> int:
    from daemon.errors import UsageError
    from daemon.pipeline.sync import import_file, mapping_for
    from daemon.sources.csv_records import DEFAULT_MAX_FIELD_CHARS

    ctx = args.ctx
    src = None
    if args.source:
        src = next((s for s in ctx.config.sources if s.name == args.source), None)
        if src is None:
            raise UsageError(f"--source {args.source!r}: no such source; configured: "
                             f"{', '.join(s.name for s in ctx.config.sources) or 'none'}")
    header_row = args.header_row or (src.header_row if src else None)
    max_field_chars = args.max_field_chars or (src.max_field_chars if src else DEFAULT_MAX_FIELD_CHARS)
    report = import_file(ctx.store, ctx.rules, args.file, now=now_arg(args), mapping=mapping_for(src),
                         source_name=args.source or "import", progress=sys.stderr.isatty() and not args.json,
                         header_row=header_row, max_field_chars=max_field_chars)
    if args.json:
        print_json(report.as_json())
    else:
        print(f"{args.file}: inserted {report.inserted}, updated {report.updated}, unchanged {report.unchanged}, "
              f"rejected {len(report.rejected)}, warnings {len(report.warnings)}")
        print_rows(report.rejected, report.warnings)
    return exit_code(failed=False, rejected=report.rejected)


def exit_code(*, failed: bool, rejected: list[dict[str, Any]]) -> int:
    """import and sync alike: 1 when a source failed or rows were rejected (the good rows landed either
    way); warnings alone are 0."""
    return 1 if failed or rejected else 0


def print_rows(rejected: list[dict[str, Any]], warnings: list[dict[str, Any]]) -> None:
    """One line per rejected or warned row, by row number (and file, for an inbox): the same for import and
    sync."""
    for kind, key, items in (("rejected", "error", rejected), ("warning", "warning", warnings)):
        for r in items:
            where = f"{r['file']} row {r['row']}" if r.get("file") else f"row {r['row']}"
            print(f"  {where}: {r[key]}" if kind == "rejected" else f"  {where} warning: {r[key]}")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return value


def run_sync(args: argparse.Namespace) -> int:
    from daemon.pipeline.sync import sync_all

    ctx = args.ctx
    result = sync_all(ctx.store, ctx.rules, ctx.config, now_arg(args))
    if args.json:
        print_json({"sources": result.sources})
    else:
        for name, stats in result.sources.items():
            if stats.get("error"):
                print(f"{name}: FAILED {stats['error']}")
            else:
                shown = {k: (len(v) if isinstance(v, list) else v) for k, v in stats.items()}
                print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
                print_rows(stats.get("rejected") or [], stats.get("warnings") or [])
    rejected = [r for stats in result.sources.values() for r in stats.get("rejected") or []]
    return exit_code(failed=bool(result.failed), rejected=rejected)


def run_contacts_import(args: argparse.Namespace) -> int:
    from daemon.errors import UsageError
    from daemon.reports.groups import save_imported_groups
    from daemon.sources.contacts import unit_groups
    from daemon.sources.files import read_contacts_file

    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file (expected a .csv or .xlsx contacts list)")
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    results = list(read_contacts_file(args.file))
    groups, group_problems = unit_groups(results)
    for result in results:
        if result.contact is None:
            rejected.append({"row": result.row, "error": result.error})
            continue
        c = result.contact
        rows.append({"unit": c.unit, "name": c.name, "role": str(c.role), "mobile": c.mobile,
                     "wecom_userid": c.wecom_id, "email": c.email, "channels": [], "origin": "import"})
    with args.ctx.store.engine.begin() as conn:
        conn.execute(delete(contacts).where(contacts.c.origin == "import"))
        if rows:
            conn.execute(insert(contacts), rows)
        save_imported_groups(conn, groups)
    doc = {"imported": len(rows), "rejected": rejected, "groups": groups, "group_problems": group_problems}
    if args.json:
        print_json(doc)
    else:
        print(f"{args.file}: imported {len(rows)} contact(s), rejected {len(rejected)}")
        for r in rejected:
            print(f"  row {r['row']}: {r['error']}")
        for problem in group_problems:
            print(f"  {problem}")
    return 1 if rejected or group_problems else 0
