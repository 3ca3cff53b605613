"""The tick: evaluate only the cases whose ``next_check_at <= now``, write alerts and outbox rows.

Per batch, one transaction: the new alerts (unique per case, kind, level and deadline version), their
outbox rows, and each case's new ``next_check_at``. Running it twice at the same ``now`` writes nothing
new; after an outage each missed alert is written once (the engine emits the current state, not every
missed minute), and of the steps decided at once for a case only the latest is queued as a message
(:func:`daemon.core.engine.announced`: never 已超期 and 超期仍未办结 together). A case whose evaluation
raises is pushed forward with backoff and the tick goes on.

A case that ``sync`` or ``recompute`` changes while its batch is being evaluated keeps what they wrote:
the ``next_check_at`` update is conditioned on the content hash, deadline version and ``next_check_at``
read with the batch, so the tick never overwrites a newer check instant with one computed from stale data
(the changed case is due, or soon will be, and is evaluated again under its new state).

An alert's template context is stored once, in ``alerts.detail``; each of its outbox rows stores only its
own part (``{"note": …, "urgent": …}``) and readers merge the two (``daemon.pipeline.queue.select_rows`` /
``full_payload``), which keeps a tick that alerts thousands of cases from writing each context per recipient.

A tick over thousands of due cases spends its time writing, so the writes go as in :mod:`daemon.storage.upsert`:
statements compiled once, values already in the driver's form (instants as naive UTC, JSON dumped once
per alert, its text put together from pieces that many alerts share), one ``executemany`` each (on
PostgreSQL: ``COPY`` for the inserts, and one UPDATE joined to a temporary table for the next checks); the reads
skip SQLAlchemy's per-column processing too (each row unpacked once, its instants converted by hand, a due
instant that many cases share once per tick, the return window's warnings parsed only for a case that awaits
its signature, the only one whose evaluation reads them); the alert
ids come from one re-select by case (measured faster than ``INSERT … RETURNING`` through SQLAlchemy's
"insertmanyvalues" on SQLite and PostgreSQL: about 0.1 s less CPU per 10,000 cases on SQLite, 0.6 s on PG),
on PostgreSQL from the alerts' sequence before the COPY.

A little over the house's 400 lines: the batch loop, its bulk writes and the outbox rows it builds read the
same per-batch memos, and splitting them would hand those memos across modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Dialect, Text, bindparam, cast, insert, select, type_coerce
from sqlalchemy.types import NullType

from daemon.config import Config
from daemon.core.calendar import WorkCalendar
from daemon.core.cases import Status
from daemon.core.engine import (
    ONCE_KINDS,
    CaseState,
    Decision,
    EngineSettings,
    announced,
    evaluate,
    muted,
    reads_return_warnings,
)
from daemon.core.rules import Deadline, RuleSet, WarningPoint
from daemon.core.timeutil import iso_local
from daemon.pipeline import queue
from daemon.pipeline.mutes import muted_until_of
from daemon.pipeline.recipients import Contact, Directory, sync_config_contacts
from daemon.storage.codec import (
    BoundedMemo,
    BulkStatement,
    BulkUpdate,
    DriverValues,
    aware_utc,
    dumps,
    loads,
    paused_gc,
)
from daemon.storage.models import alerts, cases
from daemon.storage.store import Store, warnings_from_json

log = structlog.get_logger("hotline_sla.tick")

MAX_FAILURE_BACKOFF = timedelta(hours=6)

ALERT_KEY = ("case_id", "kind", "level", "deadline_version")
ALERT_COLUMNS = (*ALERT_KEY, "fire_at", "due_at", "unit", "created_at", "detail")
#: the next_check_at update: new values, then the case and what the batch read of it
NEXT_CHECK_PARAMS = ("_next", "_failures", "_id", "_hash", "_version", "_seen")

#: what the tick reads of a case: what the engine and the alert payload need, and what the update checks.
#: Instants and warnings come as the driver returns them: instants converted by hand (a due instant that many
#: cases share once per tick), warnings memoised by their text (many cases share them) or parsed only when the
#: engine reads them, next_check_at to compare with what is stored when writing the new one.
READ = (
    *(cases.c[c] for c in (
        "id", "number", "source", "category", "unit", "district", "summary", "status", "content_hash", "rule_id",
        "provisional", "return_rule_id", "deadline_version", "check_failures",
    )),
    *(type_coerce(cases.c[c], NullType()).label(c) for c in (
        "received_at", "signed_at", "return_requested_at", "fed_back_at", "closed_at", "due_at", "return_due_at",
    )),
    # as text on every backend: psycopg would parse each row's JSON (16,000 parses, 0.37 s of a 10,000-case
    # tick), where the text is memoised (many cases share their warnings) or parsed only when the engine reads it
    *(type_coerce(cast(cases.c[c], Text), NullType()).label(c) for c in ("warnings", "return_warnings")),
    *(type_coerce(cases.c[c], NullType()).label(c) for c in ("contacted_at", "sign_due_at", "contact_due_at")),
    type_coerce(cases.c.next_check_at, NullType()).label("seen_next_check_at"),
)
#: :class:`_Case` unpacks a row in this order; a change to one without the other fails here, loudly
READ_ORDER = (
    "id", "number", "source", "category", "unit", "district", "summary", "status", "content_hash", "rule_id",
    "provisional", "return_rule_id", "deadline_version", "check_failures", "received_at", "signed_at",
    "return_requested_at", "fed_back_at", "closed_at", "due_at", "return_due_at", "warnings", "return_warnings",
    "contacted_at", "sign_due_at", "contact_due_at", "seen_next_check_at",
)
assert tuple(c.name for c in READ) == READ_ORDER, "READ and _Case disagree"


@dataclass
class TickResult:
    evaluated: int = 0
    failed: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    outbox_rows: int = 0


def run_tick(
    store: Store, rules: RuleSet, calendar: WorkCalendar, config: Config, now: datetime, *, batch_size: int = 5000
) -> TickResult:
    result = TickResult()
    with store.engine.begin() as conn:
        sync_config_contacts(conn, config)
        directory = Directory.load(conn, config)
    batcher: _Batcher | None = None  # built on the first due case: a quiet minute stays cheap
    with paused_gc():  # its full passes over a batch's live rows took 0.06-0.2 s of a 10,000-case tick
        while True:
            with store.engine.begin() as conn:
                rows = conn.execute(
                    select(*READ).where(cases.c.next_check_at <= now).order_by(cases.c.next_check_at)
                    .limit(batch_size)
                ).all()
                if not rows:
                    break
                if batcher is None:
                    batcher = _Batcher(store.engine.dialect, rules, calendar, config, directory, now)
                batcher.tick(conn, rows, result)
    store.set_setting("last_tick_at", now.isoformat())
    return result


class _Batcher:
    """One tick's context: the compiled statements, and memos for what many alerts share."""

    def __init__(  # noqa: PLR0917 - the tick's whole context, internal
        self, dialect: Dialect, rules: RuleSet, calendar: WorkCalendar, config: Config, directory: Directory,
        now: datetime,
    ) -> None:
        self.rules, self.calendar, self.config, self.directory, self.now = rules, calendar, config, directory, now
        self.settings = EngineSettings.from_config(config.alerts)
        self.values = DriverValues(dialect, flag_type=cases.c.provisional.type, json_type=alerts.c.detail.type)
        self.now_bound = self.values.instant(now)
        self.pg = dialect.name == "postgresql" and dialect.driver == "psycopg"
        columns = ("id", *ALERT_COLUMNS) if self.pg else ALERT_COLUMNS  # PostgreSQL: ids drawn before the COPY
        self.insert_alerts = BulkStatement(dialect, insert(alerts).values({c: bindparam(c) for c in columns}), columns)
        self.insert_outbox = BulkStatement(dialect, queue.bulk_insert(), queue.OUTBOX_COLUMNS)
        self.update_next_check = BulkUpdate(  # the new values, then the case and what the batch read of it
            dialect, cases, ("next_check_at", "check_failures"),
            ("id", "content_hash", "deadline_version", "next_check_at"),
        )
        self._shared_instants: BoundedMemo[Any, datetime] = BoundedMemo()
        self._local: BoundedMemo[datetime, str] = BoundedMemo()
        self._rule_text: dict[str, tuple[str, str]] = {}
        self._warnings: BoundedMemo[str, tuple[WarningPoint, ...]] = BoundedMemo()
        self._routes: dict[tuple[str, str, bool], list[tuple[str, Any, str, Any]]] = {}
        self._recipients: dict[Contact, tuple[Any, str]] = {}
        self._own_parts: dict[tuple[str | None, bool], Any] = {}

    def tick(self, conn: Connection, rows: Sequence[Any], result: TickResult) -> None:
        """Evaluate one batch and write what it decides, in the caller's transaction."""
        existing = {tuple(a) for a in self._alerts_of(conn, ALERT_KEY, [r.id for r in rows])}
        repeated = once_keys(existing)
        mutes = muted_until_of(conn, None, self.now)
        new_alerts: list[tuple[_Case, Decision, bool]] = []
        next_checks: list[tuple[Any, ...]] = []
        instant, now = self.values.shared_instant, self.now
        settings, calendar = self.settings, self.calendar
        for row in rows:
            try:
                case = _Case(row, self)
                deadline, ret = self._deadlines(case)
                ev = evaluate(case.state, deadline, ret, now, calendar=calendar, settings=settings)
                if mutes:
                    ev = muted(ev, mutes.get(case.id), now)
            except Exception as exc:
                failures = row.check_failures + 1
                delay = min(timedelta(minutes=2 ** min(failures, 12)), MAX_FAILURE_BACKOFF)
                log.error("case_evaluation_failed", case=row.number, error=f"{type(exc).__name__}: {exc}",
                          failures=failures, retry_in_s=int(delay.total_seconds()))
                next_checks.append((instant(now + delay), failures, row.id, row.content_hash, row.deadline_version,
                                    row.seen_next_check_at))
                result.failed += 1
                continue
            result.evaluated += 1
            fresh = []
            for d in ev.decisions:
                key = (case.id, d.kind, d.level, case.deadline_version)
                if key not in existing and (d.kind not in ONCE_KINDS or (case.id, d.kind, d.level) not in repeated):
                    existing.add(key)
                    fresh.append(d)
            if fresh:
                sent = announced(fresh)
                new_alerts.extend((case, d, d in sent) for d in fresh)
            next_checks.append((instant(ev.next_check_at), 0, case.id, case.content_hash, case.deadline_version,
                                case.seen_next_check_at))
        if new_alerts:
            self._write_alerts(conn, new_alerts, result)
        # by case id: the table's pages in order (cases come in next_check_at order, scattered over the table)
        next_checks.sort(key=_by_case_id)
        self.update_next_check.run(conn, next_checks)

    def _write_alerts(
        self, conn: Connection, new_alerts: list[tuple[_Case, Decision, bool]], result: TickResult
    ) -> None:
        """Record every new alert; queue messages only for the announced ones (:func:`announced`: a breach
        decided together with its latest repeat is recorded, so never decided again, and only the repeat is sent).
        """
        instant, detail, local, now_bound = self.values.shared_instant, self._detail, self._local_text, self.now_bound
        alert_rows = [
            (case.id, d.kind, d.level, case.deadline_version, instant(d.fire_at), instant(d.due_at), case.unit,
             now_bound, detail(case, d))
            for case, d, _ in new_alerts
        ]
        id_of = self._insert_alerts(conn, alert_rows)
        out_rows: list[tuple[Any, ...]] = []
        for (case, d, sent), alert in zip(new_alerts, alert_rows, strict=True):
            if not sent:
                result.alerts.append({
                    "case": case.number, "kind": d.kind, "level": d.level, "unit": case.unit,
                    "due_at": local(d.due_at), "recipients": 0, "folded": True,
                })
                continue
            alert_id = id_of[alert[:4]]
            deliveries = self._route(d.kind, case.unit, d.overdue_working_days)
            if not deliveries:
                log.warning("alert_without_recipient", case=case.number, kind=d.kind, unit=case.unit,
                            hint="configure the unit's contacts or at least one supervisor")
            out_rows.extend(
                (alert_id, d.kind, channel, recipient, payload, f"alert:{alert_id}:{contact_key}", "pending",
                 now_bound, 0, now_bound)
                for channel, recipient, contact_key, payload in deliveries
            )
            result.alerts.append({
                "case": case.number, "kind": d.kind, "level": d.level, "unit": case.unit,
                "due_at": local(d.due_at), "recipients": len(deliveries), "folded": False,
            })
        self.insert_outbox.run(conn, out_rows)
        result.outbox_rows += len(out_rows)

    def _insert_alerts(self, conn: Connection, alert_rows: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
        """Insert the alerts; their ids by (case_id, kind, level, deadline_version).

        On PostgreSQL the ids are drawn from the table's own sequence first (one statement) and copied with
        the rows: no re-select, which read back every alert of the batch's cases (0.1-0.3 s of a 10,000-case
        tick, bench/tick_bench.py). Elsewhere one re-select by case.
        """
        if self.pg:
            ids = conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('alerts', 'id')) FROM generate_series(1, %s)",
                (len(alert_rows),),
            ).scalars().all()
            self.insert_alerts.run(conn, [(i, *r) for i, r in zip(ids, alert_rows, strict=True)])
            return {r[:4]: i for i, r in zip(ids, alert_rows, strict=True)}
        self.insert_alerts.run(conn, alert_rows)
        keys = {r[:4] for r in alert_rows}
        found = self._alerts_of(conn, ("id", *ALERT_KEY), list({k[0] for k in keys}))
        return {tuple(a[1:]): a[0] for a in found if tuple(a[1:]) in keys}

    def _alerts_of(self, conn: Connection, columns: Sequence[str], case_ids: list[Any]) -> Any:
        """``columns`` of the alerts of ``case_ids``. On PostgreSQL the ids go as one array (``= ANY``):
        SQLAlchemy renders an ``IN`` list element by element, and the server plans thousands of them."""
        if self.pg:
            return conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM alerts WHERE case_id = ANY(%s)",
                                        (case_ids,))
        return conn.execute(select(*(alerts.c[c] for c in columns)).where(alerts.c.case_id.in_(case_ids)))

    def _shared_aware(self, raw: Any) -> datetime:
        """:func:`_aware` of a value that is not NULL, memoised: for due instants that many cases share."""
        value = self._shared_instants.get(raw)
        if value is None:
            value = aware_utc(raw)
            if value is None:
                raise ValueError("a NULL instant where the store holds one")
            self._shared_instants.put(raw, value)
        return value

    def _deadlines(self, case: _Case) -> tuple[Deadline, Deadline | None]:
        """The case's deadlines as the engine reads them. The return deadline's warnings (nearly unique per
        case) are parsed only when the engine reads them: while the case awaits its signature.
        """
        deadline = Deadline(
            rule_id=case.rule_id, rule_name=self._rule_text_of(case.rule_id)[0], received_at=case.received_at,
            due_at=case.due_at, warnings=self._warning_points(case.warnings), sign_by=case.sign_by,
            contact_by=case.contact_by,
        )
        ret = None
        if case.return_due_at is not None and case.return_rule_id:
            warnings = (
                self._warning_points(case.return_warnings) if reads_return_warnings(case.state, self.settings) else ()
            )
            ret = Deadline(
                rule_id=case.return_rule_id, rule_name=case.return_rule_id, received_at=case.received_at,
                due_at=self._shared_aware(case.return_due_at), warnings=warnings,
            )
        return deadline, ret

    def _warning_points(self, stored: Any) -> tuple[WarningPoint, ...]:
        """A warnings column as :data:`READ` returns it (its JSON text; NULL as None) → warning points."""
        if not isinstance(stored, str):
            return warnings_from_json(stored)
        points = self._warnings.get(stored)
        if points is None:
            points = self._warnings.put(stored, warnings_from_json(loads(stored)))
        return points

    def _rule_text_of(self, rule_id: str) -> tuple[str, str]:
        """The rule's name and its limit in words (the rule id and "" for a rule an edit has removed)."""
        text = self._rule_text.get(rule_id)
        if text is None:
            rule = self.rules.find(rule_id)
            text = self._rule_text[rule_id] = (rule.name, rule.describe_limit()) if rule else (rule_id, "")
        return text

    def _route(self, kind: str, unit: str, overdue_working_days: int) -> list[tuple[str, Any, str, Any]]:
        """Who hears about an alert: per delivery its channel, recipient (driver value), contact key and
        payload (driver value), memoised per (kind, unit, escalation) as :meth:`Directory.escalates` allows.
        """
        route = self.config.routes[kind]
        key = (kind, unit, Directory.escalates(route, overdue_working_days))
        deliveries = self._routes.get(key)
        if deliveries is None:
            deliveries = self._routes[key] = [
                (dl.channel, *self._recipient(dl.contact), self._own_part(dl.note, route.urgent))
                for dl in self.directory.route(route, unit, overdue_working_days)
            ]
        return deliveries

    def _own_part(self, note: str | None, urgent: bool) -> Any:
        """An alert's outbox payload: only what differs per recipient (readers merge the alert's detail back)."""
        key = (note, urgent)
        bound = self._own_parts.get(key)
        if bound is None:
            bound = self._own_parts[key] = self.values.json_text(dumps({"note": note, "urgent": urgent}))
        return bound

    def _recipient(self, contact: Contact) -> tuple[Any, str]:
        """The contact's recipient column value and its key (in each row's dedupe key)."""
        bound = self._recipients.get(contact)
        if bound is None:
            bound = self._recipients[contact] = (self.values.json_text(dumps(contact.as_json())), contact.key)
        return bound

    def _local_text(self, instant: datetime) -> str:
        text = self._local.get(instant)
        if text is None:
            text = self._local.put(instant, iso_local(instant))
        return text

    def _detail(self, case: _Case, d: Decision) -> Any:
        """The driver's value for the alert's ``detail``: :meth:`_payload` as JSON (:func:`codec.dumps`)."""
        return self.values.json_text(dumps(self._payload(case, d)))

    def _payload(self, case: _Case, d: Decision) -> dict[str, Any]:
        """The alert's template context (``alerts.detail``; each outbox row adds ``note`` and ``urgent``)."""
        rule_text = self._rule_text_of(case.rule_id)
        local = self._local_text
        requested = case.state.return_requested_at
        return {
            "kind": d.kind,
            "level": d.level,
            "fire_at": local(d.fire_at),
            "overdue_working_days": d.overdue_working_days,
            "case": {
                "number": case.number, "summary": case.summary, "unit": case.unit, "district": case.district,
                "source": case.source, "category": case.category, "rule_id": case.rule_id,
                "rule_name": rule_text[0], "limit": rule_text[1],
                "received_at": iso_local(case.received_at), "due_at": local(d.due_at),
                "case_due_at": local(case.due_at), "provisional": bool(case.provisional),
                "return_requested_at": iso_local(requested) if requested else None,
            },
            **({"window": self._window_text(case.rule_id, d.kind)} if d.kind in _WINDOW_FIELDS else {}),
        }

    def _window_text(self, rule_id: str, kind: str) -> str:
        """A sign or contact window in words (e.g. ``1个工作日``), for the unsigned and first_contact messages."""
        rule = self.rules.find(rule_id)
        window = None if rule is None else getattr(rule, _WINDOW_FIELDS[kind])
        return "" if window is None else str(window.describe_limit())


class _Case:
    """A due case as the batch read it (one :data:`READ` row), with what the engine reads of it."""

    __slots__ = (
        "category",
        "check_failures",
        "contact_by",
        "content_hash",
        "deadline_version",
        "district",
        "due_at",
        "id",
        "number",
        "provisional",
        "received_at",
        "return_due_at",
        "return_rule_id",
        "return_warnings",
        "rule_id",
        "seen_next_check_at",
        "sign_by",
        "source",
        "state",
        "summary",
        "unit",
        "warnings",
    )

    def __init__(self, row: Any, batcher: _Batcher) -> None:
        # one unpacking (in READ_ORDER): reading a Row's attributes by name, some 35 times per alerting case,
        # cost about as much as evaluating it
        (self.id, self.number, self.source, self.category, self.unit, self.district, self.summary, status,
         self.content_hash, self.rule_id, self.provisional, self.return_rule_id, self.deadline_version,
         self.check_failures, received, signed, requested, fed_back, closed, due, self.return_due_at,
         self.warnings, self.return_warnings, contacted, sign_by, contact_by, self.seen_next_check_at) = row
        aware = aware_utc
        received_at = aware(received)
        if received_at is None:
            raise ValueError("received_at is NULL")
        self.received_at: datetime = received_at
        self.due_at: datetime = batcher._shared_aware(due)
        self.sign_by, self.contact_by = aware(sign_by), aware(contact_by)
        self.state = CaseState(
            number=self.number, status=Status(status), received_at=received_at, signed_at=aware(signed),
            return_requested_at=aware(requested), fed_back_at=aware(fed_back), closed_at=aware(closed),
            contacted_at=aware(contacted),
        )


def once_keys(existing: set[tuple[Any, ...]]) -> set[tuple[Any, str, int]]:
    """(case id, kind, level) of every alert of :data:`~daemon.core.engine.ONCE_KINDS` already alerted under any
    deadline version (``existing``: :data:`ALERT_KEY` tuples): a recompute that bumps the version must not
    repeat a breach repeat's day (its level is the day, :func:`daemon.core.engine.repeat_level`) nor a sign or
    contact window (its level is the window's end, :func:`daemon.core.engine.window_level`)."""
    return {(a[0], a[1], a[2]) for a in existing if a[1] in ONCE_KINDS}


#: the alert kinds of a rule's windows, and the Rule attribute that holds each window
_WINDOW_FIELDS = {"unsigned": "sign_window", "first_contact": "contact_window"}


def _by_case_id(next_check: tuple[Any, ...]) -> Any:
    return next_check[_NEXT_CHECK_ID]


_NEXT_CHECK_ID = NEXT_CHECK_PARAMS.index("_id")
