"""SqlSource against a real SQLite file; PostgreSQL and MariaDB URLs go through the same code."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy

from daemon.core.timeutil import LOCAL_TZ
from daemon.errors import ConfigError
from daemon.sources import SourceError
from daemon.sources.sql import SqlSource, check_select, mask_url

QUERY = """
    -- the platform's table, columns aliased to the export headers
    SELECT gdbh AS 工单编号, ly AS 来源, sqlx AS 诉求类型, slsj AS 受理时间, cbdw AS 承办单位,
           blzt AS 办理状态, gxsj AS 更新时间
      FROM gd_main
     WHERE gxsj >= :watermark
     ORDER BY gxsj
"""


def _insert(db: Path, *rows: tuple[str, ...]) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO gd_main VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "platform.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE gd_main (gdbh TEXT, ly TEXT, sqlx TEXT, slsj TEXT, cbdw TEXT, blzt TEXT, gxsj TEXT)"
        )
    _insert(
        path,
        (
            "2611090001",
            "省平台",
            "投诉",
            "2026-11-09 08:42:00",
            "兴隆台区住建局",
            "办理中",
            "2026-11-09 09:15:00",
        ),
        (
            "2611090002",
            "市级",
            "咨询",
            "2026-11-09 10:12:00",
            "市医疗保障局",
            "已办结",
            "2026-11-10 15:00:00",
        ),
        ("2611090003", "市直", "投诉", "2026-11-09 11:00:00", "水务集团", "办理中", "2026-11-10 16:00:00"),
    )
    return path


def test_first_fetch_reads_all_and_sets_the_watermark(db: Path) -> None:
    source = SqlSource("platform_db", f"sqlite:///{db}", QUERY, page_size=2)
    result = source.fetch(None)
    assert [r.number for r in result.records] == ["2611090001", "2611090002"]
    assert result.records[1].received_at == datetime(2026, 11, 9, 10, 12, tzinfo=LOCAL_TZ)
    assert len(result.errors) == 1
    assert result.errors[0].number == "2611090003"
    assert "record 3: 来源 (source) '市直' is not a known source" in str(result.errors[0].error)
    assert "sources.platform_db.values.source" in str(result.errors[0].error)
    # the bad row's 更新时间 counts: a watermark that stopped before it would re-read it forever
    assert result.watermark == datetime(2026, 11, 10, 16, 0, tzinfo=LOCAL_TZ)
    assert result.rows_read == 3


def test_watermark_increments(db: Path) -> None:
    source = SqlSource("platform_db", f"sqlite:///{db}", QUERY)
    first = source.fetch(None)
    again = source.fetch(first.watermark)
    assert again.rows_read == 1  # only the boundary row (>=): re-read, never lost
    assert again.watermark == first.watermark

    _insert(
        db,
        (
            "2611090001",
            "省平台",
            "投诉",
            "2026-11-09 08:42:00",
            "兴隆台区住建局",
            "已反馈",
            "2026-11-12 09:00:00",
        ),
        (
            "2611120004",
            "热线",
            "求助",
            "2026-11-12 10:00:00",
            "兴海街道办事处",
            "待签收",
            "2026-11-12 10:00:00",
        ),
    )
    later = source.fetch(first.watermark)
    assert {r.number for r in later.records} == {"2611090001", "2611120004"}
    assert later.watermark == datetime(2026, 11, 12, 10, 0, tzinfo=LOCAL_TZ)
    assert source.fetch(later.watermark).rows_read == 1
    # an aware watermark in another zone means the same instant
    utc = datetime(2026, 11, 12, 1, 30, tzinfo=UTC)
    assert source.fetch(utc).rows_read == 1


def test_stream_yields_rows_and_tracks_the_watermark(db: Path) -> None:
    stream = SqlSource("platform_db", f"sqlite:///{db}", QUERY, page_size=1).stream(None)
    rows = [r.row for r in stream]
    assert rows == [1, 2, 3]
    assert stream.watermark == datetime(2026, 11, 10, 16, 0, tzinfo=LOCAL_TZ)


def test_connections_are_read_only(db: Path) -> None:
    source = SqlSource("platform_db", f"sqlite:///{db}", QUERY)
    with source.engine.connect() as conn, pytest.raises(sqlalchemy.exc.OperationalError, match="readonly"):
        conn.exec_driver_sql("DELETE FROM gd_main")
    assert source.fetch(None).rows_read == 3


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM gd_main",
        "UPDATE gd_main SET blzt = '已办结'",
        "SELECT 1; DROP TABLE gd_main",
        "/* SELECT */ DROP TABLE gd_main",
        "",
    ],
)
def test_refuses_statements_that_are_not_one_select(query: str) -> None:
    with pytest.raises(ConfigError, match=r"sources\.x\.query: must be one"):
        check_select(query, where="sources.x.query")


def test_accepts_with_and_a_trailing_semicolon() -> None:
    assert (
        check_select("WITH t AS (SELECT 1 AS a) SELECT a FROM t;")
        == "WITH t AS (SELECT 1 AS a) SELECT a FROM t"
    )
    assert check_select("  (SELECT 1)") == "(SELECT 1)"


def test_missing_columns_are_a_source_error(db: Path) -> None:
    query = "SELECT gdbh AS 工单编号, ly AS 来源 FROM gd_main WHERE gxsj >= :watermark"
    with pytest.raises(SourceError) as info:
        SqlSource("platform_db", f"sqlite:///{db}", query).fetch(None)
    message = str(info.value)
    assert message.startswith("source 'platform_db':")
    assert "诉求类型 (category)" in message and "更新时间 (source_updated_at)" in message
    assert "columns: 工单编号, 来源" in message


def test_database_down_is_a_source_error_without_the_password() -> None:
    url = "postgresql+psycopg://hotline:s3cr3t-pw@127.0.0.1:1/platform?connect_timeout=2"
    source = SqlSource("platform_db", url, "SELECT 1")
    with pytest.raises(SourceError) as info:
        source.fetch(None)
    message = str(info.value)
    assert "s3cr3t-pw" not in message
    assert "hotline:***@127.0.0.1:1/platform" in message
    assert message.startswith("source 'platform_db': ")


def test_missing_sqlite_file_is_a_source_error(tmp_path: Path) -> None:
    source = SqlSource("platform_db", f"sqlite:///{tmp_path}/no/such/dir/x.db", QUERY)
    with pytest.raises(SourceError, match="OperationalError"):
        source.fetch(None)


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"sources\.platform_db\.url"):
        SqlSource("platform_db", "not a url", "SELECT 1")
    assert mask_url("mysql+pymysql://u:pw@127.0.0.1/db") == "mysql+pymysql://u:***@127.0.0.1/db"
