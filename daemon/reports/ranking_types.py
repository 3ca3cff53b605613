"""The data of the monthly ranking (评优评差): a case as the ranking reads it, a unit's score, the groups
(分组) units are ranked in, and the mid-month forecast. Plain frozen dataclasses; the computing is in
:mod:`daemon.reports.ranking`, which re-exports these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from daemon.core.cases import Satisfaction, Source

DEFAULT_GROUP = "基层承办单位"


@dataclass(frozen=True)
class RankedCase:
    """What the ranking needs of one case. Instants are timezone-aware; ``due_at`` is the SLA's first
    overdue instant (00:00 of the day after the last day, for day periods)."""

    number: str  # 工单编号
    unit: str  # 承办单位
    district: str | None  # 属地
    domain: str | None  # 涉及领域
    source: Source
    received_at: datetime  # 交办时间
    fed_back_at: datetime | None  # 反馈时间
    closed_at: datetime | None  # 办结时间
    due_at: datetime
    satisfaction: Satisfaction | None = None
    stars: int | None = None  # 评星 1-5
    difficult: bool = False  # 疑难件
    summary: str | None = None  # 问题摘要, shown in the review lists


@dataclass(frozen=True)
class UnitScore:
    """One unit's month. Rates are fractions; ``penalty`` is the positive amount subtracted (减分)."""

    unit: str
    rank: int  # 名次, 1 = best
    dispatched: int  # 交办总量
    closed: int  # 办结总量
    fed_back: int
    on_time: int
    rated: int  # 总评星量
    satisfied: int  # 满意量
    provincial: int  # 省平台交办件
    five_star: int
    difficult: int
    high_star: int
    below_four_star: int
    overdue: int  # 超期件
    satisfaction_rate: Decimal | None  # None: nothing rated (shown —)
    on_time_rate: Decimal | None  # None: nothing fed back and nothing overdue
    completion_rate: Decimal
    bonus: Decimal
    penalty: Decimal
    score: Decimal  # 总分, half up to cents
    exact: Decimal  # unrounded, what the order is decided on


@dataclass(frozen=True)
class GroupShare:
    """Cases by district (属地) or by domain (涉及领域); ``share`` is of all cases in the month."""

    name: str
    dispatched: int
    share: Decimal
    closed: int
    completion_rate: Decimal
    rated: int
    satisfied: int
    satisfaction_rate: Decimal | None


@dataclass(frozen=True)
class UnitForecast:
    unit: str
    score: Decimal  # as of now
    projected_score: Decimal  # at month end, at the current pace
    projected_exact: Decimal
    dispatched: int


@dataclass(frozen=True)
class Forecast:
    """Mid-month projection. Rates are held at their current values, except that completion counts only
    cases already due (a case still inside its SLA is not yet a failure); bonus and penalty amounts grow
    linearly with the month: divided by the elapsed fraction of the month."""

    elapsed_fraction: Decimal
    units: tuple[UnitForecast, ...]  # best projected first
    heading_for_worst: tuple[UnitForecast, ...]  # worst projected first


@dataclass(frozen=True)
class RankingGroups:
    """Which group (分组) each unit belongs to, and which groups get 十佳/较差; the rest are appendices.

    ``of_unit`` maps a unit name (or alias) to its group; a unit not in it is in ``default``."""

    of_unit: Mapping[str, str] = field(default_factory=dict)
    default: str = DEFAULT_GROUP
    ranked: tuple[str, ...] = (DEFAULT_GROUP,)

    def group(self, unit: str) -> str:
        return self.of_unit.get(unit) or self.default


@dataclass(frozen=True)
class GroupRanking:
    """One group's units, best first (``rank`` 1 = best within the group); ``ranked`` groups name 十佳/较差."""

    name: str
    ranked: bool
    units: tuple[UnitScore, ...]
    best: tuple[UnitScore, ...]  # 十佳 (ranked groups only)
    worst: tuple[UnitScore, ...]  # 较差, worst first (ranked groups only)
    summoned: tuple[UnitScore, ...]  # 约谈
