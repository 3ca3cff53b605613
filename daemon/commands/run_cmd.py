"""``hotline-sla run``: the daemon (see :mod:`daemon.runtime.service`)."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the daemon: sync, tick, dispatch and reports on schedule (守护进程)")
    p.add_argument("--log-format", choices=["json", "console"], default="json",
                   help="json: one JSON object per line on stdout, for journald (default); console: readable")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    p.set_defaults(func=run_daemon)


def run_daemon(args: argparse.Namespace) -> int:
    from daemon.runtime import logs
    from daemon.runtime.service import Service

    # `kill -USR1 <pid>` writes every thread's stack to stderr: how to see where a stuck daemon hangs
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    level = getattr(logging, args.log_level.upper())
    logs.configure(json=args.log_format == "json", level=level, stdout=True)
    logs.route_stdlib_logging(level)
    return Service(args.config).run()
