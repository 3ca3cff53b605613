"""China Mobile 云MAS (移动云MAS) HTTP submit, common in government units.

``mode: template`` posts to ``/sms/tmpsubmit`` with the template configured for the message kind;
``mode: plain`` posts ``message.text`` to ``/sms/norsubmit``. The body is base64 of a JSON object whose
``mac`` is the lowercase hex MD5 of the fields concatenated in the documented order (UTF-8):
plain ``ecName+apId+secretKey+mobiles+content+sign+addSerial``; template
``ecName+apId+secretKey+templateId+mobiles+params+sign+addSerial`` (template order per the 云MAS
HTTP interface document; not confirmed in CONTRACTS.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field

from notifiers.base import Clock, Message, Receipt
from notifiers.http import HttpNotifier, SmsOptions, SmsTemplates, mobile_of
from notifiers.secrets import SecretResolver, SecretValue


def mas_mac(*fields: str) -> str:
    return hashlib.md5("".join(fields).encode(), usedforsecurity=False).hexdigest()


class CmccMasOptions(SmsOptions):
    base_url: str
    ec_name: str = Field(min_length=1, description="企业名称 as registered")
    ap_id: str = Field(min_length=1, description="接口用户名")
    secret_key: SecretValue
    add_serial: str = ""
    mode: Literal["template", "plain"] = "template"
    param_max_chars: int | None = Field(None, ge=1)


class CmccMasNotifier(HttpNotifier):
    type_name = "sms_cmcc_mas"
    formats = ("txt",)
    quiet_hours_by_default = True
    rate_limit_per = "mobile"  # no documented figure: set channels.<name>.rate_limit_per_minute

    def __init__(self, name: str, options: CmccMasOptions) -> None:
        super().__init__(name, options)
        self.options = options
        self.templates = SmsTemplates(name, options)

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
    ) -> Self:
        return cls(name, CmccMasOptions.parse(name, options, secrets))

    def __repr__(self) -> str:
        return f"CmccMasNotifier({self.name!r})"

    def send(self, message: Message) -> Receipt:
        o = self.options
        mobile = mobile_of(self.name, message)
        secret = o.secret_key.reveal()
        body: dict[str, str] = {"ecName": o.ec_name, "apId": o.ap_id, "mobiles": mobile}
        if o.mode == "plain":
            path = "/sms/norsubmit"
            body.update(content=message.text, sign=o.sign_name, addSerial=o.add_serial)
            mac_fields = [o.ec_name, o.ap_id, secret, mobile, message.text, o.sign_name, o.add_serial]
        else:
            path = "/sms/tmpsubmit"
            spec, values = self.templates.positional(message)
            params = json.dumps(values, ensure_ascii=False)
            body.update(templateId=spec.code, params=params, sign=o.sign_name, addSerial=o.add_serial)
            mac_fields = [o.ec_name, o.ap_id, secret, spec.code, mobile, params, o.sign_name, o.add_serial]
        body["mac"] = mas_mac(*mac_fields)
        encoded = base64.b64encode(json.dumps(body, ensure_ascii=False).encode())
        url = o.base_url.rstrip("/") + path
        _, data = self.request_json(
            "POST", url, what="云MAS submit", data=encoded, headers={"Content-Type": "text/plain"}
        )
        if data.get("success") is True and data.get("rspcod") == "success":
            return Receipt(provider_message_id=data.get("msgGroup"))
        # IllegalMac, IllegalSignId, InvalidMessage, InvalidUsrOrPwd, NoSignId, TooManyMobiles: all permanent
        raise self.fail("云MAS submit", data.get("rspcod", "unknown"), "", permanent=True)
