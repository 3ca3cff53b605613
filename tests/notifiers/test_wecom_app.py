from __future__ import annotations

from typing import Any

import pytest

from notifiers.base import NotifierError, Recipient
from notifiers.wecom_app import WecomAppNotifier
from tests.notifiers.conftest import TIMEOUTS, FakeClock, assert_no_leak, message


def app(server: Any, secrets: Any, clock: FakeClock, **options: Any) -> WecomAppNotifier:
    opts = {
        "corpid": "ww0123",
        "corpsecret": {"env": "CORP_SECRET"},
        "agentid": 1000002,
        "base_url": server.base_url,
        **TIMEOUTS,
        **options,
    }
    return WecomAppNotifier.from_options("wecom", opts, secrets=secrets, clock=clock)


def test_sends_markdown_to_the_user_id(wecom, secrets, clock):
    receipt = app(wecom, secrets, clock).send(message())
    (body,) = wecom.sent()
    assert body["touser"] == "zhangsan" and body["agentid"] == 1000002
    assert body["msgtype"] == "markdown" and body["markdown"]["content"] == message().markdown
    assert receipt.provider_message_id and receipt.detail == {}


def test_token_is_cached_until_shortly_before_expiry(wecom, secrets, clock):
    notifier = app(wecom, secrets, clock)
    notifier.send(message())
    clock.advance(7200 - 300 - 1)
    notifier.send(message())
    assert wecom.gettoken_calls == 1
    clock.advance(2)  # inside the refresh margin
    notifier.send(message())
    assert wecom.gettoken_calls == 2


@pytest.mark.parametrize("break_tokens", ["revoke_tokens", "expire_tokens"])
def test_rejected_token_is_refreshed_once_and_the_send_retried(wecom, secrets, clock, break_tokens):
    notifier = app(wecom, secrets, clock)
    notifier.send(message())
    getattr(wecom, break_tokens)()
    notifier.send(message())
    assert wecom.gettoken_calls == 2
    assert len(wecom.sent()) == 3  # the first send, the rejected one, the retry


@pytest.mark.parametrize("errcode", [40014, 42001, 40001])
def test_token_refresh_happens_only_once(wecom, secrets, clock, errcode):
    wecom.fail_next(2, code=errcode, path="/cgi-bin/message/send")
    with pytest.raises(NotifierError) as exc:
        app(wecom, secrets, clock).send(message())
    assert not exc.value.permanent and exc.value.provider_code == str(errcode)
    assert wecom.gettoken_calls == 2


@pytest.mark.parametrize(
    ("errcode", "permanent"), [(-1, False), (45009, False), (40056, True), (60020, True), (81013, True)]
)
def test_send_errcodes_are_classified(wecom, secrets, clock, errcode, permanent, caplog):
    notifier = app(wecom, secrets, clock)
    notifier.access_token()
    wecom.fail_next(code=errcode)
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent is permanent and exc.value.retry_after is None
    assert_no_leak(exc.value, notifier, caplog=caplog)


def test_partly_invalid_recipients_count_as_sent_and_are_reported(wecom, secrets, clock, caplog):
    ghost = Recipient("赵六", mobile="13700007777", wecom_userid="ghost")
    receipt = app(wecom, secrets, clock).send(message(mentions=(ghost,)))
    assert wecom.sent()[0]["touser"] == "zhangsan|ghost"
    assert receipt.detail["invalid_recipients"] == ("赵六(尾号7777)",)
    assert any("赵六(尾号7777)" in r.getMessage() for r in caplog.records)
    assert all("13700007777" not in r.getMessage() for r in caplog.records)


def test_all_recipients_invalid_is_permanent(wecom, secrets, clock):
    with pytest.raises(NotifierError) as exc:
        app(wecom, secrets, clock).send(message(recipient=Recipient("赵六", wecom_userid="ghost")))
    assert exc.value.permanent and exc.value.provider_code == "81013"


def test_recipient_without_user_id_is_permanent_without_a_request(wecom, secrets, clock):
    with pytest.raises(NotifierError) as exc:
        app(wecom, secrets, clock).send(message(recipient=Recipient("钱七", mobile="13600006666")))
    assert exc.value.permanent and wecom.requests == []


def test_bad_corpsecret_is_permanent_and_does_not_leak(wecom, secrets, clock, caplog):
    notifier = app(wecom, secrets, clock, corpsecret={"env": "TENCENT_KEY"})
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent and exc.value.provider_code == "40001"
    assert_no_leak(exc.value, notifier, notifier.options, caplog=caplog)


def test_agentid_as_string_is_accepted_and_sent_as_int(wecom, secrets, clock):
    app(wecom, secrets, clock, agentid="1000002").send(message())
    assert wecom.sent()[0]["agentid"] == 1000002


def test_long_content_is_split_under_2048_bytes(wecom, secrets, clock):
    text = "\n".join(f"工单 {i:04d} 超期" for i in range(300))
    receipt = app(wecom, secrets, clock, msgtype="text").send(message(text=text, markdown=None))
    contents = [b["text"]["content"] for b in wecom.sent()]
    assert receipt.parts == len(contents) > 1
    assert all(len(c.encode()) <= 2048 for c in contents)
