"""Shared HTTP plumbing for the HTTP channels, and the SMS template mapping they share.

Everything that can go wrong on the wire becomes a :class:`NotifierError`; its reason names the channel
and what was being done, never the URL (robot keys and access tokens travel in query strings).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field

from notifiers.base import Message, Notifier, NotifierError, mask_mobiles_in
from notifiers.secrets import ChannelOptions

_SECRET_QUERY = re.compile(r"((?:key|access_token|corpsecret|sign|secret|token)=)[^&\s\"']+", re.IGNORECASE)


def redact_url(text: str) -> str:
    """Hide the values of secret-bearing query parameters in ``text``."""
    return _SECRET_QUERY.sub(r"\1***", text)


class _RedactQueryFilter(logging.Filter):
    """urllib3 logs every request line, query string included, at DEBUG: hide the secrets in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactQueryFilter())


class HttpOptions(ChannelOptions):
    timeout: float = Field(10.0, gt=0, description="read timeout, seconds")
    connect_timeout: float = Field(5.0, gt=0, description="connect timeout, seconds")


class HttpNotifier(Notifier):
    """A notifier that talks JSON over HTTP through one :class:`requests.Session`."""

    def __init__(self, name: str, options: HttpOptions) -> None:
        super().__init__(name)
        self._timeouts = (options.connect_timeout, options.timeout)
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def request_json(self, method: str, url: str, *, what: str, **kwargs: Any) -> tuple[int, Any]:
        """Send a request, return ``(status, decoded JSON)``.

        Raises transient errors for timeouts, connection failures, 5xx and undecodable replies; 429 is
        flow control. Other 4xx replies with a JSON body are returned for the channel to classify.
        """
        try:
            resp = self.session.request(method, url, timeout=self._timeouts, **kwargs)
        except requests.Timeout:
            # the request may have reached the provider: a retry can duplicate (SendSms is not idempotent)
            raise NotifierError(
                f"{self.name}: {what}: no reply within {self._timeouts[1]:g}s (may have been delivered)"
            ) from None
        except requests.RequestException as exc:
            raise NotifierError(f"{self.name}: {what}: connection failed ({type(exc).__name__})") from None
        status = resp.status_code
        if status >= 500:
            raise NotifierError(
                f"{self.name}: {what}: HTTP {status} from provider", provider_code=str(status)
            )
        if status == 429:
            retry_after = _float_or(resp.headers.get("Retry-After"), 60.0)
            raise NotifierError(
                f"{self.name}: {what}: HTTP 429", retry_after=retry_after, provider_code="429"
            )
        try:
            data = resp.json()
        except ValueError:
            if status >= 400:
                raise NotifierError(
                    f"{self.name}: {what}: HTTP {status} from provider",
                    permanent=True,
                    provider_code=str(status),
                ) from None
            raise NotifierError(f"{self.name}: {what}: malformed reply (not JSON)") from None
        if not isinstance(data, dict):
            raise NotifierError(f"{self.name}: {what}: malformed reply (not a JSON object)")
        return status, data

    def fail(self, what: str, code: object, detail: object, **kwargs: Any) -> NotifierError:
        """Build an error from a provider's answer; the provider's text is masked, never trusted raw."""
        text = mask_mobiles_in(redact_url(str(detail)))[:200]
        return NotifierError(
            f"{self.name}: {what}: {code} {text}".rstrip(), provider_code=str(code), **kwargs
        )


def _float_or(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


# --- SMS templates (短信模板) -------------------------------------------------------------------


class TemplateSpec(BaseModel):
    """One approved template: its code/id at the provider, and which message params fill it.

    ``params`` is a list of message param names (positional providers use the order; named providers
    use the same names as template variables) or a mapping template variable → message param name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1)
    params: list[str] | dict[str, str] = Field(default_factory=list)


class SmsOptions(HttpOptions):
    sign_name: str = Field(min_length=1, description="approved signature (签名)")
    templates: dict[str, TemplateSpec] = Field(default_factory=dict)
    param_max_chars: int | None = Field(35, ge=1)


class SmsTemplates:
    """Looks up the template for a message kind and builds its (truncated) parameters."""

    def __init__(self, channel: str, options: SmsOptions) -> None:
        self._channel = channel
        self._templates = options.templates
        self._max = options.param_max_chars

    def spec(self, message: Message) -> TemplateSpec:
        try:
            return self._templates[message.kind]
        except KeyError:
            raise NotifierError(
                f"{self._channel}: no SMS template for message kind {message.kind!r}; "
                f"set channels.{self._channel}.templates.{message.kind}",
                permanent=True,
            ) from None

    def named(self, message: Message) -> tuple[TemplateSpec, dict[str, str]]:
        spec = self.spec(message)
        mapping = spec.params if isinstance(spec.params, dict) else {p: p for p in spec.params}
        return spec, {var: self._value(message, param) for var, param in mapping.items()}

    def positional(self, message: Message) -> tuple[TemplateSpec, list[str]]:
        spec, named = self.named(message)
        return spec, list(named.values())

    def _value(self, message: Message, param: str) -> str:
        if param not in message.params:
            raise NotifierError(
                f"{self._channel}: message kind {message.kind!r} has no param {param!r} "
                f"(named in channels.{self._channel}.templates.{message.kind}.params)",
                permanent=True,
            )
        value = str(message.params[param])
        return value[: self._max] if self._max else value


def mobile_of(channel: str, message: Message) -> str:
    mobile = message.recipient.mobile
    if not mobile:
        raise NotifierError(f"{channel}: {message.recipient.name} has no mobile number", permanent=True)
    return mobile


def json_pick(data: Mapping[str, Any], dotted: str) -> Any:
    """``json_pick({"a": {"b": 1}}, "a.b") == 1``; ``None`` when the path is absent."""
    current: Any = data
    for part in dotted.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current
