from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from daemon.core.cases import FINISHED_STATUSES, Category, Satisfaction, Source, Status
from daemon.core.timeutil import LOCAL_TZ
from daemon.sources import CaseRowError, ColumnMapping, to_record


def row(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "工单编号": "2611090001",
        "来源": "省平台",
        "诉求类型": "投诉类",
        "受理时间": "2026-11-09 08:42",
        "承办单位": "兴隆台区住建局",
    }
    base.update(overrides)
    return base


def test_full_row_maps_every_field() -> None:
    record = to_record(
        row(
            办理状态="已办结",
            签收时间="2026-11-09 09:15:30",
            退件申请时间="",
            反馈时间="2026/11/13 16:20",
            办结时间="2026-11-14T10:05:00+08:00",
            延期至="",
            满意度="基本满意",
            评星="4",
            疑难件="是",
            属地="兴隆台区",
            涉及领域="城建交通类",
            问题摘要="反映小区供暖温度不达标",
            更新时间="2026-11-14 10:05",
        )
    )
    assert record.number == "2611090001"
    assert (record.source, record.category, record.status) == (
        Source.PROVINCE,
        Category.COMPLAINT,
        Status.CLOSED,
    )
    assert record.received_at == datetime(2026, 11, 9, 8, 42, tzinfo=LOCAL_TZ)
    assert record.signed_at == datetime(2026, 11, 9, 9, 15, 30, tzinfo=LOCAL_TZ)
    assert record.return_requested_at is None
    assert record.fed_back_at == datetime(2026, 11, 13, 16, 20, tzinfo=LOCAL_TZ)
    assert record.closed_at == datetime(2026, 11, 14, 2, 5, tzinfo=UTC)
    assert record.satisfaction is Satisfaction.BASICALLY_SATISFIED
    assert record.stars == 4
    assert record.difficult is True
    assert (record.district, record.domain) == ("兴隆台区", "城建交通类")
    assert record.source_updated_at == datetime(2026, 11, 14, 10, 5, tzinfo=LOCAL_TZ)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-09 08:42", datetime(2026, 11, 9, 8, 42, tzinfo=LOCAL_TZ)),
        ("2026-11-09 08:42:07", datetime(2026, 11, 9, 8, 42, 7, tzinfo=LOCAL_TZ)),
        ("2026/11/9 8:05", datetime(2026, 11, 9, 8, 5, tzinfo=LOCAL_TZ)),
        ("2026-11-09T00:42:00Z", datetime(2026, 11, 9, 8, 42, tzinfo=LOCAL_TZ)),
        ("2026-11-09T08:42:00+08:00", datetime(2026, 11, 9, 8, 42, tzinfo=LOCAL_TZ)),
        ("2026-11-09 08:42:00.250", datetime(2026, 11, 9, 8, 42, 0, 250000, tzinfo=LOCAL_TZ)),
        ("2026年11月9日 8:05", datetime(2026, 11, 9, 8, 5, tzinfo=LOCAL_TZ)),
        # as offices export them (issue 12 item 5); rejected before
        ("2026年11月3日9时05分", datetime(2026, 11, 3, 9, 5, tzinfo=LOCAL_TZ)),
        ("2026.11.03 09:05", datetime(2026, 11, 3, 9, 5, tzinfo=LOCAL_TZ)),
        ("2026.11.3 9:05:30", datetime(2026, 11, 3, 9, 5, 30, tzinfo=LOCAL_TZ)),
        ("46329.378472222", datetime(2026, 11, 3, 9, 5, tzinfo=LOCAL_TZ)),  # an Excel serial exported as text
        (46329.378472222, datetime(2026, 11, 3, 9, 5, tzinfo=LOCAL_TZ)),  # an XLSX number cell, to the second
        (datetime(2026, 11, 9, 8, 42), datetime(2026, 11, 9, 8, 42, tzinfo=LOCAL_TZ)),
        (datetime(2026, 11, 9, 0, 42, tzinfo=UTC), datetime(2026, 11, 9, 8, 42, tzinfo=LOCAL_TZ)),
    ],
)
def test_time_formats(text: object, expected: datetime) -> None:
    received = to_record(row(受理时间=text)).received_at
    assert received == expected
    assert received.utcoffset() is not None


def test_offset_is_kept() -> None:
    received = to_record(row(受理时间="2026-11-09T08:42:00-05:00")).received_at
    assert received.utcoffset() == timedelta(hours=-5)
    assert received.astimezone(timezone.utc) == datetime(2026, 11, 9, 13, 42, tzinfo=UTC)  # noqa: UP017


@pytest.mark.parametrize(
    "bad", ["2026-11-31 10:00", "2026-11-09 25:00", "11月17日下午", "2026-11-09", "soon", "2026.13.03 09:05",
            "2026年11月3日", "2026.11.03", "4632"]
)
def test_malformed_time_names_column_and_value(bad: str) -> None:
    with pytest.raises(CaseRowError) as info:
        to_record(row(受理时间=bad))
    assert info.value.field == "受理时间"
    assert f"受理时间 (received_at) {bad!r} is not a time" in str(info.value)
    assert "YYYY-MM-DD HH:MM" in str(info.value)


def test_alternative_received_header_is_accepted() -> None:
    data = row()
    del data["受理时间"]
    data["交办时间"] = "2026-11-10 09:00"
    assert to_record(data).received_at == datetime(2026, 11, 10, 9, tzinfo=LOCAL_TZ)


def test_unknown_source_names_column_value_valid_words_and_config_key() -> None:
    with pytest.raises(CaseRowError) as info:
        to_record(row(来源="市直"), ColumnMapping(config_key="sources.platform_export"))
    message = str(info.value)
    assert message.startswith("来源 (source) '市直' is not a known source; valid: 省平台")
    assert "市级" in message and "热线" in message
    assert "sources.platform_export.values.source" in message
    assert (info.value.field, info.value.value) == ("来源", "市直")


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("诉求类型", "表扬", "投诉"),
        ("满意度", "很好", "基本满意"),
        ("疑难件", "也许", "是"),
    ],
)
def test_unknown_value_words(column: str, value: str, words: str) -> None:
    with pytest.raises(CaseRowError) as info:
        to_record(row(**{column: value}))
    assert info.value.field == column
    assert f"{column} (" in str(info.value) and repr(value) in str(info.value) and words in str(info.value)


def test_an_unknown_status_word_is_an_open_case_with_a_warning_not_an_error() -> None:
    """An unknown 办理状态 (冻结) leaves the status to the times, as an empty cell does, and the row's warning
    names the word, the valid words and where to map it (before: a CaseRowError, the case not imported)."""
    cells = row(办理状态="冻结")
    builder = ColumnMapping(config_key="sources.platform_export").builder(cells.keys())
    record, warning = builder.build_noted(list(cells.values()))
    assert record.status == to_record(row(办理状态="")).status
    assert record.status not in FINISHED_STATUSES
    assert warning is not None
    assert warning.startswith("办理状态 (status) '冻结' is not a known status word; valid: 待签收, 已交办")
    assert "挂起" in warning and "已归档" in warning and "sources.platform_export.values.status" in warning
    assert warning.endswith(f"with the status its times show: {record.status.value}")
    assert builder.build_noted(list(row(办理状态="挂起").values()))[1] is None


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (
            {"来源": "12345", "诉求类型": "政策咨询", "办理状态": "待回访"},
            (Source.CITY, Category.INQUIRY, Status.FED_BACK),
        ),
        (
            {"来源": "话务端", "诉求类型": "意见建议", "办理状态": "退件中"},
            (Source.HOTLINE, Category.SUGGESTION, Status.RETURN_REQUESTED),
        ),
        (
            {"来源": "province", "诉求类型": "REPORT", "办理状态": "returned"},
            (Source.PROVINCE, Category.REPORT, Status.RETURNED),
        ),
        (
            {"来源": "8890", "诉求类型": "求助", "办理状态": "跟踪"},
            (Source.CITY, Category.HELP, Status.SIGNED),
        ),
    ],
)
def test_default_and_english_value_words(words: dict[str, str], expected: tuple[object, ...]) -> None:
    record = to_record(row(**words))
    assert (record.source, record.category, record.status) == expected


@pytest.mark.parametrize("stars", ["0", "6", "-1", "4.5", "很多"])
def test_stars_outside_1_to_5_is_an_error(stars: str) -> None:
    with pytest.raises(CaseRowError, match=r"评星 \(stars\) .* valid: 1 to 5"):
        to_record(row(评星=stars))


@pytest.mark.parametrize(("stars", "expected"), [("5", 5), (3.0, 3), ("4星", 4), ("五星", 5), (1, 1)])
def test_stars_forms(stars: object, expected: int) -> None:
    assert to_record(row(评星=stars)).stars == expected


@pytest.mark.parametrize("column", ["签收时间", "反馈时间", "办结时间"])
def test_step_before_receipt_is_an_error(column: str) -> None:
    with pytest.raises(CaseRowError) as info:
        to_record(row(**{column: "2026-11-09 08:41"}))
    assert info.value.field == column
    assert "is before 受理时间 (2026-11-09 08:42)" in str(info.value)


def test_required_cells() -> None:
    with pytest.raises(CaseRowError, match=r"承办单位 \(unit\) is empty"):
        to_record(row(承办单位="  "))
    with pytest.raises(CaseRowError, match=r"受理时间 \(received_at\) is empty"):
        to_record(row(受理时间=""))
    data = row()
    del data["来源"]
    with pytest.raises(CaseRowError, match=r"来源 \(source\) is missing"):
        to_record(data)


def test_empty_optional_cells_are_none_and_status_is_inferred() -> None:
    record = to_record(
        row(办理状态="", 签收时间="2026-11-09 10:00", 反馈时间=" ", 满意度="", 评星="", 属地="")
    )
    assert record.status is Status.SIGNED
    assert (record.fed_back_at, record.satisfaction, record.stars, record.district) == (
        None,
        None,
        None,
        None,
    )
    assert to_record(row()).status is Status.DISPATCHED


@pytest.mark.parametrize("text", ["2026年11月30日", "2026.11.30", "2026/11/30", "46356", 46356])
def test_extension_dates_as_offices_write_them_mean_through_that_day(text: object) -> None:
    record = to_record(row(延期至=text))
    assert record.extended_due_at == datetime(2026, 12, 1, tzinfo=LOCAL_TZ)


def test_extension_date_means_through_that_day() -> None:
    assert to_record(row(延期至="2026-11-27")).extended_due_at == datetime(2026, 11, 28, tzinfo=LOCAL_TZ)
    assert to_record(row(延期至="2026-11-27 18:00")).extended_due_at == datetime(
        2026, 11, 27, 18, tzinfo=LOCAL_TZ
    )


def test_english_field_names_work_as_headers() -> None:
    record = to_record(
        {
            "number": "A1",
            "source": "city",
            "category": "inquiry",
            "received_at": "2026-11-09T08:42:00+08:00",
            "unit": "市教育局",
            "stars": 5,
        }
    )
    assert (record.number, record.source, record.stars) == ("A1", Source.CITY, 5)


def test_configured_headers_and_value_words() -> None:
    mapping = ColumnMapping.model_validate(
        {
            "columns": {"number": "工单号", "received_at": ["派单时间", "受理时间"], "unit": "办理部门"},
            "values": {
                "source": {"市直": "city"},
                "status": {"已结案": "fed_back"},
                "difficult": {"难": True},
            },
        }
    )
    record = to_record(
        {
            "工单号": "4015678",
            "来源": "市直",
            "诉求类型": "投诉",
            "派单时间": "2026-11-09 08:00",
            "办理部门": "住建局",
            "办理状态": "已结案",
            "疑难件": "难",
        },
        mapping,
    )
    assert (record.number, record.source, record.unit, record.status) == (
        "4015678",
        Source.CITY,
        "住建局",
        Status.FED_BACK,
    )
    assert record.difficult is True
    assert to_record(row(来源="省平台"), ColumnMapping()).source is Source.PROVINCE  # defaults still there


@pytest.mark.parametrize(
    "config",
    [
        {"columns": {"numbr": "工单号"}},
        {"columns": {"number": []}},
        {"values": {"source": {"市直": "municipal"}}},
        {"value": {}},
    ],
)
def test_bad_mapping_config_is_rejected(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ColumnMapping.model_validate(config)


# --- the fast path of RecordBuilder.build must agree with the checked path, record for record ----------

_FAST_HEADERS = ("工单编号", "来源", "诉求类型", "受理时间", "承办单位", "办理状态", "签收时间", "反馈时间", "办结时间",
                 "退件申请时间", "延期至", "满意度", "评星", "疑难件", "属地", "涉及领域", "问题摘要", "更新时间")


def _fast_row(**cells: object) -> list[object]:
    base: dict[str, object] = dict.fromkeys(_FAST_HEADERS, "")
    base.update({"工单编号": "2611090001", "来源": "省平台", "诉求类型": "投诉", "受理时间": "2026-11-09 08:42:07",
                 "承办单位": "兴隆台区住建局"})
    base.update(cells)
    return list(base.values())


@pytest.mark.parametrize("cells", [
    {},
    {"办理状态": "已办结", "签收时间": "2026-11-09 09:15", "反馈时间": "2026-11-10 10:00:00",
     "办结时间": "2026-11-11 10:00:00", "满意度": "满意", "评星": "5", "疑难件": "是", "属地": "兴隆台区"},
    {"办理状态": "", "签收时间": "2026-11-09 09:15:00"},  # status inferred
    {"办理状态": "  ", "反馈时间": "2026-11-10 10:00"},
    {"办理状态": "冻结", "签收时间": "2026-11-09 09:15:00"},  # unknown word: the times decide, with a warning
    {"受理时间": datetime(2026, 11, 9, 8, 42)},  # an XLSX cell
    {"受理时间": datetime(2026, 11, 9, 0, 42, tzinfo=UTC)},
    {"受理时间": "2026-11-09T08:42:00+08:00"},
    {"受理时间": "2026-11-09 8:42"},
    {"受理时间": "2026-02-30 08:42:00"},  # no such day
    {"受理时间": "2026-11-09 24:00:00"},
    {"受理时间": "２０２６-11-09 08:42:00"},  # full-width digits
    {"受理时间": ""},
    {"签收时间": "2026-11-08 09:00:00"},  # before receipt
    {"来源": "市直"}, {"来源": ""}, {"诉求类型": " 投诉 "}, {"来源": "CITY"},
    {"评星": "四星"}, {"评星": "6"}, {"评星": 4}, {"评星": " "},
    {"疑难件": "也许"}, {"疑难件": True}, {"疑难件": "YES"},
    {"满意度": "很好"}, {"延期至": "2026-11-20"}, {"工单编号": " "}, {"工单编号": 2611090002.0},
    {"承办单位": None}, {"更新时间": "2026/11/09 09:00"},
])
def test_fast_build_agrees_with_the_checked_build(cells: dict[str, object]) -> None:
    builder = ColumnMapping().builder(_FAST_HEADERS)
    values = _fast_row(**cells)
    for attempt in range(2):  # the second time through the memoised value words
        try:
            fast: object = builder.build_noted(values)
        except CaseRowError as exc:
            fast = ("error", str(exc))
        try:
            checked: object = builder._build_checked(values)
        except CaseRowError as exc:
            checked = ("error", str(exc))
        assert fast == checked, attempt


def test_fast_build_agrees_on_the_sample_export() -> None:
    import csv
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "samples" / "cases.csv"
    with sample.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    builder = ColumnMapping().builder(rows[0])
    for values in rows[1:]:
        results = []
        for build in (builder.build_noted, builder._build_checked):
            try:
                results.append(build(values))
            except CaseRowError as exc:
                results.append(str(exc))
        assert results[0] == results[1], values
