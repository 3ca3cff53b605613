"""Delivery drills: a provider down for an hour, a dispatcher killed with SIGKILL in a loop, one bad recipient.

Each drill prints its counts (run with ``-s`` to see them) and asserts them. Simulated time is the ``now``
argument; real waiting is only bounded polling of a child process or a fake server.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from daemon.config import Config
from daemon.pipeline.outbox import Dispatcher
from daemon.storage.models import deliveries
from daemon.storage.store import Store
from notifiers.registry import build_notifiers
from notifiers.secrets import SecretResolver
from tests.conftest import ROOT
from tests.fakes.wecom import FakeWecom
from tests.outbox_helpers import at, person, queue, rows

NOW = at("2026-11-20 09:00")
ROBOT_KEY = "robotkey-drill-LEAKCHECK"
CORP_SECRET = "corpsecret-drill-LEAKCHECK"
USERS = tuple(f"u{i:03}" for i in range(30))


@pytest.fixture
def wecom() -> Iterator[FakeWecom]:
    server = FakeWecom(robot_keys=(ROBOT_KEY,), corpid="ww0123", corpsecret=CORP_SECRET, agentid=1000002,
                       users=USERS, robot_limit=100_000).start()
    yield server
    server.stop()


def app_config(server: FakeWecom, **dispatch: Any) -> Config:
    return Config.model_validate({
        "channels": {"app": {"type": "wecom_app", "corpid": "ww0123", "corpsecret": {"env": "CORP_SECRET"},
                             "agentid": 1000002, "base_url": server.base_url, "timeout": 2, "connect_timeout": 2}},
        "default_channels": ["app"], "dispatch": dispatch,
    })


def app_dispatcher(store: Store, server: FakeWecom, **dispatch: Any) -> Dispatcher:
    config = app_config(server, **dispatch)
    notifiers = build_notifiers(config.channels, secrets=SecretResolver(environ={"CORP_SECRET": CORP_SECRET}))
    return Dispatcher(store, config, notifiers, owner="drill", rng=random.Random(12345))


def delivered_per_user(server: FakeWecom, since: int = 0) -> Counter[str]:
    """Successful application messages per user id among the requests after index ``since``."""
    counts: Counter[str] = Counter()
    for req in server.requests[since:]:
        if req.path == "/cgi-bin/message/send":
            counts.update(u for u in req.json()["touser"].split("|") if u in USERS)
    return counts


def test_drill_provider_down_for_an_hour(store: Store, wecom: FakeWecom) -> None:
    for user in USERS:
        queue(store, NOW, channel="app", number=f"C-{user}", recipient=person(user, None, wecom_userid=user))
    d = app_dispatcher(store, wecom, backoff_base_seconds=30, backoff_cap_seconds=900, max_attempts=20)
    wecom.fail_next(1_000_000, status=503)  # every request answers 503 until the provider is back
    t, step = NOW, timedelta(seconds=30)
    attempts_down = 0
    while t < NOW + timedelta(hours=1):
        result = d.dispatch_once(t)
        attempts_down += result.messages
        assert result.sent == 0 and result.failed == 0 and result.dead == 0
        t += step
    failed_requests = len(wecom.requests)
    wecom.clear_faults()
    back, since = t, len(wecom.requests)
    while any(r.status != "sent" for r in rows(store)) and t < back + timedelta(hours=3):
        d.dispatch_once(t)
        t += step
    per_user = delivered_per_user(wecom, since)
    all_sent = [r for r in rows(store) if r.status == "sent"]
    print(f"\ndrill provider-down ({store.dialect}): {len(USERS)} messages, {attempts_down} attempts during the "
          f"hour ({failed_requests} HTTP 503), all {len(all_sent)} delivered {int((t - back).total_seconds())}s "
          f"after it came back; deliveries per message: {sorted(set(per_user.values()))}")
    assert len(all_sent) == len(USERS)
    assert per_user == Counter(dict.fromkeys(USERS, 1))  # each exactly once
    assert attempts_down >= len(USERS) * 3  # it kept trying, with backoff (not every 30 s)
    assert attempts_down < len(USERS) * (3600 // 30)


def test_drill_a_permanent_failure_for_one_recipient_does_not_hold_back_the_others(
    store: Store, wecom: FakeWecom
) -> None:
    people = [*USERS[:10], "left_the_unit"]  # WeCom answers 81013 for a user id it does not know
    for user in people:
        queue(store, NOW, channel="app", number=f"C-{user}", recipient=person(user, None, wecom_userid=user))
    result = app_dispatcher(store, wecom).dispatch_once(NOW)
    status = Counter(r.status for r in rows(store))
    print(f"\ndrill one bad recipient ({store.dialect}): sent {result.sent}, failed {result.failed}: "
          f"{[f['to'] + ': ' + f['error'] for f in result.failures]}")
    assert status == {"sent": 10, "failed": 1}
    assert delivered_per_user(wecom) == Counter(dict.fromkeys(USERS[:10], 1))
    (bad,) = [r for r in rows(store) if r.status == "failed"]
    assert bad.recipient["name"] == "left_the_unit" and "81013" in bad.last_error


# --- SIGKILL ----------------------------------------------------------------------------------------------------


def _poll(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


def _kill_point(server: FakeWecom, proc: subprocess.Popen[bytes], requests: int) -> Any:
    """True once the server has seen ``requests`` requests (the child is mid-send) or the child has exited."""
    return lambda: len(server.requests) >= requests or proc.poll() is not None


def _robot_cases(server: FakeWecom) -> Counter[str]:
    counts: Counter[str] = Counter()
    for req in server.requests:
        if req.path == "/cgi-bin/webhook/send":
            body = req.json()
            if body.get("msgtype") == "markdown":
                counts.update(set(re.findall(r"K-\d{3}", body["markdown"]["content"])))
    return counts


@pytest.mark.slow  # kills a real dispatcher process over and over: 9-16 s per backend
def test_drill_dispatcher_killed_at_random_points(store: Store, wecom: FakeWecom, tmp_path: Path) -> None:
    messages = 60
    for i in range(messages):  # one recipient each, so each alert is its own robot message
        queue(store, NOW, channel="bot", number=f"K-{i:03}", recipient=person(f"承办{i:03}", None))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "database": {"url": store.url}, "rules_dir": str(ROOT / "sla_rules"),
        "channels": {"bot": {"type": "wecom_bot", "key": {"env": "ROBOT_KEY"}, "base_url": wecom.base_url,
                             "mention_recipient": False, "timeout": 2, "connect_timeout": 2}},
        "default_channels": ["bot"], "dispatch": {"lease_seconds": 60},
    }, allow_unicode=True), "utf-8")
    # the worktree's code, whatever is installed; the store URL from the config, not the environment
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_SLA_DATABASE_URL"}
    env.update(PYTHONPATH=str(ROOT), ROBOT_KEY=ROBOT_KEY)
    rng = random.Random(20261120)
    t = NOW
    kills = in_flight = runs = 0
    for run in range(60):
        if all(r.status == "sent" for r in rows(store)):
            break
        runs += 1
        before = len(wecom.requests)
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(cfg), "dispatch", "--now", t.isoformat()],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        kill_after = rng.randint(1, 12) if run < 10 else None  # the first ten runs die; then it may finish
        if kill_after is not None and _poll(_kill_point(wecom, proc, before + kill_after), 30) and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        assert proc.wait(timeout=60) in (0, -signal.SIGKILL)
        with store.engine.connect() as conn:  # sends begun and not recorded: at most these repeat
            in_flight += int(conn.execute(
                select(func.count()).select_from(deliveries).where(deliveries.c.outcome == "attempting")
            ).scalar_one())
        t += timedelta(seconds=61)  # past the lease and the robot's 20/min window
    received = _robot_cases(wecom)
    duplicates = sum(n - 1 for n in received.values())
    print(f"\ndrill SIGKILL ({store.dialect}): {messages} messages, {runs} runs, {kills} killed, "
          f"{in_flight} in flight at the kills, {sum(received.values())} received, {duplicates} duplicates, "
          f"lost {messages - len(received)}")
    assert kills >= 5
    assert set(received) == {f"K-{i:03}" for i in range(messages)}  # nothing lost
    assert duplicates <= in_flight
    assert all(r.status == "sent" for r in rows(store))
