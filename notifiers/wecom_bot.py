"""WeCom group robot (企业微信群机器人): one webhook per group.

The webhook key is a secret and part of the URL, so the URL is never logged or put into an error.
The robot takes at most 20 messages per minute (:attr:`WecomBotNotifier.rate_limit_per_minute`); the outbox
counts every process's sends in the database and defers a message that would exceed it
(daemon/pipeline/rate_limit.py), so this class only says how many requests a message takes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field

from notifiers.base import Clock, Message, Receipt, send_parts
from notifiers.http import HttpNotifier, HttpOptions
from notifiers.secrets import SecretResolver, SecretValue

TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096
_PART_HEADER_RESERVE = len("(99/99)\n")


def split_by_bytes(content: str, limit: int) -> list[str]:
    """Split ``content`` into parts of at most ``limit`` UTF-8 bytes, at line boundaries.

    With more than one part each starts with ``(i/n)``. A single line longer than a part is cut at a
    character boundary (never inside a multi-byte character).
    """
    if len(content.encode()) <= limit:
        return [content]
    budget = limit - _PART_HEADER_RESERVE
    chunks: list[str] = []
    current = ""
    for line in _lines_within(content, budget):
        candidate = f"{current}\n{line}" if current else line
        if current and len(candidate.encode()) > budget:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return [f"({i}/{len(chunks)})\n{chunk}" for i, chunk in enumerate(chunks, 1)]


def _lines_within(content: str, budget: int) -> list[str]:
    lines: list[str] = []
    for whole in content.split("\n"):
        rest = whole
        while len(rest.encode()) > budget:
            cut = budget
            while len(rest[:cut].encode()) > budget:
                cut -= 1
            lines.append(rest[:cut])
            rest = rest[cut:]
        lines.append(rest)
    return lines


class WecomBotOptions(HttpOptions):
    key: SecretValue
    base_url: str = "https://qyapi.weixin.qq.com"
    msgtype: Literal["markdown", "text"] = "markdown"
    mention_recipient: bool = Field(True, description="@ the recipient's mobile as well as message.mentions")


# errcode → (permanent, retry_after)
_ERRCODES: dict[int, tuple[bool, float | None]] = {
    93000: (True, None),  # invalid webhook key
    40058: (True, None),  # too long: split, never retry as is
    45009: (False, 60.0),  # frequency limit
    -1: (False, None),  # system busy
}


class WecomBotNotifier(HttpNotifier):
    type_name = "wecom_bot"
    formats = ("txt", "md")
    quiet_hours_by_default = False
    rate_limit_per_minute = 20  # per robot; exceeding it may block the robot for minutes

    def __init__(self, name: str, options: WecomBotOptions, *, clock: Clock = time.monotonic) -> None:
        super().__init__(name, options)
        self.options = options

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
    ) -> Self:
        return cls(name, WecomBotOptions.parse(name, options, secrets), clock=clock)

    def __repr__(self) -> str:
        return f"WecomBotNotifier({self.name!r})"

    def send(self, message: Message) -> Receipt:
        all_bodies = self._bodies(message)
        start = message.parts_delivered if 0 <= message.parts_delivered < len(all_bodies) else 0
        url = f"{self.options.base_url.rstrip('/')}/cgi-bin/webhook/send"
        total = len(all_bodies)

        def send_one(index: int) -> None:
            what = f"robot message part {index + 1}/{total}" if total > 1 else "robot message"
            _, data = self.request_json(
                "POST", url, what=what, params={"key": self.options.key.reveal()}, json=all_bodies[index]
            )
            errcode = data.get("errcode")
            if errcode != 0:
                permanent, retry_after = _ERRCODES.get(
                    errcode if isinstance(errcode, int) else -1, (False, None)
                )
                raise self.fail(
                    what, errcode, data.get("errmsg", ""), permanent=permanent, retry_after=retry_after
                )

        send_parts(total, start, send_one)
        return Receipt(parts=total)

    def requests_for(self, message: Message) -> int:
        total = len(self._bodies(message))
        return total - message.parts_delivered if 0 <= message.parts_delivered < total else total

    def _bodies(self, message: Message) -> list[dict[str, Any]]:
        people = ((message.recipient,) if self.options.mention_recipient else ()) + message.mentions
        mobiles = list(dict.fromkeys(p.mobile for p in people if p.mobile))
        userids = list(dict.fromkeys(p.wecom_userid for p in people if p.wecom_userid))
        if self.options.msgtype == "text":
            parts = split_by_bytes(message.text, TEXT_LIMIT)
            bodies: list[dict[str, Any]] = [{"msgtype": "text", "text": {"content": p}} for p in parts]
            bodies[-1]["text"].update(mentioned_list=userids, mentioned_mobile_list=mobiles)
            return bodies
        content = message.markdown or message.text
        if userids:  # markdown mentions work only by user id
            content += "\n" + " ".join(f"<@{u}>" for u in userids)
        parts = split_by_bytes(content, MARKDOWN_LIMIT)
        bodies = [{"msgtype": "markdown", "markdown": {"content": p}} for p in parts]
        mobile_only = list(dict.fromkeys(p.mobile for p in people if p.mobile and not p.wecom_userid))
        if mobile_only:
            # markdown cannot @ by mobile: a short text reminder carries mentioned_mobile_list
            reminder = {"content": f"请及时处理：{message.subject}", "mentioned_mobile_list": mobile_only}
            bodies.append({"msgtype": "text", "text": reminder})
        return bodies
