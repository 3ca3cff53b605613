"""``hotline-sla …`` (also ``python -m daemon``).

Each command group lives in its own module under :mod:`daemon.commands` and registers itself with
``register(subparsers)``; the list below is explicit so start-up imports only what exists.

Exit codes: 0 success, 1 the command ran and found a problem, 2 bad usage or bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from daemon import __version__
from daemon.context import AppContext
from daemon.errors import ConfigError, UsageError

#: every top-level command: (name, module that registers it, one-line help, configures structlog logging).
#: ``--help`` lists this table without importing any command module; a command imports its own module only,
#: so ``deadline`` never pays for SQLAlchemy, the channels or the report writers. The help text here must be
#: the module's own (tests/test_startup.py checks both). Commands with logs=False never import structlog
#: (checked there too), so they skip configuring it.
COMMANDS: tuple[tuple[str, str, str, bool], ...] = (
    ("deadline", "daemon.commands.deadline", "compute a case's deadline (计算办理时限)", False),
    ("calendar", "daemon.commands.calendar_cmd", "holiday calendar coverage (节假日日历)", False),
    ("rules", "daemon.commands.rules_cmd", "SLA rules (办理时限规则)", False),
    ("config", "daemon.commands.config_cmd", "configuration (配置)", True),
    ("score", "daemon.commands.score", "score units from a bulletin table (按评分标准计算总分)", True),
    ("db", "daemon.commands.store_cmds", "database schema (数据库)", True),
    ("tick", "daemon.commands.store_cmds", "evaluate the cases that are due and queue their alerts (一次检查)", True),
    ("cases", "daemon.commands.store_cmds", "open cases (工单)", True),
    ("outbox", "daemon.commands.store_cmds", "messages queued for delivery (待发送消息)", True),
    ("import", "daemon.commands.import_cmd", "import a CSV/XLSX export of cases (导入工单)", True),
    ("sync", "daemon.commands.import_cmd",
     "run every configured source once (同步); exit 1 if one failed or rows were rejected", True),
    ("contacts", "daemon.commands.import_cmd", "unit contacts and supervisors (联系人)", True),
    ("dispatch", "daemon.commands.dispatch_cmd", "send the queued messages that are due (发送待发消息)", True),
    ("notify", "daemon.commands.dispatch_cmd", "notification channels (通知渠道)", True),
    ("digest", "daemon.commands.report_cmds", "the daily overdue digest for supervisors (每日超期通报)", True),
    ("month-end", "daemon.commands.report_cmds",
     "month-end zero-backlog reminders and carry-over report (月底清零/结存)", True),
    ("report", "daemon.commands.report_cmds", "periodic reports (报表)", True),
    ("run", "daemon.commands.run_cmd", "run the daemon: sync, tick, dispatch and reports on schedule (守护进程)", True),
    ("status", "daemon.commands.status_cmd",
     "the service's state: sync, tick, outbox, calendar, leader (运行状态)", True),
    ("init", "daemon.commands.init_cmd",
     "write a production config, the rules and the holiday folder (初始化配置)", True),
)
COMMAND_MODULES = tuple(dict.fromkeys(module for _, module, _, _ in COMMANDS))


def _command_token(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (skipping the global options), or None."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--config":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


#: one example per command, shown at the end of its ``--help``
EXAMPLES = {
    "deadline": 'hotline-sla deadline --rule municipal_complaint --received "2024-09-27 16:30" --json',
    "calendar": "hotline-sla calendar status",
    "calendar status": "hotline-sla calendar status --json",
    "calendar show": "hotline-sla calendar show 2026",
    "calendar import-notice": "hotline-sla calendar import-notice notice-2027.txt --year 2027",
    "rules": "hotline-sla rules check",
    "rules check": "hotline-sla rules check --json",
    "rules test": "hotline-sla rules test",
    "config": "hotline-sla --config /etc/hotline-sla/config.yaml config check",
    "config check": "hotline-sla config check --config /etc/hotline-sla/config.yaml --json",
    "score": "hotline-sla score 2026-04-bulletin.xlsx --json",
    "db": "hotline-sla db upgrade",
    "db upgrade": "hotline-sla --config /etc/hotline-sla/config.yaml db upgrade",
    "tick": 'hotline-sla tick --now "2026-11-20 09:00" --json',
    "cases": "hotline-sla cases list --overdue",
    "cases list": "hotline-sla cases list --unit 兴隆台区住建局 --overdue",
    "cases explain": "hotline-sla cases explain 2611100029",
    "outbox": "hotline-sla outbox list --status pending",
    "outbox list": "hotline-sla outbox list --status failed --json",
    "import": "hotline-sla import export-2026-11-20.csv --source inbox --json",
    "sync": 'hotline-sla sync --now "2026-11-20 09:00"',
    "contacts": "hotline-sla contacts import contacts.xlsx",
    "contacts import": "hotline-sla contacts import contacts.xlsx --json",
    "dispatch": "hotline-sla dispatch --limit 100 --json",
    "notify": "hotline-sla notify test wecom 13800001234",
    "notify test": "hotline-sla notify test sms 13800001234 --json",
    "digest": "hotline-sla digest --date 2026-11-20 --format xlsx --output digest.xlsx",
    "month-end": 'hotline-sla month-end --now "2026-11-28 09:00" --json',
    "report": "hotline-sla report month 2026-10 --format html --output 2026-10.html",
    "report month": "hotline-sla report month 2026-10 --format xlsx --output 2026-10.xlsx",
    "run": "hotline-sla --config /etc/hotline-sla/config.yaml run --log-format console",
    "status": "hotline-sla status --json",
    "init": "hotline-sla init --config-dir /etc/hotline-sla --state-dir /var/lib/hotline-sla",
}
CONFIG_HELP = "config file (else $HOTLINE_SLA_CONFIG, else ./config.yaml, else /etc/hotline-sla/config.yaml)"


def _finish_subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give every sub-command a description (its one-line help), an example, and ``--config`` after it."""
    for action in parser._actions:  # argparse offers no public walk of its sub-parsers
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            full = (*path, name)
            if sub.description is None:
                sub.description = helps.get(name)
            example = EXAMPLES.get(" ".join(full))
            if sub.epilog is None and example:
                sub.epilog = f"example: {example}"
            if not any("--config" in a.option_strings for a in sub._actions):
                sub.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=CONFIG_HELP)
            _finish_subcommands(sub, full)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline-sla",
        description="Deadline and SLA monitoring for 12345 hotline cases (12345热线工单时限监控).",
    )
    parser.add_argument("--version", action="version", version=f"hotline-sla {__version__}")
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)  # also accepted after the command
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    token = _command_token(argv) if argv is not None else None
    chosen = next((module for name, module, _, _ in COMMANDS if name == token), None)
    if argv is None:  # the whole tree (documentation, tests of every sub-command's help)
        for module in COMMAND_MODULES:
            importlib.import_module(module).register(sub)
    else:
        registered: set[str] = set()
        if chosen is not None:
            importlib.import_module(chosen).register(sub)
            registered = set(sub.choices)
        for name, _, help_text, _ in COMMANDS:  # listed in --help and in "invalid choice" errors
            if name not in registered:
                sub.add_parser(name, help=help_text)
    _finish_subcommands(parser)
    return parser


def _logs_wanted(command: str | None) -> bool:
    return next((logs for name, _, _, logs in COMMANDS if name == command), True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if _logs_wanted(args.command):
        from daemon.runtime import logs

        logs.configure()
    args.ctx = AppContext(args.config)
    try:
        code: int = args.func(args)
    except (UsageError, ConfigError) as exc:
        print(f"hotline-sla: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `hotline-sla deadline … | head`
        return 0
    except Exception as exc:
        reason = _database_error(exc)
        if reason is None:
            raise
        print(f"hotline-sla: error: database: {reason}", file=sys.stderr)
        return 1
    finally:
        args.ctx.close()
    return code


def _database_error(exc: BaseException) -> str | None:
    """One line for a database that is unreachable, read-only or full (no SQL, no parameters), else None.

    Checked by class name so that light commands never import SQLAlchemy for it.
    """
    if type(exc).__module__ != "sqlalchemy.exc" or type(exc).__name__ not in {"OperationalError", "InterfaceError"}:
        return None
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]
    return f"{first} (the failed transaction was rolled back; committed work is intact)"
