"""How a handling unit (承办单位) is scored each month, from the bulletins' note (评分标准).

    score = 3 × satisfaction rate + 4 × on-time rate + 3 × completion rate + bonus − penalty

Rates are fractions (100% = 1). Bonus: +0.02 per five-star case (五星件), +0.02 per difficult case (疑难件),
+0.1 per high-star case (高星件); penalty: 0.1 per case rated below four stars (四星以下件), 0.2 per overdue
case (超期件). Every weight and amount is configurable through :class:`daemon.config.ScoringConfig`
(``scoring:`` in the app config; re-exported here). All arithmetic is :class:`~decimal.Decimal`; a score
is rounded half up to cents, the way the bulletins print it (9.685 → 9.69).

Reading a score table (CSV or XLSX, as a bulletin's table is typed up) lives in
:mod:`daemon.reports.score_table` (it knows nothing of weights); it is re-exported here.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from daemon.config import ScoringConfig
from daemon.reports.score_table import RowError, ScoreRow, read_score_table

CENT = Decimal("0.01")
ONE = Decimal(1)


def round_cents(value: Decimal) -> Decimal:
    """Half up to cents, as the bulletins print scores (9.685 → 9.69, never banker's rounding)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def exact_score(
    satisfaction_rate: Decimal | None,
    on_time_rate: Decimal | None,
    completion_rate: Decimal | None,
    bonus: Decimal,
    penalty: Decimal,
    *,
    config: ScoringConfig,
) -> Decimal:
    """The unrounded score; ranking sorts on this (bulletin 003 ranks 9.0899 below 9.0926, both 9.09).

    A rate of ``None`` has no denominator (nothing rated, nothing fed back or overdue) and is kept out of
    the score: the weights of the rates that exist are scaled up to the full weight (缺项按比例折算), so the
    rates still count for 10 points and a missing rate neither earns nor costs anything by itself. With
    every rate present this is the bulletin's formula exactly."""
    weighted = [
        (weight, rate)
        for weight, rate in (
            (config.satisfaction_weight, satisfaction_rate),
            (config.on_time_weight, on_time_rate),
            (config.completion_weight, completion_rate),
        )
    ]
    full = sum((w for w, _ in weighted), Decimal(0))
    present = sum((w for w, r in weighted if r is not None), Decimal(0))
    earned = sum((w * r for w, r in weighted if r is not None), Decimal(0))
    rates = earned if present == full else (earned * full / present if present else Decimal(0))
    return rates + bonus - penalty


def score_row(  # noqa: PLR0917 - the positional order mirrors the bulletin's columns
    satisfaction_rate: Decimal,
    on_time_rate: Decimal,
    completion_rate: Decimal,
    bonus: Decimal,
    penalty: Decimal,
    config: ScoringConfig | None = None,
) -> Decimal:
    """One unit's score (总分), rounded half up to cents. Rates are fractions (0.9922 for 99.22%);
    ``penalty`` is the amount subtracted (a positive number, as the bulletins' 减分 column prints it)."""
    cfg = config or ScoringConfig()
    return round_cents(
        exact_score(satisfaction_rate, on_time_rate, completion_rate, bonus, penalty, config=cfg)
    )


def bonus_for(five_star: int, difficult: int, high_star: int, config: ScoringConfig) -> Decimal:
    """加分 from case counts: five-star cases, difficult cases (疑难件), high-star cases (高星件)."""
    return (
        five_star * config.five_star_bonus
        + difficult * config.difficult_bonus
        + high_star * config.high_star_bonus
    )


def penalty_for(below_four_star: int, overdue: int, config: ScoringConfig) -> Decimal:
    """减分 (a positive amount) from case counts: rated below four stars, overdue (超期件)."""
    return below_four_star * config.low_star_penalty + overdue * config.overdue_penalty


__all__ = [
    "RowError",
    "ScoreRow",
    "ScoringConfig",
    "bonus_for",
    "exact_score",
    "penalty_for",
    "read_score_table",
    "round_cents",
    "score_row",
]
