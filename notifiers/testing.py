"""Test helpers shipped with the package, so the outbox's tests (and users') need no mocks.

fake = FakeNotifier("wecom")
fake.fail_next(2)                       # two transient failures, then success
fake.fail_next(1, retry_after=60)       # one deferral (flow control)
fake.fail_next(1, permanent=True)       # one permanent failure
assert [m.kind for m in fake.sent] == ["warning"]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from notifiers.base import Message, Notifier, NotifierError, Receipt


@dataclass(frozen=True)
class _Scripted:
    reason: str
    permanent: bool
    retry_after: float | None


class FakeNotifier(Notifier):
    """Records every message it sent; fails as scripted with :meth:`fail_next`."""

    type_name = "fake"
    formats = ("txt", "md", "html")
    quiet_hours_by_default = False

    def __init__(self, name: str = "fake") -> None:
        super().__init__(name)
        self.sent: list[Message] = []
        self.attempts: list[Message] = []
        self.closed = False
        self._script: deque[_Scripted] = deque()

    def fail_next(
        self, count: int = 1, *, permanent: bool = False, retry_after: float | None = None, reason: str = ""
    ) -> None:
        """Make the next ``count`` sends raise; failures queue up after those already scripted."""
        kind = "permanent" if permanent else "deferred" if retry_after is not None else "transient"
        for _ in range(count):
            self._script.append(
                _Scripted(reason or f"{self.name}: scripted {kind} failure", permanent, retry_after)
            )

    def send(self, message: Message) -> Receipt:
        self.attempts.append(message)
        if self._script:
            step = self._script.popleft()
            raise NotifierError(step.reason, permanent=step.permanent, retry_after=step.retry_after)
        self.sent.append(message)
        return Receipt(provider_message_id=f"{self.name}-{len(self.sent)}")

    def close(self) -> None:
        self.closed = True

    def reset(self) -> None:
        self.sent.clear()
        self.attempts.clear()
        self._script.clear()
