"""Tencent Cloud SMS (腾讯云短信, API 3.0 SendSms 2021-01-11), TC3-HMAC-SHA256 over the exact bytes sent.

Tencent answers HTTP 200 even when a number failed: every ``SendStatusSet[].Code`` must be ``Ok``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import Field

from notifiers.base import Clock, Message, Receipt
from notifiers.http import HttpNotifier, SmsOptions, SmsTemplates, mobile_of
from notifiers.secrets import SecretResolver, SecretValue

_RETRY = {"InternalError.Timeout", "InternalError.SendAndRecvFail"}
_DEFER_SECONDS = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
}
_DEFER_UNTIL_TOMORROW = {
    "LimitExceeded.PhoneNumberDailyLimit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit",
}
_BEIJING = 8 * 3600


def tc3_authorization(
    *, secret_id: str, secret_key: str, host: str, body: bytes, timestamp: int, service: str = "sms"
) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = (
        f"POST\n/\n\ncontent-type:application/json\nhost:{host}\n\ncontent-type;host\n"
        f"{hashlib.sha256(body).hexdigest()}"
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"

    def _hmac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    credential = f"Credential={secret_id}/{scope}"
    return f"TC3-HMAC-SHA256 {credential}, SignedHeaders=content-type;host, Signature={signature}"


class TencentSmsOptions(SmsOptions):
    secret_id: SecretValue
    secret_key: SecretValue
    sms_sdk_app_id: str = Field(min_length=1)
    endpoint: str = "https://sms.tencentcloudapi.com/"
    region: str = "ap-guangzhou"
    param_max_chars: int | None = Field(26, ge=1)


class TencentSmsNotifier(HttpNotifier):
    type_name = "sms_tencent"
    formats = ("txt",)
    quiet_hours_by_default = True
    rate_limit_per = "mobile"  # no documented figure: set channels.<name>.rate_limit_per_minute

    def __init__(
        self, name: str, options: TencentSmsOptions, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(name, options)
        self.options = options
        self.templates = SmsTemplates(name, options)
        self._wall_clock = wall_clock

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
    ) -> Self:
        return cls(name, TencentSmsOptions.parse(name, options, secrets))

    def __repr__(self) -> str:
        return f"TencentSmsNotifier({self.name!r})"

    def send(self, message: Message) -> Receipt:
        mobile = mobile_of(self.name, message)
        spec, values = self.templates.positional(message)
        payload = {
            "PhoneNumberSet": [mobile if mobile.startswith("+") else f"+86{mobile}"],
            "SmsSdkAppId": self.options.sms_sdk_app_id,
            "SignName": self.options.sign_name,
            "TemplateId": spec.code,
            "TemplateParamSet": values,
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        host = urlsplit(self.options.endpoint).netloc
        now = int(self._wall_clock())
        headers = {
            "Content-Type": "application/json",
            "Host": host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(now),
            "X-TC-Region": self.options.region,
            "Authorization": tc3_authorization(
                secret_id=self.options.secret_id.reveal(),
                secret_key=self.options.secret_key.reveal(),
                host=host,
                body=body,
                timestamp=now,
            ),
        }
        _, data = self.request_json("POST", self.options.endpoint, what="SendSms", data=body, headers=headers)
        response = data.get("Response")
        if not isinstance(response, dict):
            raise self.fail("SendSms", "malformed", "reply without Response")
        error = response.get("Error")
        if isinstance(error, dict):
            self._raise(str(error.get("Code", "")), error.get("Message", ""), now)
        statuses = response.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses:
            raise self.fail("SendSms", "malformed", "reply without SendStatusSet")
        for status in statuses:
            if status.get("Code") != "Ok":
                self._raise(str(status.get("Code", "")), status.get("Message", ""), now)
        return Receipt(
            provider_message_id=statuses[0].get("SerialNo"), detail={"request_id": response.get("RequestId")}
        )

    def _raise(self, code: str, detail: object, now: int) -> None:
        if code in _RETRY:
            raise self.fail("SendSms", code, detail)
        if code in _DEFER_SECONDS:
            raise self.fail("SendSms", code, detail, retry_after=_DEFER_SECONDS[code])
        if code in _DEFER_UNTIL_TOMORROW:
            raise self.fail("SendSms", code, detail, retry_after=_seconds_to_beijing_midnight(now))
        # everything else (bad number, blacklist, unapproved sign/template, balance, auth) needs a human
        raise self.fail("SendSms", code, detail, permanent=not code.startswith("InternalError"))


def _seconds_to_beijing_midnight(now: int) -> float:
    local = datetime.fromtimestamp(now + _BEIJING, UTC)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - local).total_seconds()
