"""A provisional next year: a warning in ``status`` and the digest, a problem (exit 1) only once open
cases' deadlines within 14 days rely on it; both name the command that loads the notice."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.commands.status_cmd import collect_status
from daemon.config import Config
from daemon.core.calendar import WorkCalendar, calendar_readiness
from daemon.core.cases import CaseRecord, Category, Source
from daemon.core.rules import RuleSet
from daemon.core.timeutil import parse_time
from daemon.reports.digest import build_digest
from daemon.runtime.leader import LeaderLease
from daemon.storage.store import Store
from tests.conftest import ROOT

NOW = "2026-12-30 09:00"


def test_readiness_is_a_warning_until_cases_rely_on_it(calendar: WorkCalendar) -> None:
    assert calendar_readiness(calendar, date(2026, 10, 15), 0) is None
    assert calendar_readiness(calendar, date(2025, 11, 20), 0) is None  # 2026 is published
    warn = calendar_readiness(calendar, date(2026, 11, 1), 0)
    assert warn is not None and warn.years == (2027,) and not warn.problem
    assert "hotline-sla calendar import-notice" in warn.text_zh() and "暂定" in warn.text_zh()
    assert "hotline-sla calendar import-notice" in warn.text_en() and "systemctl reload" in warn.text_en()
    urgent = calendar_readiness(calendar, date(2026, 11, 1), 3)
    assert urgent is not None and urgent.problem and "3件在办工单" in urgent.text_zh()
    assert calendar_readiness(calendar, date(2026, 10, 15), 0, provisional_open=1) is not None


def _healthy(store: Store, now_text: str) -> None:
    now = parse_time(now_text)
    store.set_setting("last_tick_at", (now - timedelta(seconds=30)).isoformat())
    LeaderLease(store, "vm:1:abc", 30).try_acquire(now - timedelta(seconds=5))


def _case(number: str, received: str) -> CaseRecord:
    fields: dict[str, Any] = {"number": number, "source": Source.CITY, "category": Category.COMPLAINT,
                              "unit": "兴隆台区住建局", "received_at": parse_time(received), "summary": "反映供暖问题"}
    return CaseRecord(**fields)


def _status(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    from daemon.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(f"database: {{url: '{store.url}'}}\nrules_dir: {ROOT / 'sla_rules'}\n", encoding="utf-8")
    capsys.readouterr()
    code = main(["--config", str(config), "status", "--json", "--now", NOW])
    return code, json.loads(capsys.readouterr().out)


def test_status_provisional_next_year_warns_then_fails_when_deadlines_rely_on_it(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the fix `status` exited 1 every day from 1 November until the file was added."""
    _healthy(store, NOW)
    code, doc = _status(store, tmp_path, capsys)
    assert code == 0 and doc["problems"] == []
    assert "2027" in doc["calendar"]["warning"] and "import-notice" in doc["calendar"]["warning"]
    assert "节假日安排尚未载入" in doc["calendar"]["warning"]  # Chinese and English
    assert not doc["calendar"]["problem"]
    # a municipal complaint received 12-29: 5 working days run to 2027-01-06, provisional, within 14 days
    store.upsert_cases([_case("P1", "2026-12-29 10:00")], rules=rules, now=parse_time(NOW), source_name="t")
    code, doc = _status(store, tmp_path, capsys)
    assert code == 1 and doc["calendar"]["problem"] and doc["calendar"]["provisional_due_soon"] == 1
    assert any("import-notice" in p and "1 open case(s)" in p for p in doc["problems"])
    # the same store a month earlier: that deadline is more than 14 days out, a warning only
    earlier = collect_status(store, Config(), calendar, parse_time("2026-12-01 09:00"))
    assert earlier["calendar"]["warning"] and not earlier["calendar"]["problem"]


def test_digest_calendar_notice_says_the_same_with_the_command(
    store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    store.upsert_cases([_case("P1", "2026-12-29 10:00")], rules=rules, now=parse_time(NOW), source_name="t")
    with store.engine.connect() as conn:
        digest = build_digest(conn, rules, calendar, parse_time(NOW), time(8, 30))
    notice = digest.calendar_notice or ""
    assert "2027年节假日安排尚未载入" in notice and "hotline-sla calendar import-notice" in notice
    assert "1件在办工单的暂定办理时限在14天内" in notice and "补假" in notice
