"""Aliyun SMS (阿里云短信, dysmsapi 2017-05-25 SendSms) with signature v1 (HMAC-SHA1).

Sends the approved template configured for the message kind. Each template variable is cut to
``param_max_chars`` (default 35: Aliyun's limit per variable for notification templates unless the
limit was lifted for the template).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote

from pydantic import Field

from notifiers.base import Clock, Message, Receipt
from notifiers.http import HttpNotifier, SmsOptions, SmsTemplates, mobile_of
from notifiers.secrets import SecretResolver, SecretValue

_RETRY = {"isp.SYSTEM_ERROR"}
_DEFER = {"isv.BUSINESS_LIMIT_CONTROL"}


def percent_encode(value: str) -> str:
    return quote(value, safe="~")


def sign_v1(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """Aliyun RPC signature v1: base64(HMAC-SHA1(secret + "&", method&%2F&encoded-sorted-query))."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    string_to_sign = f"{method}&%2F&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsOptions(SmsOptions):
    access_key_id: str = Field(min_length=1)
    access_key_secret: SecretValue
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    region_id: str = "cn-hangzhou"
    defer_seconds: float = Field(60.0, gt=0, description="wait after isv.BUSINESS_LIMIT_CONTROL")


class AliyunSmsNotifier(HttpNotifier):
    type_name = "sms_aliyun"
    formats = ("txt",)
    quiet_hours_by_default = True
    rate_limit_per_minute = 1  # per number (CONTRACTS.md: roughly 1/min, 5/h, 10/day by default)
    rate_limit_per = "mobile"

    def __init__(
        self,
        name: str,
        options: AliyunSmsOptions,
        *,
        wall_clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        super().__init__(name, options)
        self.options = options
        self.templates = SmsTemplates(name, options)
        self._wall_clock = wall_clock
        self._nonce = nonce

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
    ) -> Self:
        return cls(name, AliyunSmsOptions.parse(name, options, secrets))

    def __repr__(self) -> str:
        return f"AliyunSmsNotifier({self.name!r})"

    def send(self, message: Message) -> Receipt:
        mobile = mobile_of(self.name, message)
        spec, variables = self.templates.named(message)
        timestamp = datetime.fromtimestamp(self._wall_clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {
            "Action": "SendSms",
            "Version": "2017-05-25",
            "Format": "JSON",
            "AccessKeyId": self.options.access_key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": self._nonce(),
            "Timestamp": timestamp,
            "RegionId": self.options.region_id,
            "PhoneNumbers": mobile,
            "SignName": self.options.sign_name,
            "TemplateCode": spec.code,
            "TemplateParam": json.dumps(variables, ensure_ascii=False),
        }
        if message.dedupe_key:
            params["OutId"] = message.dedupe_key[:64]
        params["Signature"] = sign_v1(params, self.options.access_key_secret.reveal())
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        _, data = self.request_json("POST", self.options.endpoint, what="SendSms", data=body, headers=headers)
        code = str(data.get("Code", ""))
        if code == "OK":
            return Receipt(
                provider_message_id=data.get("BizId"), detail={"request_id": data.get("RequestId")}
            )
        detail = data.get("Message", "")
        if code in _RETRY:
            raise self.fail("SendSms", code, detail)
        if code in _DEFER:
            raise self.fail("SendSms", code, detail, retry_after=self.options.defer_seconds)
        # isv.* / signature / timestamp problems: resending the same request cannot succeed
        raise self.fail("SendSms", code, detail, permanent=not code.startswith("isp."))
