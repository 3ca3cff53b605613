"""The monthly ranking (评优评差) on a synthetic April 2024 whose every figure is computed by hand below."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from daemon.config import ScoringConfig
from daemon.core.cases import Satisfaction, Source
from daemon.core.timeutil import LOCAL_TZ
from daemon.reports.ranking import MonthlyRanking, RankedCase, RankingGroups, month_bounds, monthly_ranking

S, B, D = Satisfaction.SATISFIED, Satisfaction.BASICALLY_SATISFIED, Satisfaction.DISSATISFIED
AFTER_APRIL = datetime(2024, 5, 10, 9, 0, tzinfo=LOCAL_TZ)
SMALL = ScoringConfig(top_n=3, bottom_n=2, summon_provincial_min=1, summon_bottom_n=3)


def at(day: int, hour: int = 10, month: int = 4) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=LOCAL_TZ)


def case(
    number: str,
    unit: str,
    received: datetime,
    due: datetime,
    done: datetime | None = None,  # fed back and closed at the same instant
    *,
    closed: datetime | None = None,
    satisfaction: Satisfaction | None = None,
    stars: int | None = None,
    difficult: bool = False,
    district: str | None = None,
    domain: str | None = None,
    source: Source = Source.HOTLINE,
    summary: str | None = None,
) -> RankedCase:
    return RankedCase(
        number=number,
        unit=unit,
        district=district,
        domain=domain,
        source=source,
        received_at=received,
        fed_back_at=done,
        closed_at=closed or done,
        due_at=due,
        satisfaction=satisfaction,
        stars=stars,
        difficult=difficult,
        summary=summary,
    )


def april_cases() -> list[RankedCase]:
    a = {"district": "兴隆台区", "domain": "城建交通类"}
    b = {"district": "双台子区", "domain": "社会事业类"}
    return [
        # 甲街道: 4 cases on time, all satisfied, stars 5 5 5 4, one difficult.
        # rates 1/1/1; bonus 3×0.02 + 1×0.02 + 3×0.1 (5 stars are also 高星件) = 0.38 → 10.38
        case(  # 00:00 local on Apr 1, written in UTC: inside the month
            "A1",
            "甲街道",
            datetime(2024, 3, 31, 16, 0, tzinfo=UTC),
            at(6, 0),
            at(3),
            satisfaction=S,
            stars=5,
            difficult=True,
            source=Source.PROVINCE,
            **a,
        ),
        case("A2", "甲街道", at(5), at(10, 0), at(8), satisfaction=S, stars=5, **a),
        case("A3", "甲街道", at(10), at(15, 0), at(12), satisfaction=S, stars=5, **a),
        case("A4", "甲街道", at(20), at(25, 0), at(22), satisfaction=S, stars=4, summary="小区路灯不亮", **a),
        case("A0", "甲街道", at(28, month=3), at(2, 0), None, **a),  # March: not this month's
        case("A5", "甲街道", at(1, 0, month=5), at(6, 0, month=5), None, **a),  # May 1 00:00: not April
        # 乙二所: 2 unrated cases on time → 10.00, ahead of the 1-case units at the same score
        case("E1", "乙二所", at(3), at(8, 0), at(4), district="兴隆台区"),
        case("E2", "乙二所", at(4), at(9, 0), at(5), district="兴隆台区"),
        # 乙局: satisfaction 1/2, on time 1/2 (B2 fed back exactly at due_at is late), completion 1;
        # bonus 0.02 + 0.1 = 0.12; penalty 0.1 (2 stars) + 0.2 (overdue) = 0.3
        # 1.5 + 2 + 3 + 0.12 − 0.3 = 6.32
        case("B1", "乙局", at(3), at(8, 0), at(7), satisfaction=S, stars=5, **b),
        case(
            "B2",
            "乙局",
            at(9),
            at(14, 0),
            at(14, 0),
            closed=at(15),
            satisfaction=D,
            stars=2,
            summary="噪音|扰民",
            **b,
        ),
        # 丙办: 2 basically satisfied (count as satisfied), 1 still open past due at month end, which the
        # default on-time basis (fed_back_or_overdue) counts as late: 3 + 4 × 2/3 + 3 × 2/3 − 0.2 = 7.47
        case("C1", "丙办", at(2), at(7, 0), at(5), satisfaction=B, source=Source.PROVINCE, **b),
        case("C2", "丙办", at(6), at(11, 0), at(9), closed=at(10), satisfaction=B, **b),
        case("C3", "丙办", at(15), at(20, 0), None, **b),
        # 丁所 and 戊所: one unrated case each → 10.00; the tie is broken by name
        case("F1", "戊所", at(7), at(12, 0), at(8)),
        case("G1", "丁所", at(7), at(12, 0), at(8)),
        # 己所: received Apr 29, due May 3, closed May 2: open but not overdue at month end. Nothing rated and
        # nothing due: both rates are — and kept out; completion 0 is all there is → 0.00
        case("H1", "己所", at(29), at(3, 0, month=5), at(2, month=5)),
    ]


@pytest.fixture
def april() -> MonthlyRanking:
    return monthly_ranking(april_cases(), 2024, 4, AFTER_APRIL, SMALL)


def test_scores_and_order(april: MonthlyRanking) -> None:
    assert [(u.rank, u.unit, u.score) for u in april.units] == [
        (1, "甲街道", Decimal("10.38")),
        (2, "乙二所", Decimal("10.00")),  # more cases wins the tie
        (3, "丁所", Decimal("10.00")),  # same score and volume: by name (丁 U+4E01 < 戊 U+620A)
        (4, "戊所", Decimal("10.00")),
        (5, "丙办", Decimal("7.47")),
        (6, "乙局", Decimal("6.32")),
        (7, "己所", Decimal("0.00")),
    ]
    assert april.final
    assert april.as_of == datetime(2024, 5, 1, tzinfo=LOCAL_TZ)
    assert april.total_dispatched == 14
    assert april.total_closed == 12  # 己所's case closed in May


def test_counts_behind_the_score(april: MonthlyRanking) -> None:
    units = {u.unit: u for u in april.units}
    jia = units["甲街道"]
    assert (jia.dispatched, jia.closed, jia.five_star, jia.high_star, jia.difficult, jia.provincial) == (
        4,
        4,
        3,
        3,
        1,
        1,
    )
    assert jia.bonus == Decimal("0.38")
    yi = units["乙局"]
    assert (yi.rated, yi.satisfied, yi.fed_back, yi.on_time, yi.below_four_star, yi.overdue) == (
        2,
        1,
        2,
        1,
        1,
        1,
    )
    assert (yi.satisfaction_rate, yi.on_time_rate, yi.penalty) == (
        Decimal("0.5"),
        Decimal("0.5"),
        Decimal("0.3"),
    )
    bing = units["丙办"]
    assert (bing.closed, bing.overdue, bing.satisfied, bing.rated) == (2, 1, 2, 2)
    ji = units["己所"]
    assert (ji.closed, ji.overdue, ji.completion_rate) == (0, 0, Decimal(0))  # closed after month end
    assert (ji.satisfaction_rate, ji.on_time_rate) == (None, None)  # no denominator: no rate
    assert units["丁所"].satisfaction_rate is None  # unrated: no rate, not 100%


def test_best_worst_and_summoned(april: MonthlyRanking) -> None:
    assert [u.unit for u in april.best] == ["甲街道", "乙二所", "丁所"]
    assert [u.unit for u in april.worst] == ["己所", "乙局"]  # worst first
    # 较差, plus 丙办: a provincial case (>= 1 here) while in the bottom 3
    assert [u.unit for u in april.summoned] == ["丙办", "乙局", "己所"]


def test_best_and_worst_never_overlap() -> None:
    ranking = monthly_ranking(april_cases(), 2024, 4, AFTER_APRIL, ScoringConfig(top_n=5, bottom_n=5))
    assert [u.unit for u in ranking.best] == ["甲街道", "乙二所", "丁所", "戊所", "丙办"]
    assert [u.unit for u in ranking.worst] == ["己所", "乙局"]
    assert monthly_ranking(april_cases(), 2024, 4, AFTER_APRIL).worst == ()  # 7 units, top 10


def test_configured_definitions_change_the_score() -> None:
    def bing(config: ScoringConfig) -> Decimal:
        ranking = monthly_ranking(april_cases(), 2024, 4, AFTER_APRIL, config)
        return next(u.score for u in ranking.units if u.unit == "丙办")

    # on time 2 / (2 fed back + 1 open overdue): 3 + 4 × 2/3 + 2 − 0.2 = 7.4667
    assert bing(ScoringConfig()) == Decimal("7.47")
    assert bing(ScoringConfig(basically_satisfied_counts=False)) == Decimal("4.47")
    # fed_back only: the open overdue case is left out of the rate (only its 0.2 penalty counts)
    assert bing(ScoringConfig(on_time_basis="fed_back")) == Decimal("8.80")
    without_high_star = monthly_ranking(
        april_cases(), 2024, 4, AFTER_APRIL, ScoringConfig(high_star_min=None)
    )
    assert without_high_star.units[0].score == Decimal("10.08")


def test_districts_and_domains(april: MonthlyRanking) -> None:
    districts = {g.name: g for g in april.districts}
    assert [g.name for g in april.districts] == ["兴隆台区", "双台子区", "未标注属地"]
    assert (districts["兴隆台区"].dispatched, districts["双台子区"].dispatched) == (6, 5)
    assert round(districts["兴隆台区"].share, 4) == Decimal("0.4286")
    assert districts["双台子区"].completion_rate == Decimal("0.8")  # 4 of 5
    assert districts["双台子区"].satisfaction_rate == Decimal("0.75")  # 3 of 4 rated
    assert [(g.name, g.dispatched) for g in april.domains] == [
        ("其他", 5),
        ("社会事业类", 5),
        ("城建交通类", 4),
    ]


def test_review_lists(april: MonthlyRanking) -> None:
    assert [c.number for c in april.low_star_cases] == ["B2", "A4"]  # 4 stars included, as bulletin 000 lists
    assert [c.number for c in april.dissatisfied_cases] == ["B2"]
    strict = monthly_ranking(april_cases(), 2024, 4, AFTER_APRIL, ScoringConfig(low_star_max=3))
    assert [c.number for c in strict.low_star_cases] == ["B2"]


def forecast_cases() -> list[RankedCase]:
    return [
        # X: 2 five-star cases: now 10.24; bonus 0.24 doubled at half the month → 10.48
        case("X1", "X局", at(1), at(6, 0), at(3), satisfaction=S, stars=5),
        case("X2", "X局", at(1), at(6, 0), at(3), satisfaction=S, stars=5),
        # Y: one overdue and open, one not yet due: nothing rated (kept out), on time 0 / 1 overdue,
        # completion 0 → 0 − 0.2 = −0.20; projected completion 0 / 1 due, penalty 0.4 → −0.40
        case("Y1", "Y局", at(2), at(8, 0)),
        case("Y2", "Y局", at(14), at(20, 0)),
        # Z: one case not yet due: only completion 0 exists → 0.00; projected completion counts due cases only
        # (none: 100%) → 10.00
        case("Z1", "Z局", at(10), at(20, 0)),
    ]


def test_mid_month_forecast() -> None:
    now = datetime(2024, 4, 16, 0, 0, tzinfo=LOCAL_TZ)  # 15 of 30 days
    ranking = monthly_ranking(forecast_cases(), 2024, 4, now, ScoringConfig(top_n=1, bottom_n=1))
    assert not ranking.final
    assert ranking.as_of == now
    assert [(u.unit, u.score) for u in ranking.units] == [
        ("X局", Decimal("10.24")),
        ("Z局", Decimal("0.00")),
        ("Y局", Decimal("-0.20")),
    ]
    forecast = ranking.forecast
    assert forecast is not None
    assert forecast.elapsed_fraction == Decimal("0.5")
    assert [(f.unit, f.score, f.projected_score) for f in forecast.units] == [
        ("X局", Decimal("10.24"), Decimal("10.48")),
        ("Z局", Decimal("0.00"), Decimal("10.00")),
        ("Y局", Decimal("-0.20"), Decimal("-0.40")),
    ]
    assert [f.unit for f in forecast.heading_for_worst] == ["Y局"]


def test_no_forecast_outside_the_month(april: MonthlyRanking) -> None:
    assert april.forecast is None
    before = monthly_ranking(forecast_cases(), 2024, 4, datetime(2024, 3, 20, tzinfo=LOCAL_TZ))
    assert before.forecast is None
    assert before.units == ()  # nothing received yet as of now


def test_time_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="naive"):
        monthly_ranking([], 2024, 4, datetime(2024, 5, 1))  # naive on purpose
    with pytest.raises(ValueError, match="1-12"):
        month_bounds(2024, 13)
    assert month_bounds(2024, 12)[1] == datetime(2025, 1, 1, tzinfo=LOCAL_TZ)


# --- groups (分组), rates without a denominator, the default timeliness rule ------------------------------


def grouped_cases() -> list[RankedCase]:
    return [
        *april_cases(),
        # a city bureau with one perfect case: 10.20, above everyone, but ranked in its own group
        case("M1", "市公安局", at(3), at(8, 0), at(4), satisfaction=S, stars=5),
        case("M2", "市教育局", at(3), at(8, 0), at(10, 0), satisfaction=S),  # fed back two days late
    ]


GROUPS = RankingGroups(of_unit={"市公安局": "市直联网单位", "市教育局": "市直联网单位"}, default="县区基层单位",
                       ranked=("县区基层单位",))


def test_groups_are_ranked_apart() -> None:
    ranking = monthly_ranking(grouped_cases(), 2024, 4, AFTER_APRIL, SMALL, groups=GROUPS)
    assert [(g.name, g.ranked) for g in ranking.groups] == [("县区基层单位", True), ("市直联网单位", False)]
    basic, city = ranking.groups
    assert [u.unit for u in basic.best] == ["甲街道", "乙二所", "丁所"]  # 市公安局 (10.12) is not among them
    assert [u.unit for u in basic.worst] == ["己所", "乙局"]
    assert [(u.rank, u.unit) for u in city.units] == [(1, "市公安局"), (2, "市教育局")]  # ranks within the group
    assert city.best == () and city.worst == ()  # an appendix names no 十佳/较差
    assert "市公安局" not in {u.unit for u in ranking.best}
    # without groups, the city bureau with one case is among the 十佳: what the bulletins avoid
    assert "市公安局" in {u.unit for u in monthly_ranking(grouped_cases(), 2024, 4, AFTER_APRIL, SMALL).best}


def test_unknown_units_fall_in_the_default_group_and_several_groups_can_be_ranked() -> None:
    groups = RankingGroups(of_unit={"市公安局": "市直联网单位"}, default="县区基层单位",
                           ranked=("市直联网单位", "县区基层单位"))
    ranking = monthly_ranking(grouped_cases(), 2024, 4, AFTER_APRIL, SMALL, groups=groups)
    assert [g.name for g in ranking.groups] == ["市直联网单位", "县区基层单位"]  # the configured order
    assert "市教育局" in {u.unit for u in ranking.groups[1].units}
    assert [u.unit for u in ranking.groups[0].best] == ["市公安局"]


def test_a_rate_without_a_denominator_is_none_and_kept_out_of_the_score() -> None:
    ranking = monthly_ranking(april_cases(), 2024, 4, AFTER_APRIL, SMALL)
    units = {u.unit: u for u in ranking.units}
    assert units["乙二所"].satisfaction_rate is None
    # on time 1, completion 1 scaled to the full 10 points: neither 100% nor 0% is assumed for satisfaction
    assert units["乙二所"].score == Decimal("10.00")
    with_old_reading = monthly_ranking(april_cases(), 2024, 4, AFTER_APRIL,
                                       ScoringConfig(unrated_satisfaction_rate=Decimal(1)))
    # satisfaction taken as 100% (3 points of 6 present), on time still kept out: (3 + 0) / 6 × 10
    assert next(u for u in with_old_reading.units if u.unit == "己所").score == Decimal("5.00")


def test_sitting_on_a_late_case_scores_below_finishing_it_late() -> None:
    """Issue 16: with the old default (fed_back) a unit that never fed back its overdue case scored 6.80 and
    one that finished an hour late 5.80. The default now counts the open overdue case as not on time."""
    due = at(10, 0)
    cases = [
        case("K1", "拖延所", at(3), due, None),
        case("K2", "迟办所", at(3), due, at(10, 1)),
    ]
    ranking = monthly_ranking(cases, 2024, 4, AFTER_APRIL)
    assert [u.unit for u in ranking.units] == ["迟办所", "拖延所"]
    sitting = ranking.units[1]
    assert (sitting.on_time, sitting.on_time_rate, sitting.overdue) == (0, Decimal(0), 1)
    assert [u.score for u in ranking.units] == [Decimal("4.09"), Decimal("-0.20")]  # (3 / 7) × 10 − 0.2; 0 − 0.2
    fed_back_only = monthly_ranking(cases, 2024, 4, AFTER_APRIL, ScoringConfig(on_time_basis="fed_back"))
    assert next(u for u in fed_back_only.units if u.unit == "拖延所").on_time_rate is None  # nothing fed back


def test_the_ranking_keeps_no_case_it_does_not_list() -> None:
    """A month of a million cases is read once from a cursor: a case the ranking does not list (低星件,
    不满意件) is let go as soon as it is counted, so memory does not grow with the month (issue 15)."""
    import weakref

    seen: list[weakref.ref[RankedCase]] = []
    alive_while_reading: list[int] = []

    def stream() -> Iterator[RankedCase]:
        for i in range(2_000):
            unit = f"单位{i % 7}"
            item = case(f"N{i}", unit, at(1 + i % 28), at(2 + i % 28), at(1 + i % 28, 12),
                        stars=5 if i % 3 else None, satisfaction=Satisfaction.SATISFIED)
            seen.append(weakref.ref(item))
            yield item
            alive_while_reading.append(sum(r() is not None for r in seen[-200:]))

    streamed = monthly_ranking(stream(), 2024, 4, AFTER_APRIL, SMALL)
    assert max(alive_while_reading) <= 2  # the case just yielded, and the one the loop still names
    assert streamed.total_dispatched == 2_000 and sum(u.dispatched for u in streamed.units) == 2_000
