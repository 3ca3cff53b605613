from __future__ import annotations

import tracemalloc
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from bench.gen_cases import generate
from daemon.core.cases import Source, Status
from daemon.core.timeutil import LOCAL_TZ
from daemon.errors import UsageError
from daemon.sources import (
    ColumnMapping,
    EncodingError,
    HeaderError,
    mark_duplicates,
    read_case_file,
)
from tests.sources.conftest import GOOD_ROW, HEADERS, csv_text

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_encodings_with_chinese_content(write_csv, encoding: str) -> None:  # type: ignore[no-untyped-def]
    second = (
        "2611090002",
        "市级",
        "咨询",
        "2026/11/9 10:12",
        "兴海街道办事处",
        "",
        "",
        "兴隆台区",
        "咨询医保异地报销政策",
    )
    path = write_csv([GOOD_ROW, second], encoding=encoding)
    results = list(read_case_file(path))
    assert [r.row for r in results] == [2, 3]
    assert all(r.error is None for r in results)
    first, other = (r.record for r in results)
    assert first is not None and other is not None
    assert first.unit == "兴隆台区住建局" and first.summary == "反映小区供暖温度不达标"
    assert other.source is Source.CITY and other.received_at == datetime(2026, 11, 9, 10, 12, tzinfo=LOCAL_TZ)


def test_gbk_after_an_ascii_only_first_mebibyte_switches_encoding(tmp_path: Path) -> None:
    english = (
        "number",
        "source",
        "category",
        "received_at",
        "unit",
        "status",
        "signed_at",
        "district",
        "summary",
    )
    ascii_rows = [
        (f"A{i:07d}", "city", "inquiry", "2026-11-09 08:00", "unit-x", "", "", "", "x" * 40)
        for i in range(15_000)
    ]
    text = csv_text([*ascii_rows, GOOD_ROW], headers=english)
    data = text.encode("gb18030")
    assert data[: 1 << 20].isascii()
    path = tmp_path / "late-gbk.csv"
    path.write_bytes(data)
    results = list(read_case_file(path))
    assert len(results) == 15_001
    assert [r.row for r in results[:2]] == [2, 3] and results[-1].row == 15_002
    last = results[-1].record
    assert last is not None and last.unit == "兴隆台区住建局"


def test_undecodable_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(",".join(HEADERS).encode("utf-8") + b"\n\xff\xfe\xff,\x80\xff\n" * 10)
    with pytest.raises(EncodingError) as info:
        list(read_case_file(path))
    assert str(path) in str(info.value)
    assert "UTF-8" in str(info.value) and "GB18030" in str(info.value)
    assert isinstance(info.value, UsageError)


def test_utf16_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "unicode.csv"
    path.write_bytes(csv_text([GOOD_ROW]).encode("utf-16"))
    with pytest.raises(EncodingError, match="UTF-16"):
        read_case_file(path)


def test_xlsx_with_datetime_cells_and_row_numbers(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    cover = workbook.active
    cover.title = "说明"
    cover.append(["导出说明"])
    sheet = workbook.create_sheet("工单")
    sheet.append([*list(HEADERS), "评星"])
    sheet.append(
        [
            4015678,
            "省平台",
            "投诉",
            datetime(2026, 11, 9, 8, 42),
            "住建局",
            "已签收",
            datetime(2026, 11, 9, 9, 15, 30),
            "兴隆台区",
            "反映不动产办理问题",
            4,
        ]
    )
    sheet.append([])  # an empty row keeps its number
    sheet.append(["4059468", "话务端", "投诉", "2026-11-10 10:00", None, None, None, None, None, None])
    sheet.append(
        ["4059469", "市级", "咨询", datetime(2026, 11, 10, 11, 0), "兴隆街道", None, None, None, None, 4.0]
    )
    path = tmp_path / "cases.xlsx"
    workbook.save(path)

    results = list(read_case_file(path, sheet="工单"))
    assert [r.row for r in results] == [2, 4, 5]
    first = results[0].record
    assert first is not None
    assert first.number == "4015678"  # a numeric cell, not '4015678.0'
    assert first.received_at == datetime(2026, 11, 9, 8, 42, tzinfo=LOCAL_TZ)
    assert first.signed_at == datetime(2026, 11, 9, 9, 15, 30, tzinfo=LOCAL_TZ)
    assert first.status is Status.SIGNED and first.stars == 4
    assert results[1].error is not None and "承办单位" in results[1].error and results[1].number == "4059468"
    assert results[2].record is not None and results[2].record.stars == 4

    with pytest.raises(HeaderError):  # the first sheet is the cover page
        read_case_file(path)
    with pytest.raises(UsageError, match="no sheet '汇总'; sheets: 说明, 工单"):
        list(read_case_file(path, sheet="汇总"))


def test_sample_file_good_rows_and_exact_bad_rows() -> None:
    results = list(read_case_file(SAMPLES / "cases.csv"))
    assert len(results) == 59
    assert sum(r.ok for r in results) == 56
    bad = {r.row: r.error for r in results if not r.ok}
    assert sorted(bad) == [14, 33, 51]
    assert "来源 (source) '市直' is not a known source" in str(bad[14])
    assert "受理时间 (received_at) '11月17日下午' is not a time" in str(bad[33])
    assert "承办单位 (unit) is empty" in str(bad[51])
    statuses = {r.record.status for r in results if r.record is not None}
    # the case life's statuses are in samples/platform_export.csv (tests/test_case_life.py)
    assert statuses == set(Status) - {Status.SUSPENDED, Status.REOPENED, Status.EXTENSION_PENDING}


def test_missing_required_columns(write_csv) -> None:  # type: ignore[no-untyped-def]
    path = write_csv([("1", "市级", "兴隆台区住建局")], headers=("工单编号", "来源", "单位"))
    with pytest.raises(HeaderError) as info:
        read_case_file(path)
    message = str(info.value)
    assert str(path) in message
    assert (
        "missing required columns 诉求类型 (category), 交办时间 or 派单时间 or 转办时间 or 接件时间 or 受理时间 "
        "or 来电时间 (received_at), 承办单位 (unit)"
        in message
    )
    assert "found in row 1: 工单编号, 来源, 单位" in message
    assert "required: 工单编号 (number), 来源 (source)" in message
    assert isinstance(info.value, UsageError)


def test_empty_file_and_wrong_type(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(HeaderError, match="no header row"):
        read_case_file(empty)
    old = tmp_path / "cases.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(UsageError, match=r"\.xls is not supported"):
        read_case_file(old)
    with pytest.raises(UsageError, match="no such file"):
        read_case_file(tmp_path / "missing.csv")


def test_configured_header_names(write_csv) -> None:  # type: ignore[no-untyped-def]
    headers = ("工单号", "渠道", "类别", "派单时间", "办理部门")
    path = write_csv(
        [("W1", "市平台", "举报", "2026-11-12 16:20", "兴隆台区市场监督管理局")], headers=headers
    )
    mapping = ColumnMapping.model_validate(
        {
            "columns": {
                "number": "工单号",
                "source": "渠道",
                "category": "类别",
                "received_at": "派单时间",
                "unit": "办理部门",
            }
        }
    )
    (result,) = read_case_file(path, mapping)
    assert result.record is not None and result.record.unit == "兴隆台区市场监督管理局"
    with pytest.raises(HeaderError):
        read_case_file(path)  # the default mapping does not know these headers


def test_duplicates_later_row_wins_with_a_note(write_csv) -> None:  # type: ignore[no-untyped-def]
    newer = (*GOOD_ROW[:5], "已办结", *GOOD_ROW[6:])
    path = write_csv([GOOD_ROW, ("2611090009", *GOOD_ROW[1:]), newer])
    plain = list(read_case_file(path))
    assert [r.note for r in plain] == [None, None, None]  # the streaming reader remembers nothing
    marked = list(mark_duplicates(read_case_file(path)))
    assert [r.note for r in marked[:2]] == [None, None]
    assert marked[2].note == "工单编号 (number) '2611090001' is also in row 2; row 4, the later one, is kept"
    assert marked[2].record is not None and marked[2].record.status is Status.CLOSED


@pytest.mark.slow  # 200,000 rows under tracemalloc: ~24 s
def test_streaming_memory_stays_flat(tmp_path: Path) -> None:
    """200,000 generated cases read under tracemalloc: the peak must not grow with the file.

    Only the columns the reader must parse for every case are kept, to keep tracemalloc's overhead (it
    traces every allocation) at a few seconds; which columns there are does not change what is held.
    """
    path = tmp_path / "big.csv"
    keep = ("工单编号", "来源", "诉求类型", "受理时间", "承办单位", "办理状态", "问题摘要")
    rows = ({k: row[k] for k in keep} for row in generate(200_000, seed=3, end=date(2026, 11, 20)))
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        fh.write(",".join(keep) + "\n")
        for row in rows:
            fh.write(",".join(row.values()) + "\n")
    good = 0
    tracemalloc.start()
    try:
        for result in read_case_file(path):
            good += result.ok
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert good == 200_000
    assert path.stat().st_size > 20_000_000
    # materialising the records would take hundreds of MB; a streaming read needs the 1 MiB encoding sample
    # and a few rows in flight
    assert peak < 8_000_000, f"peak {peak} bytes: rows are being kept"


def test_generator_is_deterministic_and_shaped_like_the_bulletins() -> None:
    first = list(generate(2_000, seed=11))
    assert first == list(generate(2_000, seed=11))
    assert first != list(generate(2_000, seed=12))
    share = sum(r["涉及领域"] == "城建交通类" for r in first) / len(first)
    assert 0.30 < share < 0.38
    assert len({r["工单编号"] for r in first}) == 2_000


def test_a_giant_field_rejects_its_row_and_memory_stays_bounded_by_the_limit(tmp_path: Path) -> None:
    """Before: csv's 128 KiB field limit ended the import at the row (exit 2), after reading the whole line
    into memory (a 200 MB one-row file took 660 MB); the rows after it were lost."""
    path = tmp_path / "giant.csv"
    good = csv_text([GOOD_ROW]).encode("utf-8")
    later = csv_text([("2611090002", *GOOD_ROW[1:])]).encode("utf-8").split(b"\r\n", 1)[1]
    with path.open("wb") as fh:
        fh.write(good)
        fh.write(b'2611090009,' + b"x" * 30_000_000 + b"\r\n")  # one field of 30 MB
        fh.write(later)
    tracemalloc.start()
    try:
        results = list(read_case_file(path, max_field_chars=10_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(r.row, r.ok) for r in results] == [(2, True), (3, False), (4, True)]
    assert results[1].error == (
        "the row is 30,000,013 bytes long, over the limit of 1,280,000 bytes (10,000 characters a field); it was "
        "skipped without being read. Raise max_field_chars (config sources.<name>.max_field_chars, or import "
        "--max-field-chars) if it is real")
    # the record limit's buffer (twice, as it grows) and the encoding's 1 MiB sample (and its text), not 30 MB
    assert peak < 3 * 1_280_000 + (2 << 20), f"peak {peak:,} bytes: the record was read into memory"


def test_a_long_field_names_its_column_and_the_limit(write_csv) -> None:  # type: ignore[no-untyped-def]
    long_summary = (*GOOD_ROW[:8], "长" * 200)
    path = write_csv([GOOD_ROW, long_summary, ("2611090003", *GOOD_ROW[1:])])
    results = list(read_case_file(path, max_field_chars=100))
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error is not None
    assert results[1].error.startswith("问题摘要 (column 9) is 200 characters long, over the limit of 100;")


def test_xlsx_with_a_merged_title_row_above_the_header_and_serial_dates(tmp_path: Path) -> None:
    """Before: row 1 (the title) was taken as the header and the file refused (missing columns)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["兴隆台区12345热线工单明细（2026年11月）"])
    sheet.merge_cells("A1:I1")
    sheet.append(list(HEADERS))
    sheet.append([*GOOD_ROW[:3], 46335.362500, *GOOD_ROW[4:6], "2026.11.09 09:15", *GOOD_ROW[7:]])
    path = tmp_path / "titled.xlsx"
    workbook.save(path)
    (result,) = read_case_file(path)
    assert result.row == 3 and result.record is not None
    assert result.record.received_at == datetime(2026, 11, 9, 8, 42, tzinfo=LOCAL_TZ)  # a number cell
    assert result.record.signed_at == datetime(2026, 11, 9, 9, 15, tzinfo=LOCAL_TZ)
    with pytest.raises(HeaderError, match="row 1"):
        read_case_file(path, header_row=1)  # the odd file's own setting wins over the search
