"""``digest``, ``month-end`` and ``report month`` on the sample data, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.conftest import ROOT, CliResult, run_subprocess

SAMPLE = ROOT / "samples" / "cases.csv"
NOW = "2026-11-20 09:00"


@pytest.fixture
def sample(tmp_path: Path, cli: Callable[..., CliResult]) -> Callable[..., CliResult]:
    """The CLI on a fresh SQLite database holding the sample cases and contacts."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite3'}'}}\nrules_dir: {ROOT / 'sla_rules'}\n"
        "reports: {output_dir: out}\n", encoding="utf-8")
    assert cli("--config", str(cfg), "import", str(SAMPLE), "--now", NOW).code == 1  # three bad rows
    assert cli("--config", str(cfg), "contacts", "import", str(ROOT / "samples" / "contacts.csv")).code == 0

    def run(*args: str) -> CliResult:
        return cli("--config", str(cfg), *args)

    return run


def test_digest_markdown_html_and_xlsx(sample: Callable[..., CliResult], tmp_path: Path) -> None:
    md = sample("digest", "--now", NOW)
    assert md.code == 0 and md.out.startswith("# 12345 热线每日超期通报")
    assert len(md.out.rstrip("\n").encode()) <= 4096
    assert "超期 <font color=\"warning\">8</font> 件" in md.out and "2611100019" in md.out
    html = sample("digest", "--now", NOW, "--format", "html", "--output", str(tmp_path / "d.html"))
    assert html.code == 0 and "wrote" in html.err
    page = (tmp_path / "d.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "三、超期工单清单（共 8 件" in page and "2026-11-17 24:00" in page
    xlsx = sample("digest", "--date", "2026-11-20", "--format", "xlsx", "--output", str(tmp_path / "d.xlsx"))
    assert xlsx.code == 0
    book = load_workbook(tmp_path / "d.xlsx")
    assert book.sheetnames == [
        "总体情况", "各单位", "超期工单", "逾期退件", "兜底规则", "发送失败", "月底清零", "已暂停提醒"]
    assert book["总体情况"]["A1"].value == "一、总体情况"
    assert "13800" not in md.out + page


def test_xlsx_to_stdout_is_a_usage_error(sample: Callable[..., CliResult]) -> None:
    r = sample("digest", "--now", NOW, "--format", "xlsx")
    assert r.code == 2 and "--output FILE" in r.err
    r = sample("report", "month", "2026-11", "--format", "xlsx")
    assert r.code == 2 and "--output FILE" in r.err
    assert sample("report", "month", "2026-13").code == 2
    assert sample("digest", "--date", "20.11.2026").code == 2


def test_digest_send_queues_once(sample: Callable[..., CliResult]) -> None:
    first = sample("digest", "--now", NOW, "--send", "--json")
    doc = json.loads(first.out)
    assert first.code == 0 and doc["queued"]["recipients"] == 2 and doc["queued"]["outbox_rows"] == 2
    again = json.loads(sample("digest", "--now", "2026-11-20 11:00", "--send", "--json").out)
    assert again["queued"] is None and "already" in again["reason"]
    saturday = sample("digest", "--now", "2026-11-21 09:00", "--send")
    assert "not a working day" in saturday.out
    listing = json.loads(sample("outbox", "list", "--json").out)["messages"]
    assert [m["kind"] for m in listing] == ["digest", "digest"]


def test_month_end_command(sample: Callable[..., CliResult]) -> None:
    idle = json.loads(sample("month-end", "--now", NOW, "--json").out)
    assert idle["queued"] == [] and idle["next"] == {
        "kind": "month_end", "period": "2026-11/T-3", "at": "2026-11-25T09:00:00+08:00"}
    due = json.loads(sample("month-end", "--now", "2026-11-25 09:00", "--json").out)
    [done] = due["queued"]
    assert done["period"] == "2026-11/T-3" and done["cases"] == 37 and done["outbox_rows"] > 0
    assert json.loads(sample("month-end", "--now", "2026-11-25 10:00", "--json").out)["queued"] == []


def test_report_month_mid_month_forecast(sample: Callable[..., CliResult], tmp_path: Path) -> None:
    md = sample("report", "month", "2026-11", "--now", NOW)
    assert md.code == 0 and "（月中数据，非最终结果）" in md.out
    assert "四、月中预测" in md.out and "可能“较差”" in md.out
    out = tmp_path / "m.xlsx"
    assert sample("report", "month", "2026-11", "--now", NOW, "--format", "xlsx", "--output", str(out)).code == 0
    assert {"十佳", "较差", "月中预测"} <= set(load_workbook(out).sheetnames)
    final = sample("report", "month", "2026-11", "--now", "2026-12-05 09:00")
    assert "月中预测" not in final.out and "非最终结果" not in final.out


def test_digest_as_a_real_process(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite3'}'}}\nrules_dir: {ROOT / 'sla_rules'}\n",
                   encoding="utf-8")
    run_subprocess("--config", str(cfg), "import", str(SAMPLE), "--now", NOW)
    r = run_subprocess("--config", str(cfg), "digest", "--now", NOW)
    assert r.returncode == 0, r.stderr
    assert "每日超期通报" in r.stdout and len(r.stdout.rstrip("\n").encode()) <= 4096


def test_report_month_json_groups_and_issue_numbers(sample: Callable[..., CliResult]) -> None:
    first = sample("report", "month", "2026-11", "--now", "2026-12-05 09:00", "--json")
    assert first.code == 0
    doc = json.loads(first.out)
    assert doc["month"] == "2026-11"
    groups = {g["group"]: g for g in doc["groups"]}
    assert list(groups) == ["基层承办单位", "市直联网单位"]  # the 分组 column of samples/contacts.csv
    assert groups["市直联网单位"]["ranked"] is False and groups["市直联网单位"]["best"] == []
    assert {u["unit"] for u in groups["市直联网单位"]["units"]} >= {"水务集团", "市公安局"}
    unit = groups["基层承办单位"]["units"][0]
    assert set(unit) == {"unit", "rank", "score", "assigned", "closed", "satisfaction", "on_time", "closed_rate",
                         "bonus", "penalty"}
    every = [u for g in doc["groups"] for u in g["units"]]
    assert all(u["satisfaction"] is None or 0 <= u["satisfaction"] <= 100 for u in every)
    assert any(u["satisfaction"] is None for u in every)  # some unit has nothing rated: null, not 100
    assert doc["issue"] == {"year": 2026, "number": 1, "recorded": False, "issued_on": "2026-12-05"}

    issued = json.loads(sample("report", "month", "2026-11", "--now", "2026-12-05 09:00", "--issue", "--json").out)
    assert issued["issue"] == {"year": 2026, "number": 1, "recorded": True, "issued_on": "2026-12-05"}
    again = json.loads(sample("report", "month", "2026-11", "--now", "2026-12-09 09:00", "--issue", "--json").out)
    assert again["issue"]["number"] == 1 and again["issue"]["issued_on"] == "2026-12-05"  # the same issue
    nxt = json.loads(sample("report", "month", "2026-12", "--now", "2026-12-31 09:00", "--issue", "--json").out)
    assert nxt["issue"]["number"] == 2
    new_year = json.loads(sample("report", "month", "2027-01", "--now", "2027-02-03 09:00", "--json").out)
    assert new_year["issue"] == {"year": 2027, "number": 1, "recorded": False, "issued_on": "2027-02-03"}


def test_report_month_html_has_the_masthead_and_pdf_needs_an_output(
    sample: Callable[..., CliResult], tmp_path: Path
) -> None:
    html = sample("report", "month", "2026-11", "--now", "2026-12-05 09:00", "--format", "html", "--issue")
    assert html.code == 0 and "2026 年第 1 期" in html.out and "营商环境建设领导小组办公室" in html.out
    assert "二、“评优评差”情况" in html.out and "附件1：市直联网单位办理指标完成情况" in html.out
    assert sample("report", "month", "2026-11", "--format", "pdf").code == 2
