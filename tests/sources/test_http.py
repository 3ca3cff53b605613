"""HttpSource against a fake platform API on 127.0.0.1 (http.server in a thread, ephemeral port)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from daemon.core.timeutil import LOCAL_TZ
from daemon.sources import ColumnMapping, SourceError
from daemon.sources.http import HttpSource

TOKEN = "tok-9f8e7d6c5b4a"


def _case(i: int, **extra: object) -> dict[str, object]:
    item: dict[str, object] = {
        "number": f"26111{i:05d}",
        "source": "市级",
        "category": "投诉",
        "received_at": f"2026-11-1{i % 10} 09:00:00",
        "unit": "兴海街道办事处",
        "updated_at": f"2026-11-19T1{i % 10}:00:00+08:00",
    }
    item.update(extra)
    return item


CASES = [_case(1), _case(2, 来源="省平台"), _case(3, source="火星"), _case(4), _case(5)]


@dataclass
class FakeApi:
    base: str
    requests: list[tuple[str, dict[str, list[str]], str | None]] = field(default_factory=list)
    flaky_failures: int = 1
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    state = FakeApi(base="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, payload: object) -> None:
            self._send(200, json.dumps(payload, ensure_ascii=False).encode())

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            state.requests.append((url.path, query, self.headers.get("Authorization")))
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("page_size", ["2"])[0])
            if url.path == "/cases":
                self._json({"code": 0, "data": {"items": CASES[(page - 1) * size : page * size]}})
            elif url.path == "/cursor":
                cursor = int(query.get("cursor", ["0"])[0])
                nxt = str(cursor + 2) if cursor + 2 < len(CASES) else None
                self._json({"data": {"items": CASES[cursor : cursor + 2], "next": nxt}})
            elif url.path == "/link":
                start = int(query.get("from", ["0"])[0])
                nxt = f"/link?from={start + 3}" if start + 3 < len(CASES) else ""
                self._json({"data": {"items": CASES[start : start + 3], "next": nxt}})
            elif url.path == "/flaky":
                if state.flaky_failures > 0:
                    state.flaky_failures -= 1
                    self._send(500, b"internal error")
                else:
                    self._json({"data": {"items": CASES[:1]}})
            elif url.path == "/always500":
                self._send(503, b"unavailable")
            elif url.path == "/malformed":
                self._send(200, b'{"data": {"items": [', "application/json")
            elif url.path == "/wrongshape":
                self._json({"code": 500, "msg": "error"})
            elif url.path == "/unauthorized":
                self._send(401, b'{"msg": "bad token"}')
            elif url.path == "/slow":
                state.release.wait(10)
                self._json({"data": {"items": []}})
            else:
                self._send(404, b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def source(api: FakeApi, path: str, **options: object) -> HttpSource:
    defaults: dict[str, object] = {"page_size": 2, "token": TOKEN, "sleep": Sleeps(), "read_timeout": 2.0}
    defaults.update(options)
    return HttpSource("platform_api", api.base + path, **defaults)  # type: ignore[arg-type]


def test_pages_until_a_short_page_with_token_and_watermark(api: FakeApi) -> None:
    mapping = ColumnMapping.model_validate({"columns": {"source_updated_at": "updated_at"}})
    mapping_source = source(api, "/cases", mapping=mapping)
    watermark = datetime(2026, 11, 18, 0, 0, tzinfo=LOCAL_TZ)
    result = mapping_source.fetch(watermark)
    assert [r.number for r in result.records] == ["2611100001", "2611100002", "2611100004", "2611100005"]
    assert result.records[1].source.value == "province"  # the configured 来源 before the English 'source'
    assert len(result.errors) == 1
    assert "record 3 (page 2): source '火星' is not a known source" in str(result.errors[0].error)
    assert "sources.platform_api.values.source" in str(result.errors[0].error)
    assert result.watermark == datetime(2026, 11, 19, 15, 0, tzinfo=LOCAL_TZ)
    assert [q["page"] for _, q, _ in api.requests] == [["1"], ["2"], ["3"]]
    assert all(q["updated_since"] == ["2026-11-18T00:00:00+08:00"] for _, q, _ in api.requests)
    assert {auth for _, _, auth in api.requests} == {f"Bearer {TOKEN}"}


def test_cursor_paging(api: FakeApi) -> None:
    result = source(api, "/cursor", paging="cursor").fetch(None)
    assert result.rows_read == 5
    assert [q.get("cursor") for _, q, _ in api.requests] == [None, ["2"], ["4"]]
    assert all("updated_since" not in q for _, q, _ in api.requests)  # no watermark yet


def test_next_link_paging(api: FakeApi) -> None:
    result = source(api, "/link", paging="cursor").fetch(None)
    assert result.rows_read == 5
    assert [q.get("from") for _, q, _ in api.requests] == [None, ["3"]]


def test_retries_a_500_with_injected_backoff(api: FakeApi) -> None:
    sleeps = Sleeps()
    result = source(api, "/flaky", sleep=sleeps, backoff=0.5).fetch(None)
    assert [r.number for r in result.records] == ["2611100001"]
    assert sleeps == [0.5]
    assert len(api.requests) == 2


def test_gives_up_after_bounded_retries(api: FakeApi) -> None:
    sleeps = Sleeps()
    with pytest.raises(SourceError) as info:
        source(api, "/always500", sleep=sleeps, retries=3, backoff=1.0, backoff_max=3.0).fetch(None)
    assert sleeps == [1.0, 2.0, 3.0]
    assert len(api.requests) == 4
    message = str(info.value)
    assert message.startswith("source 'platform_api': ")
    assert "/always500 page 1: HTTP 503, after 4 attempts" in message
    assert TOKEN not in message


def test_malformed_json_is_a_source_error(api: FakeApi) -> None:
    with pytest.raises(
        SourceError, match=r"/malformed page 1: malformed JSON \(application/json, 20 bytes\)"
    ):
        source(api, "/malformed").fetch(None)
    assert len(api.requests) == 1  # not retried: the same body would come back


def test_response_without_the_records_list(api: FakeApi) -> None:
    with pytest.raises(SourceError, match=r"no records list at data\.items \(found keys code, msg\)"):
        source(api, "/wrongshape").fetch(None)


def test_unauthorized_is_not_retried_and_hides_the_token(api: FakeApi) -> None:
    with pytest.raises(SourceError, match="HTTP 401; check the token") as info:
        source(api, "/unauthorized").fetch(None)
    assert len(api.requests) == 1
    assert TOKEN not in str(info.value)


def test_read_timeout_is_retried_then_a_source_error(api: FakeApi) -> None:
    sleeps = Sleeps()
    with pytest.raises(SourceError, match=r"timed out \(connect 5.0s, read 0.2s\), after 2 attempts"):
        source(api, "/slow", read_timeout=0.2, retries=1, sleep=sleeps).fetch(None)
    assert sleeps == [1.0]


def test_connection_refused_is_a_source_error() -> None:
    refused = HttpSource("platform_api", "http://user:pw@127.0.0.1:1/cases", retries=0, sleep=Sleeps())
    with pytest.raises(SourceError, match=r"http://127.0.0.1:1/cases page 1: cannot connect") as info:
        refused.fetch(None)
    assert "pw" not in str(info.value).replace("page", "")
