"""Talking to systemd without libsystemd: sd_notify(3), the watchdog, and service credentials.

The protocol is small enough to own: each notification is one datagram of ``KEY=VALUE`` lines sent to
the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket). Outside
systemd the variable is unset and every call here is a no-op, so ``hotline-sla run`` behaves the same
in a terminal, in a container and under the unit.

Nothing here raises into the daemon loop: a notification that cannot be sent is logged and reported by
a ``False`` return. Times are seconds as floats unless a name ends in ``_usec`` (microseconds, the unit
systemd uses on the wire); monotonic times are ``CLOCK_MONOTONIC``, the clock systemd compares with.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

#: a datagram that cannot be queued within this long is dropped (and logged): a wedged service manager
#: must not wedge the daemon loop with it.
SEND_TIMEOUT_SECONDS = 1.0

#: prefix of the credential IDs that the unit loads from /etc/hotline-sla/credentials (LoadCredential=
#: secret:DIR names each file ``secret_<file name>``).
CREDENTIAL_PREFIX = "secret_"


def _one_line(text: str) -> str:
    """A value for one ``KEY=VALUE`` line: a newline would start a new (forged) assignment."""
    return " ".join(text.splitlines())


def monotonic_usec() -> int:
    """Now on CLOCK_MONOTONIC in microseconds (what ``MONOTONIC_USEC=`` carries)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class SdNotify:
    """Sends sd_notify messages to the service manager; a no-op when ``$NOTIFY_SOCKET`` is unset.

    Named ``SdNotify`` rather than "Notifier" to keep it apart from the message channels in
    :mod:`notifiers`. Thread-safe: datagram sends are atomic, and the socket is created once.
    """

    def __init__(self, address: str | None) -> None:
        """``address`` is ``$NOTIFY_SOCKET``: an absolute path or ``@abstract``; None or "" disables."""
        self.address = address or None
        self._target: str | bytes | None = None
        self._sock: socket.socket | None = None
        self._failing = False
        self._lock = threading.Lock()
        if self.address is None:
            return
        if self.address.startswith("@"):
            # Linux abstract namespace: a leading NUL byte instead of the "@".
            self._target = b"\0" + self.address[1:].encode()
        elif self.address.startswith("/"):
            self._target = self.address
        else:
            log.warning("NOTIFY_SOCKET=%r is neither an absolute path nor @abstract; not notifying", address)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SdNotify:
        """The notifier systemd asked for through ``$NOTIFY_SOCKET`` (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """True when there is a service manager to talk to."""
        return self._target is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments as one datagram. True if it was handed to the socket.

        Never raises: errors are logged (once at WARNING while they persist, then at DEBUG).
        """
        if self._target is None or not assignments:
            return False
        payload = "\n".join(assignments).encode()
        try:
            with self._lock:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.settimeout(SEND_TIMEOUT_SECONDS)
                self._sock.sendto(payload, self._target)
        except OSError as exc:
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "sd_notify to %s failed (%s): %s", self.address, exc, assignments[0])
            self._failing = True
            return False
        if self._failing:
            log.info("sd_notify to %s works again", self.address)
            self._failing = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up (or a reload) is complete: ``READY=1``."""
        return self.send("READY=1", *self._status(status))

    def status(self, text: str) -> bool:
        """A one-line status that ``systemctl status`` shows: ``STATUS=…``."""
        return self.send(*self._status(text))

    def watchdog(self) -> bool:
        """Keep-alive ping: ``WATCHDOG=1``. Call through :class:`WatchdogGate`, not directly."""
        return self.send("WATCHDOG=1")

    def reloading(self, status: str | None = None, *, monotonic_usec_now: int | None = None) -> bool:
        """A reload starts: ``RELOADING=1`` with ``MONOTONIC_USEC=`` and, after the reload, :meth:`ready`.

        systemd >= 253 (Type=notify-reload) only accepts a reload notification whose MONOTONIC_USEC is
        not older than the reload request; older versions ignore the field. ``monotonic_usec_now``
        defaults to the current CLOCK_MONOTONIC time in microseconds.
        """
        stamp = monotonic_usec() if monotonic_usec_now is None else monotonic_usec_now
        return self.send("RELOADING=1", f"MONOTONIC_USEC={stamp}", *self._status(status))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun: ``STOPPING=1``."""
        return self.send("STOPPING=1", *self._status(status))

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before the start, reload or stop timeout (``EXTEND_TIMEOUT_USEC=``).

        Only the start/reload/stop timeouts: the watchdog is fed by progress, never extended.
        """
        return self.send(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    @staticmethod
    def _status(text: str | None) -> tuple[str, ...]:
        return () if text is None else (f"STATUS={_one_line(text)}",)


def watchdog_interval(environ: Mapping[str, str] | None = None, *, pid: int | None = None) -> float | None:
    """The watchdog timeout systemd set (``$WATCHDOG_USEC``) in seconds, or None when there is none.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for; any other process (a
    child that inherited the environment) gets None. ``pid`` defaults to ``os.getpid()``.
    """
    env = os.environ if environ is None else environ
    raw_usec = env.get("WATCHDOG_USEC")
    if not raw_usec:
        return None
    raw_pid = env.get("WATCHDOG_PID")
    if raw_pid:
        own = os.getpid() if pid is None else pid
        try:
            meant_for = int(raw_pid)
        except ValueError:
            log.warning("ignoring the watchdog: WATCHDOG_PID=%r is not a process id", raw_pid)
            return None
        if meant_for != own:
            return None
    try:
        usec = int(raw_usec)
    except ValueError:
        log.warning("ignoring the watchdog: WATCHDOG_USEC=%r is not a number of microseconds", raw_usec)
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000


def watchdog_ping_period(timeout_seconds: float) -> float:
    """How often to ping for a watchdog ``timeout_seconds`` long: half of it, as sd_watchdog_enabled(3)
    recommends, so one late ping is not yet fatal."""
    return timeout_seconds / 2


class WatchdogGate:
    """Sends ``WATCHDOG=1`` only while the daemon loop is really making progress.

    The loop calls :meth:`progress` each time a tick or a dispatch round completes, and
    :meth:`maybe_ping` with the current monotonic time whenever it wakes up. A ping goes out only if
    there was progress since the previous ping, so a loop stuck in a hung query stops pinging and
    systemd restarts it after ``WatchdogSec``. Pings are at least a quarter of the timeout apart (half
    the recommended period), so a busy loop does not flood the service manager. No clock is read here.
    """

    def __init__(self, notify: SdNotify, timeout_seconds: float | None) -> None:
        """``timeout_seconds`` from :func:`watchdog_interval`; None disables the gate."""
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"watchdog timeout must be positive seconds, got {timeout_seconds!r}")
        self._notify = notify
        self.timeout_seconds = timeout_seconds
        self._progressed = False
        self._last_ping: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_environ(cls, notify: SdNotify, environ: Mapping[str, str] | None = None) -> WatchdogGate:
        return cls(notify, watchdog_interval(environ))

    @property
    def enabled(self) -> bool:
        return self.timeout_seconds is not None and self._notify.enabled

    @property
    def ping_period(self) -> float | None:
        """Seconds between pings that systemd recommends (half the timeout); None when disabled.

        The loop should wake at least this often to call :meth:`maybe_ping`.
        """
        return None if self.timeout_seconds is None else watchdog_ping_period(self.timeout_seconds)

    def progress(self) -> None:
        """Record that the loop completed a unit of work (thread-safe; cheap enough for every job)."""
        with self._lock:
            self._progressed = True

    def maybe_ping(self, now_monotonic: float) -> bool:
        """Ping if there was progress since the last ping and the last ping is old enough.

        ``now_monotonic`` is ``time.monotonic()`` seconds. True if ``WATCHDOG=1`` was sent.
        """
        if self.timeout_seconds is None or not self._notify.enabled:
            return False
        min_gap = self.timeout_seconds / 4
        with self._lock:
            if not self._progressed:
                return False
            if self._last_ping is not None and now_monotonic - self._last_ping < min_gap:
                return False
            self._progressed = False
            self._last_ping = now_monotonic
        return self._notify.watchdog()


def credential_path(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Where systemd put the secret ``name`` for this service, or None if it did not.

    The unit loads every file ``/etc/hotline-sla/credentials/NAME`` as ``$CREDENTIALS_DIRECTORY/
    secret_NAME``; a drop-in ``SetCredentialEncrypted=secret_NAME: …`` lands at the same place. Raises
    ValueError for a name that is not a plain file name (it comes from config.yaml).
    """
    if not name or "/" in name or name in {".", ".."} or "\0" in name:
        raise ValueError(
            f"invalid credential name {name!r}: expected a plain file name such as 'db-password'"
        )
    env = os.environ if environ is None else environ
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / f"{CREDENTIAL_PREFIX}{name}"
    return path if path.is_file() else None
