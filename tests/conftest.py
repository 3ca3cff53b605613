"""Shared fixtures. Database fixtures live in tests/db.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.calendar import WorkCalendar
from daemon.rules import RuleSet, load_rules

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def calendar() -> WorkCalendar:
    return WorkCalendar.load(overrides_dir=ROOT / "sla_rules" / "holidays")


@pytest.fixture(scope="session")
def rules(calendar: WorkCalendar) -> RuleSet:
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
