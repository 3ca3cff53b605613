"""Fake vendor servers on 127.0.0.1 (ephemeral port, background thread) that speak the real contracts.

Every fake records what it received (``requests``) and can be told to misbehave for the next N requests
with :meth:`FakeServer.fail_next`: an HTTP 5xx, a hang past the client's timeout (bounded, released on
stop), a malformed (non-JSON) reply, or a specific vendor error code.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HANG_SECONDS = 5.0  # upper bound of a "hang"; stop() releases it at once


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Fault:
    status: int | None = None
    hang: bool = False
    malformed: bool = False
    code: Any = None
    path: str | None = None  # only requests to this path; None: any request


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)


class FakeServer:
    """Subclasses implement :meth:`handle` (the contract) and :meth:`error` (a vendor error reply)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._sent_at: dict[str, deque[float]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # the client died mid-request (a SIGKILL drill): a real server never sees a whole
                    # request, so nothing is recorded, handled or answered
                    self.close_connection = True
                    return
                parts = urlsplit(self.path)
                req = Recorded(
                    self.command,
                    parts.path,
                    {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = server._dispatch(req)
                raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (timeout test)

            do_GET = do_POST = do_PUT = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int | None = None,
        hang: bool = False,
        malformed: bool = False,
        code: Any = None,
        path: str | None = None,
    ) -> None:
        with self._lock:
            self._faults.extend(Fault(status, hang, malformed, code, path) for _ in range(count))

    def clear_faults(self) -> None:
        """The provider is back: drop every fault not yet served."""
        with self._lock:
            self._faults.clear()

    def _dispatch(self, req: Recorded) -> Reply:
        with self._lock:
            self.requests.append(req)
            fault = next((f for f in self._faults if f.path in (None, req.path)), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is None:
            return self.handle(req)
        if fault.hang:
            self._release.wait(HANG_SECONDS)
            return self.handle(req)
        if fault.status:
            return Reply(fault.status, b"<html>502 Bad Gateway</html>")
        if fault.malformed:
            return Reply(200, b"<html>not json")
        return self.error(fault.code)

    def over_limit(self, bucket: str, limit: int, period: float = 60.0) -> bool:
        """Server-side rate limit: True when ``bucket`` already had ``limit`` requests in ``period``."""
        now = time.monotonic()
        with self._lock:
            sent = self._sent_at.setdefault(bucket, deque())
            while sent and sent[0] <= now - period:
                sent.popleft()
            if len(sent) >= limit:
                return True
            sent.append(now)
            return False

    def handle(self, req: Recorded) -> Reply:
        raise NotImplementedError

    def error(self, code: Any) -> Reply:
        raise NotImplementedError
