"""The database password comes from a secret (systemd credential, env or file), never from config.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.errors import ConfigError
from tests.conftest import run_subprocess

PASSWORD = "p@ss:w/rd-7731"  # characters that must be escaped in a URL


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "database:\n  url: postgresql+psycopg://hotline@127.0.0.1:5432/test\n"
        "  password: {credential: db-password}\n", encoding="utf-8")
    return path


def test_password_from_the_units_credential_fills_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "secret_db-password").write_text(PASSWORD + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    from sqlalchemy.engine import make_url

    url = make_url(load_config(_config(tmp_path)).database_url)
    assert url.password == PASSWORD and url.username == "hotline" and url.database == "test"


def test_missing_password_credential_is_a_config_error_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError, match=r"database\.password: credential db-password"):
        _ = load_config(_config(tmp_path)).database_url


def test_config_check_never_prints_the_database_password(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "secret_db-password").write_text(PASSWORD)
    r = run_subprocess("--config", str(_config(tmp_path)), "config", "check", "--json",
                       env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert PASSWORD not in r.stdout + r.stderr
    assert "p%40ss" not in r.stdout + r.stderr  # nor its URL-escaped form
    assert "hotline" in r.stdout
