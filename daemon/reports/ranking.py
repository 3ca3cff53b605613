"""The monthly ranking of handling units (评优评差), computed from per-case data. Pure: no database, no clock.

The population is the cases dispatched (交办) to a unit during the month, in Asia/Shanghai. Each case is
judged as of ``as_of = min(now, month end)``, so a report for a closed month is the same whenever it is
run, and a report inside the month is a snapshot with a forecast. Per unit (see :class:`UnitScore`):

- 交办总量: cases received in the month; 办结总量: those closed (``closed_at``) by ``as_of``.
- 办结率 = closed / dispatched (the bulletin's note).
- 满意率 = satisfied / rated (满意量 / 总评星量); a case is rated when it has a satisfaction result, and
  基本满意 counts as satisfied unless ``basically_satisfied_counts`` is false. No rated case: the
  configured ``unrated_satisfaction_rate`` (100%).
- 及时办结率: cases fed back before ``due_at`` / cases fed back (``on_time_basis``); nothing fed back: 100%.
  A case's feedback instant is ``fed_back_at``, else ``closed_at``.
- 超期件: fed back at or after ``due_at`` (the first overdue instant), or still not fed back at ``as_of``
  with ``due_at`` already passed.
- 加分 / 减分 from the counts of five-star, difficult (疑难件), high-star (高星件,
  stars >= ``high_star_min``), below-four-star (stars < ``penalty_stars_below``) and overdue cases.

Order: by the unrounded score (bulletin 003's 较差 table ranks 9.0899 below 9.0926 though both print 9.09),
then by more cases dispatched (its 十佳 table puts 19 cases ahead of 4 at an exact 10.12), then by name,
so ties are stable. 十佳 are the first ``top_n``; 较差 the last ``bottom_n`` that are not also 十佳, listed
worst first (名次 1 = worst, as the bulletin does). Cases a unit returned (退件) are not its cases: the
caller leaves them out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from daemon.core.cases import Satisfaction, Source
from daemon.core.timeutil import LOCAL_TZ
from daemon.reports.scoring import ScoringConfig, bonus_for, exact_score, penalty_for, round_cents

UNKNOWN_DISTRICT = "未标注属地"
OTHER_DOMAIN = "其他"


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
    satisfaction_rate: Decimal
    on_time_rate: Decimal
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
    satisfaction_rate: Decimal


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
class MonthlyRanking:
    year: int
    month: int
    as_of: datetime  # min(now, month end), Asia/Shanghai
    final: bool  # the month is over
    config: ScoringConfig
    total_dispatched: int
    total_closed: int
    total_rated: int
    total_satisfied: int
    units: tuple[UnitScore, ...]  # best first
    best: tuple[UnitScore, ...]  # 十佳
    worst: tuple[UnitScore, ...]  # 较差, worst first
    summoned: tuple[UnitScore, ...]  # 约谈: 较差, or provincial cases >= 10 while in the bottom 10
    districts: tuple[GroupShare, ...]
    domains: tuple[GroupShare, ...]
    low_star_cases: tuple[RankedCase, ...]  # 低星件 (stars <= low_star_max), for 回头看
    dissatisfied_cases: tuple[RankedCase, ...]  # 不满意件
    forecast: Forecast | None


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """[start, end) of the month: 00:00 Asia/Shanghai on the 1st and on the 1st of the next month."""
    if not 1 <= month <= 12:
        raise ValueError(f"month {month} is not 1-12")
    start = datetime(year, month, 1, tzinfo=LOCAL_TZ)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=LOCAL_TZ)
    return start, end


def _ratio(part: int, whole: int, empty: Decimal) -> Decimal:
    return Decimal(part) / Decimal(whole) if whole else empty


def _feedback_at(case: RankedCase) -> datetime | None:
    return case.fed_back_at or case.closed_at


@dataclass
class _Tally:
    dispatched: int = 0
    closed: int = 0
    fed_back: int = 0
    on_time: int = 0
    open_overdue: int = 0
    rated: int = 0
    satisfied: int = 0
    provincial: int = 0
    five_star: int = 0
    difficult: int = 0
    high_star: int = 0
    below_four_star: int = 0
    overdue: int = 0
    due_or_closed: int = 0  # the forecast's completion denominator

    def add(self, case: RankedCase, as_of: datetime, config: ScoringConfig) -> None:
        self.dispatched += 1
        closed = case.closed_at is not None and case.closed_at <= as_of
        self.closed += closed
        feedback = _feedback_at(case)
        if feedback is not None and feedback <= as_of:
            self.fed_back += 1
            late = feedback >= case.due_at
            self.on_time += not late
            self.overdue += late
        elif case.due_at <= as_of:
            self.overdue += 1
            self.open_overdue += 1
        self.due_or_closed += closed or case.due_at <= as_of
        if case.satisfaction is not None:
            self.rated += 1
            self.satisfied += case.satisfaction is Satisfaction.SATISFIED or (
                case.satisfaction is Satisfaction.BASICALLY_SATISFIED and config.basically_satisfied_counts
            )
        self.provincial += case.source is Source.PROVINCE
        self.difficult += case.difficult
        if case.stars is not None:
            self.five_star += case.stars == 5
            self.high_star += config.high_star_min is not None and case.stars >= config.high_star_min
            self.below_four_star += case.stars < config.penalty_stars_below

    def rates(self, config: ScoringConfig) -> tuple[Decimal, Decimal, Decimal]:
        """(satisfaction, on-time, completion) as fractions."""
        one = Decimal(1)
        on_time_whole = self.fed_back + (self.open_overdue if config.on_time_basis != "fed_back" else 0)
        return (
            _ratio(self.satisfied, self.rated, config.unrated_satisfaction_rate),
            _ratio(self.on_time, on_time_whole, one),
            _ratio(self.closed, self.dispatched, one),
        )


def _rank_key(exact: Decimal, dispatched: int, unit: str) -> tuple[Decimal, int, str]:
    return (-exact, -dispatched, unit)


def monthly_ranking(
    cases: Iterable[RankedCase],
    year: int,
    month: int,
    now: datetime,
    config: ScoringConfig | None = None,
) -> MonthlyRanking:
    """Rank the units on the cases dispatched in ``year``-``month`` (Asia/Shanghai), judged as of
    ``min(now, month end)``; ``now`` is an aware datetime. Cases received outside the month, or after
    ``now``, are ignored."""
    cfg = config or ScoringConfig()
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} is naive: pass an aware datetime")
    start, end = month_bounds(year, month)
    as_of = min(now, end).astimezone(LOCAL_TZ)
    month_cases = sorted(
        # a case received after as_of does not exist yet at that instant (a replayed or backdated snapshot)
        (c for c in cases if start <= c.received_at < end and c.received_at <= as_of),
        key=lambda c: (c.received_at, c.number),
    )
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for case in month_cases:
        tallies[case.unit].add(case, as_of, cfg)

    units = _score_units(tallies, cfg)
    best = units[: cfg.top_n]
    worst = tuple(reversed(units[max(cfg.top_n, len(units) - cfg.bottom_n) :]))
    bottom = {u.unit for u in units[max(0, len(units) - cfg.summon_bottom_n) :]}
    summoned = tuple(
        u for u in units if u in worst or (u.unit in bottom and u.provincial >= cfg.summon_provincial_min)
    )
    forecast = None
    if start < now < end:
        elapsed = Decimal(int((now - start).total_seconds())) / Decimal(int((end - start).total_seconds()))
        forecast = _forecast(tallies, units, elapsed, cfg)
    return MonthlyRanking(
        year=year,
        month=month,
        as_of=as_of,
        final=now >= end,
        config=cfg,
        total_dispatched=len(month_cases),
        total_closed=sum(t.closed for t in tallies.values()),
        total_rated=sum(t.rated for t in tallies.values()),
        total_satisfied=sum(t.satisfied for t in tallies.values()),
        units=units,
        best=best,
        worst=worst,
        summoned=summoned,
        districts=_groups(month_cases, lambda c: c.district or UNKNOWN_DISTRICT, as_of, cfg),
        domains=_groups(month_cases, lambda c: c.domain or OTHER_DOMAIN, as_of, cfg),
        low_star_cases=tuple(c for c in month_cases if c.stars is not None and c.stars <= cfg.low_star_max),
        dissatisfied_cases=tuple(c for c in month_cases if c.satisfaction is Satisfaction.DISSATISFIED),
        forecast=forecast,
    )


def _score_units(tallies: dict[str, _Tally], cfg: ScoringConfig) -> tuple[UnitScore, ...]:
    scored = []
    for unit, t in tallies.items():
        satisfaction, on_time, completion = t.rates(cfg)
        bonus = bonus_for(t.five_star, t.difficult, t.high_star, cfg)
        penalty = penalty_for(t.below_four_star, t.overdue, cfg)
        exact = exact_score(satisfaction, on_time, completion, bonus, penalty, config=cfg)
        scored.append((unit, t, satisfaction, on_time, completion, bonus, penalty, exact))
    scored.sort(key=lambda item: _rank_key(item[7], item[1].dispatched, item[0]))
    return tuple(
        UnitScore(
            unit=unit,
            rank=rank,
            dispatched=t.dispatched,
            closed=t.closed,
            fed_back=t.fed_back,
            on_time=t.on_time,
            rated=t.rated,
            satisfied=t.satisfied,
            provincial=t.provincial,
            five_star=t.five_star,
            difficult=t.difficult,
            high_star=t.high_star,
            below_four_star=t.below_four_star,
            overdue=t.overdue,
            satisfaction_rate=satisfaction,
            on_time_rate=on_time,
            completion_rate=completion,
            bonus=bonus,
            penalty=penalty,
            score=round_cents(exact),
            exact=exact,
        )
        for rank, (unit, t, satisfaction, on_time, completion, bonus, penalty, exact) in enumerate(
            scored, start=1
        )
    )


def _forecast(
    tallies: dict[str, _Tally], units: tuple[UnitScore, ...], fraction: Decimal, cfg: ScoringConfig
) -> Forecast:
    projected = []
    for current in units:
        t = tallies[current.unit]
        satisfaction, on_time, _ = t.rates(cfg)
        completion = _ratio(t.closed, t.due_or_closed, Decimal(1))
        exact = exact_score(
            satisfaction,
            on_time,
            completion,
            current.bonus / fraction,
            current.penalty / fraction,
            config=cfg,
        )
        projected.append(UnitForecast(current.unit, current.score, round_cents(exact), exact, t.dispatched))
    projected.sort(key=lambda f: _rank_key(f.projected_exact, f.dispatched, f.unit))
    heading = tuple(reversed(projected[max(cfg.top_n, len(projected) - cfg.bottom_n) :]))
    return Forecast(elapsed_fraction=fraction, units=tuple(projected), heading_for_worst=heading)


def _groups(
    cases: list[RankedCase], key: Callable[[RankedCase], str], as_of: datetime, cfg: ScoringConfig
) -> tuple[GroupShare, ...]:
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for case in cases:
        tallies[key(case)].add(case, as_of, cfg)
    total = len(cases)
    groups = []
    for name, t in tallies.items():
        satisfaction, _, completion = t.rates(cfg)
        groups.append(
            GroupShare(
                name=name,
                dispatched=t.dispatched,
                share=_ratio(t.dispatched, total, Decimal(0)),
                closed=t.closed,
                completion_rate=completion,
                rated=t.rated,
                satisfied=t.satisfied,
                satisfaction_rate=satisfaction,
            )
        )
    groups.sort(key=lambda g: (-g.dispatched, g.name))
    return tuple(groups)
