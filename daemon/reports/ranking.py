"""The monthly ranking of handling units (评优评差), computed from per-case data. Pure: no database, no clock.

The population is the cases dispatched (交办) to a unit during the month, in Asia/Shanghai. Each case is
judged as of ``as_of = min(now, month end)``, so a report for a closed month is the same whenever it is
run, and a report inside the month is a snapshot with a forecast. Per unit (see :class:`UnitScore`):

- 交办总量: cases received in the month; 办结总量: those closed (``closed_at``) by ``as_of``.
- 办结率 = closed / dispatched (the bulletin's note).
- 满意率 = satisfied / rated (满意量 / 总评星量); a case is rated when it has a satisfaction result, and
  基本满意 counts as satisfied unless ``basically_satisfied_counts`` is false. No rated case: no rate
  (``None``, shown ``—``), unless ``unrated_satisfaction_rate`` is configured.
- 及时办结率: cases fed back before ``due_at`` / (cases fed back + open cases already overdue) with the
  default ``on_time_basis: fed_back_or_overdue``; ``fed_back`` leaves the open overdue ones out. An empty
  denominator: no rate (``None``). A case's feedback instant is ``fed_back_at``, else ``closed_at``.
- A rate without a denominator is kept out of the score: the weights of the rates that exist are scaled
  up to the full weight (缺项按比例折算, :func:`daemon.reports.scoring.exact_score`).
- 超期件: fed back at or after ``due_at`` (the first overdue instant), or still not fed back at ``as_of``
  with ``due_at`` already passed.
- 加分 / 减分 from the counts of five-star, difficult (疑难件), high-star (高星件,
  stars >= ``high_star_min``), below-four-star (stars < ``penalty_stars_below``) and overdue cases.

Order: by the unrounded score (bulletin 003's 较差 table ranks 9.0899 below 9.0926 though both print 9.09),
then by more cases dispatched (its 十佳 table puts 19 cases ahead of 4 at an exact 10.12), then by name,
so ties are stable. Units are ranked within their group (分组: 县区基层, 市直 …, see
:class:`RankingGroups`), as bulletin 003 ranks 76 县区基层 units and lists 市直联网单位 in an appendix.
In a ranked group 十佳 are the first ``top_n``; 较差 the last ``bottom_n`` that are not also 十佳, listed
worst first (名次 1 = worst, as the bulletin does); 约谈: 较差, or ``summon_provincial_min``+ provincial
cases while in the group's bottom ``summon_bottom_n``. Cases a unit returned (退件) are not its cases: the
caller leaves them out. A case re-dispatched to another unit under the same 工单编号 is one case per
assignment: the unit holding it is scored on it, an earlier unit only when it did not return it in time
(:func:`daemon.core.assignment.scored_on_unit`; the caller passes each such assignment as that unit's case).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from daemon.core.cases import Satisfaction, Source
from daemon.core.timeutil import LOCAL_TZ
from daemon.reports.ranking_types import (
    DEFAULT_GROUP,
    Forecast,
    GroupRanking,
    GroupShare,
    RankedCase,
    RankingGroups,
    UnitForecast,
    UnitScore,
)
from daemon.reports.scoring import ScoringConfig, bonus_for, exact_score, penalty_for, round_cents

__all__ = [
    "DEFAULT_GROUP", "Forecast", "GroupRanking", "GroupShare", "MonthlyRanking", "RankedCase", "RankingGroups",
    "UnitForecast", "UnitScore", "month_bounds", "monthly_ranking",
]

UNKNOWN_DISTRICT = "未标注属地"
OTHER_DOMAIN = "其他"


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
    groups: tuple[GroupRanking, ...]  # ranked groups first (in the configured order), then the appendices
    districts: tuple[GroupShare, ...]
    domains: tuple[GroupShare, ...]
    low_star_cases: tuple[RankedCase, ...]  # 低星件 (stars <= low_star_max), for 回头看
    dissatisfied_cases: tuple[RankedCase, ...]  # 不满意件
    forecast: Forecast | None

    @property
    def units(self) -> tuple[UnitScore, ...]:
        """Every unit of every group, group by group."""
        return tuple(u for g in self.groups for u in g.units)

    @property
    def best(self) -> tuple[UnitScore, ...]:
        return tuple(u for g in self.groups for u in g.best)

    @property
    def worst(self) -> tuple[UnitScore, ...]:
        return tuple(u for g in self.groups for u in g.worst)

    @property
    def summoned(self) -> tuple[UnitScore, ...]:
        return tuple(u for g in self.groups for u in g.summoned)


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """[start, end) of the month: 00:00 Asia/Shanghai on the 1st and on the 1st of the next month."""
    if not 1 <= month <= 12:
        raise ValueError(f"month {month} is not 1-12")
    start = datetime(year, month, 1, tzinfo=LOCAL_TZ)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=LOCAL_TZ)
    return start, end


def _ratio(part: int, whole: int, empty: Decimal | None) -> Decimal | None:
    return Decimal(part) / Decimal(whole) if whole else empty


def _feedback_at(case: RankedCase) -> datetime | None:
    return case.fed_back_at or case.closed_at


_ON_TIME, _LATE, _OPEN_OVERDUE, _OPEN = range(4)
#: what one case adds to a tally: closed by as_of; fed back on time, fed back late (超期), open and overdue, or
#: open and not yet due; closed or due (the forecast's completion denominator); then what it was rated, where it
#: came from, 疑难件, its stars. Many cases share one, so the month is tallied per (unit, outcome), not per case.
_Outcome = tuple[bool, int, bool, Satisfaction | None, Source, bool, int | None]


def _outcome(case: RankedCase, as_of: datetime) -> _Outcome:
    """How ``case`` stands at ``as_of``: the one place a case is judged on time, late or overdue."""
    closed = case.closed_at is not None and case.closed_at <= as_of
    feedback = _feedback_at(case)
    due_passed = case.due_at <= as_of
    if feedback is not None and feedback <= as_of:
        state = _LATE if feedback >= case.due_at else _ON_TIME
    else:
        state = _OPEN_OVERDUE if due_passed else _OPEN
    return (closed, state, closed or due_passed, case.satisfaction, case.source, case.difficult, case.stars)


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

    def add(self, outcome: _Outcome, config: ScoringConfig, n: int = 1) -> None:
        """Add ``n`` cases of one :func:`_outcome`."""
        closed, state, due_or_closed, satisfaction, source, difficult, stars = outcome
        self.dispatched += n
        self.closed += closed * n
        if state in {_ON_TIME, _LATE}:
            self.fed_back += n
            self.on_time += (state == _ON_TIME) * n
            self.overdue += (state == _LATE) * n
        elif state == _OPEN_OVERDUE:
            self.overdue += n
            self.open_overdue += n
        self.due_or_closed += due_or_closed * n
        if satisfaction is not None:
            self.rated += n
            self.satisfied += (satisfaction is Satisfaction.SATISFIED or (
                satisfaction is Satisfaction.BASICALLY_SATISFIED and config.basically_satisfied_counts
            )) * n
        self.provincial += (source is Source.PROVINCE) * n
        self.difficult += difficult * n
        if stars is not None:
            self.five_star += (stars == 5) * n
            self.high_star += (config.high_star_min is not None and stars >= config.high_star_min) * n
            self.below_four_star += (stars < config.penalty_stars_below) * n

    def rates(self, config: ScoringConfig) -> tuple[Decimal | None, Decimal | None, Decimal]:
        """(satisfaction, on-time, completion) as fractions; None where there is no denominator."""
        on_time_whole = self.fed_back + (self.open_overdue if config.on_time_basis != "fed_back" else 0)
        return (
            _ratio(self.satisfied, self.rated, config.unrated_satisfaction_rate),
            _ratio(self.on_time, on_time_whole, None),
            Decimal(self.closed) / Decimal(self.dispatched),  # a unit in the ranking has a case
        )


def _tallied(counts: Counter[tuple[str, _Outcome]], cfg: ScoringConfig) -> dict[str, _Tally]:
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for (name, outcome), n in counts.items():
        tallies[name].add(outcome, cfg, n)
    return tallies


def _rank_key(exact: Decimal, dispatched: int, unit: str) -> tuple[Decimal, int, str]:
    return (-exact, -dispatched, unit)


def monthly_ranking(
    cases: Iterable[RankedCase],
    year: int,
    month: int,
    now: datetime,
    config: ScoringConfig | None = None,
    *,
    groups: RankingGroups | None = None,
) -> MonthlyRanking:
    """Rank the units on the cases dispatched in ``year``-``month`` (Asia/Shanghai), judged as of
    ``min(now, month end)``; ``now`` is an aware datetime. Cases received outside the month, or after
    ``now``, are ignored. Without ``groups`` every unit is in one ranked group."""
    cfg = config or ScoringConfig()
    grouping = groups or RankingGroups()
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} is naive: pass an aware datetime")
    start, end = month_bounds(year, month)
    as_of = min(now, end).astimezone(LOCAL_TZ)
    # one pass over the cases, whatever their number (a streamed cursor): only the tallies and the few cases
    # the report lists (低星件, 不满意件) are kept
    # one pass over the cases, whatever their number (a streamed cursor): only the counts of each (unit,
    # outcome), (district, outcome) and (domain, outcome), and the few cases the report lists (低星件, 不满意件)
    by_unit: Counter[tuple[str, _Outcome]] = Counter()
    by_district: Counter[tuple[str, _Outcome]] = Counter()
    by_domain: Counter[tuple[str, _Outcome]] = Counter()
    low_star: list[RankedCase] = []
    dissatisfied: list[RankedCase] = []
    total = 0
    low_star_max, dissatisfied_result = cfg.low_star_max, Satisfaction.DISSATISFIED
    for case in cases:
        # a case received after as_of does not exist yet at that instant (a replayed or backdated snapshot)
        if not (start <= case.received_at < end and case.received_at <= as_of):
            continue
        total += 1
        outcome = _outcome(case, as_of)
        by_unit[case.unit, outcome] += 1
        by_district[case.district or UNKNOWN_DISTRICT, outcome] += 1
        by_domain[case.domain or OTHER_DOMAIN, outcome] += 1
        if case.stars is not None and case.stars <= low_star_max:
            low_star.append(case)
        if case.satisfaction is dissatisfied_result:
            dissatisfied.append(case)
    tallies, districts, domains = (_tallied(counts, cfg) for counts in (by_unit, by_district, by_domain))

    group_rankings = _rank_groups(tallies, grouping, cfg)
    forecast = None
    if start < now < end:
        elapsed = Decimal(int((now - start).total_seconds())) / Decimal(int((end - start).total_seconds()))
        ranked_units = tuple(u for g in group_rankings if g.ranked for u in g.units)
        forecast = _forecast(tallies, ranked_units, elapsed, cfg)
    return MonthlyRanking(
        year=year,
        month=month,
        as_of=as_of,
        final=now >= end,
        config=cfg,
        total_dispatched=total,
        total_closed=sum(t.closed for t in tallies.values()),
        total_rated=sum(t.rated for t in tallies.values()),
        total_satisfied=sum(t.satisfied for t in tallies.values()),
        groups=group_rankings,
        districts=_shares(districts, total, cfg),
        domains=_shares(domains, total, cfg),
        low_star_cases=_in_order(low_star),
        dissatisfied_cases=_in_order(dissatisfied),
        forecast=forecast,
    )


def _rank_groups(
    tallies: dict[str, _Tally], grouping: RankingGroups, cfg: ScoringConfig
) -> tuple[GroupRanking, ...]:
    members: dict[str, dict[str, _Tally]] = defaultdict(dict)
    for unit, tally in tallies.items():
        members[grouping.group(unit)][unit] = tally
    ranked = [g for g in grouping.ranked if g in members]
    order = ranked + sorted(g for g in members if g not in grouping.ranked)
    out = []
    for name in order:
        units = _score_units(members[name], cfg)
        is_ranked = name in grouping.ranked
        best = units[: cfg.top_n] if is_ranked else ()
        worst = tuple(reversed(units[max(cfg.top_n, len(units) - cfg.bottom_n) :])) if is_ranked else ()
        bottom = {u.unit for u in units[max(0, len(units) - cfg.summon_bottom_n) :]}
        summoned = tuple(
            u for u in units if u in worst or (u.unit in bottom and u.provincial >= cfg.summon_provincial_min)
        )
        out.append(GroupRanking(name, is_ranked, units, best, worst, summoned))
    return tuple(out)


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
        completion = Decimal(t.closed) / t.due_or_closed if t.due_or_closed else Decimal(1)
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


def _in_order(listed: list[RankedCase]) -> tuple[RankedCase, ...]:
    """Listed cases in the order of receipt (then number; a stable sort keeps the input's order of ties)."""
    return tuple(sorted(listed, key=lambda c: (c.received_at, c.number)))


def _shares(tallies: dict[str, _Tally], total: int, cfg: ScoringConfig) -> tuple[GroupShare, ...]:
    groups = []
    for name, t in tallies.items():
        satisfaction, _, completion = t.rates(cfg)
        share = _ratio(t.dispatched, total, Decimal(0))
        assert share is not None
        groups.append(
            GroupShare(
                name=name,
                dispatched=t.dispatched,
                share=share,
                closed=t.closed,
                completion_rate=completion,
                rated=t.rated,
                satisfied=t.satisfied,
                satisfaction_rate=satisfaction,
            )
        )
    groups.sort(key=lambda g: (-g.dispatched, g.name))
    return tuple(groups)
