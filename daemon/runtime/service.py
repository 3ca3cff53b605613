"""``hotline-sla run``: the daemon. Scheduled jobs, the leader lease, systemd notifications and signals.

Life of the process:

1. Load config, rules and calendar (a broken file is exit 2, before anything starts).
2. Start-up, retried with backoff while the database is away: migrate, try to take the leader lease; the
   leader recomputes deadlines if rules/calendar changed and runs the first tick. Then ``READY=1`` (a
   follower is ready once it has reached the database and seen who leads).
3. The scheduler runs: lease (every third of the lease), sync, tick and the reports on the leader only,
   dispatch on every instance, and a watchdog check that sends ``WATCHDOG=1`` only while no job is stuck
   and jobs keep completing.
4. ``SIGHUP``: ``RELOADING=1``; load the new config, rules and calendar; if any is broken, log why and
   keep the old ones; else swap them in and recompute deadlines; ``READY=1`` either way.
5. ``SIGTERM``/``SIGINT``: ``STOPPING=1``; no new job starts; dispatch finishes the message in flight and
   commits; the lease is released so a follower takes over at once; exit 0.

A job never takes the process down: a database error puts every database job into a shared exponential
backoff (logged, ``database_unavailable``), any other exception is logged with its traceback and the job
runs again at its next time. Only this module and the CLI read the clock; every job gets ``now``.

Over the house's ~400 lines because the Service is one state machine (start-up, jobs, reload, stop)
whose parts share its state; what stands alone lives beside it in runtime/ (signals, preflight, health,
scheduler, leader, systemd).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import exc as sa_exc

from daemon.config import Config
from daemon.context import AppContext
from daemon.core.calendar import WorkCalendar
from daemon.core.rules import RuleSet
from daemon.core.timeutil import iso_local, utcnow
from daemon.errors import ConfigError
from daemon.pipeline.outbox import Dispatcher, DispatchResult, notifiers_for
from daemon.pipeline.recompute import recompute_if_changed
from daemon.pipeline.sync import sync_all
from daemon.pipeline.tick import run_tick
from daemon.reports.jobs import REPORT_JOBS
from daemon.runtime.desk import Desk, DeskSetup
from daemon.runtime.health import HealthServer, Metrics, SqliteFileGuard, check_health, db_error_text
from daemon.runtime.leader import LeaderLease, current_leader, instance_id
from daemon.runtime.preflight import setting_of, startup_problems
from daemon.runtime.report_process import ReportProcessError, run_report_process
from daemon.runtime.scheduler import JobSpec, WorkdayTrigger, build_scheduler, every
from daemon.runtime.signals import SignalPipe
from daemon.runtime.systemd import SdNotify, WatchdogGate
from daemon.storage.store import Store

log = structlog.get_logger("hotline_sla.service")

#: errors that mean "the database is not there (or not writable) right now", as opposed to a bug
DB_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError,
)
#: a report job may legitimately run this long before the watchdog calls it stuck
REPORTS_ALLOWANCE_SECONDS = 1800.0
#: a dispatch round sends for at most this share of its watchdog allowance (at least one interval)
DISPATCH_BUDGET_SHARE = 0.5
#: rows one claim of a dispatch round takes (``Dispatcher.dispatch_once``'s ``limit``)
DISPATCH_CLAIM_LIMIT = 500


# --- the jobs of other modules, behind one small function each -----------------------------------------


def dispatch_round(
    dispatcher: Dispatcher, now: datetime, *, stopping: Callable[[], bool], monotonic: Callable[[], float],
    budget_seconds: float, limit: int = DISPATCH_CLAIM_LIMIT,
) -> DispatchResult:
    """One daemon dispatch round: claim and send until nothing due at ``now`` is left (``dispatch_due``), so a
    backlog larger than one claim goes out in one round. Bounded: it ends when ``stopping()`` (the stop
    signal) or after ``budget_seconds`` of ``monotonic`` time, checked between messages; the messages in
    flight are finished and recorded and the rest of the claim is released for the next round. Dispatch runs
    on every instance, leader or not, so losing the lease does not end it."""
    ends = monotonic() + budget_seconds
    return dispatcher.dispatch_due(now, should_stop=lambda: stopping() or monotonic() >= ends, limit=limit)


def make_dispatcher(store: Store, config: Config, owner: str) -> Dispatcher:
    """The outbox dispatcher for ``config``; ConfigError names every channel that cannot be built."""
    return Dispatcher(store, config, notifiers_for(config), owner=owner)


def close_dispatcher(dispatcher: Dispatcher | None) -> None:
    if dispatcher is not None:
        for notifier in dispatcher.notifiers.values():
            notifier.close()


def run_reports(  # noqa: PLR0917 - the jobs' inputs, and where the service's config came from
    store: Store, rules: RuleSet, calendar: WorkCalendar, config: Config, now: datetime, config_path: str | None,
    *, should_stop: Callable[[], bool] = lambda: False, monotonic: Callable[[], float] = time.monotonic,
) -> list[Any]:
    """Every registered report job (``REPORT_JOBS`` in daemon/reports/jobs.py), each report once per period
    through ``runs`` (cheap when not due). A job with a ``command`` runs, when it has work, in a child
    process (daemon/runtime/report_process.py), so that a big report's memory goes back to the system."""
    done: list[Any] = []
    for job in REPORT_JOBS:
        if job.command is None or job.pending is None:
            done.extend(job.run(store, rules, calendar, config, now))
        elif job.pending(store, rules, calendar, now):
            done.extend(run_report_process(job.command, config_path, now, should_stop=should_stop,
                                           timeout=REPORTS_ALLOWANCE_SECONDS, monotonic=monotonic))
    return done


def load_setup(config_path: str | None) -> tuple[Config, WorkCalendar, RuleSet]:
    """Config, calendar and rules, validated; raises ConfigError (or a subclass) naming file and key."""
    ctx = AppContext(config_path)
    config, calendar, rules = ctx.config, ctx.calendar, ctx.rules
    problems = startup_problems(config)  # the same checks as `config check`
    if problems:
        raise ConfigError("; ".join(problems))
    return config, calendar, rules


class Backoff:
    """Exponential backoff shared by the database jobs; times are monotonic seconds given by the caller."""

    def __init__(self, base: float = 1.0, cap: float = 60.0) -> None:
        self.base, self.cap = base, cap
        self.failures = 0
        self.retry_at = 0.0

    def ready(self, now_monotonic: float) -> bool:
        return now_monotonic >= self.retry_at

    def failure(self, now_monotonic: float) -> float:
        """Record a failure; returns the seconds until the next attempt."""
        delay: float = min(self.cap, self.base * float(2 ** min(self.failures, 16)))
        self.failures += 1
        self.retry_at = now_monotonic + delay
        return delay

    def success(self) -> bool:
        """Record a success; True if it ends a run of failures."""
        recovered = self.failures > 0
        self.failures, self.retry_at = 0, 0.0
        return recovered


class Service:
    """One ``hotline-sla run`` process. ``clock`` (aware UTC) and ``monotonic`` are injectable for tests."""

    def __init__(
        self,
        config_path: str | None,
        *,
        notify: SdNotify | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        owner: str | None = None,
    ) -> None:
        self.config_path = config_path
        self.notify = notify or SdNotify.from_environ(environ)
        self.clock, self.mono = clock, monotonic
        self.owner = owner or instance_id()
        self.config, self.calendar, self.rules = load_setup(config_path)
        self.store = Store(self.config.database_url, echo=self.config.database.echo)
        self.lease = LeaderLease(self.store, self.owner, self.config.scheduler.leader_lease_seconds)
        self.dispatcher = make_dispatcher(self.store, self.config, self.owner)
        self.gate = WatchdogGate.from_environ(self.notify, environ)
        self.file_guard = SqliteFileGuard(self.store)
        self.metrics = Metrics(self._guarded_store, clock)
        self.backoff = Backoff()
        self.stop_event = threading.Event()
        self.leader_work = threading.Lock()  # sync, tick, reports and recompute never overlap
        self.scheduler: BlockingScheduler | None = None
        self.health_server: HealthServer | None = None
        self._lifecycle = threading.Lock()
        self._stop_thread: threading.Thread | None = None
        self._reload_lock = threading.Lock()
        self._leading = False
        self._running: dict[str, float] = {}  # job id → monotonic start of the run in progress
        self._allowance: dict[str, float] = {}
        self._stuck_logged: set[str] = set()
        self._retired: list[Dispatcher] = []
        self.signals = SignalPipe(on_stop=self.request_stop, on_reload=self._reload_quietly)

    # --- the main line -----------------------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code (0)."""
        self.signals.install()  # handlers only write to a pipe (daemon.runtime.signals)
        log.info("starting", instance=self.owner, database=self.store.safe_url,
                 watchdog_s=self.gate.timeout_seconds if self.gate.enabled else None)
        try:
            self._start_health()
            if not self._startup():
                return 0
            status = self._status_line()
            self.notify.ready(status)
            log.info("ready", status=status)
            scheduler = build_scheduler(self._jobs(), now=self.clock())
            scheduler.add_listener(self._on_scheduler_started, EVENT_SCHEDULER_STARTED)
            with self._lifecycle:
                self.scheduler = scheduler
            if not self.stop_event.is_set():
                scheduler.start()  # blocks until a stop shuts it down
        except OSError as exc:  # a path the service cannot write: one line naming it, no traceback
            log.error("path_not_writable", path=str(exc.filename) if exc.filename is not None else None,
                      setting=setting_of(self.config, exc.filename),
                      error=exc.strerror or str(exc), hint="run `hotline-sla config check` as the service user")
            return 1
        finally:
            self._finish()
        return 0

    def _startup(self) -> bool:
        """Reach the database, take or see the lease, tick once if leading. False if stopped meanwhile."""
        while not self.stop_event.is_set():
            now = self.clock()
            try:
                self.store.upgrade()
                self.file_guard.arm()
                self._lease_round(now)
                if self.lease.is_leader(now):
                    with self.leader_work:
                        self._tick(now)
                self.backoff.success()
                return True
            except Exception as exc:
                delay = self.backoff.failure(self.mono())
                event = "start_waiting_for_database" if isinstance(exc, DB_ERRORS) else "start_failed"
                log.error(event, error=db_error_text(exc) if isinstance(exc, DB_ERRORS) else repr(exc),
                          retry_in_s=delay, **self._db_hint(exc), exc_info=not isinstance(exc, DB_ERRORS))
                self.notify.status(f"waiting for the database ({type(exc).__name__}); retry in {delay:.0f} s")
                self.stop_event.wait(delay)
        return False

    def _finish(self) -> None:
        self.signals.close()  # a stop already read from the pipe has started its thread by now
        with self._lifecycle:
            stopper = self._stop_thread
        if stopper is not None:
            stopper.join(timeout=60)
        if self.lease.held_until is not None and self.file_guard.problem() is None:
            try:
                self.lease.release(self.clock())
                log.info("leadership_released", instance=self.owner)
            except Exception as exc:  # the lease then runs out by itself
                log.warning("lease_release_failed", error=db_error_text(exc))
        if self.health_server is not None:
            self.health_server.stop()
        for dispatcher in [*self._retired, self.dispatcher]:
            close_dispatcher(dispatcher)
        self.store.close()
        log.info("stopped", instance=self.owner)
        self.notify.close()

    def _status_line(self) -> str:
        if self.lease.is_leader(self.clock()):
            return f"leader {self.owner}: ticking every {self.config.scheduler.tick_interval_seconds} s"
        return f"follower {self.owner}: dispatching; another instance leads"

    # --- signals -----------------------------------------------------------------------------------------

    def _reload_quietly(self) -> None:
        self.reload()

    def request_stop(self, reason: str) -> None:
        """Stop the daemon (idempotent: a second request while stopping changes nothing)."""
        with self._lifecycle:
            if self._stop_thread is not None:
                return
            self.stop_event.set()
            self._stop_thread = threading.Thread(target=self._stop, args=(reason,), name="stop")
            self._stop_thread.start()

    def _stop(self, signal_name: str) -> None:
        self.notify.stopping("stopping: finishing the message in flight")
        log.info("stopping", signal=signal_name)
        self._shutdown_scheduler()

    def _on_scheduler_started(self, _event: Any) -> None:
        if self.stop_event.is_set():  # the stop signal came between start-up and the scheduler's start
            threading.Thread(target=self._shutdown_scheduler, name="stop-late").start()

    def _shutdown_scheduler(self) -> None:
        with self._lifecycle:
            scheduler = self.scheduler
        if scheduler is None:
            return
        with contextlib.suppress(SchedulerNotRunningError):  # already stopped
            scheduler.shutdown(wait=True)  # running jobs finish; dispatch stops after the message in flight

    # --- reload ------------------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read config, rules and calendar; keep the old ones if anything is wrong. True if applied."""
        with self._reload_lock:
            if self.stop_event.is_set():
                return False
            self.notify.reloading("reloading config, rules and calendar")
            log.info("reload_requested")
            try:
                config, calendar, rules = load_setup(self.config_path)
                dispatcher = make_dispatcher(self.store, config, self.owner)
            except Exception as exc:
                reason = str(exc) or repr(exc)
                log.error("reload_refused", reason=reason,
                          hint="the previous configuration keeps running; fix the file and reload again")
                self.notify.ready(f"reload refused, running the previous configuration: {reason}")
                return False
            self._apply(config, calendar, rules, dispatcher)
            self.notify.ready(self._status_line())
            log.info("reloaded", rules=[r.id for r in rules.rules], calendar=f"{calendar.first_year}-"
                     f"{calendar.last_year}")
            return True

    def _apply(self, config: Config, calendar: WorkCalendar, rules: RuleSet, dispatcher: Dispatcher) -> None:
        old = self.config
        if config.database_url != old.database_url:
            log.warning("reload_database_unchanged", hint="database.url changed: restart the service to move")
            config = config.model_copy(update={"database": old.database})
        if config.health.listen != old.health.listen:
            log.warning("reload_health_unchanged", hint="health.listen changed: restart the service to apply")
        self._retired.append(self.dispatcher)  # closed by the next dispatch round, not under a round in flight
        self.config, self.calendar, self.rules, self.dispatcher = config, calendar, rules, dispatcher
        self.lease.lease = timedelta(seconds=config.scheduler.leader_lease_seconds)
        self._reschedule(old)
        now = self.clock()
        if self.lease.is_leader(now) and self._acquire_leader_work(timeout=30.0):
            try:
                recompute_if_changed(self.store, rules, now, months=config.reports.recompute_months)
            except Exception as exc:  # the next tick recomputes (it checks the fingerprint first)
                log.error("recompute_failed", error=db_error_text(exc), hint="retried by the next tick")
            finally:
                self.leader_work.release()

    def _reschedule(self, old: Config) -> None:
        with self._lifecycle:
            scheduler = self.scheduler
        if scheduler is None or not scheduler.running:
            return
        new, before = self.config.scheduler, old.scheduler
        for job_id, seconds, was in (
            ("sync", new.sync_interval_seconds, before.sync_interval_seconds),
            ("tick", new.tick_interval_seconds, before.tick_interval_seconds),
            ("dispatch", new.dispatch_interval_seconds, before.dispatch_interval_seconds),
            ("lease", new.leader_lease_seconds / 3, before.leader_lease_seconds / 3),
        ):
            if seconds != was:
                scheduler.reschedule_job(job_id, trigger=every(seconds))
                self._allowance[job_id] = self._allowance_for(seconds)
        scheduler.reschedule_job("reports", trigger=WorkdayTrigger(self.calendar, new.digest_time))

    # --- jobs --------------------------------------------------------------------------------------------

    def _allowance_for(self, interval: float) -> float:
        """How long one run may take before the watchdog calls the job stuck: three of its intervals and
        at least half the watchdog timeout."""
        half_watchdog = (self.gate.timeout_seconds or 0.0) / 2
        return max(half_watchdog, 3 * interval)

    def _jobs(self) -> list[JobSpec]:
        s = self.config.scheduler
        intervals = {"lease": self.lease.renew_every, "sync": float(s.sync_interval_seconds),
                     "tick": float(s.tick_interval_seconds), "dispatch": float(s.dispatch_interval_seconds)}
        self._allowance = {job: self._allowance_for(seconds) for job, seconds in intervals.items()}
        self._allowance["reports"] = REPORTS_ALLOWANCE_SECONDS
        specs = [
            JobSpec("lease", self._job("lease", self._lease_round), every(intervals["lease"])),
            JobSpec("sync", self._job("sync", self._sync_round), every(intervals["sync"]), run_at_start=True),
            JobSpec("tick", self._job("tick", self._tick_round), every(intervals["tick"])),
            JobSpec("dispatch", self._job("dispatch", self._dispatch_round), every(intervals["dispatch"]),
                    run_at_start=True),
            # at start as well as on the trigger: the reports are once-only through `runs`, so this is the
            # catch-up after downtime (a restart at 08:31 still sends today's digest, once)
            JobSpec("reports", self._job("reports", self._reports_round), WorkdayTrigger(self.calendar, s.digest_time),
                    run_at_start=True),
        ]
        if self.gate.enabled and self.gate.timeout_seconds is not None:
            specs.append(JobSpec("watchdog", self._watchdog_round, every(max(0.25, self.gate.timeout_seconds / 4))))
        return specs

    def _job(self, job_id: str, body: Callable[[datetime], None]) -> Callable[[], None]:
        """Wrap a job: skip while stopping or backing off, log instead of raising, mark progress."""

        def run() -> None:
            if self.stop_event.is_set():
                return
            if not self.backoff.ready(self.mono()):
                self.gate.progress()  # waiting out a database outage is the loop working as intended
                return
            vanished = self.file_guard.problem()
            if vanished:  # a job now would create a new, empty SQLite file and run on it
                delay = self.backoff.failure(self.mono())
                log.error("database_unavailable", job=job_id, error=vanished, retry_in_s=delay)
                return
            self._running[job_id] = self.mono()
            try:
                body(self.clock())
                if self.backoff.success():
                    log.info("database_available_again", job=job_id)
            except DB_ERRORS as exc:
                self.metrics.job_failures.labels(job=job_id).inc()
                delay = self.backoff.failure(self.mono())
                log.error("database_unavailable", job=job_id, error=db_error_text(exc), retry_in_s=delay,
                          **self._db_hint(exc))
            except OSError as exc:
                self.metrics.job_failures.labels(job=job_id).inc()
                if exc.filename is None:
                    log.exception("job_failed", job=job_id, error=f"{type(exc).__name__}: {exc}")
                else:  # a path the service cannot write: one line naming it and its setting, no traceback
                    log.error("path_not_writable", job=job_id, path=str(exc.filename),
                              setting=setting_of(self.config, exc.filename), error=exc.strerror or str(exc),
                              hint="run `hotline-sla config check` as the service user")
            except ReportProcessError as exc:  # its traceback is the child's, passed on to stderr already
                self.metrics.job_failures.labels(job=job_id).inc()
                log.error("job_failed", job=job_id, error=f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                self.metrics.job_failures.labels(job=job_id).inc()
                log.exception("job_failed", job=job_id, error=f"{type(exc).__name__}: {exc}")
            finally:
                self._running.pop(job_id, None)
                self.gate.progress()

        run.__name__ = f"{job_id}_job"
        return run

    def _db_hint(self, exc: BaseException) -> dict[str, str]:
        text = str(getattr(exc, "orig", exc)).lower()
        if self.store.dialect == "sqlite" and any(
            s in text for s in ("readonly", "read-only", "disk is full", "disk i/o", "unable to open")
        ):
            return {"hint": f"the SQLite file {self.store.engine.url.database} and its folder must be writable "
                            "by the service and the disk must have free space; nothing was written"}
        return {}

    def _acquire_leader_work(self, timeout: float) -> bool:
        deadline = self.mono() + timeout
        while not self.stop_event.is_set():
            if self.leader_work.acquire(timeout=min(0.5, max(0.0, deadline - self.mono()))):
                return True
            if self.mono() >= deadline:
                return False
        return False

    def _lease_round(self, now: datetime) -> None:
        try:
            leads = self.lease.try_acquire(now)
        finally:
            self.metrics.leader.set(1 if self.lease.is_leader(now) else 0)
        if leads and not self._leading:
            log.info("leadership_acquired", instance=self.owner, until=iso_local(now + self.lease.lease))
            self._run_soon("reports")
        elif self._leading and not leads:
            with self.store.engine.connect() as conn:
                holder = current_leader(conn, self.lease.key)
            log.warning("leadership_lost", instance=self.owner, leader=holder.owner if holder else None)
        self._leading = leads

    def _run_soon(self, job_id: str) -> None:
        with self._lifecycle:
            scheduler = self.scheduler
        if scheduler is not None and scheduler.running:
            scheduler.modify_job(job_id, next_run_time=self.clock())

    def _sync_round(self, now: datetime) -> None:
        if not self.lease.is_leader(now):
            return
        if not self._acquire_leader_work(timeout=float(self.config.scheduler.sync_interval_seconds)):
            return
        try:
            result = sync_all(self.store, self.rules, self.config, now)
        finally:
            self.leader_work.release()
        if result.failed:
            log.warning("sync_incomplete", failed=result.failed)

    def _tick_round(self, now: datetime) -> None:
        if not self.lease.is_leader(now):
            return
        if not self._acquire_leader_work(timeout=float(self.config.scheduler.tick_interval_seconds)):
            log.info("tick_deferred", reason="a sync, report or reload is still running")
            return
        try:
            self._tick(now)
        finally:
            self.leader_work.release()

    def _tick(self, now: datetime) -> None:
        """Recompute if rules/calendar changed (one read when not), then tick. Holds ``leader_work``."""
        recompute_if_changed(self.store, self.rules, now, months=self.config.reports.recompute_months)
        started = self.mono()
        result = run_tick(self.store, self.rules, self.calendar, self.config, now)
        self.metrics.tick_duration.observe(self.mono() - started)
        if result.alerts or result.failed:
            log.info("tick", evaluated=result.evaluated, alerts=len(result.alerts), outbox_rows=result.outbox_rows,
                     failed=result.failed)

    def _dispatch_round(self, now: datetime) -> None:
        while self._retired:  # dispatch rounds never overlap (max_instances=1): none uses these any more
            close_dispatcher(self._retired.pop())
        # half the job's watchdog allowance: a long backlog is sent over several rounds, never "stuck"
        budget = self._allowance.get("dispatch", 0.0) * DISPATCH_BUDGET_SHARE
        result = dispatch_round(self.dispatcher, now, stopping=self.stop_event.is_set, monotonic=self.mono,
                                budget_seconds=max(budget, float(self.config.scheduler.dispatch_interval_seconds)))
        summary = result.to_json()
        if any(summary.get(k) for k in ("sent", "retried", "deferred", "failed", "dead")):
            log.info("dispatched", **summary)

    def _reports_round(self, now: datetime) -> None:
        if not self.lease.is_leader(now):
            return
        if not self._acquire_leader_work(timeout=REPORTS_ALLOWANCE_SECONDS / 2):
            return
        try:
            done = run_reports(self.store, self.rules, self.calendar, self.config, now, self.config_path,
                               should_stop=self.stop_event.is_set, monotonic=self.mono)
        finally:
            self.leader_work.release()
        if done:
            log.info("reports_queued", count=len(done))

    def _watchdog_round(self) -> None:
        """Ping systemd only if jobs completed since the last ping and none has been running too long."""
        mono = self.mono()
        stuck = sorted(j for j, started in list(self._running.items()) if mono - started > self._allowance.get(j, 0))
        if stuck:
            new = set(stuck) - self._stuck_logged
            if new:
                log.error("job_stuck", jobs=stuck, hint="no watchdog ping until it completes; systemd restarts "
                          "the service after WatchdogSec")
            self._stuck_logged = set(stuck)
            return
        self._stuck_logged = set()
        self.gate.maybe_ping(mono)

    # --- health ------------------------------------------------------------------------------------------

    def _guarded_store(self) -> Store:
        """The store for a metrics scrape, unless its SQLite file vanished (a scrape must not recreate it)."""
        problem = self.file_guard.problem()
        if problem:
            raise sa_exc.DisconnectionError(problem)
        return self.store

    def _desk(self) -> Desk | None:
        """The desk (值班台) on the health listener, unless ``health.desk: false``; its token resolved here."""
        if not self.config.health.desk:
            return None
        token = None
        if self.config.health.desk_token is not None:
            from notifiers.base import ChannelConfigError
            from notifiers.secrets import SecretResolver

            try:
                token = SecretResolver().resolve("health.desk_token", self.config.health.desk_token).reveal()
            except ChannelConfigError as exc:  # closed, not open: no desk rather than a desk without its token
                log.error("desk_disabled", error=str(exc))
                return None
        return Desk(lambda: DeskSetup(self._guarded_store(), self.config, self.rules, self.calendar), token=token)

    def _start_health(self) -> None:
        if not self.config.health.listen:
            return
        try:
            self.health_server = HealthServer(
                self.config.health.listen,
                health=lambda: check_health(self.store, self.config, self.clock(), self.file_guard),
                metrics=self.metrics.render, desk=self._desk(), clock=self.clock,
            ).start()
        except OSError as exc:  # a taken port must not keep the alerts from going out
            log.error("health_listen_failed", listen=self.config.health.listen, error=str(exc))
            return
        host, port = self.health_server.address
        log.info("health_listening", url=f"http://{host}:{port}/healthz")
