"""structlog set-up: logs go to stderr (stdout belongs to command output and ``--json``), mobiles masked.

``json=True`` (the daemon under journald) writes one JSON object per line; ``hotline-sla run`` writes them
to stdout (``stdout=True``), which has no other use in the daemon.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from notifiers.base import mask_mobiles_in
from notifiers.console import emit_as_log_events
from notifiers.secrets import redact_secrets

_SECRET_KEYS = ("secret", "token", "password", "key", "signature", "authorization")


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask mobiles and cut out every resolved secret value in every string value; drop values of keys
    that name a secret."""
    for key, value in list(event.items()):
        if any(s in key.lower() for s in _SECRET_KEYS) and key != "event":
            event[key] = "<redacted>"
        elif isinstance(value, str):
            event[key] = redact_secrets(mask_mobiles_in(value))
    return event


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (tests and daemons may swap it after set-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Stdout(_Stderr):
    """``sys.stdout`` at write time: the daemon's JSON lines go to stdout, which journald reads.

    A closed or broken stdout loses the log lines, not the daemon: alerts matter more than their logs.
    """

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except (OSError, ValueError):  # EPIPE, a closed file
            return 0

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()


class _ToStructlog(logging.Handler):
    """Stdlib log records (APScheduler, daemon.runtime.systemd, drivers) as structlog events, so the daemon writes
    one format only and the redaction applies to them too."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger = structlog.get_logger(record.name)
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[1] is not None:
                fields["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            logger.log(record.levelno, record.getMessage(), **fields)
        except Exception:  # a log line must never take the daemon down
            self.handleError(record)


def route_stdlib_logging(level: int = logging.INFO) -> None:
    """Send stdlib logging through structlog (idempotent). APScheduler's per-run INFO lines are dropped."""
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _ToStructlog)]
    root.addHandler(_ToStructlog())
    root.setLevel(level)
    for chatty in ("apscheduler", "alembic"):  # a line per job run / per migration check
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))


def configure(*, json: bool = False, level: int = logging.INFO, stdout: bool = False) -> None:
    renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer(
        colors=False
    )
    # JSON: a traceback becomes one escaped string field, so an event is still one line
    tracebacks: list[Any] = [structlog.processors.format_exc_info] if json else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *tracebacks,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_Stdout() if stdout else _Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    emit_as_log_events(json)  # a console channel's plain text would break a JSON log stream
