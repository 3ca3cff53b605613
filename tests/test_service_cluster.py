"""Two real ``hotline-sla run`` processes on one PostgreSQL database, a fake WeCom robot counting messages.

Cases are imported so that their return-window warnings (退件时限提醒, 4 h before the 24 h window closes)
fall due one by one during the test; the leader is killed with SIGKILL half-way; the follower must take the
lease within two lease periods, and at the end every alert exists once and the robot got exactly one
message per alert: none lost, none twice.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.core.cases import CaseRecord, Category, Source
from daemon.core.rules import RuleSet
from daemon.core.timeutil import utcnow
from daemon.runtime.leader import current_leader
from daemon.storage.models import alerts, outbox
from daemon.storage.store import Store
from tests.conftest import server_url
from tests.daemon_proc import DaemonProcess, wait_until, write_config
from tests.fakes.wecom import FakeWecom

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LEASE = 6  # seconds (scheduler.leader_lease_seconds)
UNIT = "兴隆台区住建局"
KEY = "robot-key-cluster"
START = 60.0


def cluster_config(path: Path, url: str, robot: FakeWecom) -> Path:
    return write_config(
        path, database_url=url,
        channels=f"robot: {{type: wecom_bot, base_url: '{robot.base_url}', key: {{env: WECOM_ROBOT_KEY}}, "
                 "msgtype: text, timeout: 5}",
        scheduler=f"sync_interval_seconds: 60, tick_interval_seconds: 5, dispatch_interval_seconds: 1, "
                  f"leader_lease_seconds: {LEASE}",
        extra=(
            "default_channels: [robot]\n"
            "dispatch: {batch_window_seconds: 0, quiet_hours: {robot: null}}\n"
            "contacts:\n"
            f"  units: [{{name: {UNIT}, contacts: [{{name: 王承办, role: handler, mobile: '13800001234', "
            "channels: [robot]}]}]\n"
        ),
    )


def import_cases(store: Store, rules: RuleSet, offsets: list[float]) -> list[str]:
    """One case per offset whose return-window warning falls due ``offset`` seconds from now."""
    now = utcnow()
    records = [
        CaseRecord(number=f"T{i:03d}", source=Source.CITY, category=Category.COMPLAINT, unit=UNIT,
                   received_at=now - timedelta(hours=20) + timedelta(seconds=off), summary=f"测试工单{i}")
        for i, off in enumerate(offsets)
    ]
    store.upsert_cases(records, rules=rules, now=now, source_name="test")
    return [r.number for r in records]


def count(store: Store, table, *where) -> int:  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def leader_owner(store: Store) -> str | None:
    with store.engine.connect() as conn:
        holder = current_leader(conn)
    return holder.owner if holder is not None and holder.live(utcnow()) else None


def pid_of(owner: str) -> int:
    return int(owner.split(":")[-2])


def test_killing_the_leader_hands_over_and_no_alert_is_lost_or_sent_twice(
    tmp_path: Path, rules: RuleSet
) -> None:
    url = server_url("postgres")
    store = Store(url)
    store.drop_all()
    store.upgrade()
    robot = FakeWecom(robot_keys=(KEY,), robot_limit=1000).start()
    try:
        config = cluster_config(tmp_path / "config.yaml", url, robot)
        # due from 3 s before the start to ~40 s after: across the kill, whoever leads
        numbers = import_cases(store, rules, [-3.0 + 3.5 * i for i in range(13)])
        env = {"WECOM_ROBOT_KEY": KEY}
        with DaemonProcess.start(config, env=env, name="A") as a, DaemonProcess.start(config, env=env, name="B") as b:
            a.wait_for_event("ready", START)
            b.wait_for_event("ready", START)
            owner = wait_until(lambda: leader_owner(store), 30, "a leader")
            leader, follower = (a, b) if pid_of(owner) == a.proc.pid else (b, a)
            assert pid_of(owner) == leader.proc.pid

            # kill the leader once it has queued and sent some alerts, between two dispatch rounds
            wait_until(lambda: count(store, outbox, outbox.c.status == "sent") >= 3
                       and count(store, outbox, outbox.c.status.in_(["pending", "sending"])) == 0, 60,
                       "the leader to send its first alerts")
            sent_before_kill = count(store, outbox, outbox.c.status == "sent")
            killed_at = time.monotonic()
            leader.kill()
            new_owner = wait_until(lambda: (o := leader_owner(store)) and o != owner and o, 4 * LEASE,
                                   "the follower to take the lease")
            handover = time.monotonic() - killed_at
            assert pid_of(new_owner) == follower.proc.pid
            assert handover < 2 * LEASE, f"handover took {handover:.1f} s"
            follower.wait_for_event("leadership_acquired", 10)

            wait_until(lambda: count(store, alerts) == len(numbers)
                       and count(store, outbox, outbox.c.status == "sent") == len(numbers), 90,
                       "every alert to be queued and sent")
            assert follower.stop(30) == 0
        with store.engine.connect() as conn:
            rows = conn.execute(select(alerts.c.kind, alerts.c.case_id)).all()
        assert Counter(kind for kind, _ in rows) == {"return_window": len(numbers)}
        messages = [r.json() for r in robot.requests if r.path == "/cgi-bin/webhook/send"]
        per_case = Counter(n for m in messages for n in numbers if n in json.dumps(m, ensure_ascii=False))
        assert per_case == dict.fromkeys(numbers, 1), "every case's alert reached the robot exactly once"
        # alerts queued together for one recipient go out as one message (a batch); each counted once above
        assert len(messages) <= len(numbers)
        print(f"\nhandover {handover:.2f} s (lease {LEASE} s); alerts {len(rows)}, each in exactly one robot message "
              f"({len(messages)} messages); alerts sent before the kill {sent_before_kill}")
    finally:
        robot.stop()
        store.drop_all()
        store.close()
