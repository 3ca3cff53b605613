"""Shared fixtures: the calendar and rules, the in-process CLI, and the databases (``db_url`` and ``store``:
SQLite, PostgreSQL and MariaDB, a private database per test session, further down in this file)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported in the fixtures, so that a shadowed `daemon` fails tests/test_packaging.py clearly
    from daemon.core.calendar import WorkCalendar
    from daemon.core.rules import RuleSet

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def calendar() -> WorkCalendar:
    from daemon.core.calendar import WorkCalendar

    return WorkCalendar.load(overrides_dir=ROOT / "sla_rules" / "holidays")


@pytest.fixture(scope="session")
def rules(calendar: WorkCalendar) -> RuleSet:
    from daemon.core.rules import load_rules

    return load_rules(ROOT / "sla_rules", calendar)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run ``hotline-sla ARGS`` in-process with the repository's config, capture its output."""
    from daemon.cli import main

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("HOTLINE_SLA_CONFIG", raising=False)
    monkeypatch.delenv("HOTLINE_SLA_DATABASE_URL", raising=False)

    def run(*args: str, stdin: str | None = None) -> CliResult:
        if stdin is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_subprocess(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                   cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m daemon ARGS`` as a real process (the console script's code path)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        input=stdin, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout, check=False,
    )


# --- databases: every store test runs on SQLite, PostgreSQL and MariaDB ---------------------------------

DB_URLS = {
    "sqlite": None,  # a file in tmp_path
    "postgres": os.environ.get("HOTLINE_SLA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("HOTLINE_SLA_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def _reachable(url: str) -> str | None:
    """None when the server answers, else the reason."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _private_database(name: str, server_url: str) -> str:
    """A database of this test session's own on the server (``test_<pid>_<random>``), dropped at exit.

    Tests drop and create every table; a private database keeps two test runs on one server (a developer's
    and CI's, or parallel helpers) from dropping each other's tables.
    """
    import atexit
    import secrets

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    dbname = f"hsla_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {dbname}"))

    def _drop() -> None:
        try:
            with admin.connect() as conn:
                if name == "postgres":
                    conn.execute(text(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
                else:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {dbname}"))
        finally:
            admin.dispose()

    atexit.register(_drop)
    return url.set(database=dbname).render_as_string(hide_password=False)


_PRIVATE_URLS: dict[str, str] = {}


def server_url(name: str) -> str:
    """The URL of this session's private database on ``name`` (postgres | mariadb); skip or fail if down."""
    if name in _PRIVATE_URLS:
        return _PRIVATE_URLS[name]
    url = DB_URLS[name]
    assert url is not None
    reason = _reachable(url)
    if reason is not None:
        message = f"{name} at {url} is not reachable ({reason})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; in CI the store must be tested on it (.ci/run starts the servers)")
        pytest.skip(f"{message}; start it to run the {name} store tests")
    _PRIVATE_URLS[name] = _private_database(name, url)
    return _PRIVATE_URLS[name]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    name = request.param
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return server_url(name)


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    from daemon.storage.store import Store

    s = Store(db_url)
    s.drop_all()
    s.upgrade()
    yield s
    s.drop_all()
    s.close()
