"""sd_notify against a real AF_UNIX datagram socket, the watchdog gate, and the environment systemd sets."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from daemon.runtime.systemd import (
    SdNotify,
    WatchdogGate,
    credential_path,
    monotonic_usec,
    watchdog_interval,
    watchdog_ping_period,
)
from tests.notify_listener import NotifySocketListener

REPO_ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0  # seconds; generous bound for a loaded CI machine, never slept


@pytest.fixture
def listener(tmp_path: Path):
    with NotifySocketListener.bind(tmp_path) as sock:
        yield sock


# --- SdNotify -------------------------------------------------------------------------------------


def test_each_call_sends_its_exact_datagram(listener: NotifySocketListener) -> None:
    notify = SdNotify.from_environ({"NOTIFY_SOCKET": listener.address})
    assert notify.enabled
    assert notify.ready("watching 12 open cases")
    assert notify.status("tick done")
    assert notify.watchdog()
    assert notify.reloading("reloading config", monotonic_usec_now=123456789)
    assert notify.stopping()
    assert notify.extend_timeout(2.5)
    notify.close()
    assert listener.drain() == [
        "READY=1\nSTATUS=watching 12 open cases",
        "STATUS=tick done",
        "WATCHDOG=1",
        "RELOADING=1\nMONOTONIC_USEC=123456789\nSTATUS=reloading config",
        "STOPPING=1",
        "EXTEND_TIMEOUT_USEC=2500000",
    ]


def test_reloading_stamps_the_current_monotonic_clock(listener: NotifySocketListener) -> None:
    notify = SdNotify(listener.address)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notify.reloading()
    after = monotonic_usec()
    message = listener.wait_for("RELOADING=1", WAIT)
    assert message.startswith("RELOADING=1\nMONOTONIC_USEC=")
    stamp = int(message.split("\n")[1].removeprefix("MONOTONIC_USEC="))
    assert before <= stamp <= after


def test_status_cannot_smuggle_extra_assignments(listener: NotifySocketListener) -> None:
    SdNotify(listener.address).status("bad row\nREADY=1")
    assert listener.drain() == ["STATUS=bad row READY=1"]


def test_abstract_socket(tmp_path: Path) -> None:
    with NotifySocketListener.bind_abstract() as abstract:
        assert abstract.address.startswith("@")
        notify = SdNotify(abstract.address)
        assert notify.ready()
        assert abstract.wait_for("READY=1", WAIT) == "READY=1"


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}])
def test_no_socket_is_a_no_op(environ: dict[str, str]) -> None:
    notify = SdNotify.from_environ(environ)
    assert not notify.enabled
    assert not notify.ready()
    assert not notify.watchdog()
    assert not notify.reloading()
    assert not notify.stopping()


def test_relative_socket_address_is_refused_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="daemon.runtime.systemd"):
        notify = SdNotify("relative/notify.sock")
    assert not notify.enabled
    assert not notify.ready()
    assert "neither an absolute path" in caplog.text


def test_send_errors_are_logged_once_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notify = SdNotify(str(tmp_path / "nobody-listens.sock"))
    with caplog.at_level(logging.DEBUG, logger="daemon.runtime.systemd"):
        assert not notify.ready()
        assert not notify.watchdog()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "READY=1" in warnings[0].getMessage()
    # the socket appears (systemd restarted): sending works again and says so
    with NotifySocketListener.bind(tmp_path, "nobody-listens.sock") as late:
        with caplog.at_level(logging.INFO, logger="daemon.runtime.systemd"):
            assert notify.status("back")
        assert late.wait_for("STATUS=back", WAIT)
    assert "works again" in caplog.text


def test_a_subprocess_finds_the_socket_through_its_environment(listener: NotifySocketListener) -> None:
    code = "from daemon.runtime.systemd import SdNotify; SdNotify.from_environ().ready('from a child')"
    env = {**os.environ, "NOTIFY_SOCKET": listener.address, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=WAIT)
    assert listener.wait_for("READY=1", WAIT) == "READY=1\nSTATUS=from a child"


# --- watchdog environment --------------------------------------------------------------------------


def test_watchdog_interval_from_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "180000000"}) == 180.0
    assert watchdog_ping_period(180.0) == 90.0


def test_watchdog_pid_of_this_process_enables() -> None:
    env = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(env) == 2.0
    assert watchdog_interval(env, pid=4242) is None


def test_watchdog_pid_of_another_process_disables() -> None:
    # e.g. a child of the daemon that inherited the environment
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, pid=4242) is None


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"WATCHDOG_USEC": ""},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "-5"},
        {"WATCHDOG_USEC": "3min"},
        {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "self"},
    ],
)
def test_watchdog_absent_or_malformed_is_disabled(environ: dict[str, str]) -> None:
    assert watchdog_interval(environ) is None


# --- WatchdogGate ----------------------------------------------------------------------------------


def test_gate_pings_only_after_progress(listener: NotifySocketListener) -> None:
    gate = WatchdogGate(SdNotify(listener.address), timeout_seconds=60.0)
    assert gate.enabled
    assert gate.ping_period == 30.0
    assert not gate.maybe_ping(1000.0)  # no progress yet
    gate.progress()
    assert gate.maybe_ping(1001.0)
    assert not gate.maybe_ping(1040.0)  # a hung loop: time passes, no progress, no ping
    assert not gate.maybe_ping(5000.0)
    gate.progress()
    assert gate.maybe_ping(5001.0)
    assert listener.drain() == ["WATCHDOG=1", "WATCHDOG=1"]


def test_gate_spaces_pings_at_least_a_quarter_timeout_apart(listener: NotifySocketListener) -> None:
    gate = WatchdogGate(SdNotify(listener.address), timeout_seconds=60.0)
    gate.progress()
    assert gate.maybe_ping(0.0)
    gate.progress()
    assert not gate.maybe_ping(14.9)  # busy loop: too soon
    assert gate.maybe_ping(15.0)  # the progress seen at 14.9 still counts
    assert listener.drain() == ["WATCHDOG=1", "WATCHDOG=1"]


def test_gate_without_watchdog_or_socket_never_pings(listener: NotifySocketListener) -> None:
    no_watchdog = WatchdogGate(SdNotify(listener.address), timeout_seconds=None)
    no_socket = WatchdogGate(SdNotify(None), timeout_seconds=60.0)
    for gate in (no_watchdog, no_socket):
        gate.progress()
        assert not gate.enabled
        assert not gate.maybe_ping(100.0)
    assert no_watchdog.ping_period is None
    assert listener.drain() == []


def test_gate_rejects_a_nonsense_timeout() -> None:
    with pytest.raises(ValueError, match="positive seconds"):
        WatchdogGate(SdNotify(None), timeout_seconds=0)


def test_gate_from_environ() -> None:
    gate = WatchdogGate.from_environ(SdNotify(None), {"WATCHDOG_USEC": "4000000"})
    assert gate.timeout_seconds == 4.0


# --- credentials -----------------------------------------------------------------------------------


def test_credential_path(tmp_path: Path) -> None:
    (tmp_path / "secret_db-password").write_text("s3cret")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert credential_path("db-password", env) == tmp_path / "secret_db-password"
    assert credential_path("smtp-password", env) is None
    assert credential_path("db-password", {}) is None
    for bad in ("", "../etc/shadow", ".."):
        with pytest.raises(ValueError, match="plain file name"):
            credential_path(bad, env)


# --- a daemon loop under a real notify socket and real signals -------------------------------------

# The shape `hotline-sla run` is meant to have (its own end-to-end test reuses NotifySocketListener):
# READY after the first completed tick, WATCHDOG only while ticks complete, RELOADING…READY around
# SIGHUP, STOPPING on SIGTERM. A file "hang" in the working directory simulates a hung tick.
_DEMO_LOOP = textwrap.dedent(
    """
    import os, signal, threading, time
    from daemon.runtime.systemd import SdNotify, WatchdogGate

    notify = SdNotify.from_environ()
    gate = WatchdogGate.from_environ(notify)
    wake = threading.Event()
    flags = set()
    def on_signal(signum, frame):
        flags.add(signum)
        wake.set()
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    ticks = 0
    while True:
        if signal.SIGTERM in flags:
            notify.stopping("stopping")
            break
        if signal.SIGHUP in flags:
            flags.discard(signal.SIGHUP)
            notify.reloading("reloading")
            notify.ready(f"reloaded after {ticks} ticks")
        if not os.path.exists("hang"):
            ticks += 1                      # a tick that completed
            gate.progress()
            if ticks == 1:
                notify.ready("first tick done")
        gate.maybe_ping(time.monotonic())
        wake.wait(0.02)
        wake.clear()
    """
)


def test_demo_loop_notifies_in_order(listener: NotifySocketListener, tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text(_DEMO_LOOP)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": listener.address,
        "WATCHDOG_USEC": "400000",  # 0.4 s: pings at least 0.1 s apart
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path)
    try:
        assert listener.wait_for("READY=1", WAIT) == "READY=1\nSTATUS=first tick done"
        listener.wait_for("WATCHDOG=1", WAIT)
        listener.wait_for("WATCHDOG=1", WAIT)

        proc.send_signal(signal.SIGHUP)
        reloading = listener.wait_for("RELOADING=1", WAIT)
        assert "\nMONOTONIC_USEC=" in reloading
        assert listener.wait_for("READY=1", WAIT).startswith("READY=1\nSTATUS=reloaded after ")

        # a hung loop: no more progress, so the pings stop and systemd would restart the service
        (tmp_path / "hang").touch()
        listener.drain(within=0.3)  # a tick already under way may still complete and ping once
        with pytest.raises(AssertionError, match="no notification"):
            listener.wait_for("WATCHDOG=1", 1.0)
        (tmp_path / "hang").unlink()
        listener.wait_for("WATCHDOG=1", WAIT)

        proc.send_signal(signal.SIGTERM)
        assert listener.wait_for("STOPPING=1", WAIT) == "STOPPING=1\nSTATUS=stopping"
        assert proc.wait(WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
