"""Dispatch: claim due outbox rows, batch, render, send through the notifiers, record, retry.

Rows, and what is claimable, are daemon/pipeline/queue.py's; notifiers/registry.py builds the channels.

**Claims** (daemon/pipeline/queue.py ``claim``) are conditional UPDATEs with a lease, safe with several
dispatchers on SQLite, PostgreSQL and MariaDB; a crashed dispatcher's rows come back when the lease runs
out. Before each send the lease is renewed under the same token (rowcount checked), so rows another
dispatcher took over are never sent twice by us.

**At-least-once.** Every attempt is written to ``deliveries`` (outcome ``attempting``) and committed
*before* the send and updated after it, together with the outbox row. A crash between the send and that
second commit repeats only that one message: its rows come back after the lease, and the stale
``attempting`` delivery is marked ``interrupted`` when they are claimed again.

**Rate limits** (daemon/pipeline/rate_limit.py): before a send, the requests it takes are reserved in the
channel's rolling minute, kept in the database for every dispatcher; a full window defers the rows to the
instant it frees (not an attempt).

**What the notifier's error decides** (notifiers/base.py): transient → back off exponentially with jitter,
up to ``dispatch.backoff_cap_seconds``; ``retry_after`` (flow control) → wait that long, not counted as a
failed attempt; permanent → ``failed`` (the digest lists them). A row still unsent
``dispatch.dead_letter_after_hours`` after it was created, or after ``dispatch.max_attempts`` transient
failures, goes ``dead`` and the supervisors are told by a ``dead_letter`` message (which is itself never
dead-lettered again).

**Concurrency** (daemon/pipeline/send_pool.py): the batches of one claim are sent side by side, at most
``dispatch.concurrency`` at once and ``dispatch.channel_concurrency`` (else :data:`CHANNEL_CONCURRENCY` by
type) per channel, so a hanging provider holds only its own slots. Each batch still goes through the whole
record → send → record step above on its own; the batches of a claim are disjoint and a claim is finished
before the next, so one process never sends a row twice.

Time is an argument (``now``, aware); the only clock read here is a monotonic one, to measure latency and to
keep leases fresh during a long run. (Over 400 lines: the dispatcher's one send step is read as a whole.)
"""

from __future__ import annotations

import json
import random
import secrets as _secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import insert, update

from daemon.config import Config
from daemon.core.calendar import WorkCalendar
from daemon.core.engine import EngineSettings
from daemon.core.quiet import quiet_hours_for, quiet_until
from daemon.core.timeutil import iso_local
from daemon.errors import ConfigError
from daemon.glossary import REPORT_KINDS
from daemon.pipeline import dead_letter, rate_limit, stale
from daemon.pipeline.queue import claim, claimable_count, full_rows, release, select_rows, supersede
from daemon.pipeline.render import FAMILIES, Renderer, RenderError, alert_context, sms_params, urgency_key
from daemon.pipeline.send_pool import run_bounded
from daemon.storage.models import deliveries, outbox
from daemon.storage.store import Store
from notifiers.base import (
    Attachment,
    ChannelConfigError,
    Message,
    Notifier,
    NotifierError,
    Receipt,
    Recipient,
    mask_mobiles_in,
)
from notifiers.registry import build_notifiers, channel_class, rate_limit_of
from notifiers.secrets import redact_secrets

log = structlog.get_logger("hotline_sla.outbox")

_ERROR_CHARS = 500
_OCTET = "application/octet-stream"
#: sends at once per channel by type, when ``dispatch.channel_concurrency`` does not name the channel: HTTP
#: APIs (SMS gateways, WeCom applications) take many; a robot is limited to 20 a minute anyway; mail servers
#: refuse many connections from one client; the console prints one message at a time
CHANNEL_CONCURRENCY = {"wecom_bot": 4, "dingtalk": 4, "smtp": 4, "console": 1}
DEFAULT_CHANNEL_CONCURRENCY = 8
#: claims in a row that may come back empty while rows are still claimable (other dispatchers hold the
#: candidates' locks for a moment) before :meth:`Dispatcher.dispatch_due` leaves them to the others
_EMPTY_CLAIMS = 50


@dataclass
class DispatchResult:
    """Counts of outbox rows (a batch of three alerts sent as one message counts 3 in ``sent``), and of
    messages (``messages``, ``messages_sent``: that batch counts 1)."""

    claimed: int = 0
    messages: int = 0  # provider sends attempted
    messages_sent: int = 0  # of which the provider took (one message may carry many rows)
    sent: int = 0  # rows sent
    retried: int = 0
    deferred: int = 0  # flow control, quiet hours and rate limits (not failures)
    quiet: int = 0  # of which held back by quiet hours
    rate_limited: int = 0  # of which held back by a channel's shared rate limit (daemon/pipeline/rate_limit.py)
    failed: int = 0  # permanent failures
    dead: int = 0  # dead-lettered (too old, or too many attempts)
    lost_leases: int = 0  # rows another dispatcher took over before we sent them
    superseded: int = 0  # alerts a moved deadline made untrue: never sent (daemon/pipeline/stale.py)
    stopped: bool = False  # should_stop() ended the run early
    failures: list[dict[str, Any]] = field(default_factory=list)  # permanent, masked

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, part: DispatchResult) -> None:
        """Add the counts of ``part`` (another round, or one batch) to these."""
        for key, value in asdict(part).items():
            if isinstance(value, bool):
                setattr(self, key, getattr(self, key) or value)
            elif isinstance(value, int):
                setattr(self, key, getattr(self, key) + value)
            elif isinstance(value, list):
                getattr(self, key).extend(value)


# --- the dispatcher -------------------------------------------------------------------------------------


def notifiers_for(config: Config) -> dict[str, Notifier]:
    """Every channel of ``config.channels`` built (notifiers/registry.py); :class:`daemon.errors.ConfigError`
    names each broken one, so the CLI answers exit 2 and a reload keeps the running configuration."""
    try:
        return build_notifiers(config.channels)
    except ChannelConfigError as exc:
        raise ConfigError(str(exc)) from None


def recipient_of(data: Mapping[str, Any]) -> Recipient:
    return Recipient(
        name=str(data.get("name") or "?"), mobile=data.get("mobile"), wecom_userid=data.get("wecom_userid"),
        email=data.get("email"),
    )


def _recipient_rejected(
    recipient: Recipient, channel: str, receipt: Receipt | None, problem: NotifierError | None
) -> NotifierError | None:
    """A provider that took the message but refused this recipient (WeCom ``invaliduser``): permanent for them."""
    if receipt is not None and recipient.masked in (receipt.detail.get("invalid_recipients") or ()):
        return NotifierError(f"{channel}: recipient rejected by the provider (invaliduser)", permanent=True)
    if problem is not None and not problem.permanent and recipient.masked in problem.failed_recipients:
        return NotifierError(problem.reason, permanent=True, provider_code=problem.provider_code)
    return problem


def _masked_error(text: str) -> str:
    """What is stored in ``deliveries``/``outbox`` and logged: no mobile, no configured secret value."""
    return redact_secrets(mask_mobiles_in(text))[:_ERROR_CHARS]


class Dispatcher:
    """One dispatcher instance; ``owner`` names it in leases (e.g. ``host:pid``)."""

    def __init__(
        self,
        store: Store,
        config: Config,
        notifiers: Mapping[str, Notifier],
        *,
        owner: str,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        calendar: WorkCalendar | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.settings = config.dispatch
        self.notifiers = notifiers
        self.owner = owner[:48]
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._monotonic = monotonic
        self._calendar = calendar
        self._engine_settings = EngineSettings.from_config(config.alerts)
        templates = self.settings.templates_dir
        self.renderer = Renderer(config.path(templates) if templates else None)
        # what each channel's type declares (notifiers/base.py); a type the registry does not know (a test's
        # fake) gets every format and no default quiet hours
        self._families: dict[str, tuple[str, ...]] = {}
        self._quiet_by_default: dict[str, bool] = {}
        self._rate_limits: dict[str, tuple[int, type[Notifier]]] = {}  # per rolling minute, per rate key
        self._slots: dict[str, int] = {}  # sends at once per channel
        for name, opts in config.channels.items():
            cls = channel_class(str(opts.get("type", "")))
            self._slots[name] = self.settings.channel_concurrency.get(
                name, CHANNEL_CONCURRENCY.get(str(opts.get("type", "")), DEFAULT_CHANNEL_CONCURRENCY))
            self._families[name] = cls.formats if cls is not None else FAMILIES
            self._quiet_by_default[name] = cls is not None and cls.quiet_hours_by_default
            try:
                limit = rate_limit_of(name, opts)
            except ChannelConfigError as exc:
                raise ConfigError(str(exc)) from None
            if limit is not None and cls is not None:
                self._rate_limits[name] = (limit, cls)

    # --- public ---------------------------------------------------------------------------------------

    def dispatch_once(
        self, now: datetime, *, should_stop: Callable[[], bool] = lambda: False, limit: int = 500
    ) -> DispatchResult:
        """Dead-letter what is too old, then claim up to ``limit`` due rows and send them, batch by batch.

        ``now`` is aware. The batches are sent side by side within the concurrency bounds (module docstring).
        ``should_stop`` is checked between messages: the messages in flight are finished and recorded, the
        rest of the claim is released for the next run.
        """
        result = DispatchResult()
        started = self._monotonic()
        result.dead += dead_letter.sweep(self.store, self.config, self.renderer, self.owner, now)
        token, rows = self._claim(now, limit)
        result.claimed = len(rows)
        rows = self._drop_stale(rows, token, now, result)

        def send(batch: list[Any]) -> DispatchResult:
            part = DispatchResult()
            current = now + timedelta(seconds=self._monotonic() - started)
            self._process(batch, token, now, current, part)
            return part

        jobs = [(batch[0].channel, batch) for batch in self._batches(rows)]
        try:
            parts, unstarted = run_bounded(jobs, send, total=self.settings.concurrency,
                                           slots=lambda channel: self._slots.get(channel, DEFAULT_CHANNEL_CONCURRENCY),
                                           should_stop=should_stop)
        except Exception as exc:  # a store error: give back what was not started, then let the caller see it
            release(self.store, [r.id for b in getattr(exc, "unstarted", ()) for r in b], token)
            raise
        for part in parts:
            result.add(part)
        if unstarted:
            release(self.store, [r.id for b in unstarted for r in b], token)
            result.stopped = True
        return result

    def dispatch_due(
        self, now: datetime, *, should_stop: Callable[[], bool] = lambda: False, limit: int = 500
    ) -> DispatchResult:
        """Claim and send round after round (:meth:`dispatch_once`) until no row is claimable at ``now``.

        A round that wins nothing while rows are still claimable (other dispatchers had the candidates a
        moment) claims again, up to a bound, so several dispatchers split a backlog and none stops early
        with rows pending. Rows deferred or retried during the run are due after ``now``: the run ends.
        """
        total = DispatchResult()
        empty = 0
        while not total.stopped and not should_stop():
            result = self.dispatch_once(now, should_stop=should_stop, limit=limit)
            total.add(result)
            if result.claimed or result.dead:
                empty = 0
                continue
            empty += 1
            if empty > _EMPTY_CLAIMS or not claimable_count(self.store, now):
                break
        return total

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number ``attempts`` (1-based): exponential, equal jitter, capped."""
        base = self.settings.backoff_base_seconds * (2 ** min(max(attempts - 1, 0), 30))
        ceiling = min(base, self.settings.backoff_cap_seconds)
        return float(ceiling / 2 + self.rng.uniform(0, ceiling / 2))

    # --- claim ----------------------------------------------------------------------------------------

    def _claim(self, now: datetime, limit: int) -> tuple[str, list[Any]]:
        token = f"{self.owner}/{_secrets.token_hex(6)}"
        return token, claim(self.store, token, now, limit=limit, lease_seconds=self.settings.lease_seconds)

    def _drop_stale(self, rows: list[Any], token: str, now: datetime, result: DispatchResult) -> list[Any]:
        """Supersede the claimed alerts that are no longer true (daemon/pipeline/stale.py); the rest."""
        reasons = stale.screen(self.store, rows, now, calendar=self._work_calendar, settings=self._engine_settings)
        if not reasons:
            return rows
        result.superseded += supersede(self.store, reasons, token)
        log.info("outbox_superseded", rows=len(reasons), reasons=sorted(set(reasons.values()))[:5])
        return [r for r in rows if r.id not in reasons]

    def _work_calendar(self) -> WorkCalendar:
        """The calendar of ``config``'s holidays folder, loaded on first use (a reload builds a new dispatcher)."""
        if self._calendar is None:
            from daemon.core.compiled import load_calendar

            self._calendar = load_calendar(self.config.holidays_path, None)
        return self._calendar

    def _batches(self, rows: Sequence[Any]) -> list[list[Any]]:
        """The messages of a claim, most urgent first (:func:`~daemon.pipeline.render.urgency_key` of each
        message's most urgent row): alerts of one kind for one recipient on one channel, due within the batch
        window, go together as one message, however many (it lists ``dispatch.max_items_per_message`` of them
        and counts the rest in one line)."""
        batches = list(self._groups(rows))
        batches.sort(key=lambda batch: min(urgency_key(r.payload) for r in batch))
        return batches

    def _groups(self, rows: Sequence[Any]) -> Iterable[list[Any]]:
        """Alerts of one kind for one recipient on one channel, due within the batch window, go together."""
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for row in rows:
            if row.kind in REPORT_KINDS or "rendered" in (row.payload or {}):
                groups[("row", row.id)] = [row]
            elif row.parts_sent and row.batch_id:  # partly delivered: the same batch renders the same parts
                groups.setdefault(("resume", row.channel, row.batch_id), []).append(row)
            else:
                who = json.dumps(row.recipient, sort_keys=True, ensure_ascii=False)
                groups.setdefault((row.channel, who, row.kind), []).append(row)
        window = timedelta(seconds=self.settings.batch_window_seconds)
        for key, group in groups.items():
            if key[0] == "resume":
                yield sorted(group, key=lambda r: r.id)
                continue
            chunk: list[Any] = []
            for row in sorted(group, key=lambda r: (r.not_before, r.id)):
                if chunk and row.not_before - chunk[0].not_before > window:
                    yield chunk
                    chunk = []
                chunk.append(row)
            if chunk:
                yield chunk

    # --- one message ------------------------------------------------------------------------------------

    def _process(self, batch: list[Any], token: str, now: datetime, current: datetime, result: DispatchResult) -> None:
        first = batch[0]
        channel = first.channel
        quiet = quiet_hours_for(self.config, channel, quiet_by_default=self._quiet_by_default.get(channel, False))
        urgent = any(bool((r.payload or {}).get("urgent")) for r in batch)
        if quiet is not None and not urgent:
            until = quiet_until(quiet, now)
            if until is not None:
                self._finish(batch, token, not_before=until)
                result.deferred += len(batch)
                result.quiet += len(batch)
                log.info("outbox_quiet_hours", channel=channel, rows=len(batch), until=iso_local(until))
                return
        notifier = self.notifiers.get(channel)
        batch_id = f"b{first.id}-{_secrets.token_hex(4)}"
        message, problem = self._prepare(batch, batch_id, notifier, now)
        if message is not None and notifier is not None:
            wait = self._rate_wait(channel, message, notifier, current)
            if wait > 0:  # the channel's shared limit is reached: not an attempt, not a failure
                self._finish(batch, token, not_before=current + timedelta(seconds=wait))
                result.deferred += len(batch)
                result.rate_limited += len(batch)
                log.info("outbox_rate_limited", channel=channel, rows=len(batch), wait_seconds=round(wait, 3))
                return
        if not self._begin_attempt(batch, token, batch_id, current):
            result.lost_leases += len(batch)
            log.warning("outbox_lease_lost", channel=channel, rows=len(batch))
            return
        receipt: Receipt | None = None
        started = self._monotonic()
        if message is not None and notifier is not None:
            result.messages += 1
            try:
                receipt = notifier.send(message)
            except NotifierError as exc:
                problem = exc
            except Exception as exc:  # a notifier bug must not stop the other messages
                log.exception("notifier_crashed", channel=channel)
                problem = NotifierError(f"{channel}: unexpected {type(exc).__name__}")
        latency_ms = int((self._monotonic() - started) * 1000)
        finished = current + timedelta(milliseconds=latency_ms)
        problem = _recipient_rejected(recipient_of(first.recipient), channel, receipt, problem)
        self._record(batch, token, problem, None if problem else receipt, finished, latency_ms, result)

    def _rate_wait(self, channel: str, message: Message, notifier: Notifier, current: datetime) -> float:
        """Reserve the requests ``message`` takes within the channel's limit; seconds to wait if it is full."""
        if channel not in self._rate_limits:
            return 0.0
        limit, cls = self._rate_limits[channel]
        return rate_limit.take(self.store, channel, cls.rate_keys(message), count=notifier.requests_for(message),
                               limit=limit, now=current)

    def _prepare(
        self, batch: list[Any], batch_id: str, notifier: Notifier | None, now: datetime
    ) -> tuple[Message | None, NotifierError | None]:
        """The message to send, or why there is none (recorded as an attempt like a failed send)."""
        channel = batch[0].channel
        if notifier is None:
            return None, NotifierError(f"channel {channel!r} is not configured (channels.{channel})", permanent=True)
        try:
            return self._message(batch, batch_id, now), None
        except RenderError as exc:  # an operator's template: retry, so fixing it recovers the rows
            return None, NotifierError(str(exc))
        except OSError as exc:  # a report's attachment is gone: resending cannot bring it back
            return None, NotifierError(f"attachment cannot be read ({exc.strerror})", permanent=True)

    def _message(self, batch: list[Any], batch_id: str, now: datetime) -> Message:
        first = batch[0]
        recipient = recipient_of(first.recipient)
        payload = first.payload or {}
        rendered = payload.get("rendered")
        if rendered is not None:
            attachments = tuple(
                Attachment(a["filename"], Path(a["path"]).read_bytes(), a.get("mime_type") or _OCTET)
                for a in rendered.get("attachments") or ()
            )
            return Message(
                recipient=recipient, subject=str(rendered["subject"]), text=str(rendered["text"]),
                markdown=rendered.get("markdown"), html=rendered.get("html"), kind=first.kind,
                params={str(k): str(v) for k, v in (rendered.get("sms_params") or {}).items()},
                attachments=attachments, dedupe_key=first.dedupe_key, parts_delivered=first.parts_sent or 0,
            )
        context = alert_context(first.kind, [r.payload for r in batch], first.recipient, now,
                                limit=self.settings.max_items_per_message)
        out = self.renderer.render(first.kind, context, self._families.get(first.channel, FAMILIES))
        return Message(
            recipient=recipient, subject=out.subject, text=out.text, markdown=out.markdown, html=out.html,
            kind=first.kind, params=sms_params(context),
            dedupe_key=first.dedupe_key if len(batch) == 1 else f"batch:{batch_id}",
            parts_delivered=min(r.parts_sent or 0 for r in batch),
        )

    def _begin_attempt(self, batch: list[Any], token: str, batch_id: str, current: datetime) -> bool:
        """Renew the lease (still ours?), count the attempt and write ``attempting`` deliveries: one commit."""
        ids = [r.id for r in batch]
        recipient = recipient_of(batch[0].recipient).masked
        with self.store.engine.begin() as conn:
            renewed = conn.execute(
                update(outbox).where(outbox.c.id.in_(ids), outbox.c.lease_owner == token)
                .values(lease_until=current + timedelta(seconds=self.settings.lease_seconds),
                        attempts=outbox.c.attempts + 1, batch_id=batch_id)
            ).rowcount
            if renewed != len(ids):
                conn.rollback()
                return False
            conn.execute(insert(deliveries), [
                {"outbox_id": i, "attempted_at": current, "channel": batch[0].channel, "recipient": recipient[:200],
                 "outcome": "attempting"} for i in ids
            ])
        return True

    def _record(  # noqa: PLR0917 - the outcome of one attempt
        self, batch: list[Any], token: str, problem: NotifierError | None, receipt: Receipt | None,
        finished: datetime, latency_ms: int, result: DispatchResult,
    ) -> None:
        ids = [r.id for r in batch]
        attempts = max(r.attempts for r in batch) + 1
        error = _masked_error(problem.reason) if problem is not None else None
        pmid = (receipt.provider_message_id or None) if receipt is not None else None
        fields: dict[str, Any]
        if problem is None:
            outcome = "sent"
            fields = {"status": "sent", "sent_at": finished, "provider_message_id": pmid and pmid[:128]}
            result.sent += len(batch)
            result.messages_sent += 1
        elif problem.permanent:
            outcome, fields = "permanent", {"status": "failed"}
            result.failed += len(batch)
            result.failures.extend(
                {"id": r.id, "kind": r.kind, "channel": r.channel, "to": recipient_of(r.recipient).masked,
                 "error": error} for r in batch
            )
        elif problem.deferred:
            wait = max(float(problem.retry_after or 0), 1.0)
            outcome, fields = "deferred", {"status": "pending", "not_before": finished + timedelta(seconds=wait),
                                           "attempts": outbox.c.attempts - 1}
            result.deferred += len(batch)
        elif attempts >= self.settings.max_attempts:
            outcome, fields = "retry", {"status": "dead"}
            result.dead += len(batch)
        else:
            delay = self.backoff(attempts)
            outcome, fields = "retry", {"status": "pending", "not_before": finished + timedelta(seconds=delay)}
            result.retried += len(batch)
        if problem is not None and problem.parts_sent is not None:  # resume after the parts that arrived
            fields["parts_sent"] = problem.parts_sent
        elif receipt is not None and problem is None:
            fields["parts_sent"] = receipt.parts
        with self.store.engine.begin() as conn:
            conn.execute(
                update(deliveries).where(deliveries.c.outbox_id.in_(ids), deliveries.c.outcome == "attempting")
                .values(outcome=outcome, finished_at=finished, latency_ms=latency_ms,
                        provider_message_id=pmid and pmid[:128], error=error)
            )
            done = conn.execute(
                update(outbox).where(outbox.c.id.in_(ids), outbox.c.lease_owner == token)
                .values(lease_owner=None, lease_until=None, last_error=error, **fields)
            ).rowcount
            if done != len(ids):
                log.warning("outbox_lease_lost_while_sending", rows=len(ids) - done, outcome=outcome)
            if fields.get("status") == "dead":
                dead_rows = full_rows(conn.execute(select_rows().where(outbox.c.id.in_(ids))))
                dead_letter.tell_supervisors(conn, self.config, self.renderer, dead_rows, now=finished,
                                             why=f"连续{attempts}次发送失败")
        emit = log.debug if outcome == "sent" else log.warning
        emit("outbox_attempt", channel=batch[0].channel, rows=len(batch), outcome=outcome,
             to=recipient_of(batch[0].recipient).masked, latency_ms=latency_ms, error=error)

    def _finish(self, batch: list[Any], token: str, *, not_before: datetime) -> None:
        """Put claimed rows back as pending until ``not_before`` (no attempt was made)."""
        values = {"status": "pending", "not_before": not_before, "lease_owner": None, "lease_until": None}
        with self.store.engine.begin() as conn:
            conn.execute(
                update(outbox).where(outbox.c.id.in_([r.id for r in batch]), outbox.c.lease_owner == token)
                .values(values)
            )
