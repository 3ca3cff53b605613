"""The running issue number of the 通报 (第N期), kept in the ``report_issues`` table.

An issue is recorded once per series and period (the month it reports on); recording it again returns the
same issue, so re-running ``report month 2026-11 --issue`` reprints 第N期 rather than taking N+1. Numbers
restart at 1 each year of issue, as the bulletins' "2020 年第 3 期" do. A draft (not recorded) shows the
number it would get. ``now`` is an aware instant; the year of issue is its Asia/Shanghai year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from daemon.core.timeutil import to_local
from daemon.storage.models import report_issues


@dataclass(frozen=True)
class Issue:
    year: int  # year of issue
    number: int  # N of 第N期
    issued_at: datetime  # aware; its local date is the date of issue (印发日期)
    recorded: bool  # False: a draft that shows the next number


def _existing(conn: Connection, series: str, period: str) -> Issue | None:
    t = report_issues.c
    row = conn.execute(
        select(t.year, t.number, t.issued_at).where(t.series == series, t.period == period)
    ).first()
    return Issue(row.year, row.number, row.issued_at, True) if row else None


def _next_number(conn: Connection, series: str, year: int) -> int:
    t = report_issues.c
    last = conn.execute(select(func.max(t.number)).where(t.series == series, t.year == year)).scalar()
    return int(last or 0) + 1


def peek_issue(conn: Connection, series: str, period: str, now: datetime) -> Issue:
    """The recorded issue of ``period``, or (unrecorded) the number it would get if issued at ``now``."""
    found = _existing(conn, series, period)
    if found is not None:
        return found
    year = to_local(now).year
    return Issue(year, _next_number(conn, series, year), now, False)


def record_issue(conn: Connection, series: str, period: str, now: datetime) -> Issue:
    """Record the issue of ``period`` at ``now`` (or return the one already recorded). Two processes issuing
    at once: the unique keys let one win, and the other reads the winner's issue."""
    for _ in range(3):
        found = _existing(conn, series, period)
        if found is not None:
            return found
        year = to_local(now).year
        number = _next_number(conn, series, year)
        stmt = insert(report_issues).values(series=series, year=year, number=number, period=period, issued_at=now)
        try:
            if conn.dialect.name == "postgresql":  # a failed statement aborts a PostgreSQL transaction
                with conn.begin_nested():
                    conn.execute(stmt)
            else:  # SQLite and MariaDB roll back only the statement (pysqlite's SAVEPOINT would commit)
                conn.execute(stmt)
        except IntegrityError:
            continue
        return Issue(year, number, now, True)
    raise RuntimeError(f"could not record an issue of {series} {period}: the numbering kept changing")
