"""WeCom application messages (企业微信应用消息) to user ids; also 政务微信 with another ``base_url``.

The access token is cached until ``token_margin`` seconds before ``expires_in`` (monotonic clock). WeCom
may revoke it early: on 40014/42001/40001 we fetch a new one once and retry once.

Partly invalid recipients: WeCom answers errcode 0 and lists them in ``invaliduser``. The message did reach
the others, so :meth:`send` returns a :class:`Receipt` (it must not be retried) whose ``detail`` holds
``invalid_recipients`` (masked names) and a warning is logged. All invalid is errcode 81013: permanent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field

from notifiers.base import Clock, Message, NotifierError, Receipt, Recipient, send_parts
from notifiers.http import HttpNotifier, HttpOptions
from notifiers.secrets import SecretResolver, SecretValue
from notifiers.wecom_bot import split_by_bytes

log = logging.getLogger(__name__)

CONTENT_LIMIT = 2048
_TOKEN_INVALID = {40014, 42001, 40001}
_RETRY = {-1, 45009}
_PERMANENT = {40056, 60020, 81013}


class WecomAppOptions(HttpOptions):
    corpid: str = Field(min_length=1)
    corpsecret: SecretValue
    agentid: int
    base_url: str = "https://qyapi.weixin.qq.com"
    msgtype: Literal["markdown", "text"] = "markdown"
    safe: bool = False
    enable_duplicate_check: bool = False
    duplicate_check_interval: int = Field(1800, ge=1, le=14400)
    token_margin: float = Field(300.0, ge=0, description="refresh this many seconds before expiry")


class WecomAppNotifier(HttpNotifier):
    type_name = "wecom_app"
    formats = ("txt", "md")
    quiet_hours_by_default = False
    rate_limit_per_minute = 30  # per member from one app; beyond it WeCom drops messages silently
    rate_limit_per = "wecom_userid"

    def __init__(self, name: str, options: WecomAppOptions, *, clock: Clock = time.monotonic) -> None:
        super().__init__(name, options)
        self.options = options
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
    ) -> Self:
        return cls(name, WecomAppOptions.parse(name, options, secrets), clock=clock)

    def __repr__(self) -> str:
        return f"WecomAppNotifier({self.name!r}, corpid={self.options.corpid!r})"

    def _url(self, path: str) -> str:
        return f"{self.options.base_url.rstrip('/')}/cgi-bin/{path}"

    def access_token(self) -> str:
        if self._token and self._clock() < self._token_expires:
            return self._token
        params = {"corpid": self.options.corpid, "corpsecret": self.options.corpsecret.reveal()}
        _, data = self.request_json("GET", self._url("gettoken"), what="gettoken", params=params)
        errcode = data.get("errcode", 0)
        token = data.get("access_token")
        if errcode != 0 or not isinstance(token, str):
            # a bad corpid/secret or an untrusted IP will not fix itself
            raise self.fail("gettoken", errcode, data.get("errmsg", ""), permanent=errcode not in _RETRY)
        expires_in = float(data.get("expires_in", 7200))
        self._token = token
        self._token_expires = self._clock() + max(expires_in - self.options.token_margin, 0.0)
        return token

    def send(self, message: Message) -> Receipt:
        people = _unique((message.recipient, *message.mentions))
        if not people:
            raise NotifierError(f"{self.name}: {message.recipient.name} has no WeCom user id", permanent=True)
        msgtype, content = self._content(message)
        parts = split_by_bytes(content, CONTENT_LIMIT)
        invalid: set[str] = set()
        msgids: list[Any] = []

        def send_one(index: int) -> None:
            body = self._body(people, msgtype, parts[index])
            what = f"message part {index + 1}/{len(parts)}" if len(parts) > 1 else "message"
            data = self._post(body, what)
            msgids.append(data.get("msgid"))
            invalid.update(u for u in str(data.get("invaliduser", "")).split("|") if u)

        send_parts(len(parts), message.parts_delivered, send_one)
        msgid = next((m for m in reversed(msgids) if m is not None), None)
        receipt_detail: dict[str, Any] = {}
        if invalid:
            masked = tuple(p.masked for p in people if p.wecom_userid in invalid)
            receipt_detail["invalid_recipients"] = masked
            log.warning(
                "%s: WeCom rejected recipients %s (not in the app's visible range?)", self.name, masked
            )
        return Receipt(provider_message_id=msgid, detail=receipt_detail, parts=len(parts))

    def requests_for(self, message: Message) -> int:
        total = len(split_by_bytes(self._content(message)[1], CONTENT_LIMIT))
        return total - message.parts_delivered if 0 <= message.parts_delivered < total else total

    def _content(self, message: Message) -> tuple[str, str]:
        """(msgtype, content) of ``message`` in this channel's settings."""
        content = (
            message.markdown if self.options.msgtype == "markdown" and message.markdown else message.text
        )
        return (self.options.msgtype if message.markdown else "text"), content

    def _body(self, people: list[Recipient], msgtype: str, content: str) -> dict[str, Any]:
        return {
            "touser": "|".join(p.wecom_userid or "" for p in people),
            "msgtype": msgtype,
            "agentid": self.options.agentid,
            msgtype: {"content": content},
            "safe": int(self.options.safe),
            "enable_duplicate_check": int(self.options.enable_duplicate_check),
            "duplicate_check_interval": self.options.duplicate_check_interval,
        }

    def _post(self, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        for attempt in (1, 2):
            params = {"access_token": self.access_token()}
            _, data = self.request_json(
                "POST", self._url("message/send"), what=what, params=params, json=body
            )
            errcode = data.get("errcode")
            if errcode == 0:
                result: dict[str, Any] = data
                return result
            if errcode in _TOKEN_INVALID and attempt == 1:
                log.info("%s: access token rejected (errcode %s), fetching a new one", self.name, errcode)
                self._token = None
                continue
            permanent = errcode in _PERMANENT
            raise self.fail(what, errcode, data.get("errmsg", ""), permanent=permanent)
        raise AssertionError("unreachable")  # pragma: no cover


def _unique(people: tuple[Recipient, ...]) -> list[Recipient]:
    seen: dict[str, Recipient] = {}
    for person in people:
        if person.wecom_userid and person.wecom_userid not in seen:
            seen[person.wecom_userid] = person
    return list(seen.values())
