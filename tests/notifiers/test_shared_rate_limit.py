"""Issue 14 finding 5: a channel's rate limit is shared through the database by every dispatcher.

Before the fix the robot's 20 messages per minute were counted in each process's memory: one key got 49 per
minute across restarts and 70 with two instances. Runs on SQLite, PostgreSQL and MariaDB; time is injected
(``now``), the sends are counted where they arrive, at the fake WeCom server.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from daemon.config import Config
from daemon.pipeline.outbox import Dispatcher, DispatchResult
from daemon.storage.store import Store
from notifiers.base import ChannelConfigError
from notifiers.registry import build_notifier, rate_limit_of, try_build_notifiers
from notifiers.secrets import SecretResolver
from notifiers.testing import FakeNotifier
from tests.fakes.wecom import FakeWecom
from tests.notifiers.conftest import SECRETS
from tests.outbox_helpers import at, person, queue, rows, tries

NOW = at("2026-11-20 09:00")
ROBOT = "/cgi-bin/webhook/send"


class SimClock:
    """Monotonic seconds that follow the injected ``now`` (so any limit a notifier counted itself would
    see the same minute the dispatcher does)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def robot_dispatcher(store: Store, server: FakeWecom, owner: str, clock: SimClock) -> Dispatcher:
    chans = {"bot": {"type": "wecom_bot", "key": {"env": "ROBOT_KEY"}, "base_url": server.base_url,
                     "mention_recipient": False, "timeout": 5, "connect_timeout": 5}}
    config = Config.model_validate({"channels": chans, "default_channels": ["bot"]})
    notifiers = {"bot": build_notifier("bot", chans["bot"], secrets=SecretResolver(environ=SECRETS), clock=clock)}
    return Dispatcher(store, config, notifiers, owner=owner, rng=random.Random(5), monotonic=lambda: 0.0)


def busiest_minute(sends: list[tuple[datetime, int]]) -> int:
    """The most sends in any rolling minute ending at a round."""
    return max(sum(n for t, n in sends if end - timedelta(seconds=60) < t <= end) for end, _ in sends)


def test_two_dispatchers_and_a_restart_never_exceed_20_per_rolling_minute(
    store: Store, db_url: str, wecom: FakeWecom
) -> None:
    wecom.robot_limit = 1000  # the fake's own real-time limit stays out of the way: we measure in injected time
    for i in range(50):  # 50 messages to 50 people: no batching, one robot request each
        queue(store, NOW, channel="bot", recipient=person(f"承办人{i}", mobile=None), key=f"rl:{i}")
    clock = SimClock()
    stores = [Store(db_url), Store(db_url)]  # two processes: their own engines and connections
    dispatchers = [robot_dispatcher(s, wecom, f"host{i}:{100 + i}", clock) for i, s in enumerate(stores)]
    sends: list[tuple[datetime, int]] = []
    results: list[DispatchResult] = []
    seen = 0
    now = NOW
    for round_no in range(40):  # a round every 5 s for 200 s
        if round_no == 10:  # one of them restarts: a new process with nothing in memory
            stores[0].close()
            stores[0] = Store(db_url)
            dispatchers[0] = robot_dispatcher(stores[0], wecom, "host0:200", clock)
        clock.seconds = (now - NOW).total_seconds()
        # each claims at most 25 rows, so both have messages to send in the same minute
        threads = [threading.Thread(target=lambda d=d, t=now: results.append(d.dispatch_once(t, limit=25)))
                   for d in dispatchers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        total = len(wecom.sent(ROBOT))
        sends.append((now, total - seen))
        seen = total
        now += timedelta(seconds=5)
    for s in stores:
        s.close()
    assert busiest_minute(sends) == 20  # never more, and the limit is used, not wasted
    assert sum(n for t, n in sends if t < NOW + timedelta(seconds=60)) == 20
    assert seen == 50 and [r.status for r in rows(store)] == ["sent"] * 50
    assert sum(r.rate_limited for r in results) > 0
    # a deferral by the limit is not an attempt: one attempt and one delivery per message
    assert {r.attempts for r in rows(store)} == {1} and len(tries(store)) == 50


def fake_dispatcher(store: Store, channels: dict[str, Any]) -> tuple[Dispatcher, dict[str, FakeNotifier]]:
    config = Config.model_validate({"channels": channels, "default_channels": list(channels)})
    fakes = {name: FakeNotifier(name) for name in channels}
    return Dispatcher(store, config, fakes, owner="d", rng=random.Random(5), monotonic=lambda: 0.0), fakes


def test_a_message_over_the_limit_waits_until_the_window_frees_without_an_attempt(store: Store) -> None:
    d, fakes = fake_dispatcher(store, {"bot": {"type": "wecom_bot", "rate_limit_per_minute": 2}})
    for i in range(3):
        queue(store, NOW + timedelta(seconds=i), channel="bot", recipient=person(f"人{i}"), key=f"w:{i}")
    assert d.dispatch_once(NOW).sent == 1
    result = d.dispatch_once(NOW + timedelta(seconds=10))
    assert (result.sent, result.deferred, result.rate_limited, result.messages) == (1, 1, 1, 1)
    waiting = [r for r in rows(store) if r.status == "pending"]
    assert [(r.not_before, r.attempts) for r in waiting] == [(NOW + timedelta(seconds=60), 0)]
    assert len(tries(store)) == 2  # no delivery row for the deferral
    assert d.dispatch_once(NOW + timedelta(seconds=59, microseconds=999_000)).claimed == 0
    assert d.dispatch_once(NOW + timedelta(seconds=60)).sent == 1
    assert len(fakes["bot"].sent) == 3


def test_an_application_counts_per_member(store: Store) -> None:
    d, fakes = fake_dispatcher(store, {"app": {"type": "wecom_app", "rate_limit_per_minute": 2}})
    for i in range(3):
        queue(store, NOW, channel="app", kind=("warning", "breach", "return_window")[i],
              recipient=person("甲", wecom_userid="jia"), key=f"a:{i}")
    queue(store, NOW, channel="app", recipient=person("乙", wecom_userid="yi"), key="b:0")
    result = d.dispatch_once(NOW)
    assert (result.sent, result.rate_limited) == (3, 1)
    assert sorted(m.recipient.name for m in fakes["app"].sent) == ["乙", "甲", "甲"]


def test_the_limit_is_configurable_per_channel_and_named_when_wrong() -> None:
    assert rate_limit_of("bot", {"type": "wecom_bot"}) == 20
    assert rate_limit_of("app", {"type": "wecom_app"}) == 30
    assert rate_limit_of("ding", {"type": "dingtalk"}) == 20
    assert rate_limit_of("ali", {"type": "sms_aliyun"}) == 1
    assert rate_limit_of("tc", {"type": "sms_tencent"}) is None
    assert rate_limit_of("bot", {"type": "wecom_bot", "rate_limit_per_minute": 10}) == 10
    assert rate_limit_of("bot", {"type": "wecom_bot", "rate_limit_per_minute": 0}) is None
    assert rate_limit_of("bot", {"type": "wecom_bot", "max_per_minute": 5}) == 5  # the robots' older name
    with pytest.raises(ChannelConfigError, match=r"channels\.bot\.rate_limit_per_minute: expected a whole number"):
        rate_limit_of("bot", {"type": "wecom_bot", "rate_limit_per_minute": "fast"})
    _, errors = try_build_notifiers({"bot": {"type": "wecom_bot", "key": {"env": "ROBOT_KEY"},
                                             "rate_limit_per_minute": -1}},
                                    secrets=SecretResolver(environ=SECRETS))
    assert len(errors) == 1 and "channels.bot.rate_limit_per_minute" in errors[0]
    built, errors = try_build_notifiers({"bot": {"type": "wecom_bot", "key": {"env": "ROBOT_KEY"},
                                                 "rate_limit_per_minute": 12}},
                                        secrets=SecretResolver(environ=SECRETS))
    assert errors == [] and "bot" in built
