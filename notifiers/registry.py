"""The channel types a config may name: an explicit mapping, no folder scanning."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol, Self

from notifiers.base import Clock, ConfigError, Notifier
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


CHANNEL_TYPES: dict[str, type[Notifier]] = {
    cls.type_name: cls
    for cls in (
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
}


def build_notifier(
    name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
) -> Notifier:
    """Build channel ``channels.<name>`` from its config mapping (which holds ``type`` and the options)."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"channels.{name}: expected a mapping with a 'type' key")
    type_name = options.get("type")
    valid = ", ".join(sorted(CHANNEL_TYPES))
    if type_name is None:
        raise ConfigError(f"channels.{name}.type: missing; valid types: {valid}")
    cls = CHANNEL_TYPES.get(str(type_name))
    if cls is None:
        raise ConfigError(f"channels.{name}.type: unknown channel type {type_name!r}; valid types: {valid}")
    rest = {k: v for k, v in options.items() if k != "type"}
    factory: Any = cls  # every registered class has from_options (see NotifierFactory)
    notifier: Notifier = factory.from_options(name, rest, secrets=secrets, clock=clock)
    return notifier
