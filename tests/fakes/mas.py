"""Fake China Mobile 云MAS: base64 JSON bodies, MD5 mac verification, plain and template submit."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from tests.fakes import FakeServer, Recorded, Reply

PLAIN = ("ecName", "apId", "secretKey", "mobiles", "content", "sign", "addSerial")
TEMPLATE = ("ecName", "apId", "secretKey", "templateId", "mobiles", "params", "sign", "addSerial")


class FakeCmccMas(FakeServer):
    def __init__(
        self, *, ec_name: str, ap_id: str, secret_key: str, signs: tuple[str, ...] = ("sign01",)
    ) -> None:
        super().__init__()
        self.ec_name, self.ap_id, self.secret_key = ec_name, ap_id, secret_key
        self.signs = set(signs)

    def error(self, code: Any) -> Reply:
        return Reply(200, {"rspcod": code, "msgGroup": "", "success": False})

    def sent(self) -> list[dict[str, Any]]:
        return [json.loads(base64.b64decode(r.body)) for r in self.requests]

    def handle(self, req: Recorded) -> Reply:
        fields = {"/sms/norsubmit": PLAIN, "/sms/tmpsubmit": TEMPLATE}.get(req.path)
        if fields is None:
            return Reply(404, b"not found")
        try:
            body = json.loads(base64.b64decode(req.body, validate=True))
        except ValueError:
            return self.error("InvalidMessage")
        if body.get("ecName") != self.ec_name or body.get("apId") != self.ap_id:
            return self.error("InvalidUsrOrPwd")
        values = {**body, "secretKey": self.secret_key}
        if any(not isinstance(values.get(f), str) for f in fields):
            return self.error("InvalidMessage")
        mac = hashlib.md5("".join(values[f] for f in fields).encode()).hexdigest()
        if body.get("mac") != mac:
            return self.error("IllegalMac")
        if not body.get("sign"):
            return self.error("NoSignId")
        if body["sign"] not in self.signs:
            return self.error("IllegalSignId")
        if len(body["mobiles"].split(",")) > 5000:
            return self.error("TooManyMobiles")
        return Reply(200, {"rspcod": "success", "msgGroup": "mg-1", "success": True})
