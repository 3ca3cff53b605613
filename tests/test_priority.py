"""紧急程度 (issue 12 item 4): the column read as a priority (urgent | normal), words configurable, an unknown
word a normal case with a warning for its row; a `match: {priority: urgent}` rule drives the deadline, in the
serial and the parallel import alike, and `cases list --json` / `cases explain` show it."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from daemon.core.calendar import WorkCalendar
from daemon.core.cases import Priority
from daemon.core.rules import RuleSet, load_rules
from daemon.core.timeutil import LOCAL_TZ
from daemon.pipeline import parallel_import
from daemon.pipeline.sync import import_file
from daemon.sources.files import case_table
from daemon.sources.mapping import ColumnMapping, ValueWords
from daemon.storage.models import cases
from daemon.storage.store import Store
from tests.conftest import ROOT, run_subprocess

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=LOCAL_TZ)
HEADERS = ["工单编号", "来源", "诉求类型", "紧急度", "交办时间", "承办单位", "办理状态"]
ROWS = [
    ["P1", "市级", "投诉", "紧急", "2026-11-16 09:00", "区城管局", "已交办"],
    ["P2", "市级", "投诉", "一般", "2026-11-16 09:00", "区城管局", "已交办"],
    ["P3", "市级", "投诉", "火速", "2026-11-16 09:00", "区城管局", "已交办"],
    ["P4", "市级", "投诉", "", "2026-11-16 09:00", "区城管局", "已交办"],
    ["P5", "市级", "求助", "特急", "2026-11-13 17:00", "区城管局", "已交办"],
]


def _examples(calendar: WorkCalendar) -> RuleSet:
    return load_rules(ROOT / "sla_rules" / "examples", calendar)


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([HEADERS, *rows])
    return path


def test_words_aliases_and_the_unknown_word() -> None:
    builder = ColumnMapping().builder(HEADERS)
    got = [builder.build(row).priority for row in ROWS]
    assert got == [Priority.URGENT, Priority.NORMAL, Priority.NORMAL, None, Priority.URGENT]
    assert [builder.row_warning(row) for row in (ROWS[0], ROWS[1], ROWS[3])] == [None, None, None]
    warning = builder.row_warning(ROWS[2])
    assert warning is not None
    assert "紧急度 (priority) '火速' is not a known priority; taken as normal" in warning
    assert "紧急, 特急, 加急" in warning and "sources.<name>.values.priority" in warning
    # configurable: a word of the office's own
    own = ColumnMapping(values=ValueWords(priority={"火速": Priority.URGENT})).builder(HEADERS)
    assert own.build(ROWS[2]).priority is Priority.URGENT and own.row_warning(ROWS[2]) is None


def _stored(store: Store) -> dict[str, tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return {r.number: (r.priority, r.rule_id, r.due_at) for r in conn.execute(
            select(cases.c.number, cases.c.priority, cases.c.rule_id, cases.c.due_at))}


def _expected(calendar: WorkCalendar) -> dict[str, tuple[Any, ...]]:
    at = datetime(2026, 11, 16, 9, 0, tzinfo=LOCAL_TZ)
    five_days = _examples(calendar).get("other_request").due_at(at)
    return {
        "P1": ("urgent", "urgent", at + timedelta(hours=2)),
        "P2": ("normal", "other_request", five_days),
        "P3": ("normal", "other_request", five_days),  # the unknown word: a normal case
        "P4": (None, "other_request", five_days),
        # urgent beats the working-hours help rule (first match wins): 2 hours from Friday 17:00
        "P5": ("urgent", "urgent", datetime(2026, 11, 13, 19, 0, tzinfo=LOCAL_TZ)),
    }


def test_serial_import_matches_the_urgent_rule_and_warns(store: Store, calendar: WorkCalendar,
                                                         tmp_path: Path) -> None:
    rules = _examples(calendar)
    report = import_file(store, rules, _write(tmp_path / "p.csv", ROWS), now=NOW, parallel=False)
    assert report.rejected == [] and report.inserted == 5
    assert [w["row"] for w in report.warnings] == [4] and "'火速'" in report.warnings[0]["warning"]
    got = _stored(store)
    want = _expected(calendar)
    assert {n: (p, r, d.astimezone(LOCAL_TZ)) for n, (p, r, d) in got.items()} == want


def test_parallel_import_stores_and_warns_the_same(calendar: WorkCalendar, tmp_path: Path) -> None:
    rules = _examples(calendar)
    path = _write(tmp_path / "p.csv", ROWS)
    store = Store(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    store.upgrade()
    builder, rows = case_table(path)
    rows.close()  # type: ignore[attr-defined]
    rejected: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    parallel_import.import_parallel(store, rules, path, builder, "utf-8-sig", now=NOW, source_name="import",
                                    rejected=rejected, warnings=warnings, piece_bytes=64)
    assert rejected == [] and [w["row"] for w in warnings] == [4]
    got = _stored(store)
    assert {n: (p, r, d.astimezone(LOCAL_TZ)) for n, (p, r, d) in got.items()} == _expected(calendar)


def test_cli_list_and_explain_show_the_priority(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite3'}'}}\n"
                   f"rules_dir: {ROOT / 'sla_rules' / 'examples'}\n", encoding="utf-8")
    r = run_subprocess("--config", str(cfg), "import", str(_write(tmp_path / "p.csv", ROWS)),
                       "--now", "2026-11-20 09:00", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [w["row"] for w in json.loads(r.stdout)["warnings"]] == [4]
    listing = json.loads(run_subprocess("--config", str(cfg), "cases", "list", "--json", "--now",
                                        "2026-11-16 09:30").stdout)
    by_case = {c["case"]: c for c in (listing if isinstance(listing, list) else listing["cases"])}
    assert by_case["P1"]["priority"] == "urgent" and by_case["P2"]["priority"] == "normal"
    assert by_case["P1"]["due_at"].startswith("2026-11-16T11:00")
    ex = run_subprocess("--config", str(cfg), "cases", "explain", "P1")
    assert ex.returncode == 0 and "【紧急】" in ex.stdout and "2小时" in ex.stdout
