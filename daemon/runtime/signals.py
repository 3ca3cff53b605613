"""Signal handling that cannot dead-lock: a handler only writes the signal's number to a pipe.

A Python signal handler runs on the main thread between two bytecodes, possibly while that thread holds a
lock (the scheduler's, an Event's condition, our own): taking any lock or starting a thread there can
dead-lock, which a second SIGTERM during a stop used to do. Here the handler writes one byte to a
non-blocking pipe and a ``signals`` thread calls ``on_stop`` / ``on_reload`` in order. ``close()``
ignores the signals from then on (the process is stopping) before it closes the pipe, so a late signal
can never write into a reused file descriptor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

#: the byte that tells the signal thread to end (no signal has number 0)
_QUIT = 0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SignalPipe:
    """``install()`` on the main thread; ``on_stop(signal_name)`` may be called more than once (the
    callee makes stopping idempotent)."""

    def __init__(self, on_stop: Callable[[str], None], on_reload: Callable[[], None]) -> None:
        self.on_stop, self.on_reload = on_stop, on_reload
        self._read = self._write = -1
        self._thread: threading.Thread | None = None

    def install(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._thread = threading.Thread(target=self._loop, name="signals", daemon=True)
        self._thread.start()
        for signum in (*STOP_SIGNALS, signal.SIGHUP):
            signal.signal(signum, self._handler)

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):  # a full pipe already holds a wake-up: dropping this one is fine
            os.write(self._write, bytes([signum]))

    def _loop(self) -> None:
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            for signum in data:
                if signum == _QUIT:
                    return
                if signum == signal.SIGHUP:
                    threading.Thread(target=self.on_reload, name="reload", daemon=True).start()
                else:
                    self.on_stop(signal.Signals(signum).name)

    def close(self) -> None:
        """Ignore the signals from now on, let the thread finish what it read, close the pipe."""
        if self._thread is None:
            return
        if threading.current_thread() is threading.main_thread():
            for signum in (*STOP_SIGNALS, signal.SIGHUP):  # stopping already
                signal.signal(signum, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            os.write(self._write, bytes([_QUIT]))
        self._thread.join(timeout=10)
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._thread = None
