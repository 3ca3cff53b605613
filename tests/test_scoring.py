"""The scoring formula against every table row of both seed bulletins, the table reader, and the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

import daemon.cli
from daemon.errors import ConfigError, UsageError
from daemon.reports.scoring import (
    ScoreRow,
    ScoringConfig,
    bonus_for,
    penalty_for,
    read_score_table,
    score_row,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
XINGLONGTAI = DATA / "bulletin_2022q1_xinglongtai.csv"  # seeds/000: 兴隆台区 2022 Q1, 22 rows
PANJIN = DATA / "bulletin_2020_04_panjin.csv"  # seeds/003: 十佳 10, 较差 5, 市直 annex 19

HEADER = "序号,受理单位,满意率,按时反馈率,办结率,加分,减分,总分\n"


def _score(row: ScoreRow, config: ScoringConfig | None = None) -> Decimal:
    return score_row(
        row.satisfaction_rate, row.on_time_rate, row.completion_rate, row.bonus, row.penalty, config
    )


def _bulletin_rows() -> list[tuple[str, ScoreRow]]:
    rows = []
    for path in (XINGLONGTAI, PANJIN):
        good, errors = read_score_table(path)
        assert errors == []
        rows += [(path.stem, row) for row in good]
    return rows


BULLETIN_ROWS = _bulletin_rows()


# --- the oracle: every row of every table in both bulletins -------------------------------------------


def test_the_oracle_has_all_56_rows_in_their_tables() -> None:
    xinglongtai, _ = read_score_table(XINGLONGTAI)
    panjin, _ = read_score_table(PANJIN)
    assert len(xinglongtai) == 22
    # three stacked tables, each under its own header row: 十佳 rows 2-11, 较差 13-17, annex 19-37
    assert [r.row_number for r in panjin] == [*range(2, 12), *range(13, 18), *range(19, 38)]
    assert len(BULLETIN_ROWS) == 56
    assert all(row.printed_score is not None for _, row in BULLETIN_ROWS)


@pytest.mark.parametrize(("table", "row"), BULLETIN_ROWS, ids=[f"{t}:{r.unit}" for t, r in BULLETIN_ROWS])
def test_every_bulletin_row_scores_its_printed_total(table: str, row: ScoreRow) -> None:
    assert _score(row) == row.printed_score


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("卫生健康局", Decimal("10.96")),  # 3 + 4 + 3 × 0.9881 + 1.00
        ("城建中心", Decimal("10.07")),  # 10.066: bonus and penalty both count
        ("盘锦市兴隆台生态环境分局", Decimal("9.69")),  # exactly 9.685: half up, not half even (9.68)
        ("兴隆台区创新街道办事处", Decimal("9.09")),  # 9.0899 with a 0.5 penalty
        ("市文化旅游和广播电视局", Decimal("7.92")),  # on-time 50% weighs 4
    ],
)
def test_known_scores_independent_of_the_file(unit: str, expected: Decimal) -> None:
    (row,) = [r for _, r in BULLETIN_ROWS if r.unit == unit]
    assert _score(row) == expected


def test_rounding_is_half_up_to_cents() -> None:
    assert score_row(Decimal("0.875"), Decimal(1), Decimal(1), Decimal("0.06"), Decimal(0)) == Decimal("9.69")
    assert score_row(Decimal(1), Decimal(1), Decimal(1), Decimal("0.005"), Decimal(0)) == Decimal("10.01")
    assert score_row(Decimal(1), Decimal(1), Decimal(1), Decimal("0.0049"), Decimal(0)) == Decimal("10.00")


def test_changed_weights_change_the_score() -> None:
    (row,) = [r for _, r in BULLETIN_ROWS if r.unit == "盘锦辽河智慧城市发展集团有限公司"]
    assert _score(row) == Decimal("9.37")
    # on-time 83.33% at weight 3 instead of 4: 3 + 2.4999 + 3 + 0.04 = 8.5399
    assert _score(row, ScoringConfig(on_time_weight=Decimal(3))) == Decimal("8.54")


def test_bonus_and_penalty_from_case_counts() -> None:
    config = ScoringConfig()
    assert bonus_for(five_star=3, difficult=2, high_star=1, config=config) == Decimal("0.20")
    assert penalty_for(below_four_star=1, overdue=2, config=config) == Decimal("0.5")
    assert penalty_for(1, 2, ScoringConfig(overdue_penalty=Decimal("0.3"))) == Decimal("0.7")


# --- configuration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"top_n": 0}, "scoring.top_n"),
        ({"overdue_penalty": "-0.2"}, "scoring.overdue_penalty"),
        ({"high_star_min": 6}, "scoring.high_star_min"),
        ({"on_time_basis": "closed"}, "scoring.on_time_basis"),
        ({"overdue_penalties": 0.2}, "scoring.overdue_penalties"),  # a typo is not silently ignored
    ],
)
def test_bad_config_values_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ScoringConfig.from_mapping(data)


def test_config_rejects_all_zero_weights_and_reads_yaml_floats_exactly() -> None:
    zero = {"satisfaction_weight": 0, "on_time_weight": 0, "completion_weight": 0}
    with pytest.raises(ConfigError, match="at least one rate must count"):
        ScoringConfig.from_mapping(zero)
    config = ScoringConfig.from_mapping({"five_star_bonus": 0.02, "high_star_min": None})
    assert config.five_star_bonus == Decimal("0.02")
    assert config.high_star_min is None
    assert ScoringConfig.from_mapping(None) == ScoringConfig()


# --- reading tables --------------------------------------------------------------------------------------


def test_xlsx_with_percent_formatted_cells_and_a_title_row(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["表一：“十佳”基层承办单位"])  # a title above the header is skipped
    sheet.append(
        [
            "名次",
            "受理单位",
            "交办总量",
            "满意率 (权重3)",
            "及时办结率 (权重4)",
            "办结率 (权重3)",
            "加分",
            "减分",
            "总分",
        ]
    )
    sheet.append([1, "兴隆台区市场监督管理局", 154, 0.9922, 1, 0.9545, 0.28, 0, 10.12])
    sheet.append([2, "兴隆台区创新街道办事处", 56, 0.9104, 1.0, 0.8929, 0.18, 0.5, 9.09])
    sheet.append([3, "兴隆台区环保局", 19, "100.00%", "100.00%", "68.42%", 0.04, None, None])
    for row in sheet.iter_rows(min_row=3, min_col=4, max_col=6):
        for cell in row:
            cell.number_format = "0.00%"
    path = tmp_path / "score.xlsx"
    book.save(path)

    rows, errors = read_score_table(path)

    assert errors == []
    assert [(r.row_number, r.unit, _score(r)) for r in rows] == [
        (3, "兴隆台区市场监督管理局", Decimal("10.12")),
        (4, "兴隆台区创新街道办事处", Decimal("9.09")),
        (5, "兴隆台区环保局", Decimal("9.09")),
    ]
    assert rows[0].satisfaction_rate == Decimal("0.9922")  # no binary noise from the float
    assert rows[2].penalty == 0
    assert rows[2].printed_score is None


def test_gb18030_csv_with_tabs(tmp_path: Path) -> None:
    text = (
        "序号\t受理单位\t满意率\t按时反馈率\t办结率\t加分\t减分\t总分\n"
        "1\t住建局（供暖）\t100.00%\t100.00%\t100.00%\t0.14\t0.00\t10.14\n"
    )
    path = tmp_path / "gbk.csv"
    path.write_bytes(text.encode("gb18030"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the file really is not UTF-8
    rows, errors = read_score_table(path)
    assert errors == []
    assert [(r.unit, _score(r), r.printed_score) for r in rows] == [
        ("住建局（供暖）", Decimal("10.14"), Decimal("10.14"))
    ]


def test_utf8_bom_csv_and_fractions(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes((HEADER + "1,人社局,1,1,0.9815,0.24,0,10.18\n").encode("utf-8-sig"))
    rows, errors = read_score_table(path)
    assert errors == []
    assert rows[0].unit == "人社局"
    assert _score(rows[0]) == Decimal("10.18")


def test_bad_rows_are_reported_and_good_rows_still_scored(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        HEADER
        + "1,卫生健康局,100.00%,100.00%,98.81%,1.00,0.00,10.96\n"
        + "2,,100%,100%,100%,0,0,10\n"  # row 3: no unit
        + "3,住建局,120%,100%,100%,0.34,0,10.34\n"  # row 4: rate above 100%
        + "\n"  # row 5: blank, skipped
        + "4,人社局,abc,98.5,98.15%,x,0,10.18\n"  # row 6: three bad cells
        + "5,城建中心,100.00%,100.00%,98.20%,0.22,0.10,10.07\n",
        encoding="utf-8",
    )
    rows, errors = read_score_table(path)
    assert [(r.row_number, r.unit, _score(r)) for r in rows] == [
        (2, "卫生健康局", Decimal("10.96")),
        (7, "城建中心", Decimal("10.07")),
    ]
    assert [(e.row_number, e.column, e.value) for e in errors] == [
        (3, "受理单位", ""),
        (4, "满意率", "120%"),
        (6, "满意率", "abc"),
        (6, "按时反馈率", "98.5"),
        (6, "加分", "x"),
    ]
    assert "0-100%" in errors[1].message
    assert "98.5%" in errors[3].message  # says what would be valid
    assert str(errors[1]).startswith("第 4 行「满意率」")


def test_missing_column_names_the_file_and_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("序号,受理单位,满意率,办结率,加分\n1,住建局,100%,100%,0.1\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        read_score_table(path)
    message = str(caught.value)
    assert str(path) in message
    assert "missing column(s) 及时办结率 或 按时反馈率, 减分" in message
    assert "found: 序号, 受理单位, 满意率, 办结率, 加分" in message


def test_unreadable_inputs_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        read_score_table(tmp_path / "absent.csv")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UsageError, match="not a readable XLSX"):
        read_score_table(broken)
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(UsageError, match="empty"):
        read_score_table(empty)


# --- the CLI ---------------------------------------------------------------------------------------------

ALL_COMMANDS_PRESENT = all(importlib.util.find_spec(name) for name in daemon.cli.COMMAND_MODULES)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run the CLI with the command modules this branch has (the others land from their own branches),
    and from an empty directory so no ./config.yaml is picked up."""
    present = tuple(name for name in daemon.cli.COMMAND_MODULES if importlib.util.find_spec(name))
    assert "daemon.commands.score" in present
    monkeypatch.setattr(daemon.cli, "COMMAND_MODULES", present)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOTLINE_SLA_CONFIG", raising=False)


@pytest.mark.usefixtures("cli")
def test_cli_json_prints_every_unit_with_two_decimals(capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon.cli.main(["score", str(PANJIN), "--json"]) == 0
    out, err = capsys.readouterr()
    scores = json.loads(out)
    assert len(scores) == 34
    assert scores[0] == {"unit": "兴隆台区住建局", "score": 10.40}
    assert '"score": 10.40}' in out  # cents kept, not 10.4
    assert '{"unit": "市交警支队", "score": 10.00}' in out
    assert list(scores[0]) == ["unit", "score"]
    assert err == ""


@pytest.mark.usefixtures("cli")
def test_cli_table_marks_printed_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon.cli.main(["score", str(XINGLONGTAI)]) == 0
    out, _ = capsys.readouterr()
    assert "原表总分" in out
    assert out.count("✓") == 22
    line = next(line for line in out.splitlines() if "城建中心" in line)
    assert "10.07" in line


@pytest.mark.usefixtures("cli")
def test_cli_rejected_rows_exit_1_and_keep_stdout_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "1,卫生健康局,100%,100%,98.81%,1,0,10.96\n2,住建局,1.5,1,1,0,0,10\n", encoding="utf-8"
    )
    assert daemon.cli.main(["score", "--json", str(path)]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == [{"unit": "卫生健康局", "score": 10.96}]
    assert "第 3 行「满意率」" in err


@pytest.mark.usefixtures("cli")
def test_cli_mismatched_total_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "typo.csv"
    path.write_text(HEADER + "1,卫生健康局,100%,100%,98.81%,1,0,10.69\n", encoding="utf-8")
    assert daemon.cli.main(["score", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "10.69 ✗" in out
    assert "计算总分 10.96，原表总分 10.69" in err


@pytest.mark.usefixtures("cli")
def test_cli_missing_column_and_missing_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.csv"
    path.write_text("受理单位,满意率\n住建局,100%\n", encoding="utf-8")
    assert daemon.cli.main(["score", "--json", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "missing column(s)" in err
    assert daemon.cli.main(["score", str(tmp_path / "nope.csv")]) == 2


def test_python_m_daemon_score_in_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HOTLINE_SLA_CONFIG", None)
    if ALL_COMMANDS_PRESENT:
        command = [sys.executable, "-m", "daemon"]
    else:  # until the other branches' commands land, run daemon/__main__.py with the ones present
        shim = (
            "import importlib.util, runpy, daemon.cli as c; "
            "c.COMMAND_MODULES = tuple(m for m in c.COMMAND_MODULES if importlib.util.find_spec(m)); "
            "runpy.run_module('daemon', run_name='__main__', alter_sys=True)"
        )
        command = [sys.executable, "-c", shim]
    result = subprocess.run(
        [*command, "score", str(XINGLONGTAI), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert len(scores) == 22
    assert scores[-1] == {"unit": "盘锦辽河智慧城市发展集团有限公司", "score": 9.37}
