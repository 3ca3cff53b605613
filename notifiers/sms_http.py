"""A generic in-house SMS gateway (many 12345 centres run their own short-message platform).

The request body is a Jinja2 template (sandboxed) over ``mobile``, ``text``, ``subject``, ``kind``,
``params`` and ``secrets`` (the resolved ``secrets`` option). ``body`` is either one template rendered to
the raw body (``encoding: json`` checks it is valid JSON) or a mapping field → template, encoded as a JSON
object or a form. Success is decided by one field of the JSON reply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Literal, Self

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field, field_validator

from notifiers.base import ChannelConfigError, Clock, Message, NotifierError, Receipt
from notifiers.http import HttpNotifier, HttpOptions, json_pick, mobile_of
from notifiers.secrets import SecretResolver, SecretValue

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class HttpSmsOptions(HttpOptions):
    url: str
    method: Literal["POST", "PUT", "GET"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="values are templates too")
    secrets: dict[str, SecretValue] = Field(default_factory=dict)
    encoding: Literal["json", "form"] = "json"
    body: str | dict[str, str]
    success_field: str = Field(min_length=1, description="dotted path in the JSON reply")
    success_value: str
    message_field: str | None = None
    permanent_values: list[str] = Field(default_factory=list)
    param_max_chars: int | None = Field(None, ge=1)

    @field_validator("body", "headers")
    @classmethod
    def _compiles(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        for template in [value] if isinstance(value, str) else value.values():
            try:
                _ENV.parse(template)
            except TemplateError as exc:
                raise ValueError(f"not a valid Jinja2 template ({exc})") from None
        return value


class HttpSmsNotifier(HttpNotifier):
    type_name = "sms_http"
    formats = ("txt",)
    quiet_hours_by_default = True
    rate_limit_per = "mobile"  # no documented figure: set channels.<name>.rate_limit_per_minute

    def __init__(self, name: str, options: HttpSmsOptions) -> None:
        super().__init__(name, options)
        self.options = options

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
    ) -> Self:
        return cls(name, HttpSmsOptions.parse(name, options, secrets))

    def __repr__(self) -> str:
        return f"HttpSmsNotifier({self.name!r})"

    def _render(self, template: str, context: Mapping[str, Any]) -> str:
        try:
            return _ENV.from_string(template).render(context)
        except TemplateError as exc:
            # the message names the template problem (e.g. an undefined variable), not the values
            raise ChannelConfigError(f"channels.{self.name}.body: {exc.message}") from None
        except (TypeError, ValueError):  # a filter (tojson) fed an undefined or odd value
            raise ChannelConfigError(f"channels.{self.name}.body: template cannot be rendered") from None

    def send(self, message: Message) -> Receipt:
        o = self.options
        limit = o.param_max_chars
        context = {
            "mobile": mobile_of(self.name, message),
            "text": message.text,
            "subject": message.subject,
            "kind": message.kind,
            "params": {k: (v[:limit] if limit else v) for k, v in message.params.items()},
            "secrets": {k: v.reveal() for k, v in o.secrets.items()},
        }
        try:
            headers = {k: self._render(v, context) for k, v in o.headers.items()}
            kwargs = self._body(context)
        except ChannelConfigError as exc:
            raise NotifierError(str(exc), permanent=True) from None
        headers = {**kwargs.pop("headers", {}), **headers}  # configured headers win
        _, data = self.request_json(o.method, o.url, what="gateway submit", headers=headers, **kwargs)
        value = json_pick(data, o.success_field)
        if value is not None and str(value) == o.success_value:
            return Receipt(detail={"reply": {o.success_field: value}})
        detail = json_pick(data, o.message_field) if o.message_field else ""
        raise self.fail("gateway submit", value, detail or "", permanent=str(value) in o.permanent_values)

    def _body(self, context: Mapping[str, Any]) -> dict[str, Any]:
        o = self.options
        if isinstance(o.body, str):
            rendered = self._render(o.body, context)
            if o.encoding == "json":
                try:
                    json.loads(rendered)
                except ValueError:
                    raise ChannelConfigError(f"channels.{self.name}.body: rendered body is not valid JSON") from None
                ctype = "application/json; charset=utf-8"
            else:
                ctype = "application/x-www-form-urlencoded; charset=utf-8"
            return {"data": rendered.encode(), "headers": {"Content-Type": ctype}}
        fields = {k: self._render(v, context) for k, v in o.body.items()}
        return {"json": fields} if o.encoding == "json" else {"data": fields}
