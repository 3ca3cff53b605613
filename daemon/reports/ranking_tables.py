"""What the monthly 通报 (评优评差) says, section by section, before any format shows it.

:func:`ranking_sections` describes the bulletin in its order (bulletin 003): 一、受理及办理情况 (属地, 领域,
charts), 二、“评优评差”情况 (十佳 and 较差 of each ranked group, the 约谈 list), 三、突出问题 (低星件,
不满意件), 四、月中预测 inside the month, then the appendices (附件: each unranked group with the same
columns, and every unit's detail). Section and table numbers are given here, in order, so none is skipped
whichever sections exist. Values stay typed (int, Decimal fraction, Decimal score, date, None for a rate
without a denominator) until a format shows them: text prints ``99.22%``, ``10.12`` and ``—``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from daemon.config import MastheadConfig
from daemon.core.timeutil import to_local
from daemon.reports.ranking import GroupRanking, MonthlyRanking, RankedCase, UnitScore

Kind = Literal["text", "int", "pct", "score", "date"]
Value = str | int | Decimal | date | None

SATISFACTION_LABELS = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}
MAX_CHART_BARS = 20  # units on the overdue chart; the tables list every unit
NO_RATE = "—"  # a rate without a denominator (nothing rated, nothing fed back or overdue)
_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 21 → 二十一 (1-99)."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    return (("" if tens == 1 else _DIGITS[tens]) + "十" if tens else "") + (_DIGITS[ones] if ones else "")


@dataclass(frozen=True)
class Table:
    title: str
    sheet: str  # XLSX sheet name (<= 31 characters, unique)
    columns: tuple[tuple[str, Kind], ...]
    rows: tuple[tuple[Value, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Chart:
    kind: Literal["pie", "bar"]
    title: str
    items: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    appendix: bool = False
    wide: bool = False  # too many columns for A4 portrait: printed landscape


@dataclass(frozen=True)
class Masthead:
    """The 通报's head and closing block: from ``reports.masthead`` and the recorded (or draft) issue."""

    title: str
    subtitle: str | None
    office: str
    year: int
    number: int  # 第N期
    issued_on: date  # 印发日期 (Asia/Shanghai)
    draft: bool  # not recorded: the number is the one it would get
    submit_to: str | None = None  # 报送
    copy_to: str | None = None  # 抄送
    reviewed_by: str | None = None
    edited_by: str | None = None
    copies: int | None = None

    @classmethod
    def of(cls, config: MastheadConfig, *, year: int, number: int, issued_on: date, draft: bool) -> Masthead:
        return cls(config.title, config.subtitle, config.office, year, number, issued_on, draft,
                   config.submit_to, config.copy_to, config.reviewed_by, config.edited_by, config.copies)

    @property
    def issue_line(self) -> str:
        number = self.number or "__"  # a draft without a database has no number yet
        return f"{self.year} 年第 {number} 期" + ("（样稿，未登记期号）" if self.draft else "")

    @property
    def issued_text(self) -> str:
        d = self.issued_on
        return f"{d.year} 年 {d.month} 月 {d.day} 日印发"


def fmt(value: Value, kind: Kind) -> str:
    """A value as the bulletins print it: 99.22%, 10.12, 0.28, 2024-04-09; ``—`` for no rate."""
    if value is None:
        return NO_RATE
    if kind == "pct" and isinstance(value, Decimal):
        return f"{(value * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}%"
    if kind == "score" and isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def title(ranking: MonthlyRanking) -> str:
    return f"{ranking.year} 年 {ranking.month} 月 12345 热线承办单位“评优评差”情况通报"


def summary(ranking: MonthlyRanking) -> str:
    as_of = to_local(ranking.as_of).strftime("%Y-%m-%d %H:%M")
    state = "" if ranking.final else "（月中数据，非最终结果）"
    completion = (fmt(Decimal(ranking.total_closed) / ranking.total_dispatched, "pct")
                  if ranking.total_dispatched else NO_RATE)
    satisfaction = (fmt(Decimal(ranking.total_satisfied) / ranking.total_rated, "pct")
                    if ranking.total_rated else NO_RATE)
    groups = "、".join(f"{g.name} {len(g.units)} 家" for g in ranking.groups)
    return (
        f"统计截至 {as_of}{state}。本月共交办 {ranking.total_dispatched} 件，办结 {ranking.total_closed} 件，"
        f"办结率 {completion}；评价 {ranking.total_rated} 件，满意 {ranking.total_satisfied} 件，"
        f"满意率 {satisfaction}；承办单位 {len(ranking.units)} 家" + (f"（{groups}）" if groups else "") + "。"
    )


def formula_note(ranking: MonthlyRanking) -> str:
    c = ranking.config
    high = f"{c.high_star_min} 星及以上" if c.high_star_min is not None else "不计"
    on_time = "反馈量" if c.on_time_basis == "fed_back" else "（反馈量 + 未反馈已超期量）"
    satisfied = "满意 + 基本满意" if c.basically_satisfied_counts else "满意"
    return (
        f"注：总分 = {c.satisfaction_weight}×满意率 + {c.on_time_weight}×及时办结率 + "
        f"{c.completion_weight}×办结率 + 加分 − 减分，四舍五入到 0.01。"
        f"①满意率 = 满意量（{satisfied}）/ 总评星量；②办结率 = 办结量 / 交办量；"
        f"③及时办结率 = 按时反馈量 / {on_time}；"
        f"④无评价或无应反馈件的单位，该项显示“{NO_RATE}”，不计入总分，其余各项权重按比例折算为满分 10 分。"
        f"加分：五星件每件 {c.five_star_bonus}，疑难件每件 {c.difficult_bonus}，"
        f"高星件（{high}）每件 {c.high_star_bonus}；"
        f"减分：{c.penalty_stars_below} 星以下件每件 {c.low_star_penalty}，超期件每件 {c.overdue_penalty}。"
    )


def unit_columns(ranking: MonthlyRanking, first: str = "名次") -> tuple[tuple[str, Kind], ...]:
    c = ranking.config
    return (
        (first, "int"), ("受理单位", "text"), ("交办总量", "int"), ("办结总量", "int"),
        (f"满意率 (权重{c.satisfaction_weight})", "pct"), (f"及时办结率 (权重{c.on_time_weight})", "pct"),
        (f"办结率 (权重{c.completion_weight})", "pct"), ("加分", "score"), ("减分", "score"), ("总分", "score"),
    )


def unit_row(position: int, u: UnitScore) -> tuple[Value, ...]:
    return (position, u.unit, u.dispatched, u.closed, u.satisfaction_rate, u.on_time_rate, u.completion_rate,
            u.bonus, u.penalty, u.score)


def _status(case: RankedCase, ranking: MonthlyRanking) -> str:
    if case.closed_at is not None and case.closed_at <= ranking.as_of:
        return "已结案"
    if case.fed_back_at is not None and case.fed_back_at <= ranking.as_of:
        return "已反馈"
    return "跟踪"


def _case_table(title_: str, sheet: str, cases: tuple[RankedCase, ...], ranking: MonthlyRanking,
                stars: bool) -> Table:
    rows = tuple(
        (i, c.number, to_local(c.received_at).date(), c.summary or "", c.unit,
         (str(c.stars) if c.stars is not None else "-") if stars
         else SATISFACTION_LABELS.get(str(c.satisfaction), "-"),
         _status(c, ranking))
        for i, c in enumerate(cases, start=1)
    )
    columns: tuple[tuple[str, Kind], ...] = (
        ("序号", "int"), ("工单编号", "text"), ("交办日期", "date"), ("问题摘要", "text"), ("办理部门", "text"),
        ("总评星" if stars else "满意度", "text"), ("办理状态", "text"),
    )
    return Table(title_, sheet, columns, rows)


def _sheet(base: str, group: GroupRanking, ranking: MonthlyRanking) -> str:
    several = sum(g.ranked for g in ranking.groups) > 1
    return f"{base}-{group.name}"[:31] if several else base


def _rating_section(ranking: MonthlyRanking, number: str) -> Section:
    c = ranking.config
    tables: list[Table] = []
    paragraphs: list[str] = []
    for g in (g for g in ranking.groups if g.ranked):
        paragraphs.append(
            f"本月有效诉求涉及{g.name}共计 {len(g.units)} 家，以本月办件量为基准数，按照满意率、及时办结率、"
            f"办结率等评分标准，" + (f"{g.best[0].unit}等 {len(g.best)} 个单位被评为“十佳”承办单位"
                                     if g.best else "本月无“十佳”承办单位")
            + (f"；{g.worst[0].unit}等 {len(g.worst)} 个单位为“较差”承办单位。" if g.worst else "。"))
        n = len(tables)
        tables.append(Table(f"表{chinese_number(n + 1)}：“十佳”{g.name}（前 {c.top_n} 名）",
                            _sheet("十佳", g, ranking), unit_columns(ranking),
                            tuple(unit_row(u.rank, u) for u in g.best)))
        tables.append(Table(f"表{chinese_number(n + 2)}：“较差”{g.name}（后 {c.bottom_n} 名，名次 1 为最差）",
                            _sheet("较差", g, ranking), unit_columns(ranking),
                            tuple(unit_row(i, u) for i, u in enumerate(g.worst, start=1))))
    summoned = [(g, u) for g in ranking.groups for u in g.summoned]
    tables.append(Table(
        f"表{chinese_number(len(tables) + 1)}：提请约谈承办单位", "约谈",
        (("组内名次", "int"), ("受理单位", "text"), ("分组", "text"), ("总分", "score"), ("省平台交办件", "int"),
         ("原因", "text")),
        tuple((u.rank, u.unit, g.name, u.score, u.provincial,
               "“较差”单位" if u in g.worst
               else f"办理省平台交办件 {c.summon_provincial_min} 件以上且排名后 {c.summon_bottom_n} 位")
              for g, u in summoned),
        note=f"依据：被通报的“较差”承办单位，以及办理省平台交办件 {c.summon_provincial_min} 件以上且排名后 "
             f"{c.summon_bottom_n} 位的承办单位，提请约谈。",
    ))
    return Section(f"{number}、“评优评差”情况", tuple(paragraphs), tuple(tables))


def ranking_sections(ranking: MonthlyRanking) -> list[Section]:
    """Every section, numbered in order (一、二、三 …; 附件1, 附件2 …)."""
    c = ranking.config
    numbers = iter(chinese_number(n) for n in range(1, 100))
    overdue = sorted(((u.unit, u.overdue) for u in ranking.units if u.overdue), key=lambda kv: (-kv[1], kv[0]))
    shown = MAX_CHART_BARS if len(overdue) > MAX_CHART_BARS else 0
    sections = [
        Section(
            f"{next(numbers)}、受理及办理情况",
            tables=(
                Table("（一）从管辖属地看", "属地",
                      (("属地", "text"), ("受理量", "int"), ("占比", "pct"), ("办结率", "pct"), ("满意件", "int"),
                       ("满意率", "pct")),
                      tuple((g.name, g.dispatched, g.share, g.completion_rate, g.satisfied, g.satisfaction_rate)
                            for g in ranking.districts)),
                Table("（二）从涉及领域看", "领域", (("涉及领域", "text"), ("受理量", "int"), ("占受理总量", "pct")),
                      tuple((g.name, g.dispatched, g.share) for g in ranking.domains)),
            ),
            charts=(
                Chart("pie", "案件比例（按涉及领域）", tuple((g.name, g.dispatched) for g in ranking.domains)),
                Chart("bar", "各承办单位超期件数" + (f"（前 {shown} 个单位）" if shown else ""),
                      tuple(overdue[:MAX_CHART_BARS])),
            ),
        ),
        _rating_section(ranking, next(numbers)),
        Section(f"{next(numbers)}、突出问题", tables=(
            _case_table(f"（一）低星件汇总（{c.low_star_max} 星及以下，需“回头看”）", "低星件",
                        ranking.low_star_cases, ranking, stars=True),
            _case_table("（二）不满意件汇总（需“回头看”）", "不满意件", ranking.dissatisfied_cases, ranking,
                        stars=False),
        )),
    ]
    if ranking.forecast is not None:
        f = ranking.forecast
        heading = {u.unit for u in f.heading_for_worst}
        sections.append(Section(f"{next(numbers)}、月中预测", tables=(Table(
            f"本月已过 {fmt(f.elapsed_fraction, 'pct')}，按当前进度预测月末得分", "月中预测",
            (("预测名次", "int"), ("受理单位", "text"), ("当前总分", "score"), ("预计月末总分", "score"),
             ("预警", "text")),
            tuple((i, u.unit, u.score, u.projected_score, "可能“较差”" if u.unit in heading else "")
                  for i, u in enumerate(f.units, start=1)),
            "预测方法：满意率、及时办结率保持当前水平；办结率只计已到期或已办结的工单；"
            "加分、减分按本月已过天数的比例线性外推到月末。",
        ),)))
    appendix = 0
    for g in (g for g in ranking.groups if not g.ranked):
        appendix += 1
        sections.append(Section(f"附件{appendix}：{g.name}办理指标完成情况", appendix=True, tables=(Table(
            f"{g.name}办理指标完成情况", f"附件{appendix}"[:31], unit_columns(ranking),
            tuple(unit_row(u.rank, u) for u in g.units), formula_note(ranking)),)))
    appendix += 1
    sections.append(Section(f"附件{appendix}：全部承办单位得分及加减分明细", appendix=True, wide=True, tables=(Table(
        "全部承办单位得分及加减分明细（名次为组内名次）", "全部单位",
        (*unit_columns(ranking, "组内名次"), ("分组", "text"), ("五星件", "int"), ("疑难件", "int"),
         ("高星件", "int"), (f"{c.penalty_stars_below}星以下件", "int"), ("超期件", "int"), ("省平台交办件", "int")),
        tuple((*unit_row(u.rank, u), g.name, u.five_star, u.difficult, u.high_star, u.below_four_star, u.overdue,
               u.provincial) for g in ranking.groups for u in g.units),
        formula_note(ranking)),)))
    return sections


def closing_lines(masthead: Masthead) -> list[tuple[str, str]]:
    """(label, text) of the closing block, only those configured."""
    pairs = (("报送", masthead.submit_to), ("抄送", masthead.copy_to), ("审核", masthead.reviewed_by),
             ("编辑", masthead.edited_by))
    return [(label, text) for label, text in pairs if text]
