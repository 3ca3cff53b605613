"""``python -m daemon run`` as a real process for tests: its JSON log lines collected as they come.

    with DaemonProcess.start(config_path, env=...) as d:
        d.wait_for_event("ready", timeout=30)

Every wait polls with a bound (a Condition with a deadline): no sleeping, no unbounded waits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        threading.Event().wait(poll)  # a bounded poll interval, not a wait for the thing itself


class DaemonProcess:
    def __init__(self, proc: subprocess.Popen[str], name: str) -> None:
        self.proc = proc
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, config: Path, *, env: dict[str, str] | None = None, name: str = "daemon",
              args: tuple[str, ...] = ()) -> DaemonProcess:
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("HOTLINE_SLA_DATABASE_URL", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(config), "run", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env, cwd=config.parent,
        )
        return cls(proc, name)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.raw.append(line.rstrip("\n"))
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict):
                        self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e.get("event") == event
                    and all(e.get(k) == v for k, v in fields.items())]

    def wait_for_event(self, event: str, timeout: float, *, after: int = 0, **fields: Any) -> dict[str, Any]:
        """The first log event named ``event`` (with ``fields``) at index ≥ ``after``; raises on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events[after:]:
                    if e.get("event") == event and all(e.get(k) == v for k, v in fields.items()):
                        return e
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"{self.name}: no {event!r} {fields or ''} within {timeout} s; "
                                         f"exit={self.proc.poll()}; log tail:\n" + "\n".join(self.raw[-40:]))
                self._cond.wait(remaining)

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the exit code (bounded)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)


def write_config(path: Path, *, database_url: str, extra: str = "", channels: str | None = None,
                 scheduler: str = "sync_interval_seconds: 5, tick_interval_seconds: 5, "
                                  "dispatch_interval_seconds: 1, leader_lease_seconds: 6") -> Path:
    """A config for a daemon under test: short intervals, the repository's rules, no sample source."""
    channels = channels or "console: {type: console}"
    path.write_text(
        f"database: {{url: '{database_url}'}}\n"
        f"rules_dir: {ROOT / 'sla_rules'}\n"
        f"channels: {{{channels}}}\n"
        f"scheduler: {{{scheduler}}}\n"
        + extra,
        encoding="utf-8",
    )
    return path
