"""The platform's JSON API as a case source: paged GETs since a watermark, with bounded retries.

Paging is either by page number (``page``/``page_size`` query parameters, stopping at a short or empty
page) or by a ``next`` field (a cursor token sent back as a parameter, or a link to follow). The records
are the list at ``items_path`` (dotted, e.g. ``data.items``; empty for a top-level list). Each record is
mapped with the source's :class:`ColumnMapping`; JSON keys may be the Chinese headers or the English field
names.

Failures of the source (connection refused, timeouts, HTTP 5xx after the retries, HTTP 4xx, malformed
JSON, a body over ``max_body_bytes``, JSON nested deeper than ``max_json_depth``, a response without the
records list) raise :class:`SourceError`. The auth token is sent as a header
and never appears in a message or a log. Backoff waits go through an injected ``sleep`` so tests never
sleep.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import requests

from daemon.core.timeutil import LOCAL_TZ
from daemon.sources.base import FetchResult, RowResult, SourceError, WatermarkedStream
from daemon.sources.mapping import CaseRowError, ColumnMapping

Paging = Literal["page", "cursor", "none"]


class HttpSource:
    """Fetch cases changed since a watermark from a JSON endpoint. Times are Asia/Shanghai unless offset."""

    def __init__(
        self,
        name: str,
        url: str,
        mapping: ColumnMapping | None = None,
        *,
        items_path: str = "data.items",
        paging: Paging = "page",
        page_param: str = "page",
        page_size_param: str = "page_size",
        page_size: int = 200,
        first_page: int = 1,
        next_path: str = "data.next",
        cursor_param: str = "cursor",
        watermark_param: str | None = "updated_since",
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        token_header: str = "Authorization",  # noqa: S107 - a header name, not a secret
        token_prefix: str = "Bearer ",  # noqa: S107 - the scheme word, not a secret
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
        backoff_max: float = 30.0,
        max_pages: int = 100_000,
        max_body_bytes: int = 64 * 1024 * 1024,
        max_json_depth: int = 64,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.mapping = (mapping or ColumnMapping()).for_source(name)
        self.items_path = [p for p in items_path.split(".") if p]
        self.next_path = [p for p in next_path.split(".") if p]
        self.paging = paging
        self.page_param, self.page_size_param = page_param, page_size_param
        self.page_size, self.first_page = page_size, first_page
        self.cursor_param = cursor_param
        self.watermark_param = watermark_param
        self.params = dict(params or {})
        self.timeout = (connect_timeout, read_timeout)
        self.retries, self.backoff, self.backoff_max = retries, backoff, backoff_max
        self.max_pages = max_pages
        self.max_body_bytes, self.max_json_depth = max_body_bytes, max_json_depth
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.headers.update(headers or {})
        if token:
            self.session.headers[token_header] = f"{token_prefix}{token}"
        parts = urlsplit(url)
        self.display_url = (
            f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        )

    def fetch(self, watermark: datetime | None) -> FetchResult:
        """Cases changed since ``watermark`` (sent as ISO 8601 with +08:00) and the new watermark.

        Raises :class:`SourceError` when the endpoint fails after the retries or answers nonsense.
        """
        return self.stream(watermark).collect()

    def stream(self, watermark: datetime | None) -> WatermarkedStream:
        """Like :meth:`fetch`, one page in memory at a time."""
        return WatermarkedStream(self._rows(watermark), watermark)

    def _rows(self, watermark: datetime | None) -> Iterator[tuple[RowResult, datetime | None]]:
        position = 0
        for page_number, items in enumerate(self._pages(watermark), start=1):
            for item in items:
                position += 1
                yield self._row(position, page_number, item)

    def _row(self, position: int, page: int, item: object) -> tuple[RowResult, datetime | None]:
        where = f"record {position} (page {page})"
        if not isinstance(item, Mapping):
            return RowResult(position, None, f"{where}: not a JSON object but {type(item).__name__}"), None
        builder = self.mapping.builder(item.keys())
        values = list(item.values())
        number = builder.number_of(values)
        try:
            record, warning = builder.build_noted(values)
        except CaseRowError as exc:
            return RowResult(position, None, f"{where}: {exc}", number), builder.updated_at_of(values)
        note = None if warning is None else f"{where}: {warning}"
        return RowResult(position, record, number=number, note=note), record.source_updated_at

    def _pages(self, watermark: datetime | None) -> Iterator[list[object]]:
        params: dict[str, str | int] = dict(self.params)
        if self.watermark_param and watermark is not None:
            params[self.watermark_param] = watermark.astimezone(LOCAL_TZ).isoformat()
        url: str = self.url
        page = self.first_page
        seen_cursors: set[str] = set()
        for count in range(1, self.max_pages + 1):
            if self.paging == "page":
                params[self.page_param] = page
                params[self.page_size_param] = self.page_size
            body = self._get(url, params, count)
            items = _at(body, self.items_path)
            if not isinstance(items, list):
                raise SourceError(
                    self.name,
                    f"{self.display_url} page {count}: no records list at "
                    f"{'.'.join(self.items_path) or '(top level)'} (found {_shape(body, self.items_path)}); "
                    f"set sources.{self.name}.items_path",
                )
            yield items
            if self.paging == "none":
                return
            if self.paging == "page":
                if len(items) < self.page_size:
                    return
                page += 1
                continue
            cursor = _at(body, self.next_path)
            if cursor is None or cursor == "":
                return
            cursor = str(cursor)
            if cursor in seen_cursors:
                raise SourceError(
                    self.name, f"{self.display_url}: the next cursor repeats ({count} pages read)"
                )
            seen_cursors.add(cursor)
            if cursor.startswith(("http://", "https://", "/")):
                url, params = urljoin(url, cursor), {}  # a link carries its own query
            else:
                params[self.cursor_param] = cursor
        raise SourceError(self.name, f"{self.display_url}: more than {self.max_pages} pages; raise max_pages")

    def _get(self, url: str, params: Mapping[str, str | int], page: int) -> object:
        problem = "no attempt"
        for attempt in range(self.retries + 1):
            wait = min(self.backoff * 2**attempt, self.backoff_max)
            try:
                response = self.session.get(url, params=params, timeout=self.timeout, stream=True)
            except requests.Timeout:
                problem = f"timed out (connect {self.timeout[0]}s, read {self.timeout[1]}s)"
            except requests.RequestException as exc:
                problem = f"cannot connect ({type(exc).__name__})"
            else:
                status = response.status_code
                if status < 400:
                    return self._json(self._body(response, page), response, page)
                if status < 500 and status != 429:
                    hint = "; check the token" if status in (401, 403) else ""
                    raise SourceError(self.name, f"{self.display_url} page {page}: HTTP {status}{hint}")
                problem = f"HTTP {status}"
                wait = min(max(wait, _retry_after(response)), self.backoff_max)
            if attempt < self.retries:
                self.sleep(wait)
        raise SourceError(
            self.name, f"{self.display_url} page {page}: {problem}, after {self.retries + 1} attempts"
        )

    def _body(self, response: requests.Response, page: int) -> bytes:
        """The body, read up to ``max_body_bytes`` (a larger one is refused before it fills the memory)."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=1 << 16):
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise SourceError(
                        self.name, f"{self.display_url} page {page}: the response is larger than "
                        f"{self.max_body_bytes} bytes (sources.{self.name}.max_body_bytes)")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise SourceError(self.name, f"{self.display_url} page {page}: reading the response failed "
                                         f"({type(exc).__name__})") from None
        finally:
            response.close()
        return b"".join(chunks)

    def _json(self, body: bytes, response: requests.Response, page: int) -> object:
        where = f"{self.display_url} page {page}"
        content_type = response.headers.get("Content-Type", "no Content-Type")
        if _nesting_depth(body) > self.max_json_depth:
            raise SourceError(self.name, f"{where}: JSON nested deeper than {self.max_json_depth} levels "
                                         f"(sources.{self.name}.max_json_depth)")
        try:
            return json.loads(body.decode(response.encoding) if response.encoding else body)
        except (ValueError, RecursionError, LookupError) as exc:
            raise SourceError(
                self.name, f"{where}: malformed JSON ({content_type}, {len(body)} bytes): {exc}",
            ) from None

    def close(self) -> None:
        self.session.close()


_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _nesting_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, counted without parsing (no recursion);
    brackets inside strings do not count."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token in {b"[", b"{"}:
            depth += 1
            deepest = max(deepest, depth)
        elif token in {b"]", b"}"}:
            depth -= 1
    return deepest


def _at(body: object, path: list[str]) -> Any:
    node: Any = body
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _shape(body: object, path: list[str]) -> str:
    node: Any = body
    for key in path:
        if not isinstance(node, Mapping):
            break
        if key not in node:
            return f"keys {', '.join(map(str, node)) or '(none)'}"
        node = node[key]
    return type(node).__name__


def _retry_after(response: requests.Response) -> float:
    try:
        return float(response.headers.get("Retry-After", "0"))
    except ValueError:
        return 0.0
