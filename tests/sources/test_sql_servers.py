"""SqlSource against PostgreSQL and MariaDB as the platform's database (a private database per session)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy
from sqlalchemy import text

from daemon.core.cases import Source, Status
from daemon.core.timeutil import LOCAL_TZ
from daemon.sources import ColumnMapping
from daemon.sources.sql import SqlSource
from tests.conftest import server_url

SERVERS = [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mariadb", marks=pytest.mark.mariadb)]
D = datetime
ROWS = [
    ("2611090001", "省平台", "投诉", D(2026, 11, 9, 8, 42), "兴隆台区住建局", "办理中", D(2026, 11, 9, 9, 15)),
    ("2611090002", "市级", "咨询", D(2026, 11, 9, 10, 12), "市医疗保障局", "已办结", D(2026, 11, 10, 15, 0)),
    ("2611090003", "市直", "投诉", D(2026, 11, 9, 11, 0), "水务集团", "办理中", D(2026, 11, 10, 16, 0, 0, 500)),
]  # fmt: skip


class Platform:
    """A platform table in the server's private test database; ``chinese`` names its columns in Chinese."""

    def __init__(self, server: str, chinese: bool) -> None:
        self.url = server_url(server)
        self.table = f"gd_{secrets.token_hex(4)}"
        self.engine = sqlalchemy.create_engine(self.url)
        self.columns = (
            ["工单编号", "来源", "诉求类型", "受理时间", "承办单位", "办理状态", "更新时间"] if chinese
            else ["gdbh", "ly", "sqlx", "slsj", "cbdw", "blzt", "gxsj"]
        )
        stamp = "TIMESTAMP(6)" if server == "postgres" else "DATETIME(6)"
        q = self.quote
        kinds = ["VARCHAR(32)", "VARCHAR(16)", "VARCHAR(16)", stamp, "VARCHAR(100)", "VARCHAR(16)", stamp]
        with self.engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {self.table} ("
                              + ", ".join(f"{q(c)} {k}" for c, k in zip(self.columns, kinds, strict=True)) + ")"))
        self.insert(*ROWS)

    def quote(self, name: str) -> str:
        return str(self.engine.dialect.identifier_preparer.quote(name))

    def insert(self, *rows: tuple[object, ...]) -> None:
        names = [f"c{i}" for i in range(len(self.columns))]
        cols = ", ".join(self.quote(c) for c in self.columns)
        with self.engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {self.table} ({cols}) VALUES ({', '.join(':' + n for n in names)})"),
                         [dict(zip(names, row, strict=True)) for row in rows])

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {self.table}")).scalar_one())

    def drop(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {self.table}"))
        self.engine.dispose()


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def chinese_platform(server: str) -> Iterator[Platform]:
    platform = Platform(server, chinese=True)
    yield platform
    platform.drop()


@pytest.fixture
def mapped_platform(server: str) -> Iterator[Platform]:
    platform = Platform(server, chinese=False)
    yield platform
    platform.drop()


def test_chinese_columns_and_watermark_increments(chinese_platform: Platform) -> None:
    p = chinese_platform
    upd = p.quote("更新时间")
    source = SqlSource("platform_db", p.url, f"SELECT * FROM {p.table} WHERE {upd} >= :watermark ORDER BY {upd}",
                       page_size=2)
    try:
        first = source.fetch(None)
        assert [r.number for r in first.records] == ["2611090001", "2611090002"]
        assert first.records[0].source is Source.PROVINCE and first.records[1].status is Status.CLOSED
        assert first.records[0].received_at == datetime(2026, 11, 9, 8, 42, tzinfo=LOCAL_TZ)
        assert [e.number for e in first.errors] == ["2611090003"]  # 市直 is not a known source
        assert first.watermark == datetime(2026, 11, 10, 16, 0, 0, 500, tzinfo=LOCAL_TZ)  # microseconds kept
        again = source.fetch(first.watermark)
        assert again.rows_read == 1 and again.watermark == first.watermark  # only the boundary row (>=)
        p.insert(("2611120004", "热线", "求助", datetime(2026, 11, 12, 10, 0), "兴海街道办事处", "待签收",
                  datetime(2026, 11, 12, 10, 0)))
        later = source.fetch(first.watermark)
        assert [r.number for r in later.records] == ["2611120004"]
        assert later.watermark == datetime(2026, 11, 12, 10, 0, tzinfo=LOCAL_TZ)
        assert source.fetch(later.watermark).rows_read == 1
    finally:
        source.close()


def test_mapped_columns_through_config(mapped_platform: Platform) -> None:
    p = mapped_platform
    mapping = ColumnMapping.model_validate({
        "columns": {"number": "gdbh", "source": "ly", "category": "sqlx", "received_at": "slsj", "unit": "cbdw",
                    "status": "blzt", "source_updated_at": "gxsj"},
        "values": {"source": {"市直": "city"}},
    })
    source = SqlSource("platform_db", p.url, f"SELECT * FROM {p.table} WHERE gxsj >= :watermark ORDER BY gxsj",
                       mapping)
    try:
        result = source.fetch(None)
        assert [r.number for r in result.records] == ["2611090001", "2611090002", "2611090003"]
        assert result.records[2].source is Source.CITY and not result.errors
    finally:
        source.close()


def test_the_session_is_read_only(chinese_platform: Platform) -> None:
    p = chinese_platform
    source = SqlSource("platform_db", p.url, f"SELECT * FROM {p.table}")
    try:
        with source.engine.connect() as conn, pytest.raises(sqlalchemy.exc.DBAPIError, match=r"(?i)read.only"):
            conn.execute(text(f"DELETE FROM {p.table}"))
        assert source.fetch(None).rows_read == 3
        with source.engine.connect() as conn, pytest.raises(sqlalchemy.exc.DBAPIError, match=r"(?i)read.only"):
            conn.execute(text(f"DELETE FROM {p.table}"))  # still read-only on a pooled connection
        assert p.count() == 3
    finally:
        source.close()
