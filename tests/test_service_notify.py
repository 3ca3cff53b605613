"""``hotline-sla run`` as a real process talking to a real NOTIFY_SOCKET (what systemd sees), and reloads."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from tests.daemon_proc import ROOT, DaemonProcess, write_config
from tests.notify_listener import NotifySocketListener

START = 60.0  # generous bounds for a loaded machine; every wait polls
WAIT = 20.0


def unit_stop_timeout() -> float:
    """TimeoutStopSec of the shipped unit: the daemon must exit within it."""
    text = (ROOT / "systemd" / "hotline-sla.service").read_text(encoding="utf-8")
    match = re.search(r"^TimeoutStopSec=(\d+)s?$", text, re.MULTILINE)
    assert match, "the unit sets TimeoutStopSec"
    return float(match.group(1))


@pytest.fixture
def listener(tmp_path: Path):
    with NotifySocketListener.bind(tmp_path) as sock:
        yield sock


def start(tmp_path: Path, listener: NotifySocketListener, **env: str) -> DaemonProcess:
    config = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    return DaemonProcess.start(config, env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "2000000", **env})


def test_ready_watchdog_reloading_stopping_arrive_in_order(tmp_path: Path, listener: NotifySocketListener) -> None:
    with start(tmp_path, listener) as daemon:
        ready = listener.wait_for("READY=1", START)
        assert "STATUS=leader" in ready  # one instance: it leads, and READY came after its first tick
        daemon.wait_for_event("ready", WAIT)
        listener.wait_for("WATCHDOG=1", WAIT)
        listener.wait_for("WATCHDOG=1", WAIT)  # keeps pinging while the loop makes progress

        daemon.signal(signal.SIGHUP)
        reloading = listener.wait_for("RELOADING=1", WAIT)
        assert re.search(r"^MONOTONIC_USEC=\d+$", reloading, re.MULTILINE)
        assert "STATUS=leader" in listener.wait_for("READY=1", WAIT)
        daemon.wait_for_event("reloaded", WAIT)

        stop_started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        listener.wait_for("STOPPING=1", WAIT)
        code = daemon.proc.wait(unit_stop_timeout())
        assert code == 0
        assert time.monotonic() - stop_started < unit_stop_timeout()
        daemon.wait_for_event("stopped", WAIT)
        assert daemon.find("leadership_released")
        # nothing after STOPPING but (possibly) late watchdog pings; no READY/RELOADING
        assert not any(m.startswith(("READY=1", "RELOADING=1")) for m in listener.drain())


def test_a_broken_config_on_reload_is_refused_and_the_old_one_keeps_running(
    tmp_path: Path, listener: NotifySocketListener
) -> None:
    with start(tmp_path, listener) as daemon:
        listener.wait_for("READY=1", START)
        config = tmp_path / "config.yaml"
        good = config.read_text(encoding="utf-8")
        config.write_text(good.replace("tick_interval_seconds: 5", "tick_interval_seconds: soon"), encoding="utf-8")

        mark = daemon.mark()
        daemon.signal(signal.SIGHUP)
        listener.wait_for("RELOADING=1", WAIT)
        refused = listener.wait_for("READY=1", WAIT)  # systemd leaves "reloading" either way
        assert "reload refused" in refused
        event = daemon.wait_for_event("reload_refused", WAIT, after=mark)
        assert "scheduler.tick_interval_seconds" in event["reason"] and str(config) in event["reason"]
        assert daemon.proc.poll() is None
        listener.wait_for("WATCHDOG=1", WAIT)  # the old configuration is still working

        config.write_text(good, encoding="utf-8")
        daemon.signal(signal.SIGHUP)
        listener.wait_for("RELOADING=1", WAIT)
        assert "reload refused" not in listener.wait_for("READY=1", WAIT)
        daemon.wait_for_event("reloaded", WAIT, after=mark)
        assert daemon.stop(unit_stop_timeout()) == 0


def test_a_broken_config_at_start_is_exit_2_naming_the_key(tmp_path: Path, listener: NotifySocketListener) -> None:
    config = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                          extra="health: {listen: '0.0.0.0:9817'}\n")
    with DaemonProcess.start(config, env={"NOTIFY_SOCKET": listener.address}) as daemon:
        assert daemon.proc.wait(START) == 2
        daemon._reader.join(5)
        assert any("health.listen" in line and "loopback" in line for line in daemon.raw)
    assert listener.drain() == []  # never READY
