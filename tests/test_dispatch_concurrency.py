"""Concurrent sends within one dispatcher, and claims that scale across dispatchers (issue 15 items 1, 2).

Real waiting is bounded polling or a barrier with a timeout; nothing sleeps to wait.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from daemon.config import Config
from daemon.pipeline.outbox import Dispatcher, DispatchResult
from daemon.pipeline.queue import claim, claimable_count
from daemon.pipeline.send_pool import run_bounded
from daemon.storage.models import outbox
from daemon.storage.store import Store
from notifiers.base import Message, Receipt
from notifiers.testing import FakeNotifier
from tests.outbox_helpers import at, config, person, queue, rows

NOW = at("2026-11-20 09:00")


def poll(condition: Any, seconds: float = 20.0) -> bool:
    """True as soon as ``condition()`` holds, False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


class Hanging(FakeNotifier):
    """A provider that does not answer until ``release`` is set (bounded, so a failing test ends)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.release = threading.Event()
        self.entered = 0
        self._lock = threading.Lock()

    def send(self, message: Message) -> Receipt:
        with self._lock:
            self.entered += 1
        self.release.wait(timeout=30)
        return super().send(message)


class MeetFirst(FakeNotifier):
    """Its first send waits until every dispatcher of ``barrier`` has reached its own first send."""

    def __init__(self, name: str, barrier: threading.Barrier) -> None:
        super().__init__(name)
        self.barrier = barrier
        self._first = threading.Lock()
        self._met = False

    def send(self, message: Message) -> Receipt:
        with self._first:
            first, self._met = not self._met, True
        if first:
            self.barrier.wait()
        return super().send(message)


def make(store: Store, notifiers: dict[str, Any], owner: str = "d1", **dispatch: Any) -> Dispatcher:
    return Dispatcher(store, config(**dispatch), notifiers, owner=owner, rng=random.Random(3))


def test_a_hanging_provider_does_not_hold_another_channel(store: Store) -> None:
    """Before: one send at a time, so the SMS messages waited behind the hanging WeCom one (0 sent)."""
    for i in range(3):
        queue(store, NOW, channel="wecom", number=f"W{i}", recipient=person(f"甲{i}", wecom_userid=f"u{i}"))
    for i in range(20):
        queue(store, NOW, channel="sms", number=f"S{i:02}", recipient=person(f"乙{i}", mobile=f"138000{i:05}"))
    hanging, sms = Hanging("wecom"), FakeNotifier("sms")
    d = make(store, {"wecom": hanging, "sms": sms}, channel_concurrency={"wecom": 2})
    out: list[DispatchResult] = []
    worker = threading.Thread(target=lambda: out.append(d.dispatch_once(NOW)))
    worker.start()
    try:
        assert poll(lambda: len(sms.sent) == 20), f"only {len(sms.sent)} SMS sent while WeCom hangs"
        assert poll(lambda: hanging.entered >= 2)
        assert hanging.entered == 2  # the channel's own slots, no more: the third waits for a free one
        assert not hanging.sent
    finally:
        hanging.release.set()
        worker.join(timeout=60)
    assert out and out[0].sent == 23 and out[0].messages == 23
    assert {r.status for r in rows(store)} == {"sent"}


def test_sends_overlap_up_to_the_total_bound() -> None:
    release = threading.Event()
    inside: Counter[str] = Counter()
    most = {"at_once": 0}
    lock = threading.Lock()

    def work(job: tuple[str, int]) -> int:
        with lock:
            inside[job[0]] += 1
            most["at_once"] = max(most["at_once"], sum(inside.values()))
        release.wait(timeout=30)
        with lock:
            inside[job[0]] -= 1
        return job[1]

    jobs = [(ch, (ch, i)) for ch in ("a", "b", "c") for i in range(10)]
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(run_bounded(jobs, work, total=5, slots=lambda c: 3)))
    runner.start()
    assert poll(lambda: sum(inside.values()) == 5)
    assert max(inside.values()) <= 3  # per channel
    release.set()
    runner.join(timeout=60)
    outcomes, unstarted = result[0]
    assert sorted(outcomes) == sorted(i for _ in range(3) for i in range(10)) and unstarted == []
    assert most["at_once"] == 5


def test_two_dispatchers_split_a_backlog_and_neither_stops_early(store: Store) -> None:
    """Each claims 7 at a time from 60 rows; both must take work (their first sends meet at a barrier) and
    both must run until no row is claimable: every row is sent exactly once."""
    for i in range(60):
        queue(store, NOW, channel="sms", number=f"C{i:03}", recipient=person(f"承办{i}", mobile=f"139000{i:05}"))
    barrier = threading.Barrier(2, timeout=30)
    fakes = [MeetFirst("sms", barrier), MeetFirst("sms", barrier)]
    ds = [make(store, {"sms": f}, owner=f"d{i}") for i, f in enumerate(fakes)]
    results: dict[int, DispatchResult] = {}

    def run(i: int) -> None:
        results[i] = ds[i].dispatch_due(NOW, limit=7)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    sent = [[m.params["case_no"] for m in f.sent] for f in fakes]
    print(f"\ntwo dispatchers ({store.dialect}): {len(sent[0])} + {len(sent[1])} messages")
    assert all(sent), "a dispatcher took no work"
    assert sorted(sent[0] + sent[1]) == [f"C{i:03}" for i in range(60)]  # all, each once
    assert results[0].claimed + results[1].claimed == 60
    assert claimable_count(store, NOW) == 0


def test_a_claim_passes_over_rows_another_claimer_has_locked(store: Store) -> None:
    """Before: candidates were chosen without locks, so a second claimer chose the same rows and then
    waited on (or lost) them. Now it takes the next ones at once."""
    if store.dialect == "sqlite":
        pytest.skip("SQLite serialises claims on its write lock; nothing is locked row by row")
    for i in range(10):
        queue(store, NOW, channel="sms", number=f"L{i}", recipient=person(f"人{i}", mobile=f"137000{i:05}"))
    got: list[Any] = []
    with store.engine.connect() as holder:
        tx = holder.begin()
        first = list(holder.execute(select(outbox.c.id).order_by(outbox.c.id).limit(5)).scalars())
        held = list(holder.execute(  # by primary key: InnoDB locks exactly these
            select(outbox.c.id).where(outbox.c.id.in_(first)).order_by(outbox.c.id).with_for_update()
        ).scalars())
        worker = threading.Thread(target=lambda: got.extend(claim(store, "other", NOW, limit=5, lease_seconds=60)))
        worker.start()
        worker.join(timeout=20)
        finished = not worker.is_alive()
        tx.rollback()
    worker.join(timeout=60)
    assert finished, "the claim waited for the other claimer's locks"
    assert not {r.id for r in got} & set(held)
    if store.dialect == "postgresql":  # MariaDB's next-key locks may cover the rest for that moment
        assert len(got) == 5
    again = claim(store, "other", NOW, limit=10, lease_seconds=60)  # the locks are gone: the rest comes
    assert len(got) + len(again) == 10


def test_dispatch_due_stops_when_nothing_is_claimable(store: Store) -> None:
    for i in range(12):
        queue(store, NOW, channel="sms", number=f"D{i:02}", recipient=person(f"丙{i}", mobile=f"136000{i:05}"))
    fake = FakeNotifier("sms")
    fake.fail_next(2)  # two retried rows come due after ``now``: the run must still end
    result = make(store, {"sms": fake}).dispatch_due(NOW, limit=5)
    assert result.sent == 10 and result.retried == 2 and claimable_count(store, NOW) == 0


def test_channel_concurrency_must_be_positive() -> None:
    with pytest.raises(ValidationError, match=r"channel_concurrency\.sms"):
        Config.model_validate({"channels": {"sms": {"type": "console"}}, "default_channels": ["sms"],
                               "dispatch": {"channel_concurrency": {"sms": 0}}})


def test_channel_concurrency_names_a_configured_channel() -> None:
    with pytest.raises(ValidationError, match=r"dispatch\.channel_concurrency: 'smss' is not a configured channel"):
        Config.model_validate({"channels": {"sms": {"type": "console"}}, "default_channels": ["sms"],
                               "dispatch": {"channel_concurrency": {"smss": 4}}})
    assert Config.model_validate({"channels": {"sms": {"type": "console"}}, "default_channels": ["sms"],
                                  "dispatch": {"channel_concurrency": {"sms": 4}}}).dispatch.channel_concurrency
