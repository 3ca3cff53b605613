"""Argument helpers every command shares (no command imports a sibling command's helpers)."""

from __future__ import annotations

import argparse
from datetime import datetime

from daemon.core.timeutil import TimeFormatError, parse_time, utcnow
from daemon.errors import UsageError


def now_arg(args: argparse.Namespace) -> datetime:
    """``--now`` (aware) for tests and drills; the clock otherwise. Only this outer layer reads the clock.

    A malformed ``--now`` is a :class:`UsageError` (exit 2) that says which formats are valid.
    """
    if getattr(args, "now", None):
        try:
            return parse_time(args.now)
        except TimeFormatError as exc:
            raise UsageError(f"--now: {exc}") from None
    return utcnow()


def add_now(p: argparse.ArgumentParser) -> None:
    """Give a command that decides by the time a ``--now TIME`` option (read it with :func:`now_arg`)."""
    p.add_argument("--now", metavar="TIME", help="decide as if it were TIME (tests and drills); default: the clock")
