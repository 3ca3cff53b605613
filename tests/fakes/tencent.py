"""Fake Tencent Cloud SMS 2021-01-11 SendSms: verifies TC3-HMAC-SHA256 over the received bytes."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from tests.fakes import FakeServer, Recorded, Reply


def _h(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class FakeTencentSms(FakeServer):
    def __init__(
        self, *, secret_id: str, secret_key: str, sdk_app_id: str, templates: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.secret_id, self.secret_key, self.sdk_app_id = secret_id, secret_key, sdk_app_id
        self.templates = set(templates)
        self.number_codes: dict[str, str] = {}  # "+8613…" -> SendStatus Code for that number
        self._serial = itertools.count(1)

    def error(self, code: Any) -> Reply:
        return Reply(
            200, {"Response": {"Error": {"Code": code, "Message": f"fake {code}"}, "RequestId": "r"}}
        )

    def sent(self) -> list[Any]:
        return [r.json() for r in self.requests]

    def _expected_auth(self, req: Recorded) -> str:
        ts = int(req.headers.get("x-tc-timestamp", "0"))
        date = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
        host = req.headers.get("host", "")
        ctype = req.headers.get("content-type", "")
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                f"content-type:{ctype}",
                f"host:{host}",
                "",
                "content-type;host",
                hashlib.sha256(req.body).hexdigest(),
            ]
        )
        scope = f"{date}/sms/tc3_request"
        to_sign = "\n".join(
            ["TC3-HMAC-SHA256", str(ts), scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = _h(_h(_h(("TC3" + self.secret_key).encode(), date), "sms"), "tc3_request")
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return (
            f"TC3-HMAC-SHA256 Credential={self.secret_id}/{scope}, "
            f"SignedHeaders=content-type;host, Signature={sig}"
        )

    def handle(self, req: Recorded) -> Reply:
        if req.headers.get("x-tc-action") != "SendSms" or req.headers.get("x-tc-version") != "2021-01-11":
            return self.error("InvalidAction")
        ts = req.headers.get("x-tc-timestamp", "")
        if not ts.isdigit() or abs(int(ts) - time.time()) > 300:
            return self.error("AuthFailure.SignatureExpire")
        if not hmac.compare_digest(req.headers.get("authorization", ""), self._expected_auth(req)):
            return self.error("AuthFailure.SignatureFailure")
        body = req.json()
        if body.get("SmsSdkAppId") != self.sdk_app_id:
            return self.error("FailedOperation.SmsSdkAppIdVerifyFail")
        if body.get("TemplateId") not in self.templates:
            return self.error("FailedOperation.TemplateIncorrectOrUnapproved")
        if not all(isinstance(p, str) for p in body.get("TemplateParamSet", [])):
            return self.error("InvalidParameterValue.TemplateParameterFormatError")
        statuses = []
        for number in body.get("PhoneNumberSet", []):
            code = self.number_codes.get(number, "Ok")
            statuses.append(
                {"SerialNo": f"sn-{next(self._serial)}", "PhoneNumber": number, "Code": code, "Message": code}
            )
        return Reply(200, {"Response": {"SendStatusSet": statuses, "RequestId": "r"}})
