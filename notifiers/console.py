"""Console channel: prints the message text. The default, so a newcomer sees alerts without any account."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, Literal, Self, TextIO

from notifiers.base import Clock, Message, Notifier, NotifierError, Receipt
from notifiers.secrets import ChannelOptions, SecretResolver


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
