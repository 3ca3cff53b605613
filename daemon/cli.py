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

COMMAND_MODULES = (
    "daemon.commands.deadline",
    "daemon.commands.calendar_cmd",
    "daemon.commands.rules_cmd",
    "daemon.commands.config_cmd",
    "daemon.commands.score",
    "daemon.commands.store_cmds",
    "daemon.commands.import_cmd",
    "daemon.commands.dispatch_cmd",
    "daemon.commands.report_cmds",
    "daemon.commands.run_cmd",
    "daemon.commands.status_cmd",
    "daemon.commands.init_cmd",
)

# Commands run in pipelines (``deadline --received -``) or by hand many times: their module is registered
# alone so start-up does not import the store, SQLAlchemy and every channel (≈0.3 s saved per call).
LIGHT_COMMANDS = {
    "deadline": "daemon.commands.deadline",
    "calendar": "daemon.commands.calendar_cmd",
    "rules": "daemon.commands.rules_cmd",
    "score": "daemon.commands.score",
}


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
    light = LIGHT_COMMANDS.get(_command_token(argv) or "") if argv is not None else None
    for name in (light,) if light else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _finish_subcommands(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
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
