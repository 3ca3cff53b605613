"""Issue 15 item 1 (leftover): the daemon's dispatch round sends everything due, not one claim's worth, and
stays bounded: the stop signal and the round's time budget end it between messages, the rest released."""

from __future__ import annotations

import random
import threading

from daemon.pipeline.outbox import Dispatcher
from daemon.pipeline.recipients import sync_config_contacts
from daemon.runtime.service import dispatch_round
from daemon.storage.store import Store
from notifiers.base import Message, Receipt
from notifiers.testing import FakeNotifier
from tests.outbox_helpers import at, config, person, queue, rows

NOW = at("2026-11-20 09:00")
MESSAGES = 7


def _seed(store: Store) -> None:
    with store.engine.begin() as conn:
        sync_config_contacts(conn, config())
    for n in range(MESSAGES):  # one recipient each: one message each
        queue(store, NOW, recipient=person(name=f"承办{n}", mobile=f"1380000{n:04d}"), number=f"26111000{n:02d}")


def _dispatcher(store: Store, fake: FakeNotifier) -> Dispatcher:
    return Dispatcher(store, config(batch_window_seconds=0, concurrency=1), {"wecom": fake}, owner="d1",
                      rng=random.Random(7), monotonic=lambda: 0.0)


def _statuses(store: Store) -> list[str]:
    return sorted(row.status for row in rows(store))


def test_one_round_sends_more_than_one_claim(store: Store) -> None:
    _seed(store)
    fake = FakeNotifier("wecom")
    result = dispatch_round(_dispatcher(store, fake), NOW, stopping=lambda: False, monotonic=lambda: 0.0,
                            budget_seconds=60, limit=3)
    assert len(fake.sent) == MESSAGES  # dispatch_once would have sent 3
    assert result.sent == MESSAGES and not result.stopped
    assert _statuses(store) == ["sent"] * MESSAGES


class StopAfter(FakeNotifier):
    """Sets ``event`` when it has sent ``n`` messages, like a SIGTERM arriving mid-round."""

    def __init__(self, name: str, n: int, event: threading.Event) -> None:
        super().__init__(name)
        self.n, self.event = n, event

    def send(self, message: Message) -> Receipt:
        receipt = super().send(message)
        if len(self.sent) >= self.n:
            self.event.set()
        return receipt


def test_the_stop_signal_ends_the_round_between_messages_and_releases_the_rest(store: Store) -> None:
    _seed(store)
    stop = threading.Event()
    fake = StopAfter("wecom", 2, stop)
    result = dispatch_round(_dispatcher(store, fake), NOW, stopping=stop.is_set, monotonic=lambda: 0.0,
                            budget_seconds=60, limit=3)
    assert result.stopped
    assert 2 <= len(fake.sent) < MESSAGES
    statuses = _statuses(store)
    assert statuses.count("sent") == len(fake.sent)
    assert statuses.count("pending") == MESSAGES - len(fake.sent)  # released, not held by a dead claim
    rest = FakeNotifier("wecom")
    dispatch_round(_dispatcher(store, rest), NOW, stopping=lambda: False, monotonic=lambda: 0.0,
                   budget_seconds=60, limit=3)
    assert len(fake.sent) + len(rest.sent) == MESSAGES  # the next round sends the rest, none twice
    assert _statuses(store) == ["sent"] * MESSAGES


def test_the_time_budget_bounds_a_round(store: Store) -> None:
    _seed(store)
    fake = FakeNotifier("wecom")
    clock = [0.0]

    def monotonic() -> float:  # every look at the clock is 10 s later: the 25 s budget runs out early
        clock[0] += 10.0
        return clock[0]

    result = dispatch_round(_dispatcher(store, fake), NOW, stopping=lambda: False, monotonic=monotonic,
                            budget_seconds=25, limit=3)
    assert result.stopped
    assert 0 < len(fake.sent) < MESSAGES
    assert _statuses(store).count("pending") == MESSAGES - len(fake.sent)


class SlowProvider(FakeNotifier):
    """A provider that answers after ``latency`` seconds (all sends of the round overlap)."""

    def __init__(self, name: str, latency: float) -> None:
        super().__init__(name)
        self.latency = latency

    def send(self, message: Message) -> Receipt:
        threading.Event().wait(self.latency)  # the provider's latency, not a test waiting for a result
        return super().send(message)


def test_concurrency_above_the_pool_size_neither_deadlocks_nor_times_out(store: Store) -> None:
    """40 sends at once through a pool of 5 + 10 overflow: a send holds no connection while it waits on the
    provider (the record before and after it are each a short transaction of their own), so the sends queue
    only for those transactions and the pool's 30 s checkout timeout is never reached."""
    pool_total = store.engine.pool.size() + 10  # type: ignore[attr-defined]  # QueuePool: 5 kept + 10 overflow
    concurrency = 40
    assert concurrency > pool_total
    with store.engine.begin() as conn:
        sync_config_contacts(conn, config())
    for n in range(concurrency):
        queue(store, NOW, recipient=person(name=f"承办{n}", mobile=f"1380000{n:04d}"), number=f"26111000{n:02d}")
    slow = SlowProvider("wecom", latency=0.3)
    cfg = config(batch_window_seconds=0, concurrency=concurrency, channel_concurrency={"wecom": concurrency})
    d = Dispatcher(store, cfg, {"wecom": slow}, owner="d1", rng=random.Random(7))
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(dispatch_round(
        d, NOW, stopping=lambda: False, monotonic=lambda: 0.0, budget_seconds=600)))
    worker.start()
    worker.join(timeout=120)  # a deadlock would hang here; the pool's own timeout is 30 s a checkout
    assert not worker.is_alive() and done
    assert len(slow.sent) == concurrency
    assert _statuses(store) == ["sent"] * concurrency
