"""Issue 14 finding 4: a message sent as several requests resumes from its first undelivered part.

Before the fix, a long WeCom message whose second part was rate-limited (45009) was sent again from its
first part on every retry: 5 copies of part 1 in 5 rounds, for up to a day, since deferrals are not attempts.
Runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture), through the fake WeCom server.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from daemon.config import Config
from daemon.pipeline.outbox import Dispatcher
from daemon.storage.store import Store
from notifiers.registry import build_notifiers
from notifiers.secrets import SecretResolver
from tests.fakes import Recorded, Reply
from tests.fakes.wecom import FakeWecom
from tests.notifiers.conftest import SECRETS, serve
from tests.outbox_helpers import alert_payload, at, person, queue, rows

NOW = at("2026-11-20 09:00")
ROUND = timedelta(minutes=10)  # past the robot's 60 s deferral and the app's backoff for its first retries


class PartLimitedWecom(FakeWecom):
    """Answers 45009 (frequency limit) to every request carrying part ``limited`` of a split message."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.limited: int | None = None

    def handle(self, req: Recorded) -> Reply:
        if req.method == "POST" and self.limited is not None:
            body = req.json()
            content = str(body.get(body.get("msgtype"), {}).get("content", ""))
            if content.startswith(f"({self.limited}/"):
                return self.error(45009)
        return super().handle(req)


@pytest.fixture
def limited_wecom() -> Iterator[PartLimitedWecom]:
    yield from serve(PartLimitedWecom(robot_keys=(SECRETS["ROBOT_KEY"],), corpid="ww0123",
                                      corpsecret=SECRETS["CORP_SECRET"], agentid=1000002, users=("zhangsan",),
                                      robot_limit=1000))


def dispatcher(store: Store, server: FakeWecom, channel: str) -> Dispatcher:
    fast = {"timeout": 2, "connect_timeout": 2, "base_url": server.base_url}
    chans = {
        "bot": {"type": "wecom_bot", "key": {"env": "ROBOT_KEY"}, "mention_recipient": False, **fast},
        "app": {"type": "wecom_app", "corpid": "ww0123", "corpsecret": {"env": "CORP_SECRET"}, "agentid": 1000002,
                **fast},
    }
    config = Config.model_validate({"channels": {channel: chans[channel]}, "default_channels": [channel]})
    notifiers = build_notifiers(config.channels, secrets=SecretResolver(environ=SECRETS))
    return Dispatcher(store, config, notifiers, owner="parts", rng=random.Random(3))


def long_payload(number: str) -> dict[str, Any]:
    payload = alert_payload(number, "breach")
    payload["case"]["summary"] = "小区供暖温度长期不达标，" * 120  # ~4 KB of UTF-8: the message splits
    return payload


def contents(server: FakeWecom, path: str) -> list[str]:
    return [str(b[b["msgtype"]]["content"]) for b in server.sent(path)]


@pytest.mark.parametrize(("channel", "path"), [("bot", "/cgi-bin/webhook/send"), ("app", "/cgi-bin/message/send")])
def test_a_limited_second_part_never_resends_the_first(
    store: Store, limited_wecom: PartLimitedWecom, channel: str, path: str
) -> None:
    zhang = person("张三", wecom_userid="zhangsan")
    for number in ("C1", "C2"):  # two alerts batched into one long message
        queue(store, NOW, channel=channel, kind="breach", recipient=zhang, payload=long_payload(number),
              key=f"parts:{number}")
    d = dispatcher(store, limited_wecom, channel)
    limited_wecom.limited = 2
    now = NOW
    for _ in range(5):
        result = d.dispatch_once(now)
        # the robot's 45009 is flow control (a deferral); the app's is retried with backoff (CONTRACTS.md)
        assert result.deferred + result.retried == 2 and result.sent == 0
        now += ROUND
        if _ == 1:  # a new alert for the same person meanwhile: it must not join the resumed message
            queue(store, now, channel=channel, kind="breach", recipient=zhang, payload=alert_payload("C3", "breach"),
                  key="parts:C3", not_before=now + timedelta(hours=1))
    sent = contents(limited_wecom, path)
    parts = len(limited_wecom.sent(path)) and sent[0].split(")", 1)[0].split("/")[1]
    assert int(parts) >= 3
    assert sum(c.startswith("(1/") for c in sent) == 1  # the first part arrived exactly once
    assert sum(c.startswith("(2/") for c in sent) == 5
    first_two = [r for r in rows(store) if r.dedupe_key != "parts:C3"]
    attempts = 0 if channel == "bot" else 5  # deferrals are not attempts
    assert [(r.status, r.parts_sent, r.attempts) for r in first_two] == [("pending", 1, attempts)] * 2

    limited_wecom.limited = None
    result = d.dispatch_once(now)
    assert result.sent == 2 and result.messages == 1
    sent = contents(limited_wecom, path)
    for i in range(1, int(parts) + 1):
        assert sum(c.startswith(f"({i}/{parts})") for c in sent) == (5 + 1 if i == 2 else 1), i
    assert [(r.status, r.parts_sent) for r in rows(store) if r.dedupe_key != "parts:C3"] == [("sent", int(parts))] * 2
