"""How a handling unit (承办单位) is scored each month, from the bulletins' note (评分标准).

    score = 3 × satisfaction rate + 4 × on-time rate + 3 × completion rate + bonus − penalty

Rates are fractions (100% = 1). Bonus: +0.02 per five-star case (五星件), +0.02 per difficult case (疑难件),
+0.1 per high-star case (高星件); penalty: 0.1 per case rated below four stars (四星以下件), 0.2 per overdue
case (超期件). Every weight and amount is configurable through :class:`ScoringConfig` (``scoring:`` in the
app config). All arithmetic is :class:`~decimal.Decimal`; a score is rounded half up to cents, the way the
bulletins print it (9.685 → 9.69).

Reading a score table (CSV or XLSX, as a bulletin's table is typed up) lives in
:mod:`daemon.reports.score_table` (it knows nothing of weights); it is re-exported here.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daemon.errors import ConfigError
from daemon.reports.score_table import RowError, ScoreRow, read_score_table

CENT = Decimal("0.01")
ONE = Decimal(1)


class ScoringConfig(BaseModel):
    """Weights, bonus and penalty amounts, and the ranking's definitions (``scoring:`` in config.yaml).

    Where the bulletins are silent the choice is a setting, and the default is the documented reading:

    - ``on_time_basis``: the bulletins never define 及时办结率 / 按时反馈率. ``fed_back`` (default) is
      cases fed back within their SLA / cases fed back; ``fed_back_or_overdue`` also counts open cases
      already past their deadline in the denominator, so sitting on a late case lowers the rate too.
    - ``basically_satisfied_counts``: the note says 满意量 / 总评星量. We count 满意 and 基本满意 as
      satisfied by default (only 不满意件 are called out for review); set false to count 满意 alone.
    - ``unrated_satisfaction_rate``: a unit whose cases nobody rated yet has no satisfaction rate; it is
      taken as 100% (nothing has gone wrong yet) unless configured otherwise. The same default holds for
      an on-time rate with nothing fed back yet.
    - ``high_star_min``: 高星件 is not defined. Default: a case with at least 5 stars, which means a
      five-star case earns both +0.02 and +0.1. The bulletins hint that 高星件 is rarer than that (units
      with many satisfied cases earn only 0.02-0.06), so ``null`` turns the high-star bonus off for
      platforms that do not flag such cases.
    - ``low_star_max``: the review list (低星件, 回头看) includes 4-star cases in bulletin 000, so
      low-star means stars <= 4 there, while the penalty applies below ``penalty_stars_below`` (4) stars.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    satisfaction_weight: Decimal = Field(default=Decimal(3), ge=0, description="满意率 weight")
    on_time_weight: Decimal = Field(default=Decimal(4), ge=0, description="及时办结率 weight")
    completion_weight: Decimal = Field(default=Decimal(3), ge=0, description="办结率 weight")
    five_star_bonus: Decimal = Field(default=Decimal("0.02"), ge=0, description="per five-star case")
    difficult_bonus: Decimal = Field(default=Decimal("0.02"), ge=0, description="per 疑难件")
    high_star_bonus: Decimal = Field(default=Decimal("0.1"), ge=0, description="per 高星件")
    low_star_penalty: Decimal = Field(default=Decimal("0.1"), ge=0, description="per case below 4 stars")
    overdue_penalty: Decimal = Field(default=Decimal("0.2"), ge=0, description="per 超期件")
    top_n: int = Field(default=10, ge=1, description="how many units are named 十佳")
    bottom_n: int = Field(default=5, ge=0, description="how many units are named 较差")
    on_time_basis: Literal["fed_back", "fed_back_or_overdue"] = "fed_back"
    basically_satisfied_counts: bool = True
    unrated_satisfaction_rate: Decimal = Field(default=ONE, ge=0, le=1)
    high_star_min: int | None = Field(default=5, ge=1, le=5)
    penalty_stars_below: int = Field(default=4, ge=1, le=5)
    low_star_max: int = Field(default=4, ge=1, le=5)
    summon_provincial_min: int = Field(default=10, ge=1, description="约谈: 10+ provincial cases …")
    summon_bottom_n: int = Field(default=10, ge=0, description="… while ranking in the bottom 10")

    @model_validator(mode="after")
    def _some_weight(self) -> ScoringConfig:
        if not (self.satisfaction_weight or self.on_time_weight or self.completion_weight):
            raise ValueError(
                "satisfaction_weight, on_time_weight and completion_weight are all 0: "
                "at least one rate must count (the bulletins use 3, 4 and 3)"
            )
        return self

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None, *, where: str = "scoring") -> ScoringConfig:
        """Validate ``data``; a bad value raises ConfigError naming ``where.key`` and what is valid."""
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = ".".join(str(part) for part in (where, *err["loc"]))
                problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
            raise ConfigError("; ".join(problems)) from None


def round_cents(value: Decimal) -> Decimal:
    """Half up to cents, as the bulletins print scores (9.685 → 9.69, never banker's rounding)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def exact_score(
    satisfaction_rate: Decimal,
    on_time_rate: Decimal,
    completion_rate: Decimal,
    bonus: Decimal,
    penalty: Decimal,
    *,
    config: ScoringConfig,
) -> Decimal:
    """The unrounded score; ranking sorts on this (bulletin 003 ranks 9.0899 below 9.0926, both 9.09)."""
    return (
        config.satisfaction_weight * satisfaction_rate
        + config.on_time_weight * on_time_rate
        + config.completion_weight * completion_rate
        + bonus
        - penalty
    )


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
