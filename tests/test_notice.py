"""``calendar import-notice``: the State Council's notice text → the override file, checked.

The texts in tests/data/notices/ are the published notices (2012.txt is stored as GB18030, as an office
PC may save it). The parse must give chinese_calendar's working days exactly, day by day.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from daemon.core.calendar import DaySource, WorkCalendar
from daemon.core.holidays import load_override_file
from daemon.core.notice import Notice, NoticeError, decode_notice, parse_notice

NOTICES = Path(__file__).resolve().parent / "data" / "notices"

# Days chinese_calendar has from a later, separate notice, not from the year's arrangement notice:
LATER_NOTICES = {
    2015: {date(2015, 9, 3), date(2015, 9, 4), date(2015, 9, 6)},  # 抗战胜利70周年纪念日 (国发明电〔2015〕3号)
    2019: {date(2019, 4, 28), date(2019, 5, 2), date(2019, 5, 3), date(2019, 5, 5)},  # 劳动节 adjusted in March 2019
    2020: {date(2020, 1, 31), date(2020, 2, 1)},  # 春节 extended for COVID-19 (国办发明电〔2020〕1号)
}


def _notice(year: int) -> Notice:
    return parse_notice(decode_notice((NOTICES / f"{year}.txt").read_bytes()))


def _is_workday(notice: Notice, day: date) -> bool:
    return day in notice.makeup_days or (day not in notice.rest_days and day.weekday() < 5)


@pytest.mark.parametrize("year", [2012, 2015, 2019, 2020, 2022, 2023, 2024, 2025, 2026])
def test_real_notices_reproduce_chinese_calendar(year: int) -> None:
    notice = _notice(year)
    assert notice.year == year
    day, mismatches = date(year, 1, 1), []
    while day.year == year:
        if day not in LATER_NOTICES.get(year, set()) and _is_workday(notice, day) != chinese_calendar.is_workday(day):
            mismatches.append(day)
        day += timedelta(days=1)
    # the days a notice moves in the previous December
    december = [d for d in [*notice.rest_days, *notice.makeup_days] if d.year == year - 1]
    mismatches += [d for d in december if _is_workday(notice, d) != chinese_calendar.is_workday(d)]
    assert mismatches == []
    # and no listed make-up day is missing: the package's make-up days of the year are exactly the notice's
    later = LATER_NOTICES.get(year, set())
    package_makeup = {d for d in chinese_calendar.workdays if d.year == year} - later
    assert {d for d in notice.makeup_days if d.year == year} - later == package_makeup


def test_six_years_match_without_any_exception() -> None:
    exact = [y for y in (2012, 2015, 2019, 2020, 2022, 2023, 2024, 2025, 2026) if y not in LATER_NOTICES]
    assert len(exact) >= 6


def test_phrasings_previous_december_numbers_and_blocks() -> None:
    n2019 = _notice(2019)
    assert n2019.number == "国办发明电〔2018〕15号"
    assert [date(2018, 12, 30), date(2018, 12, 31), date(2019, 1, 1)] == list(n2019.blocks[0].rest_days)
    assert n2019.makeup_days[date(2018, 12, 29)] == "元旦调休上班"
    n2012 = _notice(2012)  # GB18030 on disk
    with pytest.raises(UnicodeDecodeError):
        (NOTICES / "2012.txt").read_bytes().decode("utf-8")
    assert n2012.makeup_days[date(2011, 12, 31)] == "元旦调休上班"
    assert n2012.blocks[-1].name == "中秋节、国庆节" and n2012.blocks[-1].total == 8
    n2015 = _notice(2015)  # 补休, and 放假 without 共N天
    assert {date(2015, 4, 5), date(2015, 4, 6)} <= n2015.rest_days.keys()
    n2025 = _notice(2025)  # 放假1天，不调休; lunar and weekday annotations; a range across months
    assert n2025.blocks[0].total == 1 and n2025.blocks[1].rest_days[-1] == date(2025, 2, 4)
    n2026 = _notice(2026)
    assert len(n2026.blocks[1].rest_days) == 9 and n2026.number is None


def _reason(text: str, year: int | None = None) -> NoticeError:
    with pytest.raises(NoticeError) as exc:
        parse_notice(text, year=year)
    return exc.value


TITLE = "国务院办公厅关于2027年部分节假日安排的通知\n"


@pytest.mark.parametrize(
    ("body", "reason", "sentence"),
    [
        ("二、春节：2月5日至13日放假调休。", "without its length 共N天", "2月5日至13日放假调休"),
        ("二、春节：2月30日放假。", "2027年2月30日 is not a date", "2月30日放假"),
        ("二、春节：2月5日至13日放假调休，共8天。", "共8天 but its dates give 9 day(s)", "2月5日至13日放假调休，共8天"),
        ("二、春节：2月5日至12日放假调休，共8天。2月17日（星期三）上班。", "is a 周三",
         "2月17日（星期三）上班"),
        ("二、春节：2月5日（星期六）放假。", "is a 周五, but the notice says 星期六", "2月5日（星期六）放假"),
        ("一、元旦：2025年12月31日至2027年1月1日放假，共367天。", "outside 2027 and outside December 2026",
         "元旦"),
        ("二、春节：2月5日放假。三、清明节：2月5日放假。", "listed twice", "清明节"),
    ],
)
def test_malformed_notices_name_the_sentence(body: str, reason: str, sentence: str) -> None:
    exc = _reason(TITLE + body)
    assert reason in exc.reason
    assert sentence in exc.sentence


def test_a_notice_without_a_year_needs_year() -> None:
    assert "pass --year" in str(_reason("二、春节：2月5日放假。"))
    assert parse_notice("二、春节：2月5日放假。", year=2027).rest_days == {date(2027, 2, 5): "春节"}


def test_import_notice_writes_the_override_the_calendar_loads(cli, tmp_path: Path) -> None:
    out = tmp_path / "holidays" / "2019.yaml"
    r = cli("calendar", "import-notice", str(NOTICES / "2019.txt"), "--output", str(out))
    assert r.code == 0, r.err
    assert "2018年12月29日（周六）" in r.out and "国办发明电〔2018〕15号" in r.out
    override = load_override_file(out)
    assert override.notice == "国办发明电〔2018〕15号"
    cal = WorkCalendar.load(overrides_dir=out.parent)
    assert cal.year_source(2019) is DaySource.OVERRIDE
    assert cal.is_workday(date(2018, 12, 29)) and not cal.is_workday(date(2018, 12, 31))
    # never overwrite without --force
    again = cli("calendar", "import-notice", str(NOTICES / "2024.txt"), "--output", str(out))
    assert again.code == 2 and "--force" in again.err and "2019" in out.read_text(encoding="utf-8")
    forced = cli("calendar", "import-notice", str(NOTICES / "2012.txt"), "--output", str(out), "--force", "--json")
    assert forced.code == 0
    doc = json.loads(forced.out)
    assert doc["year"] == 2012 and doc["blocks"][0]["makeup_days"] == ["2011-12-31"]


def test_import_notice_default_path_is_the_holidays_dir(cli, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(f"rules_dir: {tmp_path / 'rules'}\n", encoding="utf-8")
    r = cli("--config", str(tmp_path / "config.yaml"), "calendar", "import-notice", "-",
            stdin=(NOTICES / "2024.txt").read_text(encoding="utf-8"))
    assert r.code == 0, r.err
    assert (tmp_path / "rules" / "holidays" / "2024.yaml").is_file()


def test_import_notice_refuses_a_broken_text_with_exit_2(cli, tmp_path: Path) -> None:
    bad = tmp_path / "notice.txt"
    bad.write_text(TITLE + "二、春节：2月5日至13日放假调休，共8天。2月14日（周日）上班。", encoding="gb18030")
    r = cli("calendar", "import-notice", str(bad), "--output", str(tmp_path / "2027.yaml"))
    assert r.code == 2 and "共8天" in r.err and "2月5日至13日" in r.err
    assert not (tmp_path / "2027.yaml").exists()
    j = cli("calendar", "import-notice", str(bad), "--output", str(tmp_path / "2027.yaml"), "--json")
    assert j.code == 2 and json.loads(j.out)["sentence"].startswith("2月5日至13日")


# The 2008 notice's first five items as published (国办发明电〔2007〕40号): "—" ranges, 其中 commentary with the
# 上班 clause inside it, a bare 12月 meaning the previous December, “五一”国际劳动节.
NOTICE_2008_ITEMS = """国务院办公厅关于2008年部分节假日安排的通知
一、元旦：2007年12月30日—2008年1月1日放假，共3天。其中：1月1日（星期二）为法定节假日，12月30日（星期日）为公休日，
12月29日（星期六）公休日调至12月31日（星期一），12月29日（星期六）上班。
二、春节：2月6日—12日（即农历除夕至正月初六）放假，共7天。其中，2月6日（除夕）、2月7日（春节）、2月8日（正月初二）为
法定节假日，2月9日（星期六）、2月10日（星期日）照常公休，将2月2日（星期六）、2月3日（星期日）两个公休日调至2月11日（星期一）、
2月12日（星期二），2月2日（星期六）、2月3日（星期日）上班。
三、清明节：4月4日—6日放假，共3天。其中：4月4日（清明节），为法定节假日，4月5日（星期六）、4月6日（星期日）照常公休。
四、“五一”国际劳动节：5月1日—3日放假，共3天。其中，5月1日为法定节假日，5月3日（星期六）为公休日，5月4日（星期日）公休日
调至5月2日（星期五），5月4日（星期日）上班。
五、端午节：6月7日—9日放假，共3天。其中：6月7日（星期六）照常公休，6月8日（农历五月初五，端午节）为法定节假日，6月8日
（星期日）公休日调至6月9日（星期一）。
"""


def test_the_2008_phrasing_with_its_commentary() -> None:
    notice = parse_notice(NOTICE_2008_ITEMS)
    assert notice.year == 2008 and [b.name for b in notice.blocks][3] == "五一国际劳动节"
    assert notice.makeup_days.keys() == {date(2007, 12, 29), date(2008, 2, 2), date(2008, 2, 3), date(2008, 5, 4)}
    assert len(notice.rest_days) == 3 + 7 + 3 + 3 + 3
    listed = [*notice.rest_days, *notice.makeup_days]
    assert [d for d in listed if _is_workday(notice, d) != chinese_calendar.is_workday(d)] == []
    assert all(_is_workday(notice, d) == chinese_calendar.is_workday(d)
               for d in (date(2008, 1, 1) + timedelta(days=i) for i in range(160)))
