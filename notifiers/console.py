"""Console channel: prints the message text. The default, so a newcomer sees alerts without any account.

Under ``hotline-sla run --log-format json`` stdout is the JSON log stream that journald keeps and operators
pipe into ``jq``: there a message becomes one JSON log event (``console_message``) instead of plain text,
whatever ``stream`` says (:func:`emit_as_log_events`, called by the log set-up). Elsewhere it is plain text
on ``stream`` (stdout by default; ``dispatch --json`` moves it to stderr itself).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, Literal, Self, TextIO

import structlog

from notifiers.base import Clock, Message, Notifier, NotifierError, Receipt
from notifiers.secrets import ChannelOptions, SecretResolver

_as_log_events = False


def emit_as_log_events(enabled: bool) -> None:
    """Make every console channel log its messages as structured events (True) or print them (False)."""
    global _as_log_events  # noqa: PLW0603 - one process-wide switch, set once by the log set-up
    _as_log_events = enabled


class ConsoleOptions(ChannelOptions):
    stream: Literal["stdout", "stderr"] = "stdout"


class ConsoleNotifier(Notifier):
    type_name = "console"
    formats = ("txt",)
    quiet_hours_by_default = False

    def __init__(self, name: str, options: ConsoleOptions, *, stream: TextIO | None = None) -> None:
        super().__init__(name)
        self.options = options
        self._stream = stream

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
    ) -> Self:
        return cls(name, ConsoleOptions.parse(name, options, secrets))

    def send(self, message: Message) -> Receipt:
        if _as_log_events and self._stream is None:
            structlog.get_logger("hotline_sla.console").info(
                "console_message", channel=self.name, recipient=message.recipient.masked,
                subject=message.subject, text=message.text)
            return Receipt()
        stream = self._stream or (sys.stdout if self.options.stream == "stdout" else sys.stderr)
        try:
            stream.write(f"[{self.name}] → {message.recipient.masked}: {message.subject}\n{message.text}\n")
            stream.flush()
        except OSError as exc:
            raise NotifierError(
                f"{self.name}: cannot write to {self.options.stream} ({exc.strerror})"
            ) from None
        return Receipt()

    def __repr__(self) -> str:
        return f"ConsoleNotifier({self.name!r}, {self.options!r})"
