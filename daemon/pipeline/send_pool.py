"""Run a dispatcher's sends side by side: at most ``total`` at once, and at most ``slots(channel)`` per channel.

Why threads: the notifiers are blocking code (requests, smtplib) and the store is the synchronous SQLAlchemy
engine, whose pool and connections are safe to use from several threads (one connection per thread at a
time). A send spends its time waiting for the provider, with the GIL released, so a small pool overlaps the
waits at a few milliseconds of CPU per message; asyncio would need a second HTTP client and SMTP library and
an async store for the same effect.

Why per-channel slots and not one queue: a job is started only when its channel has a free slot, so a provider
that hangs holds its own slots and nothing else; the other channels' jobs keep starting in the free workers.
Jobs of one channel start in the order given; channels take turns.

The pool does not decide anything about the messages: each job (``work``) is the dispatcher's whole
claim → record step for one batch. Nothing here reads a wall clock; ``should_stop`` is polled at least every
``poll_seconds`` while jobs run, so a stop request is seen even while a provider hangs.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

Job = TypeVar("Job")
Outcome = TypeVar("Outcome")


def run_bounded(
    jobs: Iterable[tuple[str, Job]],
    work: Callable[[Job], Outcome],
    *,
    total: int,
    slots: Callable[[str], int],
    should_stop: Callable[[], bool] = lambda: False,
    poll_seconds: float = 0.2,
) -> tuple[list[Outcome], list[Job]]:
    """Run ``work(job)`` for every ``(channel, job)`` of ``jobs`` within the bounds.

    Returns the outcomes (in completion order) and the jobs never started because ``should_stop()`` became
    true (jobs already running are finished first). If a job raises, no more are started, the running ones
    finish, and the first exception is raised; the unstarted jobs are then in its ``unstarted`` attribute.
    """
    queues: dict[str, deque[Job]] = {}
    for channel, job in jobs:
        queues.setdefault(channel, deque()).append(job)
    running: dict[Future[Outcome], str] = {}
    busy: Counter[str] = Counter()
    outcomes: list[Outcome] = []
    failure: BaseException | None = None
    stopped = False
    with ThreadPoolExecutor(max_workers=max(1, total), thread_name_prefix="dispatch-send") as pool:
        while True:
            stopped = stopped or failure is not None or not _start(pool, queues, work, running, busy, total, slots,
                                                                   should_stop)
            if not running:
                break
            done, _ = wait(running, timeout=poll_seconds, return_when=FIRST_COMPLETED)
            for future in done:
                busy[running.pop(future)] -= 1
                try:
                    outcomes.append(future.result())
                except Exception as exc:
                    failure = failure or exc
    unstarted = [job for queue in queues.values() for job in queue]
    if failure is not None:
        failure.unstarted = unstarted  # type: ignore[attr-defined]
        raise failure
    return outcomes, unstarted


def _start(  # noqa: PLR0917 - one step of run_bounded's loop
    pool: ThreadPoolExecutor,
    queues: dict[str, deque[Job]],
    work: Callable[[Job], Outcome],
    running: dict[Future[Outcome], str],
    busy: Counter[str],
    total: int,
    slots: Callable[[str], int],
    should_stop: Callable[[], bool],
) -> bool:
    """Start queued jobs, channels taking turns, while there is a free worker and a free slot; ``should_stop``
    is asked before each start. False once it said stop."""
    progressed = True
    while progressed and len(running) < total:
        progressed = False
        for channel, queue in queues.items():
            if queue and busy[channel] < max(1, slots(channel)) and len(running) < total:
                if should_stop():
                    return False
                running[pool.submit(work, queue.popleft())] = channel
                busy[channel] += 1
                progressed = True
    return True
