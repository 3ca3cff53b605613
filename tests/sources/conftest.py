"""Helpers for source tests: write CSV files in a given encoding from Chinese-header rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import pytest

HEADERS = ("工单编号", "来源", "诉求类型", "受理时间", "承办单位", "办理状态", "签收时间", "属地", "问题摘要")
GOOD_ROW = (
    "2611090001",
    "省平台",
    "投诉",
    "2026-11-09 08:42",
    "兴隆台区住建局",
    "办理中",
    "2026-11-09 09:15",
    "兴隆台区",
    "反映小区供暖温度不达标",
)


def csv_text(rows: Sequence[Sequence[object]], headers: Sequence[str] = HEADERS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
def write_csv(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(rows, headers=HEADERS, encoding="utf-8", name="cases.csv"):  # type: ignore[no-untyped-def]
        path = tmp_path / name
        path.write_bytes(csv_text(rows, headers).encode(encoding))
        return path

    return write
