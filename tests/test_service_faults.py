"""Faults: the database goes away and comes back; SQLite on a full or read-only disk.

The third fault of issue 6, a tick that raises on one case, is tested where the tick lives:
``tests/test_store_tick.py::test_a_case_that_fails_to_evaluate_is_pushed_forward`` (the case's
``next_check_at`` moves forward with backoff, ``check_failures`` counts, the other cases still alert).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.core.rules import RuleSet
from daemon.storage.models import alerts, outbox
from daemon.storage.store import Store
from tests.conftest import run_subprocess, server_url
from tests.daemon_proc import DaemonProcess, wait_until, write_config
from tests.fakes.wecom import FakeWecom
from tests.test_service_cluster import KEY, cluster_config, count, import_cases

START = 60.0


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that the test can cut and restore: a database outage without stopping
    the shared PostgreSQL server, which other test sessions use (``pg_ctlcluster … stop`` would break them).

    Cut: every open connection is closed and new ones are closed as soon as they are accepted, which is
    what a client sees when the server goes down or restarts.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._open.difference_update((src, dst))

    def cut(self) -> None:
        self.up = False
        with self._lock:
            sockets = list(self._open)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_database_outage_backs_off_and_resumes_without_losing_or_repeating_alerts(
    tmp_path: Path, rules: RuleSet
) -> None:
    from sqlalchemy.engine import make_url

    url = server_url("postgres")
    store = Store(url)
    store.drop_all()
    store.upgrade()
    parsed = make_url(url)
    proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    robot = FakeWecom(robot_keys=(KEY,), robot_limit=1000).start()
    try:
        proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        config = cluster_config(tmp_path / "config.yaml", proxied, robot)
        numbers = import_cases(store, rules, [-3.0 + 3.0 * i for i in range(10)])
        with DaemonProcess.start(config, env={"WECOM_ROBOT_KEY": KEY}) as daemon:
            daemon.wait_for_event("ready", START)
            wait_until(lambda: count(store, outbox, outbox.c.status == "sent") >= 2
                       and count(store, outbox, outbox.c.status.in_(["pending", "sending"])) == 0, 60,
                       "the first alerts to go out")
            mark = daemon.mark()
            proxy.cut()
            first = daemon.wait_for_event("database_unavailable", 30, after=mark)
            # backing off: the retry delay grows while the database stays away
            wait_until(lambda: len({e["retry_in_s"] for e in daemon.find("database_unavailable")}) >= 3, 60,
                       "three growing retry delays")
            delays = [e["retry_in_s"] for e in daemon.events[mark:] if e.get("event") == "database_unavailable"]
            assert delays[:3] == sorted(delays[:3]) and delays[0] == first["retry_in_s"]
            assert daemon.proc.poll() is None
            proxy.restore()
            daemon.wait_for_event("database_available_again", 90, after=mark)
            wait_until(lambda: count(store, alerts) == len(numbers)
                       and count(store, outbox, outbox.c.status == "sent") == len(numbers), 90,
                       "every alert to be sent after the outage")
            assert daemon.stop(30) == 0
        messages = [r.json() for r in robot.requests if r.path == "/cgi-bin/webhook/send"]
        per_case = Counter(n for m in messages for n in numbers if n in json.dumps(m, ensure_ascii=False))
        assert per_case == dict.fromkeys(numbers, 1)
        print(f"\noutage retry delays {delays}; alerts {len(numbers)}, each in one of {len(messages)} messages")
    finally:
        proxy.close()
        robot.stop()
        store.drop_all()
        store.close()


# --- SQLite on a disk that is full or read-only ---------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only; skipped elsewhere) so a full disk and a read-only remount are real."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write until the disk is full (ENOSPC); returns the filler file."""
    filler = directory / "filler"
    # unbuffered: a buffered file would flush a partial block at close and raise ENOSPC outside the suppress
    with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.mark.slow  # a real daemon filling a tiny disk and resuming: ~25 s
def test_full_disk_is_a_clear_error_and_the_daemon_resumes_with_no_corruption(
    tiny_disk: Path, tmp_path: Path, rules: RuleSet
) -> None:
    db = tiny_disk / "db.sqlite3"
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    numbers = import_cases(store, rules, [-3.0] + [6.0 + 2.0 * i for i in range(8)])
    robot = FakeWecom(robot_keys=(KEY,), robot_limit=1000).start()
    config = cluster_config(tmp_path / "config.yaml", f"sqlite:///{db}", robot)
    try:
        with DaemonProcess.start(config, env={"WECOM_ROBOT_KEY": KEY}) as daemon:
            daemon.wait_for_event("ready", START)
            wait_until(lambda: count(store, outbox, outbox.c.status == "sent") >= 1, 60, "the first alert")
            mark = daemon.mark()
            filler = fill(tiny_disk)
            event = daemon.wait_for_event("database_unavailable", 60, after=mark)
            assert "full" in event["error"] or "I/O" in event["error"], event
            assert "writable" in event["hint"] and "free space" in event["hint"]
            assert daemon.proc.poll() is None
            filler.unlink()
            daemon.wait_for_event("database_available_again", 90, after=mark)
            wait_until(lambda: count(store, outbox, outbox.c.status == "sent") == len(numbers), 90,
                       "every alert to be sent once the disk has room")
            assert daemon.stop(30) == 0
        assert integrity(db) == "ok"
        with store.engine.connect() as conn:
            assert len(conn.execute(select(alerts.c.id)).all()) == len(numbers)
        messages = [r.json() for r in robot.requests if r.path == "/cgi-bin/webhook/send"]
        per_case = Counter(n for m in messages for n in numbers if n in json.dumps(m, ensure_ascii=False))
        assert per_case == dict.fromkeys(numbers, 1)
    finally:
        robot.stop()
        store.close()


def test_full_disk_for_a_one_shot_tick_is_a_clear_error(tiny_disk: Path, tmp_path: Path, rules: RuleSet) -> None:
    db = tiny_disk / "db.sqlite3"
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    import_cases(store, rules, [-60.0] * 200)
    store.close()
    config = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{db}")
    filler = fill(tiny_disk)
    done = run_subprocess("--config", str(config), "tick", "--json")
    assert done.returncode == 1, done.stderr
    assert "hotline-sla: error: database:" in done.stderr and "Traceback" not in done.stderr
    assert "full" in done.stderr or "I/O" in done.stderr
    filler.unlink()
    assert integrity(db) == "ok"
    again = run_subprocess("--config", str(config), "tick", "--json")
    assert again.returncode == 0, again.stderr
    assert len(json.loads(again.stdout)["alerts"]) == 200  # nothing half-written the first time


def test_read_only_disk_is_a_clear_error_and_leaves_the_store_intact(
    tiny_disk: Path, tmp_path: Path, rules: RuleSet
) -> None:
    db = tiny_disk / "db.sqlite3"
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    import_cases(store, rules, [-60.0] * 5)
    store.close()
    before = db.read_bytes()
    config = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{db}")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    try:
        done = run_subprocess("--config", str(config), "tick")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
    assert done.returncode == 1, done.stderr
    assert "hotline-sla: error: database:" in done.stderr and "Traceback" not in done.stderr
    assert "readonly" in done.stderr or "read-only" in done.stderr or "unable to open" in done.stderr
    assert db.read_bytes() == before
    assert integrity(db) == "ok"
    assert (run_subprocess("--config", str(config), "tick").returncode) == 0

