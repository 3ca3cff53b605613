"""structlog set-up: logs go to stderr (stdout belongs to command output and ``--json``), mobiles masked.

``json=True`` (the daemon under journald) writes one JSON object per line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from notifiers.base import mask_mobiles_in

_SECRET_KEYS = ("secret", "token", "password", "key", "signature", "authorization")


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask mobiles in every string value; drop values of keys that name a secret."""
    for key, value in list(event.items()):
        if any(s in key.lower() for s in _SECRET_KEYS) and key != "event":
            event[key] = "<redacted>"
        elif isinstance(value, str):
            event[key] = mask_mobiles_in(value)
    return event


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (tests and daemons may swap it after set-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(*, json: bool = False, level: int = logging.INFO) -> None:
    renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer(
        colors=False
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
