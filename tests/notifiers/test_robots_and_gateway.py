"""DingTalk robot, the generic HTTP SMS gateway, and the shared HTTP failure handling of every channel."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from notifiers.base import NotifierError
from notifiers.dingtalk import DingtalkNotifier
from notifiers.sms_http import HttpSmsNotifier
from tests.fakes import FakeServer, Recorded, Reply
from tests.notifiers.conftest import MOBILE, SECRETS, TIMEOUTS, assert_no_leak, message
from tests.notifiers.test_sms import aliyun_sms, mas_sms, tencent_sms
from tests.notifiers.test_wecom_app import app
from tests.notifiers.test_wecom_bot import bot


def ding(server: Any, secrets: Any, clock: Any, **options: Any) -> DingtalkNotifier:
    opts = {
        "access_token": {"env": "DING_TOKEN"},
        "secret": {"env": "DING_SECRET"},
        "base_url": server.base_url,
        **TIMEOUTS,
        **options,
    }
    return DingtalkNotifier.from_options("ding", opts, secrets=secrets, clock=clock)


def test_dingtalk_sends_signed_markdown_with_at_mobiles(dingtalk, secrets, clock):
    ding(dingtalk, secrets, clock).send(message())
    (body,) = dingtalk.sent()
    assert body["msgtype"] == "markdown" and body["markdown"]["title"] == "工单即将超期"
    assert body["markdown"]["text"].endswith(f"@{MOBILE}")
    assert body["at"] == {"atMobiles": [MOBILE], "isAtAll": False}


def test_dingtalk_wrong_secret_is_permanent_310000(dingtalk, secrets, clock, caplog):
    notifier = ding(dingtalk, secrets, clock, secret={"env": "MAS_KEY"})
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent and exc.value.provider_code == "310000"
    assert_no_leak(exc.value, notifier, notifier.options, caplog=caplog)


def test_dingtalk_stale_timestamp_is_rejected(dingtalk, secrets, clock):
    opts = {
        "access_token": {"env": "DING_TOKEN"},
        "secret": {"env": "DING_SECRET"},
        "base_url": dingtalk.base_url,
    }
    notifier = DingtalkNotifier(
        "ding",
        DingtalkNotifier.from_options("ding", opts, secrets=secrets).options,
        clock=clock,
        wall_clock=lambda: 1_000_000_000.0,
    )
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.provider_code == "310000"


@pytest.mark.parametrize(
    ("errcode", "permanent", "retry_after"), [(310000, True, None), (130101, False, 60.0), (-1, False, None)]
)
def test_dingtalk_errcodes_are_classified(dingtalk, secrets, clock, errcode, permanent, retry_after):
    dingtalk.fail_next(code=errcode)
    with pytest.raises(NotifierError) as exc:
        ding(dingtalk, secrets, clock).send(message())
    assert (exc.value.permanent, exc.value.retry_after) == (permanent, retry_after)


def test_dingtalk_declares_its_limit_for_the_outbox_and_sends_without_counting(dingtalk, secrets, clock):
    notifier = ding(dingtalk, secrets, clock)
    for _ in range(3):  # the limit is the outbox's, shared through the database: the notifier just sends
        notifier.send(message())
    assert len(dingtalk.requests) == 3
    assert DingtalkNotifier.rate_limit_per_minute == 20 and notifier.requests_for(message()) == 1


# --- generic HTTP gateway ---------------------------------------------------------------------------


class FakeGateway(FakeServer):
    """An in-house gateway: JSON or form in, {"result": {"code": …, "msg": …}} out."""

    def __init__(self) -> None:
        super().__init__()
        self.reply_code = "0"

    def error(self, code: Any) -> Reply:
        return Reply(200, {"result": {"code": code, "msg": f"号码 {MOBILE} 发送失败"}})

    def handle(self, req: Recorded) -> Reply:
        if req.headers.get("x-token") != SECRETS["GATEWAY_TOKEN"]:
            return self.error("401")
        return Reply(200, {"result": {"code": self.reply_code, "msg": "ok"}})


@pytest.fixture
def gateway():
    server = FakeGateway().start()
    yield server
    server.stop()


def gw(server: Any, secrets: Any, **options: Any) -> HttpSmsNotifier:
    opts = {
        "url": server.base_url + "/sms/send",
        "headers": {"X-Token": "{{ secrets.token }}"},
        "secrets": {"token": {"env": "GATEWAY_TOKEN"}},
        "body": (
            '{"phone": {{ mobile | tojson }}, "content": {{ text | tojson }}, '
            '"case": {{ params.case_no | tojson }}}'
        ),
        "success_field": "result.code",
        "success_value": "0",
        "message_field": "result.msg",
        "permanent_values": ["1001"],
        **TIMEOUTS,
        **options,
    }
    return HttpSmsNotifier.from_options("gw", opts, secrets=secrets)


def test_gateway_renders_a_json_body_from_the_template(gateway, secrets):
    gw(gateway, secrets).send(message(text='含"引号"的正文'))
    (req,) = gateway.requests
    assert req.path == "/sms/send" and req.headers["content-type"].startswith("application/json")
    assert req.json() == {"phone": MOBILE, "content": '含"引号"的正文', "case": "2024100100123"}


def test_gateway_form_body(gateway, secrets):
    gw(gateway, secrets, encoding="form", body={"mobile": "{{ mobile }}", "msg": "{{ text }}"}).send(
        message()
    )
    assert gateway.requests[0].form() == {"mobile": MOBILE, "msg": message().text}


@pytest.mark.parametrize(("code", "permanent"), [("1001", True), ("500", False)])
def test_gateway_failure_value_is_classified_and_masked(gateway, secrets, code, permanent, caplog):
    gateway.fail_next(code=code)
    with pytest.raises(NotifierError) as exc:
        gw(gateway, secrets).send(message())
    assert exc.value.permanent is permanent and "尾号6654" in exc.value.reason
    assert_no_leak(exc.value, caplog=caplog)


def test_gateway_template_with_unknown_variable_is_permanent(gateway, secrets):
    with pytest.raises(NotifierError) as exc:
        gw(gateway, secrets, body='{"x": {{ nosuch | tojson }}}').send(message())
    assert exc.value.permanent and "channels.gw.body" in exc.value.reason and gateway.requests == []


# --- shared HTTP failure handling, for every HTTP channel --------------------------------------------

CHANNELS = {
    "wecom_bot": ("wecom", lambda s, sec, clk: bot(s, sec, clk, mention_recipient=False)),
    "wecom_app": ("wecom", app),
    "sms_aliyun": ("aliyun", lambda s, sec, clk: aliyun_sms(s, sec)),
    "sms_tencent": ("tencent", lambda s, sec, clk: tencent_sms(s, sec)),
    "sms_cmcc_mas": ("mas", lambda s, sec, clk: mas_sms(s, sec)),
    "dingtalk": ("dingtalk", ding),
}


@pytest.fixture(params=sorted(CHANNELS))
def channel(request, secrets, clock):
    fixture, build = CHANNELS[request.param]
    server = request.getfixturevalue(fixture)
    return server, build(server, secrets, clock)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 502}, "HTTP 502"),
        ({"hang": True}, "no reply within 0.3s"),
        ({"malformed": True}, "malformed"),
    ],
)
def test_wire_failures_are_transient(channel, fault, expected, caplog):
    server, notifier = channel
    server.fail_next(5, **fault)
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert not exc.value.permanent and not exc.value.deferred
    assert expected in exc.value.reason
    assert_no_leak(exc.value, notifier, caplog=caplog)


def test_connection_refused_is_transient(secrets, clock, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    dead = type("Dead", (), {"base_url": f"http://127.0.0.1:{port}"})()
    notifier = bot(dead, secrets, clock)
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert not exc.value.permanent and "connection failed" in exc.value.reason
    assert exc.value.__suppress_context__  # the requests exception (whose text has the URL) is not chained
    assert_no_leak(exc.value, caplog=caplog)


def test_http_429_is_flow_control(gateway, secrets):
    gateway.fail_next(status=429)
    with pytest.raises(NotifierError) as exc:
        gw(gateway, secrets).send(message())
    # the fake answers 429 with a non-JSON body; Retry-After absent → 60 s
    assert exc.value.deferred and exc.value.retry_after == 60.0
