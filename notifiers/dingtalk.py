"""DingTalk custom robot (钉钉自定义机器人), with the "加签" signature.

``sign = urlencode(base64(HMAC-SHA256(secret, f"{ms}\\n{secret}")))`` over a wall-clock timestamp in
milliseconds (DingTalk rejects timestamps more than an hour off). The access token and sign are in the URL,
which is therefore never logged. The robot takes 20 messages per minute
(:attr:`DingtalkNotifier.rate_limit_per_minute`), which the outbox keeps for every process in the database
(daemon/pipeline/rate_limit.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Self

from pydantic import Field

from notifiers.base import Clock, Message, Receipt
from notifiers.http import HttpNotifier, HttpOptions
from notifiers.secrets import SecretResolver, SecretValue

_PERMANENT = {310000, 300001}  # bad sign/timestamp/keyword; invalid token
_DEFER = {130101: 60.0}  # more than 20 per minute


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The base64 signature (not yet URL-encoded: requests encodes query parameters)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingtalkOptions(HttpOptions):
    access_token: SecretValue
    secret: SecretValue | None = Field(None, description="加签 secret (SEC…); omit for keyword robots")
    base_url: str = "https://oapi.dingtalk.com"
    msgtype: Literal["markdown", "text"] = "markdown"


class DingtalkNotifier(HttpNotifier):
    type_name = "dingtalk"
    formats = ("txt", "md")
    quiet_hours_by_default = False
    rate_limit_per_minute = 20  # per robot (errcode 130101 beyond it)

    def __init__(
        self,
        name: str,
        options: DingtalkOptions,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, options)
        self.options = options
        self._wall_clock = wall_clock

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
    ) -> Self:
        return cls(name, DingtalkOptions.parse(name, options, secrets), clock=clock)

    def __repr__(self) -> str:
        return f"DingtalkNotifier({self.name!r})"

    def send(self, message: Message) -> Receipt:
        params: dict[str, str] = {"access_token": self.options.access_token.reveal()}
        if self.options.secret:
            ms = int(self._wall_clock() * 1000)
            params.update(timestamp=str(ms), sign=dingtalk_sign(self.options.secret.reveal(), ms))
        url = f"{self.options.base_url.rstrip('/')}/robot/send"
        _, data = self.request_json(
            "POST", url, what="robot message", params=params, json=self._body(message)
        )
        errcode = data.get("errcode")
        if errcode == 0:
            return Receipt()
        code = errcode if isinstance(errcode, int) else -1
        raise self.fail(
            "robot message",
            errcode,
            data.get("errmsg", ""),
            permanent=code in _PERMANENT,
            retry_after=_DEFER.get(code),
        )

    def _body(self, message: Message) -> dict[str, Any]:
        people = (message.recipient, *message.mentions)
        mobiles = list(dict.fromkeys(p.mobile for p in people if p.mobile))
        at = {"atMobiles": mobiles, "isAtAll": False}
        if self.options.msgtype == "text":
            return {"msgtype": "text", "text": {"content": message.text}, "at": at}
        text = message.markdown or message.text
        if mobiles:  # DingTalk markdown only notifies numbers that also appear as @mobile in the text
            text += "\n\n" + " ".join(f"@{m}" for m in mobiles)
        return {"msgtype": "markdown", "markdown": {"title": message.subject, "text": text}, "at": at}
