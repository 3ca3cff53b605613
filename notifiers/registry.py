"""The channel types a config may name: an explicit list, no folder scanning; and building the channels.

A new vendor is one module (a :class:`~notifiers.base.Notifier` subclass that declares its type name,
options, formats and quiet hours) plus one line in :data:`CHANNEL_CLASSES`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol, Self

from notifiers.base import ChannelConfigError, Clock, Notifier
from notifiers.console import ConsoleNotifier
from notifiers.dingtalk import DingtalkNotifier
from notifiers.secrets import SecretResolver
from notifiers.sms_aliyun import AliyunSmsNotifier
from notifiers.sms_cmcc_mas import CmccMasNotifier
from notifiers.sms_http import HttpSmsNotifier
from notifiers.sms_tencent import TencentSmsNotifier
from notifiers.smtp import SmtpNotifier
from notifiers.wecom_app import WecomAppNotifier
from notifiers.wecom_bot import WecomBotNotifier


class NotifierFactory(Protocol):
    type_name: str

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = ...
    ) -> Self: ...


CHANNEL_CLASSES: tuple[type[Notifier], ...] = (
    ConsoleNotifier,
    WecomBotNotifier,
    WecomAppNotifier,
    AliyunSmsNotifier,
    TencentSmsNotifier,
    CmccMasNotifier,
    HttpSmsNotifier,
    SmtpNotifier,
    DingtalkNotifier,
)
CHANNEL_TYPES: dict[str, type[Notifier]] = {cls.type_name: cls for cls in CHANNEL_CLASSES}


def channel_class(type_name: str) -> type[Notifier] | None:
    """The class of channel type ``type_name`` (``channels.<name>.type``), or None for an unknown type."""
    return CHANNEL_TYPES.get(type_name)


RATE_LIMIT_KEY = "rate_limit_per_minute"
_LEGACY_RATE_LIMIT_KEY = "max_per_minute"  # the robots' name for it before the limit moved to the outbox


def rate_limit_of(name: str, options: Mapping[str, Any]) -> int | None:
    """Requests per rolling minute allowed on channel ``channels.<name>`` (per key of the class's
    ``rate_keys``): ``rate_limit_per_minute`` if set (``0`` or ``null``: no limit), else the channel
    type's vendor default (:attr:`Notifier.rate_limit_per_minute`). Raises :class:`ChannelConfigError`."""
    cls = channel_class(str(options.get("type", "")))
    default = cls.rate_limit_per_minute if cls is not None else None
    key = RATE_LIMIT_KEY if RATE_LIMIT_KEY in options else _LEGACY_RATE_LIMIT_KEY
    value = options.get(key, default)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ChannelConfigError(
            f"channels.{name}.{key}: expected a whole number of requests per minute (0 or null: no limit), "
            f"got {value!r}"
        )
    return value


def build_notifier(
    name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
) -> Notifier:
    """Build channel ``channels.<name>`` from its config mapping (which holds ``type`` and the options)."""
    if not isinstance(options, Mapping):
        raise ChannelConfigError(f"channels.{name}: expected a mapping with a 'type' key")
    type_name = options.get("type")
    valid = ", ".join(sorted(CHANNEL_TYPES))
    if type_name is None:
        raise ChannelConfigError(f"channels.{name}.type: missing; valid types: {valid}")
    cls = channel_class(str(type_name))
    if cls is None:
        raise ChannelConfigError(f"channels.{name}.type: unknown channel type {type_name!r}; valid types: {valid}")
    rate_limit_of(name, options)  # validated here so that `config check` reports it
    rest = {k: v for k, v in options.items() if k not in ("type", RATE_LIMIT_KEY, _LEGACY_RATE_LIMIT_KEY)}
    factory: Any = cls  # every registered class has from_options (see NotifierFactory)
    notifier: Notifier = factory.from_options(name, rest, secrets=secrets, clock=clock)
    return notifier


def try_build_notifiers(
    channels: Mapping[str, Mapping[str, Any]], *, secrets: SecretResolver | None = None
) -> tuple[dict[str, Notifier], list[str]]:
    """Build every channel of ``channels`` (config.yaml's ``channels:``): the ones that built, and one
    secret-free error per channel that did not."""
    resolver = secrets or SecretResolver()
    built: dict[str, Notifier] = {}
    errors: list[str] = []
    for name, options in channels.items():
        try:
            built[name] = build_notifier(name, options, secrets=resolver)
        except ChannelConfigError as exc:
            errors.append(str(exc))
    return built, errors


def build_notifiers(
    channels: Mapping[str, Mapping[str, Any]], *, secrets: SecretResolver | None = None
) -> dict[str, Notifier]:
    """Every channel of ``channels``; :class:`ChannelConfigError` names each broken one (and nothing is
    left open)."""
    built, errors = try_build_notifiers(channels, secrets=secrets)
    if errors:
        for notifier in built.values():
            notifier.close()
        raise ChannelConfigError("; ".join(errors))
    return built
