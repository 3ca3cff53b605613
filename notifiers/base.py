"""The one interface every channel implements.

A notifier sends one :class:`Message` and returns a :class:`Receipt`, or raises :class:`NotifierError`.
The exception decides what the outbox does next (the healthchecks habit):

- ``permanent=True``: do not retry this message on this channel (bad key, bad number, body too long);
- ``retry_after=seconds``: flow control (限流): the provider asked us to wait that long; not a failure;
- otherwise: a transient failure, retried with exponential backoff.

Notifiers never read the wall clock to make decisions that tests need to control and never sleep: a
notifier that throttles itself takes a ``clock`` (monotonic seconds) and raises ``NotifierError`` with
``retry_after`` instead of waiting.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Clock = Callable[[], float]
"""Monotonic seconds; ``time.monotonic`` in production, a fake in tests."""


class NotifierError(Exception):
    """A send that did not succeed.

    ``reason`` is safe to log and to show a supervisor: it never contains a secret or a full mobile.
    ``failed_recipients`` lists recipients (masked) that failed permanently while others succeeded.
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        failed_recipients: tuple[str, ...] = (),
        provider_code: str | None = None,
        parts_sent: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.failed_recipients = failed_recipients
        self.provider_code = provider_code
        #: a message sent as several requests: how many of its parts the provider has taken, counting those
        #: of earlier attempts (:attr:`Message.parts_delivered`); None when the channel sends one request
        self.parts_sent = parts_sent

    @property
    def deferred(self) -> bool:
        """Flow control: the provider said "later", nothing is wrong with the message."""
        return self.retry_after is not None and not self.permanent


class ChannelConfigError(ValueError):
    """A channel's options (``channels.<name>`` in config.yaml, or a secret they refer to) are invalid; the
    message names the key and what would be valid, never a secret's value."""


@dataclass(frozen=True)
class Recipient:
    """Who a message is for. A contact has one or more addresses; a channel uses the one it needs."""

    name: str
    mobile: str | None = None
    wecom_userid: str | None = None
    email: str | None = None
    dingtalk_userid: str | None = None

    @property
    def masked(self) -> str:
        """How this recipient is named in logs and in anything someone else reads."""
        if self.mobile:
            return f"{self.name}({mask_mobile(self.mobile)})"
        return self.name


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Message:
    """One message to one recipient on one channel.

    ``text`` is always present (SMS-free channels fall back to it); ``markdown`` is used by channels that
    render it (WeCom, DingTalk); ``html`` by email. SMS channels do not send free text: they send the
    approved template configured for ``kind`` with ``params`` (values are strings).
    """

    recipient: Recipient
    subject: str
    text: str
    markdown: str | None = None
    html: str | None = None
    kind: str = "generic"
    params: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    dedupe_key: str = ""
    mentions: tuple[Recipient, ...] = ()
    #: parts an earlier attempt delivered (a long message split into several requests): the channel sends
    #: from the next one, so a part is never repeated because a later one failed (:func:`send_parts`)
    parts_delivered: int = 0


@dataclass(frozen=True)
class Receipt:
    """What the provider answered for a successful send."""

    provider_message_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    parts: int = 1


class Notifier(ABC):
    """One channel. Subclasses implement :meth:`send` and nothing else is required.

    A channel type is one module: the subclass, with its options parsed by ``from_options(name, options, *,
    secrets, clock)`` into a pydantic model of its own (:class:`notifiers.secrets.ChannelOptions`), and
    what it declares below; plus one line in :data:`notifiers.registry.CHANNEL_CLASSES`.
    """

    #: the channel type as written in config.yaml (``wecom_app``, ``sms_aliyun`` …)
    type_name: ClassVar[str] = ""
    #: the message formats it sends (template families: ``txt`` always, ``md``, ``html``); the outbox
    #: renders only these
    formats: ClassVar[tuple[str, ...]] = ("txt",)
    #: hold messages in the default quiet hours (22:00-07:30) unless ``dispatch.quiet_hours`` names the
    #: channel: a text message at night wakes people (the SMS channels say True)
    quiet_hours_by_default: ClassVar[bool] = False
    #: the vendor's limit of requests per rolling minute (CONTRACTS.md), per key of :meth:`rate_keys`;
    #: None: no documented limit. ``channels.<name>.rate_limit_per_minute`` overrides it, and the outbox
    #: keeps it in the database for every process (daemon/pipeline/rate_limit.py), not here
    rate_limit_per_minute: ClassVar[int | None] = None
    #: what that limit counts per: the whole channel (a robot's webhook), each ``mobile`` (SMS) or each
    #: ``wecom_userid`` (an application's messages to one member)
    rate_limit_per: ClassVar[Literal["channel", "mobile", "wecom_userid"]] = "channel"

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def rate_keys(cls, message: Message) -> tuple[str, ...]:
        """The keys :attr:`rate_limit_per_minute` counts ``message`` under: ``("",)`` for the whole channel,
        else each recipient's mobile or user id (the outbox hashes them before storing); none when the
        message has no such address (the channel will refuse it, nothing to count)."""
        if cls.rate_limit_per == "channel":
            return ("",)
        people = (message.recipient, *message.mentions)
        keys = (p.mobile if cls.rate_limit_per == "mobile" else p.wecom_userid for p in people)
        return tuple(dict.fromkeys(k for k in keys if k))

    def requests_for(self, message: Message) -> int:
        """How many provider requests sending ``message`` takes (from ``message.parts_delivered`` on)."""
        return 1

    @abstractmethod
    def send(self, message: Message) -> Receipt:
        """Send ``message``; return a receipt or raise :class:`NotifierError`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""


def send_parts(count: int, delivered: int, send_one: Callable[[int], None]) -> None:
    """Send parts ``delivered`` … ``count - 1`` of a message with ``send_one(index)`` (0-based), in order.

    A part that fails raises its :class:`NotifierError` with ``parts_sent`` set to the number of parts the
    provider has taken, so the outbox resumes from the first undelivered part. ``delivered`` beyond
    ``count`` (the message now splits differently, e.g. a changed template) starts over: a repeat is safer
    than a part never sent.
    """
    start = delivered if 0 <= delivered < count else 0
    for index in range(start, count):
        try:
            send_one(index)
        except NotifierError as exc:
            exc.parts_sent = index
            raise


class Secret:
    """A secret value that cannot leak by accident: ``str()``/``repr()`` never show it."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "") -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<hidden>{' from ' + self.source if self.source else ''})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_mobile(mobile: str) -> str:
    """``13812346654`` → ``尾号6654``, the way the bulletins name a citizen (手机尾号 6654)."""
    digits = re.sub(r"\D", "", mobile)
    return f"尾号{digits[-4:]}" if len(digits) >= 4 else "尾号****"


def mask_mobiles_in(text: str) -> str:
    """Mask every mainland mobile number found in free text (log lines, error messages, reports)."""
    return _MOBILE.sub(lambda m: f"尾号{m.group(3)}", text)
