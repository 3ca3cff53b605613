"""The daemon's parts without a process: the workday trigger, the leader lease, backoff, status and health."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from daemon.commands.status_cmd import calendar_coverage, collect_status
from daemon.config import Config
from daemon.core.calendar import WorkCalendar
from daemon.core.timeutil import LOCAL_TZ, parse_time
from daemon.errors import ConfigError
from daemon.runtime.health import HealthServer, Metrics, check_health, parse_listen
from daemon.runtime.leader import LeaderLease, current_leader, instance_id
from daemon.runtime.scheduler import WorkdayTrigger
from daemon.runtime.service import Backoff
from daemon.storage.models import outbox, settings, source_state
from daemon.storage.store import Store

at = parse_time


# --- the workday trigger (official 2024: Oct 1-7 off; Sun Sep 29 and Sat Oct 12 are make-up days) ------


@pytest.mark.parametrize(("now", "expected"), [
    ("2024-09-27 08:00", "2024-09-27 08:30"),  # a Friday, before the time
    ("2024-09-27 08:30", "2024-09-27 08:30"),  # exactly at it: fires now
    ("2024-09-27 08:31", "2024-09-29 08:30"),  # Sat off; Sun Sep 29 is a make-up working day
    ("2024-09-30 09:00", "2024-10-08 08:30"),  # National Day holiday Oct 1-7 skipped
    ("2024-10-11 12:00", "2024-10-12 08:30"),  # Sat Oct 12 is a make-up day
    ("2024-10-12 12:00", "2024-10-14 08:30"),  # an ordinary Sunday skipped
])
def test_workday_trigger_first_fire(calendar: WorkCalendar, now: str, expected: str) -> None:
    trigger = WorkdayTrigger(calendar, time(8, 30))
    assert trigger.get_next_fire_time(None, at(now)) == at(expected)
    assert trigger.get_next_fire_time(None, at(now)).tzinfo is LOCAL_TZ


def test_workday_trigger_after_a_fire_moves_to_the_next_working_day(calendar: WorkCalendar) -> None:
    trigger = WorkdayTrigger(calendar, time(8, 30))
    fired = at("2024-09-29 08:30")
    # APScheduler asks with the previous fire time; `now` may be later or earlier, the answer is after it
    assert trigger.get_next_fire_time(fired, fired) == at("2024-09-30 08:30")
    assert trigger.get_next_fire_time(at("2024-09-30 08:30"), at("2024-09-30 08:30")) == at("2024-10-08 08:30")
    instants, previous = [], None
    for _ in range(5):
        previous = trigger.get_next_fire_time(previous, at("2024-09-26 09:00"))
        instants.append(previous.strftime("%m-%d"))
    assert instants == ["09-27", "09-29", "09-30", "10-08", "10-09"]


def test_workday_trigger_ends_with_the_calendar(calendar: WorkCalendar) -> None:
    trigger = WorkdayTrigger(calendar, time(8, 30))
    assert trigger.get_next_fire_time(None, at(f"{calendar.last_year}-12-31 09:00")) is None


# --- the leader lease, on every backend ---------------------------------------------------------------


def test_lease_one_leader_expiry_handover_and_release(store: Store) -> None:
    t0 = at("2026-11-20 09:00")
    a = LeaderLease(store, "host-a:1:aaaaaa", 30)
    b = LeaderLease(store, "host-b:2:bbbbbb", 30)
    assert a.try_acquire(t0)  # nobody led: INSERT
    assert not b.try_acquire(t0 + timedelta(seconds=1))
    assert a.try_acquire(t0 + timedelta(seconds=10))  # renew
    assert not b.try_acquire(t0 + timedelta(seconds=39))  # renewed until 09:00:40
    assert a.is_leader(t0 + timedelta(seconds=39)) and not b.is_leader(t0 + timedelta(seconds=39))
    # a stops renewing (killed): b takes it once the lease has run out
    assert b.try_acquire(t0 + timedelta(seconds=40))
    assert not a.try_acquire(t0 + timedelta(seconds=41))
    assert not a.is_leader(t0 + timedelta(seconds=41))
    with store.engine.connect() as conn:
        holder = current_leader(conn)
    assert holder is not None and holder.owner == "host-b:2:bbbbbb"
    assert holder.until == t0 + timedelta(seconds=70)
    # a graceful stop hands over at once, not a lease later
    assert b.release(t0 + timedelta(seconds=45))
    assert a.try_acquire(t0 + timedelta(seconds=45))


def test_lease_insert_race_has_one_winner(store: Store) -> None:
    t0 = at("2026-11-20 09:00")
    a = LeaderLease(store, "a:1:x", 30)
    b = LeaderLease(store, "b:2:y", 30)
    with store.engine.begin() as conn:  # b's INSERT won between a's UPDATE and a's INSERT
        conn.execute(insert(settings).values(key="leader", owner="b:2:y", until=t0 + timedelta(seconds=30)))
    assert not a.try_acquire(t0)
    assert b.try_acquire(t0)


def test_instance_id_fits_the_owner_columns() -> None:
    owner = instance_id(host="h" * 100, pid=12345)
    assert len(owner) <= 64 and owner.split(":")[1] == "12345"
    assert instance_id() != instance_id()


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    b = Backoff(base=1, cap=8)
    assert [b.failure(100.0) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert not b.ready(107.9) and b.ready(108.0)
    assert b.success() and not b.success()
    assert b.ready(0.0)


# --- status and health ------------------------------------------------------------------------------------


def seed(store: Store, now_text: str) -> None:
    now = at(now_text)
    store.set_setting("last_tick_at", (now - timedelta(seconds=30)).isoformat())
    LeaderLease(store, "vm:42:abcdef", 30).try_acquire(now - timedelta(seconds=5))
    row = {"kind": "breach", "channel": "console", "recipient": {"name": "王承办"}, "payload": {},
           "not_before": now, "attempts": 0}
    with store.engine.begin() as conn:
        conn.execute(insert(outbox), [
            {**row, "dedupe_key": "a", "status": "pending", "created_at": now - timedelta(minutes=7)},
            {**row, "dedupe_key": "b", "status": "pending", "created_at": now - timedelta(minutes=1)},
            {**row, "dedupe_key": "c", "status": "dead", "created_at": now - timedelta(days=2)},
            {**row, "dedupe_key": "d", "status": "sent", "created_at": now - timedelta(days=1)},
        ])
        conn.execute(insert(source_state).values(
            name="platform", last_attempt_at=now, last_ok_at=now - timedelta(hours=1),
            last_error="HTTP 502 from the platform API"))


def test_status_reports_every_part_and_its_problems(store: Store, calendar: WorkCalendar) -> None:
    seed(store, "2026-11-20 09:00")
    cfg = Config.model_validate({"sources": [{"name": "platform", "type": "http", "url": "http://x"}]})
    doc = collect_status(store, cfg, calendar, at("2026-11-20 09:00"))
    assert doc["leader"] == {"instance": "vm:42:abcdef", "until": "2026-11-20T09:00:25+08:00", "live": True}
    assert doc["last_tick_age_seconds"] == 30
    assert doc["outbox"]["backlog"] == 2 and doc["outbox"]["oldest_unsent_age_seconds"] == 420
    assert doc["dead_letters"] == 1 and doc["outbox"]["sent"] == 1
    assert doc["sources"][0]["last_error"] == "HTTP 502 from the platform API"
    assert doc["calendar"]["official"] == "2004-2026" and 2027 in doc["calendar"]["provisional"]
    problems = "\n".join(doc["problems"])
    assert "dead letter" in problems and "platform" in problems and "2027" not in problems  # a warning only
    assert "2027" in doc["calendar"]["warning"] and not doc["calendar"]["problem"]
    # later: the lease and the tick have gone stale
    later = collect_status(store, cfg, calendar, at("2026-11-20 09:10"))
    assert not later["leader"]["live"]
    assert any("last tick" in p for p in later["problems"])
    assert any("leader lease" in p for p in later["problems"])


def test_calendar_warning_only_when_next_year_is_close(calendar: WorkCalendar) -> None:
    assert calendar_coverage(calendar, at("2026-06-01 09:00"))["warning"] is None
    assert "2027" in calendar_coverage(calendar, at("2026-11-01 09:00"))["warning"]
    assert calendar_coverage(calendar, at("2025-11-20 09:00"))["warning"] is None  # 2026 is official


def test_status_command_json_exit_code(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.cli import main

    seed(store, "2026-06-01 09:00")
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {{url: '{store.url}'}}\nrules_dir: {Path(__file__).parent.parent / 'sla_rules'}\n",
                      encoding="utf-8")
    code = main(["--config", str(config), "status", "--json", "--now", "2026-06-01 09:00"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["problems"] == [
        "source platform: last sync failed: HTTP 502 from the platform API",
        "1 dead letter(s): see `hotline-sla outbox list --status dead`",
    ]
    assert main(["--config", str(config), "status", "--now", "2026-06-01 09:00"]) == 1
    assert "dead letters 死信 1" in capsys.readouterr().out


def test_health_ok_stale_and_unreachable(store: Store, tmp_path: Path) -> None:
    cfg = Config()
    now = at("2026-11-20 09:00")
    assert check_health(store, cfg, now).reason == "no tick has completed yet"
    store.set_setting("last_tick_at", (now - timedelta(seconds=50)).isoformat())
    assert check_health(store, cfg, now).ok
    stale = check_health(store, cfg, now + timedelta(minutes=10))
    assert not stale.ok and "last tick" in stale.reason
    gone = Store(f"sqlite:///{tmp_path / 'missing-dir' / 'x' / 'db.sqlite3'}")
    gone.engine.dispose()
    (tmp_path / "missing-dir" / "x").rmdir()
    result = check_health(gone, cfg, now)
    assert not result.ok and result.reason.startswith("database unreachable")


@pytest.mark.parametrize("bad", ["0.0.0.0:9817", "192.168.1.5:9817", "9817", "localhost:http", "[::]:1"])
def test_health_listens_on_loopback_only(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"health\.listen"):
        parse_listen(bad)
    assert parse_listen("127.0.0.1:9817") == ("127.0.0.1", 9817)
    assert parse_listen("[::1]:9817") == ("::1", 9817)


def test_health_server_answers_healthz_and_metrics(store: Store) -> None:
    now = at("2026-11-20 09:00")
    seed(store, "2026-11-20 09:00")
    cfg = Config()
    metrics = Metrics(lambda: store, lambda: now)
    metrics.tick_duration.observe(0.2)
    metrics.leader.set(1)
    server = HealthServer("127.0.0.1:0", health=lambda: check_health(store, cfg, now), metrics=metrics.render).start()
    base = "http://{}:{}".format(*server.address)
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
            assert r.status == 200 and json.loads(r.read())["status"] == "ok"
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            text = r.read().decode()
        assert 'hotline_sla_outbox_messages{status="pending"} 2.0' in text
        assert "hotline_sla_outbox_oldest_pending_seconds 420.0" in text
        assert "hotline_sla_database_up 1.0" in text and "hotline_sla_leader 1.0" in text
        assert "hotline_sla_tick_duration_seconds_count 1.0" in text
        assert "hotline_sla_cases_open 0.0" in text
        stale = HealthServer("127.0.0.1:0", health=lambda: check_health(store, cfg, now + timedelta(hours=1)),
                             metrics=metrics.render).start()
        try:
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen("http://{}:{}/healthz".format(*stale.address), timeout=5)
            assert err.value.code == 503 and "last tick" in json.loads(err.value.read())["reason"]
        finally:
            stale.stop()
    finally:
        server.stop()


# --- the service's report catch-up (in-process, fixed clock) ----------------------------------------------


def test_reports_catch_up_at_start_on_the_leader_only_and_once(tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from daemon.runtime.service import Service
    from daemon.storage.models import runs
    from tests.daemon_proc import write_config

    config = write_config(
        tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        extra="contacts: {supervisors: [{name: 督办员, role: supervisor, channels: [console]}]}\n",
    )
    restart = at("2024-10-08 08:31")  # first working day after National Day, a minute after digest_time
    leader = Service(str(config), clock=lambda: restart, owner="a:1:x", environ={})
    follower = Service(str(config), clock=lambda: restart, owner="b:2:y", environ={})
    try:
        assert leader._startup() and follower._startup()
        assert leader.lease.is_leader(restart) and not follower.lease.is_leader(restart)
        follower._reports_round(restart)
        leader._reports_round(restart)
        leader._reports_round(restart + timedelta(minutes=1))  # the trigger as well: still once
        with leader.store.engine.connect() as conn:
            done = conn.execute(select(runs.c.kind, runs.c.period)).all()
            digests = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.kind == "digest")).scalar()
        assert ("digest", "2024-10-08") in done and digests == 1
    finally:
        for service in (leader, follower):
            service.store.close()
