"""Fake DingTalk custom robot: checks access_token, the 加签 signature and its timestamp, and 20/min."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from tests.fakes import FakeServer, Recorded, Reply


class FakeDingtalk(FakeServer):
    def __init__(self, *, access_token: str, secret: str | None = None, limit: int = 20) -> None:
        super().__init__()
        self.access_token, self.secret, self.limit = access_token, secret, limit

    def error(self, code: Any) -> Reply:
        return Reply(200, {"errcode": code, "errmsg": f"fake error {code}"})

    def sent(self) -> list[Any]:
        return [r.json() for r in self.requests]

    def handle(self, req: Recorded) -> Reply:
        if req.path != "/robot/send":
            return Reply(404, b"not found")
        if req.query.get("access_token") != self.access_token:
            return self.error(300001)
        if self.secret is not None:
            ts = req.query.get("timestamp", "")
            if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600_000:
                return self.error(310000)
            digest = hmac.new(self.secret.encode(), f"{ts}\n{self.secret}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(req.query.get("sign", ""), base64.b64encode(digest).decode()):
                return self.error(310000)
        if self.over_limit("robot", self.limit):
            return self.error(130101)
        return Reply(200, {"errcode": 0, "errmsg": "ok"})
