"""The store's tables (SQLAlchemy 2.0 Core). Instants are stored as naive UTC with microseconds.

Derived per case and stored, so a tick reads an index range instead of recomputing (ARCHITECTURE rule 2):
``rule_id``, ``due_at``, ``provisional``, ``warnings``, ``return_due_at``, ``deadline_version`` and
``next_check_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import mysql

from daemon.storage.codec import aware_utc, naive_utc

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

_DT = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER primary keys


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database (portable everywhere)."""

    impl = _DT
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else naive_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return aware_utc(value)  # a text on SQLite through some paths


cases = Table(
    "cases",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("number", String(64), nullable=False, unique=True),  # 工单编号
    Column("source", String(16), nullable=False),
    Column("category", String(16), nullable=False),
    Column("unit", String(200), nullable=False),  # 承办单位
    Column("district", String(100)),  # 属地
    Column("domain", String(100)),  # 涉及领域
    Column("summary", Text),  # 问题摘要
    Column("status", String(24), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("signed_at", UTCDateTime),
    Column("return_requested_at", UTCDateTime),
    Column("fed_back_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("extended_due_at", UTCDateTime),  # approved extension (延期)
    Column("satisfaction", String(24)),
    Column("stars", Integer),
    Column("difficult", Boolean, nullable=False, default=False),
    Column("source_name", String(64)),
    Column("source_updated_at", UTCDateTime),
    Column("content_hash", String(32), nullable=False),  # what the source said; equal → unchanged
    # derived and stored
    Column("rule_id", String(64), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),  # first overdue instant
    Column("provisional", Boolean, nullable=False, default=False),
    Column("warnings", JSON, nullable=False),  # [[level, iso instant, lead], …]
    Column("return_rule_id", String(64)),
    Column("return_due_at", UTCDateTime),
    Column("return_warnings", JSON),
    Column("deadline_version", Integer, nullable=False, default=1),
    Column("next_check_at", UTCDateTime),  # NULL: nothing can happen any more
    Column("check_failures", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # issue 12 (migration 0006): the hotline's intake apart from dispatch (受理时间; NULL: the same as
    # received_at), the platform's own deadline (办理时限) and 是否超期, ours when the platform's was given,
    # and which of the two due_at is ('computed' or 'platform'); the last suspension (挂起 … 解挂)
    Column("accepted_at", UTCDateTime),
    Column("platform_due_at", UTCDateTime),
    Column("platform_overdue", Boolean),
    Column("computed_due_at", UTCDateTime),
    Column("deadline_source", String(16), nullable=False, default="computed", server_default="computed"),
    Column("suspended_at", UTCDateTime),  # 挂起时间 (the latest suspension; earlier ones: earlier_suspensions)
    Column("resumed_at", UTCDateTime),  # 解挂时间 / 恢复时间
    Column("priority", String(10)),  # 紧急程度 (migration 0009): 'urgent' | 'normal'; NULL: not in the export
    # migration 0011 (issue 12 item 4): the first contact (先行联系时间), whether the export observes it, and the
    # derived ends of the rule's sign (签收时限) and contact windows (NULL: none, or contact not observed)
    Column("contacted_at", UTCDateTime),
    Column("contact_tracked", Boolean, nullable=False, default=False, server_default=false()),
    Column("sign_due_at", UTCDateTime),
    Column("contact_due_at", UTCDateTime),
    # migration 0013 (issue 12 item 3): the earlier completed suspensions of this cycle, [[挂起, 解挂], ...] as
    # local ISO instants (an export shows only the latest pair; the import remembers the ones it replaces);
    # SQL NULL (not JSON null, so the import's "ever suspended" test is an IS NOT NULL): none. Instants, not a
    # total: a calendar change recomputes what each gives back.
    Column("earlier_suspensions", JSON(none_as_null=True)),
    Index("ix_cases_next_check_at", "next_check_at"),
    Index("ix_cases_unit", "unit"),
    Index("ix_cases_received_at", "received_at"),
    Index("ix_cases_status_due_at", "status", "due_at"),  # the open cases past their deadline (digest)
    Index("ix_cases_platform_due_at", "platform_due_at"),  # the cases with a platform deadline (时限不一致)
)

case_history = Table(
    "case_history",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("case_id", _ID, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("field", String(32), nullable=False),  # status, unit, extended_due_at, due_at, rule_id …
    Column("old_value", Text),
    Column("new_value", Text),
    Column("reason", String(64), nullable=False),  # import:<source>, recompute, …
    Index("ix_case_history_case_id", "case_id"),
)

mutes = Table(
    # 暂停提醒: no warnings or breaches for the case before muted_until (`hotline-sla cases mute`, 0008). Its own
    # table, so that an import's rewrite of a case's columns never touches a mute.
    "mutes",
    metadata,
    Column("case_id", _ID, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
    Column("muted_until", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("muted_by", String(100), nullable=False),
    Column("muted_at", UTCDateTime, nullable=False),
    Index("ix_mutes_muted_until", "muted_until"),  # the cases muted at now (tick, digest, desk): few rows
)

assignments = Table(
    # 退件 → 重新派单: each earlier assignment of a case to a unit (the current one is the case row), written by
    # the import when a case's unit changes (0010), so that the ranking counts each unit's own part
    "assignments",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("case_id", _ID, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("unit", String(200), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),  # 交办时间 of this assignment: the unit's clock
    Column("due_at", UTCDateTime),  # the deadline it had
    Column("return_due_at", UTCDateTime),  # its return window's end (first late instant)
    Column("return_requested_at", UTCDateTime),  # 退件申请时间, when the unit asked to return it
    Column("fed_back_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("outcome", String(16), nullable=False),  # returned | closed | open (daemon.core.assignment)
    Column("ended_at", UTCDateTime, nullable=False),  # when the import saw it given to another unit
    Index("ix_assignments_case_id", "case_id"),
    Index("ix_assignments_received_at", "received_at"),  # the month's assignments (ranking)
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("case_id", _ID, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(24), nullable=False),  # glossary.ALERT_KINDS (warning … unsigned, first_contact)
    Column("level", Integer, nullable=False),
    Column("deadline_version", Integer, nullable=False),
    Column("fire_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("unit", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("detail", JSON, nullable=False),
    UniqueConstraint("case_id", "kind", "level", "deadline_version"),
    Index("ix_alerts_created_at", "created_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("alert_id", _ID, ForeignKey("alerts.id", ondelete="SET NULL")),  # NULL for reports
    Column("kind", String(32), nullable=False),  # alert kind, or digest / month_end / carry_over / dead_letter
    Column("channel", String(64), nullable=False),
    Column("recipient", JSON, nullable=False),  # {name, role, unit, mobile, wecom_userid, email}
    Column("payload", JSON, nullable=False),  # the template context
    Column("dedupe_key", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # pending, sending, sent, failed, dead
    Column("not_before", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    Column("last_error", Text),
    Column("provider_message_id", String(128)),
    Column("batch_id", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    # a message sent as several requests (a long WeCom message): the parts the provider took, so a retry
    # resumes from the first undelivered one instead of repeating the others (issue 14 finding 4)
    Column("parts_sent", Integer, nullable=False, server_default="0"),  # server-side: bulk inserts omit it
    UniqueConstraint("dedupe_key", "channel"),
    Index("ix_outbox_status_not_before", "status", "not_before"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("outbox_id", _ID, ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("channel", String(64), nullable=False),
    Column("recipient", String(200), nullable=False),  # masked
    Column("outcome", String(16), nullable=False),  # attempting, sent, retry, deferred, permanent
    Column("latency_ms", Integer),
    Column("provider_message_id", String(128)),
    Column("error", Text),
    Index("ix_deliveries_outbox_id", "outbox_id"),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("unit", String(200)),  # NULL: a supervisor (督办), not tied to a unit
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),  # handler, leader, supervisor
    Column("mobile", String(20)),
    Column("wecom_userid", String(64)),
    Column("email", String(200)),
    Column("channels", JSON, nullable=False),
    Column("origin", String(16), nullable=False),  # config | import
    Index("ix_contacts_unit", "unit"),
)

source_state = Table(
    "source_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("watermark", String(64)),
    Column("last_attempt_at", UTCDateTime),
    Column("last_ok_at", UTCDateTime),
    Column("last_error", Text),
    Column("stats", JSON),
)

runs = Table(  # "done once" markers: the digest of a day, the month-end reminder of a day, …
    "runs",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("period", String(32), nullable=False),
    Column("done_at", UTCDateTime, nullable=False),
    Column("detail", JSON),
    UniqueConstraint("kind", "period"),
)

settings = Table(  # small state: calendar/rules fingerprints, last tick, leader lease
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text),
    Column("owner", String(64)),
    Column("until", UTCDateTime),
)

send_windows = Table(  # the sends of the last minute per (channel, key): a vendor's limit shared by every process
    "send_windows",
    metadata,
    Column("key", String(120), primary_key=True),  # channel name + ":" + hash of the member or number
    Column("sent", Text, nullable=False),  # epoch seconds of the sends still in the window, space-separated
    Column("updated_at", UTCDateTime, nullable=False),
)

report_issues = Table(  # issued 通报: the running issue number 第N期 per series and year
    "report_issues",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("series", String(64), nullable=False),  # reports.masthead.series: whose numbering
    Column("year", Integer, nullable=False),  # the year of issue (第N期 restarts each year)
    Column("number", Integer, nullable=False),  # N of 第N期
    Column("period", String(32), nullable=False),  # what it reports on, e.g. "2026-11"
    Column("issued_at", UTCDateTime, nullable=False),
    UniqueConstraint("series", "year", "number"),
    UniqueConstraint("series", "period"),
)
