"""The monthly 通报 in each format: the structure a supervisor relies on (masthead, numbered sections, charts,
print CSS; XLSX page setup, print titles, borders, date cells, formula guard; JSON shape)."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from daemon.config import MastheadConfig, ScoringConfig
from daemon.reports.charts import bar_chart, pie_chart
from daemon.reports.ranking import MonthlyRanking, RankingGroups, monthly_ranking
from daemon.reports.ranking_render import render_html, render_json, render_markdown, render_pdf, render_xlsx
from daemon.reports.ranking_tables import Masthead, chinese_number, ranking_sections
from daemon.reports.xlsx_writer import display_width, fitted_widths, wrap_text
from tests.test_ranking import AFTER_APRIL, S, april_cases, at, case

GROUPS = RankingGroups(of_unit={"市公安局": "市直联网单位", "=HYPERLINK(\"http://x\")": "市直联网单位"},
                       default="县区基层单位", ranked=("县区基层单位",))
MASTHEAD = Masthead.of(
    MastheadConfig(title="盘锦市营商环境建设情况通报", subtitle="（8890 专题）", office="市营商环境建设局",
                   submit_to="市委书记，副书记；市长，副市长。", copy_to="各县、区人民政府。", copies=100),
    year=2024, number=3, issued_on=date(2024, 5, 15), draft=False)


@pytest.fixture
def ranking() -> MonthlyRanking:
    cases = [
        *april_cases(),
        case("M1", "市公安局", at(3), at(8, 0), at(4), satisfaction=S, stars=5, domain="政务服务类"),
        case("M2", "=HYPERLINK(\"http://x\")", at(5), at(9, 0), at(6), summary="<script>x</script>", stars=3),
    ]
    return monthly_ranking(cases, 2024, 4, AFTER_APRIL, ScoringConfig(top_n=3, bottom_n=2), groups=GROUPS)


def test_sections_are_numbered_in_order_without_gaps(ranking: MonthlyRanking) -> None:
    titles = [s.title for s in ranking_sections(ranking)]
    assert titles == ["一、受理及办理情况", "二、“评优评差”情况", "三、突出问题", "附件1：市直联网单位办理指标完成情况",
                      "附件2：全部承办单位得分及加减分明细"]
    mid_month = monthly_ranking(april_cases(), 2024, 4, at(16, 0))
    assert [s.title[:2] for s in ranking_sections(mid_month)][:4] == ["一、", "二、", "三、", "四、"]
    assert [chinese_number(n) for n in (1, 10, 12, 20, 21)] == ["一", "十", "十二", "二十", "二十一"]


def test_html_is_an_issued_bulletin_for_a4(ranking: MonthlyRanking) -> None:
    html = render_html(ranking, MASTHEAD)
    assert html.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in html
    head = html.index('<header class="masthead">')
    assert html.index("盘锦市营商环境建设情况通报", head) < html.index("市营商环境建设局", head) < html.index(
        "2024 年第 3 期", head)
    positions = [html.index(f"<h2>{t}</h2>") for t in ("一、受理及办理情况", "二、“评优评差”情况", "三、突出问题")]
    assert positions == sorted(positions)
    assert html.count("<svg") == 2 and "案件比例" in html and "各承办单位超期件数" in html
    assert "<script" not in html and "<link" not in html and "&lt;script&gt;" in html
    assert "size: A4" in html and "display: table-header-group" in html and "break-inside: avoid" in html
    assert "报送：市委书记，副书记；市长，副市长。" in html and "抄送：各县、区人民政府。" in html
    assert "2024 年 5 月 15 日印发" in html and "（共印 100 份）" in html
    assert "表一：“十佳”县区基层单位" in html and "表二：“较差”县区基层单位" in html and "表三：提请约谈" in html
    assert '<td class="num">—</td>' in html  # 乙二所: nothing rated


def test_draft_masthead_says_it_is_not_numbered(ranking: MonthlyRanking) -> None:
    html = render_html(ranking)
    assert "2024 年第 __ 期（样稿，未登记期号）" in html


def test_markdown_keeps_the_order_and_escapes_pipes(ranking: MonthlyRanking) -> None:
    text = render_markdown(ranking, MASTHEAD)
    assert text.startswith("**盘锦市营商环境建设情况通报**")
    assert "| 2 | 乙二所 | 2 | 2 | — | 100.00% | 100.00% | 0.00 | 0.00 | 10.00 |" in text
    assert "噪音｜扰民" in text  # a pipe in a summary is shown as text (daemon/escaping.py), not a cell break
    assert text.rstrip().endswith("2024 年 5 月 15 日印发")


def test_xlsx_prints_on_a4_with_titles_borders_and_date_cells(ranking: MonthlyRanking) -> None:
    data = render_xlsx(ranking, MASTHEAD)
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["通报", "属地", "领域", "十佳", "较差", "约谈", "低星件", "不满意件", "附件1",
                               "全部单位"]
    for name in book.sheetnames[1:]:
        sheet = book[name]
        assert sheet.page_setup.paperSize == 9 and sheet.page_setup.orientation == "landscape"
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.page_setup.fitToWidth == 1
        assert sheet.page_setup.fitToHeight == 0
        assert sheet.print_title_rows == "$1:$2"
    best = book["十佳"]
    assert [c.value for c in best[2]][:3] == ["名次", "受理单位", "交办总量"]
    assert [c.value for c in best[3]][:4] == [1, "甲街道", 4, 4]
    assert best.cell(3, 10).value == pytest.approx(10.38) and best.cell(3, 10).number_format == "0.00"
    assert best.cell(3, 5).number_format == "0.00%"
    assert best.cell(4, 5).value == "—"  # 乙二所: nothing rated
    for cell in (best.cell(2, 1), best.cell(3, 2), best.cell(5, 10)):
        assert (cell.border.left.style, cell.border.bottom.style) == ("thin", "thin")
    assert best.column_dimensions["B"].width >= display_width("受理单位") + 2
    low = book["低星件"]
    assert low.cell(2, 3).value == "交办日期" and low.cell(3, 3).is_date
    assert low.cell(3, 3).value.date() == date(2024, 4, 5) and low.cell(3, 3).number_format == "yyyy-mm-dd"
    cover = book["通报"]
    issued = next(row for row in cover.iter_rows() if row[0].value == "印发日期")[1]
    assert issued.is_date and issued.value.date() == date(2024, 5, 15)
    # formula guard: a unit named like a formula is text, never a formula
    city = book["附件1"]
    names = [city.cell(r, 2) for r in range(3, city.max_row + 1) if city.cell(r, 2).value]
    hyperlink = next(c for c in names if str(c.value).startswith("=HYPERLINK"))
    assert hyperlink.data_type == "s" and hyperlink.quotePrefix
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert not any("<f>" in z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))


def test_xlsx_notes_wrap_instead_of_running_off_the_page(ranking: MonthlyRanking) -> None:
    sheet = load_workbook(io.BytesIO(render_xlsx(ranking)))["全部单位"]
    width = sum(sheet.column_dimensions[c].width for c in "ABCDEFGHIJKLMNOPQ")
    notes = [sheet.cell(r, 1).value for r in range(1, sheet.max_row + 1)
             if str(sheet.cell(r, 1).value or "").startswith(("注", "④")) or "折算" in str(sheet.cell(r, 1).value)]
    assert notes and all(display_width(n) <= width for n in notes)


def test_width_helpers_count_cjk_double() -> None:
    assert display_width("兴隆台区ab") == 10
    assert fitted_widths([["名次", "兴隆台区住建局"], [1, "x"]], minimum=6) == [6, 16]
    assert wrap_text("一二三四五", 4) == ["一二", "三四", "五"]


def test_json_shape(ranking: MonthlyRanking) -> None:
    doc = render_json(ranking)
    assert doc["month"] == "2024-04"
    assert [g["group"] for g in doc["groups"]] == ["县区基层单位", "市直联网单位"]
    first = doc["groups"][0]["units"][0]
    assert set(first) == {"unit", "rank", "score", "assigned", "closed", "satisfaction", "on_time",
                          "closed_rate", "bonus", "penalty"}
    assert first == {"unit": "甲街道", "rank": 1, "score": 10.38, "assigned": 4, "closed": 4, "satisfaction": 100.0,
                     "on_time": 100.0, "closed_rate": 100.0, "bonus": 0.38, "penalty": 0.0}
    second = doc["groups"][0]["units"][1]
    assert (second["unit"], second["satisfaction"]) == ("乙二所", None)
    bing = next(u for u in doc["groups"][0]["units"] if u["unit"] == "丙办")
    assert bing["on_time"] == pytest.approx(66.67) and bing["closed_rate"] == pytest.approx(66.67)


def test_charts_are_svg_with_escaped_labels() -> None:
    pie = pie_chart("案件比例", [("城建<交通>类", 3), ("其他", 1), ("空", 0)])
    assert pie.startswith("<svg") and "城建&lt;交通&gt;类  3 件  75.00%" in pie and "空" not in pie
    assert pie.count("<path") == 2
    assert "<circle" in pie_chart("全部", [("只有一类", 5)])
    bars = bar_chart("超期", [("甲", 1), ("乙", 4), ("丙", 0)])
    assert bars.index("乙") < bars.index("甲") and "丙" not in bars
    assert re.search(r"<script|javascript:", pie + bars) is None


def test_pdf_rendition(ranking: MonthlyRanking) -> None:
    """Needs the optional ``pdf`` extra (WeasyPrint): skipped without it."""
    weasyprint = pytest.importorskip("weasyprint")
    pdf = render_pdf(ranking, MASTHEAD)
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    pages = weasyprint.HTML(string=render_html(ranking, MASTHEAD)).render().pages
    assert len(pages) >= 2
    assert (round(pages[0].width * 25.4 / 96), round(pages[0].height * 25.4 / 96)) == (210, 297)  # A4, in mm


def test_scores_shown_are_the_bulletins(ranking: MonthlyRanking) -> None:
    assert next(u for u in ranking.units if u.unit == "甲街道").score == Decimal("10.38")


def test_groups_from_config_win_over_the_imported_sheet_and_cover_aliases() -> None:
    from daemon.config import Config
    from daemon.reports.groups import ranking_groups

    config = Config.model_validate({
        "contacts": {"units": [{"name": "市公安局", "aliases": ["公安局"], "group": "市直"}]},
        "reports": {"default_group": "县区基层", "ranked_groups": ["县区基层", "市直"]},
    })
    groups = ranking_groups(config, {"市公安局": "其他", "水务集团": "市直"})
    units = ("市公安局", "公安局", "水务集团", "甲街道")
    assert [groups.group(u) for u in units] == ["市直", "市直", "市直", "县区基层"]
    assert groups.ranked == ("县区基层", "市直")


def test_issue_numbers_are_kept_per_series_and_year(store) -> None:  # type: ignore[no-untyped-def]
    from daemon.core.timeutil import parse_time
    from daemon.reports.issues import peek_issue, record_issue

    with store.engine.begin() as conn:
        assert peek_issue(conn, "8890", "2024-04", parse_time("2024-05-15 09:00")).number == 1
        first = record_issue(conn, "8890", "2024-04", parse_time("2024-05-15 09:00"))
        assert (first.year, first.number, first.recorded) == (2024, 1, True)
        assert record_issue(conn, "8890", "2024-04", parse_time("2024-06-01 09:00")).number == 1  # same issue
        assert record_issue(conn, "8890", "2024-05", parse_time("2024-06-14 09:00")).number == 2
        assert record_issue(conn, "12345", "2024-05", parse_time("2024-06-14 09:00")).number == 1  # other series
        assert record_issue(conn, "8890", "2024-12", parse_time("2025-01-10 09:00")).number == 1  # a new year
        assert peek_issue(conn, "8890", "2024-04", parse_time("2025-03-01 09:00")).issued_at == parse_time(
            "2024-05-15 09:00")


def test_operational_report_workbooks_print_on_a4_too() -> None:
    from daemon.reports.tabular import ReportTable, render_xlsx_book

    data = render_xlsx_book([ReportTable("超期工单", "超期工单", ("序号", "工单编号"), [(1, "2611100029")])])
    sheet = load_workbook(io.BytesIO(data))["超期工单"]
    assert (sheet.page_setup.paperSize, sheet.page_setup.orientation, sheet.page_setup.fitToWidth) == (
        9, "landscape", 1)
    assert sheet.print_title_rows == "$1:$2" and sheet.freeze_panes == "A3"
    assert [c.value for c in sheet[3]] == [1, "2611100029"]


def test_bad_report_settings_name_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from daemon.config import load_config
    from daemon.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text("reports:\n  masthead: {titel: x, copies: 0}\n  ranked_groups: []\n"
                    "contacts:\n  units: [{name: 市公安局, group: ''}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    for key in ("reports.masthead.titel", "reports.masthead.copies", "reports.ranked_groups",
                "contacts.units.0.group"):
        assert key in message
