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


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline-sla",
        description="Deadline and SLA monitoring for 12345 hotline cases (12345热线工单时限监控).",
    )
    parser.add_argument("--version", action="version", version=f"hotline-sla {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (else $HOTLINE_SLA_CONFIG, else ./config.yaml, else /etc/hotline-sla/config.yaml)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    light = LIGHT_COMMANDS.get(_command_token(argv) or "") if argv is not None else None
    for name in (light,) if light else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
