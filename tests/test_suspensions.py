"""Several suspensions (挂起) of one case: the export shows only the latest pair, the store remembers the earlier
ones of the cycle, and the deadline moves by each in the rule's own unit (issue 12 item 3).

2024: Oct 1-7 off, Sun Sep 29 and Sat Oct 12 make-up working days. A municipal complaint (5 working days)
received Fri Sep 27 16:30 is due Oct 11 00:00; a provincial one (10 natural days) Oct 8 00:00; the 24-hour
return window closes Sep 28 16:30.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon.core.derive import RuleCache, derive
from daemon.core.lifecycle import merge_suspensions, remembered_suspensions
from daemon.core.rules import RuleSet
from daemon.core.timeutil import parse_time
from daemon.pipeline import parallel_import
from daemon.pipeline.recompute import record_from_row
from daemon.pipeline.sync import import_file
from daemon.reports.case_views import explain_case
from daemon.sources.files import case_table
from daemon.storage.models import cases
from daemon.storage.store import Store
from tests.conftest import CliResult
from tests.daemon_proc import write_config

RECEIVED = "2024-09-27 16:30"
# over National Day: one working day (Oct 8) or eight natural days back; then two working days (Oct 10, 11)
FIRST = ("2024-09-30 10:00", "2024-10-08 10:00")
SECOND = ("2024-10-09 10:00", "2024-10-11 09:00")


def at(text: str) -> datetime:
    return parse_time(text)


def pair(texts: tuple[str, str]) -> tuple[datetime, datetime]:
    return at(texts[0]), at(texts[1])


# --- the core: every suspension moves the deadline, in the rule's own unit ----------------------------------

@pytest.mark.parametrize(("rule_id", "suspensions", "due"), [
    # working days: Oct 8 back (the holiday gives nothing), then Oct 10 and 11: Oct 10 + 3 = Oct 11, the
    # make-up Saturday Oct 12, Oct 14
    ("municipal_complaint", [FIRST], "2024-10-12 00:00"),
    ("municipal_complaint", [SECOND], "2024-10-13 00:00"),  # what the second export alone gave: a false breach
    ("municipal_complaint", [FIRST, SECOND], "2024-10-15 00:00"),
    ("municipal_complaint", [SECOND, FIRST], "2024-10-15 00:00"),  # any order
    # natural days: 8 (Sep 30 to Oct 8, holidays too) + 2
    ("provincial_complaint", [FIRST, SECOND], "2024-10-18 00:00"),
    # overlapping: merged to Sep 30 10:00 .. Oct 9 10:00, nine days, not 8 + 4
    ("provincial_complaint", [FIRST, ("2024-10-05 10:00", "2024-10-09 10:00")], "2024-10-17 00:00"),
    # the partial-day rule applies to each: one whole-day suspension (Oct 8) and one within Oct 9 (nothing)
    ("municipal_complaint", [FIRST, ("2024-10-09 09:00", "2024-10-09 17:00")], "2024-10-12 00:00"),
    # hours: exactly the time suspended, 14 h 30 + 1 h
    ("return_request", [("2024-09-27 18:00", "2024-09-28 08:30"), ("2024-09-28 09:00", "2024-09-28 10:00")],
     "2024-09-29 08:00"),
])
def test_every_suspension_moves_the_deadline_in_the_rules_own_unit(
    rules: RuleSet, rule_id: str, suspensions: list[tuple[str, str]], due: str
) -> None:
    d = rules.get(rule_id).deadline(at(RECEIVED), suspensions=[pair(s) for s in suspensions])
    assert d.due_at == at(due)


def test_working_hours_get_back_the_working_time_of_each_suspension(calendar: Any) -> None:
    from daemon.core.rules import load_rules

    rules = load_rules(Path(__file__).resolve().parent.parent / "sla_rules" / "examples", calendar)
    help_rule = next(r for r in rules.rules if r.working_hours is not None)
    received = at("2024-11-04 09:00")  # a Monday
    plain = help_rule.deadline(received).due_at
    one = help_rule.deadline(received, suspensions=[pair(("2024-11-04 10:00", "2024-11-04 11:00"))]).due_at
    both = help_rule.deadline(received, suspensions=[pair(("2024-11-04 10:00", "2024-11-04 11:00")),
                                                     pair(("2024-11-05 10:00", "2024-11-05 11:00"))]).due_at
    # 24 working hours on 08:30-12:00/13:30-17:30: Thu Nov 7 10:30; an hour back for each, across the lunch break
    assert (plain, one, both) == (at("2024-11-07 10:30"), at("2024-11-07 11:30"), at("2024-11-07 14:00"))


def test_suspensions_are_merged_in_time_order() -> None:
    a, b = pair(FIRST), pair(SECOND)
    assert merge_suspensions([b, a, a]) == (a, b)
    assert merge_suspensions([a, (at("2024-10-08 10:00"), at("2024-10-09 10:00"))]) == (
        (a[0], at("2024-10-09 10:00")),)  # touching: one
    assert merge_suspensions([(b[1], b[0])]) == ()  # an end before its start gives nothing back


def test_time_suspended_before_the_cycles_dispatch_is_not_given_back(rules: RuleSet) -> None:
    """A 重办 row may still carry the previous cycle's 挂起 pair: that time was not on this cycle's clock."""
    rule = rules.get("provincial_complaint")  # 10 natural days: due Oct 8 00:00 from Sep 27 16:30
    before = pair(("2024-09-20 10:00", "2024-09-25 10:00"))
    straddling = pair(("2024-09-25 10:00", "2024-09-30 10:00"))  # 16:30 on the 27th to the 30th: 3 days back
    assert rule.deadline(at(RECEIVED), suspensions=[before]).due_at == at("2024-10-08 00:00")
    assert rule.deadline(at(RECEIVED), suspensions=[straddling]).due_at == at("2024-10-11 00:00")
    assert rule.deadline(at(RECEIVED), suspensions=[straddling]).due_at == rule.deadline(
        at(RECEIVED), suspensions=[(at(RECEIVED), straddling[1])]).due_at
    assert merge_suspensions([before, straddling], since=at(RECEIVED)) == ((at(RECEIVED), straddling[1]),)


def test_what_the_store_remembers() -> None:
    a, b = pair(FIRST), pair(SECOND)
    # a different start after the stored pair resumed: the stored pair is an earlier suspension
    assert remembered_suspensions((), *a, b[0], new_cycle=False) == (a,)
    assert remembered_suspensions((a,), *b, at("2024-10-14 10:00"), new_cycle=False) == (a, b)
    assert remembered_suspensions((a,), *a, a[0], new_cycle=False) == (a,)  # the same pair again
    assert remembered_suspensions((), *a, None, new_cycle=False) == ()  # a row without a suspension keeps the list
    assert remembered_suspensions((a,), *b, None, new_cycle=False) == (a,)
    assert remembered_suspensions((), a[0], None, b[0], new_cycle=False) == ()  # the stored one never resumed
    assert remembered_suspensions((), *b, a[0], new_cycle=False) == ()  # resumed after the new start: not earlier
    assert remembered_suspensions((a,), *b, at("2024-10-14 10:00"), new_cycle=True) == ()  # a reopen forgets


# --- the import: two exports, the deadline moves by both ----------------------------------------------------

HEADERS = ["工单编号", "来源", "诉求类型", "交办时间", "承办单位", "办理状态", "签收时间", "挂起时间", "解挂时间",
           "反馈时间"]


def _row(number: str, pause: tuple[str, str] | None, *, received: str = RECEIVED, status: str = "办理中",
         fed_back: str = "") -> list[str]:
    start, end = pause or ("", "")
    return [number, "市级", "投诉", received, "兴隆台区住建局", status, received, start, end, fed_back]


def _csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in [HEADERS, *rows]) + "\n", encoding="utf-8-sig")
    return path


def _stored(store: Store, number: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(cases).where(cases.c.number == number)).one()


def test_two_exports_move_the_deadline_by_both_suspensions(store: Store, rules: RuleSet, tmp_path: Path) -> None:
    now = at("2024-10-11 10:00")
    first = _csv(tmp_path / "1.csv", [_row("S2", FIRST)])
    second = _csv(tmp_path / "2.csv", [_row("S2", SECOND)])
    assert import_file(store, rules, first, now=now, parallel=False).inserted == 1
    assert _stored(store, "S2").due_at == at("2024-10-12 00:00")
    report = import_file(store, rules, second, now=now, parallel=False)
    assert report.updated == 1
    row = _stored(store, "S2")
    assert row.due_at == at("2024-10-15 00:00") and row.deadline_version == 2
    assert (row.suspended_at, row.resumed_at) == pair(SECOND)
    # a recompute (a calendar or rule change) reads every suspension back and derives the same deadline
    again = record_from_row(row)
    assert again.suspensions == (pair(FIRST), pair(SECOND))
    assert derive(again, RuleCache(rules))["due_at"] == row.due_at
    assert import_file(store, rules, second, now=now, parallel=False).unchanged == 1  # a re-import: a no-op
    assert _stored(store, "S2") == row
    # another change, the same pair: the list stays, and so does the deadline
    fed = _csv(tmp_path / "3.csv", [_row("S2", SECOND, status="已反馈", fed_back="2024-10-14 10:00")])
    assert import_file(store, rules, fed, now=now, parallel=False).updated == 1
    assert _stored(store, "S2").due_at == at("2024-10-15 00:00")
    with store.engine.connect() as conn:
        doc = explain_case(conn, rules, rules.rules[0].calendar, "S2")
    assert doc is not None and doc["suspensions"] == [
        {"suspended_at": "2024-09-30T10:00:00+08:00", "resumed_at": "2024-10-08T10:00:00+08:00"},
        {"suspended_at": "2024-10-09T10:00:00+08:00", "resumed_at": "2024-10-11T09:00:00+08:00"}]
    # reopened (重办) on Oct 14: a new cycle, a new clock; the earlier cycle's suspensions are forgotten
    reopened = _csv(tmp_path / "4.csv", [_row("S2", None, received="2024-10-14 09:00", status="重办")])
    assert import_file(store, rules, reopened, now=now, parallel=False).updated == 1
    row = _stored(store, "S2")
    assert row.earlier_suspensions is None and row.due_at == at("2024-10-22 00:00")  # Oct 15-18, 21


def test_a_row_without_a_suspension_keeps_the_list(store: Store, rules: RuleSet, tmp_path: Path) -> None:
    """The remembered list survives rows that show no suspension (the import reads it only for cases ever
    suspended, by ``earlier_suspensions IS NOT NULL``: none is SQL NULL, not JSON null)."""
    now = at("2024-10-11 10:00")
    for name, row in (("1.csv", _row("S5", FIRST)), ("2.csv", _row("S5", SECOND)), ("3.csv", _row("S5", None)),
                      ("4.csv", _row("S5", None, status="已反馈", fed_back="2024-10-11 09:30")),
                      ("5.csv", _row("N5", None))):
        import_file(store, rules, _csv(tmp_path / name, [row]), now=now, parallel=False)
    row = _stored(store, "S5")
    assert row.suspended_at is None and row.fed_back_at == at("2024-10-11 09:30")
    assert row.earlier_suspensions == [["2024-09-30T10:00:00+08:00", "2024-10-08T10:00:00+08:00"]]
    assert row.due_at == at("2024-10-12 00:00")  # moved by the one it still knows
    with store.engine.connect() as conn:
        never = conn.execute(select(cases.c.number).where(cases.c.earlier_suspensions.is_(None))).scalars().all()
    assert never == ["N5"]


def test_an_export_still_suspended_a_second_time_keeps_the_first(store: Store, rules: RuleSet, tmp_path: Path) -> None:
    """Suspended again and not yet resumed: no breach while suspended, and the first suspension still counts."""
    now = at("2024-10-10 10:00")
    import_file(store, rules, _csv(tmp_path / "1.csv", [_row("S3", FIRST)]), now=now, parallel=False)
    again = _csv(tmp_path / "2.csv", [_row("S3", (SECOND[0], ""), status="挂起")])
    import_file(store, rules, again, now=now, parallel=False)
    row = _stored(store, "S3")
    assert row.due_at == at("2024-10-12 00:00") and row.next_check_at is None


def test_the_parallel_import_remembers_the_same(rules: RuleSet, tmp_path: Path) -> None:
    """The parallel path (large CSVs into SQLite) ends in the same writer: the same store as the serial one."""
    numbers = [f"P{i:05d}" for i in range(300)]
    first = _csv(tmp_path / "1.csv", [_row(n, FIRST) for n in numbers])
    second = _csv(tmp_path / "2.csv", [_row(n, SECOND if i % 2 else FIRST) for i, n in enumerate(numbers)])
    stores = []
    for name in ("serial", "parallel"):
        store = Store(f"sqlite:///{tmp_path / name}.sqlite3")
        store.upgrade()
        for path in (first, second, second):
            if name == "serial":
                import_file(store, rules, path, now=at("2024-10-11 10:00"), parallel=False)
            else:
                builder, rows = case_table(path)
                rows.close()  # type: ignore[attr-defined]
                parallel_import.import_parallel(store, rules, path, builder, "utf-8-sig", now=at("2024-10-11 10:00"),
                                                source_name="import", rejected=[], piece_bytes=2048)
        with store.engine.connect() as conn:
            stores.append(conn.execute(select(cases.c.number, cases.c.due_at, cases.c.earlier_suspensions,
                                              cases.c.deadline_version).order_by(cases.c.number)).all())
        store.close()
    assert stores[0] == stores[1]
    dues = {row.due_at for row in stores[1]}
    assert dues == {at("2024-10-12 00:00"), at("2024-10-15 00:00")}


def test_cases_list_json_shows_every_suspension(cli: Any, rules: RuleSet, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    for name, pause in (("1.csv", FIRST), ("2.csv", SECOND)):
        r: CliResult = cli("--config", str(cfg), "import", str(_csv(tmp_path / name, [_row("S4", pause)])),
                           "--now", "2024-10-11 10:00")
        assert r.code == 0, r.err
    listed: CliResult = cli("--config", str(cfg), "cases", "list", "--json", "--now", "2024-10-11 10:00")
    case = json.loads(listed.out)["cases"][0]
    assert case["due_at"] == "2024-10-15T00:00:00+08:00"
    assert [(s["suspended_at"][:16], s["resumed_at"][:16]) for s in case["suspensions"]] == [
        ("2024-09-30T10:00", "2024-10-08T10:00"), ("2024-10-09T10:00", "2024-10-11T09:00")]
    text: CliResult = cli("--config", str(cfg), "cases", "explain", "S4")
    assert text.out.count("挂起 suspended at") == 2


# --- migration 0013 on every database ------------------------------------------------------------------------

def test_migration_0013_adds_and_drops_the_column(store: Store, rules: RuleSet, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import inspect

    from daemon.storage.store import MIGRATIONS

    import_file(store, rules, _csv(tmp_path / "1.csv", [_row("M1", FIRST)]), now=at("2024-10-11 10:00"),
                parallel=False)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    columns = {c["name"] for c in inspect(store.engine).get_columns("cases")}
    assert "earlier_suspensions" not in columns and "suspended_at" in columns
    store.upgrade()
    assert "earlier_suspensions" in {c["name"] for c in inspect(store.engine).get_columns("cases")}
    import_file(store, rules, _csv(tmp_path / "2.csv", [_row("M1", SECOND)]), now=at("2024-10-11 10:00"),
                parallel=False)
    row = _stored(store, "M1")  # the case kept across the round trip, and the next import remembers
    assert row.due_at == at("2024-10-15 00:00") and len(row.earlier_suspensions) == 1
