from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from notifiers.base import NotifierError, Recipient
from notifiers.wecom_bot import WecomBotNotifier, split_by_bytes
from tests.notifiers.conftest import MOBILE, TIMEOUTS, FakeClock, assert_no_leak, message


def bot(server: Any, secrets: Any, clock: FakeClock, **options: Any) -> WecomBotNotifier:
    opts = {"key": {"env": "ROBOT_KEY"}, "base_url": server.base_url, **TIMEOUTS, **options}
    return WecomBotNotifier.from_options("unit_group", opts, secrets=secrets, clock=clock)


def test_sends_markdown_with_mobile_reminder(wecom, secrets, clock):
    receipt = bot(wecom, secrets, clock).send(message())
    sent = wecom.sent("/cgi-bin/webhook/send")
    assert sent[0] == {"msgtype": "markdown", "markdown": {"content": message().markdown + "\n<@zhangsan>"}}
    assert receipt.parts == 1


def test_text_mode_mentions_mobiles_of_recipient_and_mentions(wecom, secrets, clock):
    leader = Recipient("李四", mobile="13900001111")
    bot(wecom, secrets, clock, msgtype="text").send(message(mentions=(leader,)))
    (body,) = wecom.sent("/cgi-bin/webhook/send")
    assert body["text"]["content"] == message().text
    assert body["text"]["mentioned_mobile_list"] == [MOBILE, "13900001111"]
    assert body["text"]["mentioned_list"] == ["zhangsan"]


def test_markdown_cannot_at_a_mobile_so_a_text_reminder_follows(wecom, secrets, clock):
    bot(wecom, secrets, clock).send(message(recipient=Recipient("王五", mobile=MOBILE)))
    first, second = wecom.sent("/cgi-bin/webhook/send")
    assert first["msgtype"] == "markdown"
    assert second == {
        "msgtype": "text",
        "text": {"content": "请及时处理：工单即将超期", "mentioned_mobile_list": [MOBILE]},
    }


def test_long_markdown_is_split_at_line_boundaries_and_numbered(wecom, secrets, clock):
    lines = [f"> 工单 {i:04d}：兴隆台区住建局 超期 3 天" for i in range(300)]
    receipt = bot(wecom, secrets, clock, mention_recipient=False).send(message(markdown="\n".join(lines)))
    parts = [b["markdown"]["content"] for b in wecom.sent("/cgi-bin/webhook/send")]
    assert receipt.parts == len(parts) > 1
    assert all(len(p.encode()) <= 4096 for p in parts)
    assert [p.split("\n", 1)[0] for p in parts] == [f"({i}/{len(parts)})" for i in range(1, len(parts) + 1)]
    assert [line for p in parts for line in p.split("\n")[1:]] == lines  # no line cut or lost


def test_split_cuts_an_overlong_line_at_a_character_boundary():
    parts = split_by_bytes("超" * 3000, 4096)  # 9000 bytes on one line
    assert len(parts) == 3
    assert all(len(p.encode()) <= 4096 for p in parts)
    assert "".join(p.split("\n", 1)[1] for p in parts) == "超" * 3000


def test_short_content_is_not_numbered():
    assert split_by_bytes("a\nb", 4096) == ["a\nb"]


def test_requests_for_counts_the_parts_still_to_send(wecom, secrets, clock):
    # the outbox reserves these in the shared rate limit (tests/notifiers/test_shared_rate_limit.py)
    notifier = bot(wecom, secrets, clock, mention_recipient=False)
    long = message(markdown="\n".join(["行" * 600] * 4))  # 7.2 KB: 2 parts of at most 4096 bytes
    assert notifier.requests_for(message()) == 1
    assert notifier.requests_for(long) == 2
    assert notifier.requests_for(replace(long, parts_delivered=1)) == 1
    assert WecomBotNotifier.rate_limit_per_minute == 20 and WecomBotNotifier.rate_keys(long) == ("",)
    notifier.send(replace(long, parts_delivered=1))
    (only,) = wecom.sent("/cgi-bin/webhook/send")
    assert only["markdown"]["content"].startswith("(2/2)")


@pytest.mark.parametrize(
    ("errcode", "permanent", "retry_after"),
    [(93000, True, None), (40058, True, None), (45009, False, 60.0), (-1, False, None), (12345, False, None)],
)
def test_errcodes_are_classified(wecom, secrets, clock, errcode, permanent, retry_after, caplog):
    wecom.fail_next(code=errcode)
    with pytest.raises(NotifierError) as exc:
        bot(wecom, secrets, clock, mention_recipient=False).send(message())
    assert (exc.value.permanent, exc.value.retry_after) == (permanent, retry_after)
    assert exc.value.provider_code == str(errcode)
    assert_no_leak(exc.value, caplog=caplog)


def test_wrong_key_is_permanent_and_the_key_never_leaks(wecom, secrets, clock, caplog):
    notifier = WecomBotNotifier.from_options(
        "g", {"key": {"env": "DING_TOKEN"}, "base_url": wecom.base_url}, secrets=secrets, clock=clock
    )
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent and exc.value.provider_code == "93000"
    assert any("webhook/send" in r.getMessage() for r in caplog.records)  # urllib3 did log the request line
    assert_no_leak(exc.value, notifier, notifier.options, caplog=caplog)


def test_robot_flow_control_from_the_server_is_a_deferral(wecom, secrets, clock):
    wecom.robot_limit = 2
    notifier = bot(wecom, secrets, clock, mention_recipient=False)
    notifier.send(message())
    notifier.send(message())
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.deferred and exc.value.provider_code == "45009"
