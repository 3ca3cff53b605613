"""A stand-in for systemd's notification socket, for tests of anything that calls sd_notify.

    with NotifySocketListener.bind(tmp_path) as listener:
        env = {**os.environ, "NOTIFY_SOCKET": listener.address}
        proc = subprocess.Popen([...], env=env)
        listener.wait_for("READY=1", timeout=10)

``wait_for`` consumes datagrams in arrival order, so consecutive calls also assert the order of events.
It waits with select() up to a deadline: no sleeps, no unbounded waits.
"""

from __future__ import annotations

import os
import select
import socket
import time
from pathlib import Path
from types import TracebackType


class NotifySocketListener:
    """A bound AF_UNIX datagram socket that records every notification sent to it."""

    def __init__(self, sock: socket.socket, address: str, path: Path | None) -> None:
        self._sock = sock
        #: the value for $NOTIFY_SOCKET
        self.address = address
        self._path = path
        #: every datagram received so far, decoded, in arrival order
        self.received: list[str] = []
        self._cursor = 0

    @classmethod
    def bind(cls, directory: Path, name: str = "notify.sock") -> NotifySocketListener:
        """Listen on a socket file in ``directory`` (keep the path short: sun_path is 108 bytes)."""
        path = directory / name
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.bind(str(path))
        return cls(sock, str(path), path)

    @classmethod
    def bind_abstract(cls, name: str | None = None) -> NotifySocketListener:
        """Listen on a Linux abstract socket; ``address`` is then ``@name``."""
        name = name or f"hotline-sla-test-{os.getpid()}-{os.urandom(4).hex()}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.bind(b"\0" + name.encode())
        return cls(sock, f"@{name}", None)

    def _receive(self, timeout: float) -> bool:
        """Read every datagram that is ready, waiting up to ``timeout`` seconds for the first one."""
        got = False
        wait = max(0.0, timeout)
        while True:
            readable, _, _ = select.select([self._sock], [], [], wait)
            if not readable:
                return got
            self.received.append(self._sock.recv(65536).decode())
            got = True
            wait = 0.0

    def drain(self, within: float = 0.0) -> list[str]:
        """Datagrams not yet consumed by ``wait_for``, including any that arrive within ``within``
        seconds (0: only what is ready now); consumes them."""
        deadline = time.monotonic() + within
        while True:
            self._receive(0.0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._receive(remaining)
        pending = self.received[self._cursor :]
        self._cursor = len(self.received)
        return pending

    def wait_for(self, prefix: str, timeout: float) -> str:
        """The next datagram with a line starting with ``prefix``; earlier datagrams are skipped.

        Raises AssertionError naming what did arrive if none comes within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.received):
                message = self.received[self._cursor]
                self._cursor += 1
                if any(line.startswith(prefix) for line in message.split("\n")):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no notification starting with {prefix!r} within {timeout} s; "
                    f"received: {self.received!r}"
                )
            self._receive(remaining)

    def close(self) -> None:
        self._sock.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def __enter__(self) -> NotifySocketListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
