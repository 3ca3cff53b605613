"""``hotline-sla score FILE [--json]``: score every unit in a bulletin-style table (CSV or XLSX).

Exit codes: 0 every row scored (and matched 总分 where the file has one); 1 some rows were rejected or a
computed score differs from the file's 总分 (the good rows are still printed); 2 the file cannot be read or
lacks a required column. With ``--json`` stdout is one JSON array ``[{"unit": …, "score": 10.96}, …]`` in
file order, scores as numbers with two decimals; rejected rows and mismatches go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from decimal import Decimal

from daemon.config import ScoringConfig
from daemon.reports.scoring import RowError, ScoreRow, score_row


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score units from a bulletin table (按评分标准计算总分)",
        description=(
            "Score each unit (受理单位) of a CSV or XLSX table with columns 受理单位, 满意率, "
            "及时办结率 or 按时反馈率, 办结率, 加分, 减分 (and optionally 总分, which is checked). "
            "score = 3 × 满意率 + 4 × 及时办结率 + 3 × 办结率 + 加分 − 减分, rounded half up to cents."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="CSV (UTF-8 or GB18030) or XLSX")
    parser.add_argument("--json", action="store_true", help="print one JSON array on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from daemon.reports.scoring import read_score_table

    rows, errors = read_score_table(args.file)
    config = _scoring_config(args)
    scored = [(row, _score(row, config)) for row in rows]
    mismatches = [(row, score) for row, score in scored if row.printed_score not in {None, score}]
    if args.json:
        print(_json_array(scored))
    else:
        print(_table(scored))
    _report_problems(args.file, errors, mismatches)
    return 1 if errors or mismatches else 0


def _scoring_config(args: argparse.Namespace) -> ScoringConfig:
    """The app config's ``scoring:`` section (the bulletins' defaults when absent)."""
    config: ScoringConfig = args.ctx.config.scoring
    return config


def _score(row: ScoreRow, config: ScoringConfig) -> Decimal:
    return score_row(
        row.satisfaction_rate, row.on_time_rate, row.completion_rate, row.bonus, row.penalty, config
    )


def _json_array(scored: list[tuple[ScoreRow, Decimal]]) -> str:
    # Built by hand so a score prints as 10.00, not 10.0: the cents are part of the contract.
    items = [
        f'  {{"unit": {json.dumps(row.unit, ensure_ascii=False)}, "score": {score}}}' for row, score in scored
    ]
    return "[\n" + ",\n".join(items) + "\n]" if items else "[]"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool = False) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _table(scored: list[tuple[ScoreRow, Decimal]]) -> str:
    with_printed = any(row.printed_score is not None for row, _ in scored)
    header = ["行 Row", "单位 Unit", "总分 Score"] + (["原表总分 Printed"] if with_printed else [])
    lines = []
    for row, score in scored:
        cells = [str(row.row_number), row.unit, str(score)]
        if with_printed:
            printed = row.printed_score
            mark = "" if printed is None else ("✓" if printed == score else "✗")
            cells.append(f"{printed if printed is not None else '-'} {mark}".rstrip())
        lines.append(cells)
    widths = [max(_width(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    right = [True, False, True, False]  # numbers flush right, names and marks flush left
    out = ["  ".join(_pad(c, widths[i], right=right[i]) for i, c in enumerate(header))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(_pad(c, widths[i], right=right[i]) for i, c in enumerate(cells)) for cells in lines]
    if not scored:
        out.append("（没有可计分的行）")
    return "\n".join(line.rstrip() for line in out)


def _report_problems(file: str, errors: list[RowError], mismatches: list[tuple[ScoreRow, Decimal]]) -> None:
    for error in errors:
        print(f"hotline-sla: {file}: {error}（该行未计分）", file=sys.stderr)
    for row, score in mismatches:
        where = f"hotline-sla: {file}: 第 {row.row_number} 行「{row.unit}」"
        print(f"{where}计算总分 {score}，原表总分 {row.printed_score}", file=sys.stderr)
    if errors:
        rows = sorted({e.row_number for e in errors})
        print(f"hotline-sla: {len(rows)} 行被拒绝: {', '.join(map(str, rows))}", file=sys.stderr)
