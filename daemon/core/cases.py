"""The case (工单) as the rest of the daemon sees it, independent of where it came from.

Sources (files, SQL, HTTP) produce :class:`CaseRecord`; the store keeps them; rules and the engine read
them. All instants are timezone-aware; the platform's local times are Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Source(StrEnum):
    """Where the case was dispatched from (来源)."""

    PROVINCE = "province"  # 省平台交办件
    CITY = "city"  # 市级 (12345 市平台)
    HOTLINE = "hotline"  # 区县热线 / 话务端


class Category(StrEnum):
    """What kind of request it is (诉求类型)."""

    COMPLAINT = "complaint"  # 投诉
    INQUIRY = "inquiry"  # 咨询 (政策咨询)
    SUGGESTION = "suggestion"  # 建议 (意见建议)
    HELP = "help"  # 求助
    REPORT = "report"  # 举报
    OTHER = "other"  # 其他


class Status(StrEnum):
    """Where the case is in the workflow (办理状态)."""

    DISPATCHED = "dispatched"  # 已交办, not yet signed (待签收)
    SIGNED = "signed"  # 已签收 / 办理中
    RETURN_REQUESTED = "return_requested"  # 申请退件
    RETURNED = "returned"  # 已退件 (the unit is no longer responsible)
    FED_BACK = "fed_back"  # 已反馈 (the unit reported back; the SLA clock stops)
    CLOSED = "closed"  # 已办结 / 已结案
    # the case life as platforms export it (issue 12)
    SUSPENDED = "suspended"  # 挂起 / 暂停计时: the clock stops; no warnings or breaches until it resumes
    REOPENED = "reopened"  # 重办 / 退回重办: a new cycle from the re-dispatch (交办时间 of this cycle)
    EXTENSION_PENDING = "extension_pending"  # 延期审核中: asked for, not approved; the original deadline stands


class Priority(StrEnum):
    """How urgent the case is (紧急程度): a rule may match it (``match: {priority: urgent}``)."""

    URGENT = "urgent"  # 紧急 / 特急 / 加急
    NORMAL = "normal"  # 一般 / 普通


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意


#: statuses after which the unit owes nothing more on the case
FINISHED_STATUSES = frozenset({Status.RETURNED, Status.FED_BACK, Status.CLOSED})


@dataclass(frozen=True)
class CaseRecord:
    """One case as a source reports it. ``number`` (工单编号) identifies it across sources."""

    number: str
    source: Source
    category: Category
    unit: str  # 承办单位
    received_at: datetime  # the unit's clock: dispatch to the unit (交办/派单/转办/接件时间); the clock starts here
    status: Status = Status.DISPATCHED
    district: str | None = None  # 属地
    domain: str | None = None  # 涉及领域
    summary: str | None = None  # 问题摘要
    signed_at: datetime | None = None  # 签收时间
    return_requested_at: datetime | None = None  # 退件申请时间
    fed_back_at: datetime | None = None  # 反馈时间
    closed_at: datetime | None = None  # 办结时间
    extended_due_at: datetime | None = None  # approved extension (延期至): the new first overdue instant
    satisfaction: Satisfaction | None = None  # 满意度
    stars: int | None = None  # 评星 1-5
    difficult: bool = False  # 疑难件 (a scoring bonus)
    source_updated_at: datetime | None = None  # the platform's own last-modified time (watermarks)
    # the hotline's intake (受理/来电时间) when the export has it apart from dispatch; None: the same instant
    accepted_at: datetime | None = None
    # the platform's own deadline (办理时限/办结时限/截止时间) as a first overdue instant, and its 是否超期
    platform_due_at: datetime | None = None
    platform_overdue: bool | None = None
    # the latest suspension (挂起时间 … 解挂时间/恢复时间); once resumed the deadline moves by it (rules.py)
    suspended_at: datetime | None = None
    resumed_at: datetime | None = None
    # 紧急程度 (issue 12 item 4): None when the export has no such column or the cell is empty (rules see normal)
    priority: Priority | None = None
    # 先行联系时间 (issue 12 item 4): the unit's first contact with the citizen in this cycle; ``contact_tracked``
    # says the source maps such a column at all (without it a rule's contact_within cannot be observed)
    contacted_at: datetime | None = None
    contact_tracked: bool = False
    # the earlier completed suspensions of this cycle, (挂起, 解挂) each, as the store remembers them (an export
    # shows only the latest pair; :func:`~daemon.core.lifecycle.remembered_suspensions`); not the source's words
    earlier_suspensions: tuple[tuple[datetime, datetime], ...] = ()

    @property
    def suspensions(self) -> tuple[tuple[datetime, datetime], ...]:
        """Every resumed suspension of this cycle: the earlier ones and the current pair once resumed."""
        if self.suspended_at is None or self.resumed_at is None:
            return self.earlier_suspensions
        return (*self.earlier_suspensions, (self.suspended_at, self.resumed_at))

    @property
    def intake_at(self) -> datetime:
        """When the hotline took the case in (受理): ``accepted_at``, else the dispatch instant."""
        return self.accepted_at if self.accepted_at is not None else self.received_at

    @property
    def is_finished(self) -> bool:
        """The unit owes nothing more: fed back, closed or returned."""
        return (
            self.status in FINISHED_STATUSES or self.fed_back_at is not None or self.closed_at is not None
        )
