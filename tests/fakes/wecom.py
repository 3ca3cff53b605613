"""Fake WeCom: group robot webhook, gettoken and application message/send."""

from __future__ import annotations

import itertools
import time
from typing import Any

from tests.fakes import FakeServer, Recorded, Reply

LIMITS = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}
APP_LIMIT = 2048


class FakeWecom(FakeServer):
    def __init__(
        self,
        *,
        robot_keys: tuple[str, ...] = (),
        corpid: str = "",
        corpsecret: str = "",
        agentid: int = 0,
        users: tuple[str, ...] = (),
        expires_in: int = 7200,
        robot_limit: int = 20,
    ) -> None:
        super().__init__()
        self.robot_keys = set(robot_keys)
        self.corpid, self.corpsecret, self.agentid = corpid, corpsecret, agentid
        self.users = set(users)
        self.expires_in = expires_in
        self.robot_limit = robot_limit
        self.tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._serial = itertools.count(1)

    def revoke_tokens(self) -> None:
        """WeCom may invalidate a token before expires_in: every issued token becomes invalid (40014)."""
        self.tokens.clear()

    def expire_tokens(self) -> None:
        """Every issued token is past its expiry (42001)."""
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    @property
    def gettoken_calls(self) -> int:
        return sum(r.path == "/cgi-bin/gettoken" for r in self.requests)

    def sent(self, path: str = "/cgi-bin/message/send") -> list[Any]:
        return [r.json() for r in self.requests if r.path == path and r.method == "POST"]

    def error(self, code: Any) -> Reply:
        return Reply(200, {"errcode": code, "errmsg": f"fake error {code}"})

    def handle(self, req: Recorded) -> Reply:
        if req.path == "/cgi-bin/webhook/send":
            return self._robot(req)
        if req.path == "/cgi-bin/gettoken":
            return self._gettoken(req)
        if req.path == "/cgi-bin/message/send":
            return self._app_send(req)
        return Reply(404, b"not found")

    def _robot(self, req: Recorded) -> Reply:
        key = req.query.get("key", "")
        if key not in self.robot_keys:
            return self.error(93000)
        body = req.json()
        msgtype = body.get("msgtype")
        if msgtype not in LIMITS or not isinstance(body.get(msgtype), dict):
            return self.error(40008)
        if len(str(body[msgtype].get("content", "")).encode()) > LIMITS[msgtype]:
            return self.error(40058)
        if self.over_limit(f"robot:{key}", self.robot_limit):
            return self.error(45009)
        return Reply(200, {"errcode": 0, "errmsg": "ok"})

    def _gettoken(self, req: Recorded) -> Reply:
        if req.query.get("corpid") != self.corpid:
            return self.error(40013)
        if req.query.get("corpsecret") != self.corpsecret:
            return self.error(40001)
        token = f"tok-{next(self._serial)}"
        self.tokens[token] = time.monotonic() + self.expires_in
        return Reply(
            200, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}
        )

    def _app_send(self, req: Recorded) -> Reply:
        token = req.query.get("access_token", "")
        if not token:
            return self.error(41001)
        if token not in self.tokens:
            return self.error(40014)
        if self.tokens[token] <= time.monotonic():
            return self.error(42001)
        body = req.json()
        if str(body.get("agentid")) != str(self.agentid):  # int or string, like WeCom
            return self.error(40056)
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown") or not isinstance(body.get(msgtype), dict):
            return self.error(40008)
        if len(str(body[msgtype].get("content", "")).encode()) > APP_LIMIT:
            return self.error(40058)
        touser = [u for u in str(body.get("touser", "")).split("|") if u]
        invalid = [u for u in touser if u not in self.users]
        if len(touser) > 1000:
            return self.error(40031)
        if not touser or len(invalid) == len(touser):
            return self.error(81013)
        return Reply(
            200,
            {
                "errcode": 0,
                "errmsg": "ok",
                "invaliduser": "|".join(invalid),
                "msgid": f"msg-{next(self._serial)}",
            },
        )
