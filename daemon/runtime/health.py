"""The optional HTTP listener of ``hotline-sla run``: ``/healthz`` and ``/metrics`` on localhost.

Enabled by ``health.listen: "127.0.0.1:9817"`` in config.yaml; only loopback addresses are accepted (the
numbers name units and backlogs; put a reverse proxy in front to expose them). ``/healthz`` answers 200
when the database answers and the last tick (by whichever instance leads) is recent, else 503 with the
reason. ``/metrics`` is the Prometheus text format: what the database holds (open cases, alerts by kind,
deliveries by channel and outcome, the outbox) is the same on every instance of a cluster, so aggregate
those with ``max``, not ``sum``; the tick duration histogram and the leader gauge are this instance's.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from daemon.config import Config
from daemon.errors import ConfigError
from daemon.reports.digest import open_and_overdue_by_unit
from daemon.runtime.desk import Desk, Page
from daemon.storage.models import alerts, cases, deliveries, outbox, settings, source_state
from daemon.storage.store import FINISHED, Store

log = structlog.get_logger("hotline_sla.health")

LAST_TICK_KEY = "last_tick_at"
TICK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def parse_listen(value: str) -> tuple[str, int]:
    """``health.listen`` ("127.0.0.1:9817", "[::1]:9817", "localhost:9817") → (host, port).

    Raises :class:`ConfigError` naming the key for anything else, a non-loopback address included.
    """
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ConfigError(f"health.listen: {value!r} is not HOST:PORT, e.g. '127.0.0.1:9817'")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(
                f"health.listen: {host!r} is not a loopback address; use 127.0.0.1, ::1 or localhost "
                "(put a reverse proxy in front to expose /metrics)"
            )
    return host, int(port_text)


def db_error_text(exc: BaseException) -> str:
    """One line about a database error, from the driver's message (no SQL, no parameters)."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0][:200]
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__


def stale_after(config: Config) -> timedelta:
    """How old the last tick may be before /healthz fails: three tick intervals plus a leader handover."""
    sched = config.scheduler
    return timedelta(seconds=3 * sched.tick_interval_seconds + 2 * sched.leader_lease_seconds)


@dataclass(frozen=True)
class Health:
    ok: bool
    reason: str
    last_tick_at: str | None = None
    tick_age_seconds: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "unhealthy", "reason": self.reason,
                "last_tick_at": self.last_tick_at, "tick_age_seconds": self.tick_age_seconds}


def check_health(store: Store, config: Config, now: datetime, guard: SqliteFileGuard | None = None) -> Health:
    """Is the service doing its job at ``now``: the database (file) is there, answers, and a tick ran
    recently."""
    problem = guard.problem() if guard is not None else None
    if problem:
        return Health(False, problem)
    try:
        with store.engine.connect() as conn:
            raw = conn.execute(select(settings.c.value).where(settings.c.key == LAST_TICK_KEY)).scalar()
    except SQLAlchemyError as exc:
        return Health(False, f"database unreachable: {db_error_text(exc)}")
    if not raw:
        return Health(False, "no tick has completed yet")
    last = datetime.fromisoformat(raw)
    age = (now - last).total_seconds()
    limit = stale_after(config)
    if age > limit.total_seconds():
        return Health(False, f"last tick {int(age)} s ago (limit {int(limit.total_seconds())} s): is a leader running?",
                      raw, age)
    return Health(True, "ok", raw, age)


class StoreCollector(Collector):
    """Metrics read from the database at scrape time (cluster-wide: equal on every instance)."""

    def __init__(self, store: Callable[[], Store], clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("hotline_sla_database_up", "1 when the database answered this scrape")
        try:
            families = self._families(self._store(), self._clock())
        except SQLAlchemyError as exc:
            log.warning("metrics_database_unavailable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    @staticmethod
    def _families(store: Store, now: datetime) -> list[Any]:
        with store.engine.connect() as conn:
            open_cases = conn.execute(
                select(func.count()).select_from(cases).where(cases.c.status.not_in(list(FINISHED)))
            ).scalar_one()
            by_kind = conn.execute(select(alerts.c.kind, func.count()).group_by(alerts.c.kind)).all()
            by_outcome = conn.execute(
                select(deliveries.c.channel, deliveries.c.outcome, func.count())
                .group_by(deliveries.c.channel, deliveries.c.outcome)
            ).all()
            by_status = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
            oldest = conn.execute(select(func.min(outbox.c.created_at)).where(outbox.c.status == "pending")).scalar()
            per_unit = open_and_overdue_by_unit(conn, now)
            synced = conn.execute(select(source_state.c.name, source_state.c.last_ok_at)
                                  .where(source_state.c.last_ok_at.is_not(None))).all()
        g_open = GaugeMetricFamily("hotline_sla_cases_open", "Open cases (未办结工单)")
        g_open.add_metric([], open_cases)
        c_alerts = CounterMetricFamily("hotline_sla_alerts", "Alerts written, by kind", labels=["kind"])
        for kind, n in by_kind:
            c_alerts.add_metric([kind], n)
        c_deliv = CounterMetricFamily("hotline_sla_deliveries", "Delivery attempts by channel and outcome",
                                      labels=["channel", "outcome"])
        for channel, outcome, n in by_outcome:
            c_deliv.add_metric([channel, outcome], n)
        g_outbox = GaugeMetricFamily("hotline_sla_outbox_messages", "Outbox rows by status", labels=["status"])
        for status, n in by_status:
            g_outbox.add_metric([status], n)
        g_oldest = GaugeMetricFamily("hotline_sla_outbox_oldest_pending_seconds",
                                     "Age of the oldest pending outbox row (0 when none)")
        if oldest is not None and oldest.tzinfo is None:  # SQLite through func.min loses the type
            oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=now.tzinfo)
        g_oldest.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
        return [g_open, c_alerts, c_deliv, g_outbox, g_oldest, *_unit_and_source_families(per_unit, synced, now)]


def _unit_and_source_families(
    per_unit: dict[str, tuple[int, int]], synced: Sequence[Any], now: datetime
) -> list[GaugeMetricFamily]:
    """Open and overdue cases per unit (the digest's figures), and each source's last successful sync's age."""
    g_unit_open = GaugeMetricFamily("hotline_sla_unit_cases_open", "Open cases per handling unit (承办单位在办)",
                                    labels=["unit"])
    g_unit_overdue = GaugeMetricFamily("hotline_sla_unit_cases_overdue",
                                       "Open cases past their deadline per handling unit (超期)", labels=["unit"])
    for unit, (n_open, n_overdue) in sorted(per_unit.items()):
        g_unit_open.add_metric([unit], n_open)
        g_unit_overdue.add_metric([unit], n_overdue)
    g_sync = GaugeMetricFamily("hotline_sla_source_last_success_age_seconds",
                               "Seconds since the source's last successful sync (absent: never succeeded)",
                               labels=["source"])
    for name, last_ok in synced:
        g_sync.add_metric([name], max(0.0, (now - last_ok).total_seconds()))
    return [g_unit_open, g_unit_overdue, g_sync]


class Metrics:
    """This instance's registry: the store collector plus what only this process knows."""

    def __init__(self, store: Callable[[], Store], clock: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tick_duration = Histogram("hotline_sla_tick_duration_seconds", "Duration of a tick (检查) in seconds",
                                       buckets=TICK_BUCKETS, registry=self.registry)
        self.leader = Gauge("hotline_sla_leader", "1 while this instance holds the leader lease",
                            registry=self.registry)
        self.job_failures = Counter("hotline_sla_job_failures", "Runs of a scheduled job that failed (logged as "
                                    "job_failed or database_unavailable), by job", ["job"], registry=self.registry)
        self.registry.register(StoreCollector(store, clock))

    def render(self) -> bytes:
        return generate_latest(self.registry)


#: seconds a health/metrics connection may stay silent before the listener closes it
IDLE_TIMEOUT_SECONDS = 10.0


class SqliteFileGuard:
    """Notices that the SQLite file the daemon opened was deleted or replaced.

    SQLite keeps working on a deleted file through the connections already open and creates a new, empty
    file for the next one: the daemon would run on a database without tables (or say ok on /healthz while
    writing into a file nobody will ever read). ``arm()`` after the store was migrated remembers the file;
    ``problem()`` says what happened to it, else None. Not a SQLite file: never a problem.
    """

    def __init__(self, store: Store) -> None:
        url = store.engine.url
        name = url.database if store.dialect == "sqlite" else None
        self.path = Path(name) if name and name != ":memory:" and not name.startswith("file:") else None
        self._identity: tuple[int, int] | None = None

    def arm(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                st = self.path.stat()
                self._identity = (st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        if self.path is None or self._identity is None:
            return None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (f"the SQLite file {self.path} has vanished; restore it from a backup (or move the empty "
                    "one away) and restart the service: nothing is written meanwhile")
        except OSError as exc:
            return f"the SQLite file {self.path} cannot be examined ({exc.strerror})"
        if (st.st_dev, st.st_ino) != self._identity:
            return (f"the SQLite file {self.path} was replaced by another file since the start; restart the "
                    "service to use the new one")
        return None


class HealthServer:
    """A ThreadingHTTPServer on a background thread; ``stop()`` shuts it down."""

    def __init__(self, listen: str, *, health: Callable[[], Health], metrics: Callable[[], bytes],
                 idle_timeout: float = IDLE_TIMEOUT_SECONDS, desk: Desk | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        host, port = parse_listen(listen)
        health_fn, metrics_fn = health, metrics
        desk_page = _desk_route(desk, clock)

        class Handler(BaseHTTPRequestHandler):
            # a connection that sends nothing (or too slowly) is closed after this many seconds, so idle
            # sockets cannot pile up threads and file descriptors
            timeout = idle_timeout

            def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a log line
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    result = health_fn()
                    self._reply(200 if result.ok else 503, json.dumps(result.as_json(), ensure_ascii=False).encode(),
                                "application/json; charset=utf-8")
                elif path == "/metrics":
                    self._reply(200, metrics_fn(), CONTENT_TYPE_LATEST)
                elif desk_page is not None and Desk.serves(path):
                    page = desk_page(path, self.headers)
                    self._reply(page.status, page.body, page.content_type, page.headers)
                else:
                    self._reply(404, b"not found: try /healthz or /metrics\n", "text/plain; charset=utf-8")

            def _reply(self, status: int, body: bytes, content_type: str,
                       headers: Mapping[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server_class = _V6Server if ":" in host else ThreadingHTTPServer
        self.httpd = server_class((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.2,), name="health", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _desk_route(desk: Desk | None, clock: Callable[[], datetime] | None) -> Callable[[str, Any], Page] | None:
    """The desk's pages at the request's instant: the clock is read here, per request, and passed down."""
    if desk is None:
        return None
    if clock is None:
        raise ValueError("the desk needs the clock that gives each request its instant")
    read_clock = clock

    def page(path: str, headers: Any) -> Page:
        try:
            return desk.page(path, headers, read_clock())
        except Exception as exc:  # a page must never take the listener (and /healthz) down
            log.error("desk_page_failed", path=path.split("/")[1] if "/" in path else "", error=type(exc).__name__)
            return Page(500, "值班台页面出错，请查看服务日志。\n".encode(), "text/plain; charset=utf-8")

    return page


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
