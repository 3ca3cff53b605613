"""Fixtures for the notifier tests: fake vendor servers, a secret resolver, a fake clock, messages."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from notifiers.base import Message, Recipient
from notifiers.secrets import SecretResolver
from tests.fakes import FakeServer
from tests.fakes.aliyun import FakeAliyunSms
from tests.fakes.dingtalk import FakeDingtalk
from tests.fakes.mas import FakeCmccMas
from tests.fakes.tencent import FakeTencentSms
from tests.fakes.wecom import FakeWecom

# Distinctive secret values: tests assert these strings never leak into errors, reprs or logs.
SECRETS = {
    "ROBOT_KEY": "robotkey-5e3c-LEAKCHECK-a1",
    "CORP_SECRET": "corpsecret-LEAKCHECK-b2",
    "ALIYUN_SECRET": "aliyunsecret-LEAKCHECK-c3",
    "TENCENT_ID": "AKIDtencent-LEAKCHECK-d4",
    "TENCENT_KEY": "tencentkey-LEAKCHECK-e5",
    "MAS_KEY": "maskey-LEAKCHECK-f6",
    "DING_TOKEN": "dingtoken-LEAKCHECK-g7",
    "DING_SECRET": "SECdingsecret-LEAKCHECK-h8",
    "GATEWAY_TOKEN": "gatewaytoken-LEAKCHECK-i9",
    "SMTP_PASSWORD": "smtppass-LEAKCHECK-j10",
}
MOBILE = "13812346654"
TIMEOUTS = {"timeout": 0.3, "connect_timeout": 0.3}


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def secrets() -> SecretResolver:
    return SecretResolver(environ=SECRETS)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def serve(server: FakeServer) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def wecom() -> Iterator[FakeWecom]:
    yield from serve(
        FakeWecom(
            robot_keys=(SECRETS["ROBOT_KEY"],),
            corpid="ww0123",
            corpsecret=SECRETS["CORP_SECRET"],
            agentid=1000002,
            users=("zhangsan", "lisi"),
        )
    )


@pytest.fixture
def aliyun() -> Iterator[FakeAliyunSms]:
    yield from serve(
        FakeAliyunSms(
            access_key_id="LTAI-id",
            access_key_secret=SECRETS["ALIYUN_SECRET"],
            templates={"SMS_1001": ("case_no", "unit", "due_at")},
        )
    )


@pytest.fixture
def tencent() -> Iterator[FakeTencentSms]:
    yield from serve(
        FakeTencentSms(
            secret_id=SECRETS["TENCENT_ID"],
            secret_key=SECRETS["TENCENT_KEY"],
            sdk_app_id="1400000001",
            templates=("2001",),
        )
    )


@pytest.fixture
def mas() -> Iterator[FakeCmccMas]:
    yield from serve(FakeCmccMas(ec_name="盘锦市营商局", ap_id="sla", secret_key=SECRETS["MAS_KEY"]))


@pytest.fixture
def dingtalk() -> Iterator[FakeDingtalk]:
    yield from serve(FakeDingtalk(access_token=SECRETS["DING_TOKEN"], secret=SECRETS["DING_SECRET"]))


def message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {
        "recipient": Recipient("张三", mobile=MOBILE, wecom_userid="zhangsan", email="zhangsan@example.org"),
        "subject": "工单即将超期",
        "text": "工单 2024100100123 将于 10月11日 00:00 超期，请尽快办理。",
        "markdown": "**工单即将超期**\n> 工单号：2024100100123\n> 超期时间：10月11日 00:00",
        "kind": "warning",
        "params": {"case_no": "2024100100123", "unit": "兴隆台区住建局", "due_at": "10月11日00:00"},
    }
    fields.update(overrides)
    return Message(**fields)


def assert_no_leak(*texts: object, caplog: pytest.LogCaptureFixture | None = None) -> None:
    """No secret value and no full mobile in any of ``texts`` nor in any captured log record."""
    haystack = [str(t) for t in texts] + [repr(t) for t in texts]
    if caplog is not None:
        haystack += [r.getMessage() for r in caplog.records]
    for text in haystack:
        for secret in SECRETS.values():
            assert secret not in text
        assert MOBILE not in text


@pytest.fixture(autouse=True)
def _debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    # capture everything, urllib3's request lines included, so leak checks see what an operator would
    caplog.set_level(logging.DEBUG)
