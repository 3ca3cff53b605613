"""Aliyun, Tencent and 云MAS SMS: signed requests, template params, code classification."""

from __future__ import annotations

import json
from typing import Any

import pytest

from notifiers.base import NotifierError, Recipient
from notifiers.sms_aliyun import AliyunSmsNotifier
from notifiers.sms_cmcc_mas import CmccMasNotifier
from notifiers.sms_tencent import TencentSmsNotifier, _seconds_to_beijing_midnight
from tests.notifiers.conftest import MOBILE, TIMEOUTS, assert_no_leak, message

TEMPLATES = {"warning": {"code": "SMS_1001", "params": ["case_no", "unit", "due_at"]}}


def aliyun_sms(server: Any, secrets: Any, **options: Any) -> AliyunSmsNotifier:
    opts = {
        "access_key_id": "LTAI-id",
        "access_key_secret": {"env": "ALIYUN_SECRET"},
        "endpoint": server.base_url + "/",
        "sign_name": "盘锦12345",
        "templates": TEMPLATES,
        **TIMEOUTS,
        **options,
    }
    return AliyunSmsNotifier.from_options("sms", opts, secrets=secrets)


def tencent_sms(server: Any, secrets: Any, **options: Any) -> TencentSmsNotifier:
    opts = {
        "secret_id": {"env": "TENCENT_ID"},
        "secret_key": {"env": "TENCENT_KEY"},
        "sms_sdk_app_id": "1400000001",
        "endpoint": server.base_url + "/",
        "sign_name": "盘锦12345",
        "templates": {"warning": {"code": "2001", "params": ["case_no", "due_at"]}},
        **TIMEOUTS,
        **options,
    }
    return TencentSmsNotifier.from_options("sms", opts, secrets=secrets)


def mas_sms(server: Any, secrets: Any, **options: Any) -> CmccMasNotifier:
    opts = {
        "base_url": server.base_url,
        "ec_name": "盘锦市营商局",
        "ap_id": "sla",
        "secret_key": {"env": "MAS_KEY"},
        "sign_name": "sign01",
        "templates": {"warning": {"code": "tpl-9", "params": ["case_no", "due_at"]}},
        **TIMEOUTS,
        **options,
    }
    return CmccMasNotifier.from_options("mas", opts, secrets=secrets)


# --- Aliyun -----------------------------------------------------------------------------------------


def test_aliyun_sends_a_correctly_signed_template_request(aliyun, secrets):
    receipt = aliyun_sms(aliyun, secrets).send(message(dedupe_key="case-123:warning"))
    (form,) = aliyun.sent()
    assert form["PhoneNumbers"] == MOBILE and form["TemplateCode"] == "SMS_1001"
    assert json.loads(form["TemplateParam"]) == dict(message().params)
    assert form["OutId"] == "case-123:warning" and form["RegionId"] == "cn-hangzhou"
    assert receipt.provider_message_id == "biz-1"


def test_aliyun_nonce_is_unique_per_request(aliyun, secrets):
    notifier = aliyun_sms(aliyun, secrets)
    notifier.send(message())
    notifier.send(message())
    assert len({f["SignatureNonce"] for f in aliyun.sent()}) == 2


def test_aliyun_wrong_secret_is_rejected_by_the_signature_check(aliyun, secrets, caplog):
    notifier = aliyun_sms(aliyun, secrets, access_key_secret={"env": "MAS_KEY"})
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent and exc.value.provider_code == "SignatureDoesNotMatch"
    assert_no_leak(exc.value, notifier, notifier.options, caplog=caplog)


def test_aliyun_stale_timestamp_is_permanent(aliyun, secrets):
    notifier = aliyun_sms(aliyun, secrets)
    notifier._wall_clock = lambda: 1_000_000_000.0  # 2001: far outside the 15-minute window
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent and exc.value.provider_code == "InvalidTimeStamp.Expired"


def test_aliyun_params_are_truncated_to_the_variable_limit(aliyun, secrets):
    long_unit = "盘锦市兴隆台区住房和城乡建设局城市更新与老旧小区改造工作专班综合协调组第三办公室"
    assert len(long_unit) > 35
    aliyun_sms(aliyun, secrets).send(message(params={**message().params, "unit": long_unit}))
    sent = json.loads(aliyun.sent()[0]["TemplateParam"])
    assert sent["unit"] == long_unit[:35]


def test_aliyun_param_limit_is_configurable(aliyun, secrets):
    aliyun.param_limit = 100
    long_unit = "单" * 60
    aliyun_sms(aliyun, secrets, param_max_chars=None).send(
        message(params={**message().params, "unit": long_unit})
    )
    assert json.loads(aliyun.sent()[0]["TemplateParam"])["unit"] == long_unit


def test_aliyun_named_template_variables(aliyun, secrets):
    aliyun.templates["SMS_2002"] = ("deadline",)
    templates = {"warning": {"code": "SMS_2002", "params": {"deadline": "due_at"}}}
    aliyun_sms(aliyun, secrets, templates=templates).send(message())
    assert json.loads(aliyun.sent()[0]["TemplateParam"]) == {"deadline": "10月11日00:00"}


@pytest.mark.parametrize(
    ("code", "permanent", "retry_after"),
    [
        ("isp.SYSTEM_ERROR", False, None),
        ("isv.BUSINESS_LIMIT_CONTROL", False, 60.0),
        ("isv.MOBILE_NUMBER_ILLEGAL", True, None),
        ("isv.TEMPLATE_MISSING_PARAMETERS", True, None),
        ("isv.INVALID_JSON_PARAM", True, None),
        ("isv.PARAM_LENGTH_LIMIT", True, None),
        ("isv.SMS_SIGNATURE_ILLEGAL", True, None),
        ("isv.SMS_TEMPLATE_ILLEGAL", True, None),
        ("isv.AMOUNT_NOT_ENOUGH", True, None),
        ("isv.OUT_OF_SERVICE", True, None),
        ("SignatureDoesNotMatch", True, None),
        ("InvalidTimeStamp.Expired", True, None),
    ],
)
def test_aliyun_codes_are_classified(aliyun, secrets, code, permanent, retry_after, caplog):
    aliyun.fail_next(code=code)
    with pytest.raises(NotifierError) as exc:
        aliyun_sms(aliyun, secrets).send(message())
    assert (exc.value.permanent, exc.value.retry_after, exc.value.provider_code) == (
        permanent,
        retry_after,
        code,
    )
    assert_no_leak(exc.value, caplog=caplog)


def test_aliyun_illegal_mobile_from_the_server_is_permanent(aliyun, secrets):
    with pytest.raises(NotifierError) as exc:
        aliyun_sms(aliyun, secrets).send(message(recipient=Recipient("张三", mobile="12345")))
    assert exc.value.permanent and exc.value.provider_code == "isv.MOBILE_NUMBER_ILLEGAL"


def test_kind_without_template_is_permanent_and_names_the_key(aliyun, secrets):
    with pytest.raises(NotifierError) as exc:
        aliyun_sms(aliyun, secrets).send(message(kind="breach"))
    assert exc.value.permanent
    assert "'breach'" in exc.value.reason and "channels.sms.templates.breach" in exc.value.reason
    assert aliyun.requests == []


def test_missing_message_param_is_permanent_and_names_it(aliyun, secrets):
    with pytest.raises(NotifierError) as exc:
        aliyun_sms(aliyun, secrets).send(message(params={"case_no": "1"}))
    assert exc.value.permanent and "'unit'" in exc.value.reason


def test_recipient_without_mobile_is_permanent(aliyun, secrets):
    with pytest.raises(NotifierError) as exc:
        aliyun_sms(aliyun, secrets).send(message(recipient=Recipient("张三")))
    assert exc.value.permanent and aliyun.requests == []


# --- Tencent ----------------------------------------------------------------------------------------


def test_tencent_sends_a_tc3_signed_request(tencent, secrets):
    receipt = tencent_sms(tencent, secrets).send(message())
    (body,) = tencent.sent()
    assert body["PhoneNumberSet"] == [f"+86{MOBILE}"]
    assert body["TemplateId"] == "2001" and body["TemplateParamSet"] == ["2024100100123", "10月11日00:00"]
    assert receipt.provider_message_id == "sn-1"


def test_tencent_wrong_key_fails_the_signature_check(tencent, secrets, caplog):
    notifier = tencent_sms(tencent, secrets, secret_key={"env": "MAS_KEY"})
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent and exc.value.provider_code == "AuthFailure.SignatureFailure"
    assert_no_leak(exc.value, notifier, notifier.options, caplog=caplog)


def test_tencent_clock_skew_is_signature_expire(tencent, secrets):
    notifier = tencent_sms(tencent, secrets)
    notifier._wall_clock = lambda: 1_000_000_000.0
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent and exc.value.provider_code == "AuthFailure.SignatureExpire"


def test_tencent_params_are_truncated(tencent, secrets):
    tencent_sms(tencent, secrets, param_max_chars=6).send(message())
    assert tencent.sent()[0]["TemplateParamSet"] == ["202410", "10月11日"]


@pytest.mark.parametrize(
    ("code", "permanent", "deferred"),
    [
        ("LimitExceeded.PhoneNumberThirtySecondLimit", False, True),
        ("LimitExceeded.PhoneNumberOneHourLimit", False, True),
        ("LimitExceeded.PhoneNumberDailyLimit", False, True),
        ("LimitExceeded.PhoneNumberSameContentDailyLimit", False, True),
        ("LimitExceeded.DeliveryFrequencyLimit", False, True),
        ("InternalError.Timeout", False, False),
        ("InternalError.SendAndRecvFail", False, False),
        ("InvalidParameterValue.IncorrectPhoneNumber", True, False),
        ("FailedOperation.PhoneNumberInBlacklist", True, False),
        ("FailedOperation.SignatureIncorrectOrUnapproved", True, False),
        ("FailedOperation.TemplateIncorrectOrUnapproved", True, False),
        ("FailedOperation.InsufficientBalanceInSmsPackage", True, False),
        ("AuthFailure.SignatureFailure", True, False),
        ("AuthFailure.SignatureExpire", True, False),
    ],
)
@pytest.mark.parametrize("where", ["Error", "SendStatusSet"])
def test_tencent_codes_are_classified(tencent, secrets, code, permanent, deferred, where):
    if where == "Error":
        tencent.fail_next(code=code)
    else:
        tencent.number_codes[f"+86{MOBILE}"] = code  # HTTP 200, no Error, one number failed
    with pytest.raises(NotifierError) as exc:
        tencent_sms(tencent, secrets).send(message())
    assert (exc.value.permanent, exc.value.deferred, exc.value.provider_code) == (permanent, deferred, code)


def test_tencent_daily_limit_defers_until_beijing_midnight(tencent, secrets):
    tencent.number_codes[f"+86{MOBILE}"] = "LimitExceeded.PhoneNumberDailyLimit"
    with pytest.raises(NotifierError) as exc:
        tencent_sms(tencent, secrets).send(message())
    assert exc.value.retry_after is not None and 0 < exc.value.retry_after <= 86400
    assert _seconds_to_beijing_midnight(1_727_700_000) == 3 * 3600 + 20 * 60  # from 2024-09-30 20:40 +08:00


# --- 云MAS ------------------------------------------------------------------------------------------


def test_mas_template_submit_has_a_valid_mac(mas, secrets):
    receipt = mas_sms(mas, secrets).send(message())
    (body,) = mas.sent()
    assert mas.requests[0].path == "/sms/tmpsubmit"
    assert body["templateId"] == "tpl-9" and json.loads(body["params"]) == ["2024100100123", "10月11日00:00"]
    assert receipt.provider_message_id == "mg-1"


def test_mas_plain_submit_sends_the_text(mas, secrets):
    mas_sms(mas, secrets, mode="plain").send(message())
    assert mas.requests[0].path == "/sms/norsubmit"
    assert mas.sent()[0]["content"] == message().text


@pytest.mark.parametrize("mode", ["plain", "template"])
def test_mas_wrong_key_gives_illegal_mac(mas, secrets, mode, caplog):
    notifier = mas_sms(mas, secrets, mode=mode, secret_key={"env": "ALIYUN_SECRET"})
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent and exc.value.provider_code == "IllegalMac"
    assert_no_leak(exc.value, notifier, caplog=caplog)


@pytest.mark.parametrize(
    "code", ["IllegalMac", "IllegalSignId", "InvalidMessage", "InvalidUsrOrPwd", "NoSignId", "TooManyMobiles"]
)
def test_mas_failures_are_permanent(mas, secrets, code):
    mas.fail_next(code=code)
    with pytest.raises(NotifierError) as exc:
        mas_sms(mas, secrets).send(message())
    assert exc.value.permanent and exc.value.provider_code == code
