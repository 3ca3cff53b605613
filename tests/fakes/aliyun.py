"""Fake Aliyun dysmsapi SendSms: verifies signature v1, timestamp, nonce, templates and parameters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tests.fakes import FakeServer, Recorded, Reply

REQUIRED = (
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "PhoneNumbers",
    "SignName",
    "TemplateCode",
    "Signature",
)


def _enc(s: str) -> str:
    return quote(s, safe="~")


class FakeAliyunSms(FakeServer):
    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_names: tuple[str, ...] = ("盘锦12345",),
        templates: dict[str, tuple[str, ...]] | None = None,
        param_limit: int = 35,
    ) -> None:
        super().__init__()
        self.keys = {access_key_id: access_key_secret}
        self.sign_names = set(sign_names)
        self.templates = templates or {}
        self.param_limit = param_limit
        self.nonces: set[str] = set()
        self._serial = itertools.count(1)

    def error(self, code: Any, status: int = 200) -> Reply:
        return Reply(status, {"Code": code, "Message": f"fake {code}", "RequestId": "req-err"})

    def sent(self) -> list[dict[str, str]]:
        return [r.form() for r in self.requests]

    def handle(self, req: Recorded) -> Reply:
        form = req.form()
        missing = [k for k in REQUIRED if k not in form]
        if missing:
            return self.error(f"MissingParameter.{missing[0]}", 400)
        secret = self.keys.get(form["AccessKeyId"])
        if secret is None:
            return self.error("InvalidAccessKeyId.NotFound", 404)
        canonical = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(form.items()) if k != "Signature")
        to_sign = "POST&%2F&" + _enc(canonical)
        expected = base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest())
        if not hmac.compare_digest(expected.decode(), form["Signature"]):
            return self.error("SignatureDoesNotMatch", 400)
        try:
            ts = datetime.strptime(form["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return self.error("InvalidTimeStamp.Format", 400)
        if abs((datetime.now(UTC) - ts).total_seconds()) > 900:
            return self.error("InvalidTimeStamp.Expired", 400)
        if form["SignatureNonce"] in self.nonces:
            return self.error("SignatureNonceUsed", 400)
        self.nonces.add(form["SignatureNonce"])
        return self._send_sms(form)

    def _send_sms(self, form: dict[str, str]) -> Reply:
        if not all(re.fullmatch(r"1[3-9]\d{9}", m) for m in form["PhoneNumbers"].split(",")):
            return self.error("isv.MOBILE_NUMBER_ILLEGAL")
        if form["SignName"] not in self.sign_names:
            return self.error("isv.SMS_SIGNATURE_ILLEGAL")
        if form["TemplateCode"] not in self.templates:
            return self.error("isv.SMS_TEMPLATE_ILLEGAL")
        try:
            params = json.loads(form.get("TemplateParam", "{}"))
        except ValueError:
            return self.error("isv.INVALID_JSON_PARAM")
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return self.error("isv.INVALID_JSON_PARAM")
        if any(name not in params for name in self.templates[form["TemplateCode"]]):
            return self.error("isv.TEMPLATE_MISSING_PARAMETERS")
        if any(len(v) > self.param_limit for v in params.values()):
            return self.error("isv.PARAM_LENGTH_LIMIT")
        return Reply(
            200, {"Code": "OK", "Message": "OK", "BizId": f"biz-{next(self._serial)}", "RequestId": "r"}
        )
