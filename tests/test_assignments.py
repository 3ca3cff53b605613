"""Re-dispatch under the same 工单编号 (退件 → 重新派单): the import keeps each unit's assignment, `cases explain`
lists them, and the monthly ranking scores each unit on its own part: a unit that returned the case in time is
not scored on it, a late return leaves it the unit's, and the unit holding it now is scored (three databases).

Before: the upsert overwrote the unit, and the first unit's assignment and return window were lost."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import select

from daemon.commands.report_cmds import ranked_cases
from daemon.commands.store_cmds import format_explain
from daemon.core.assignment import assignment_outcome, scored_on_unit
from daemon.core.calendar import WorkCalendar
from daemon.core.cases import CaseRecord, Category, Source, Status
from daemon.core.rules import RuleSet
from daemon.core.timeutil import LOCAL_TZ
from daemon.reports.case_views import explain_case
from daemon.storage.models import assignments
from daemon.storage.store import Store


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=LOCAL_TZ)


def _case(number: str, unit: str, received: datetime, **kw: object) -> CaseRecord:
    return CaseRecord(number=number, source=Source.CITY, category=Category.COMPLAINT, unit=unit,
                      received_at=received, status=kw.pop("status", Status.SIGNED), **kw)  # type: ignore[arg-type]


def test_outcome_and_who_is_scored() -> None:
    assert assignment_outcome(Status.RETURNED, None) == "returned"
    assert assignment_outcome(Status.SIGNED, _at(2, 9)) == "returned"
    assert assignment_outcome(Status.CLOSED, None) == "closed"
    assert assignment_outcome(Status.SUSPENDED, None) == "open"
    window_end = _at(3, 10)
    assert not scored_on_unit("returned", _at(3, 9, 59), window_end)  # in time
    assert scored_on_unit("returned", window_end, window_end)  # the window's end is its first late instant
    assert not scored_on_unit("returned", None, window_end)  # returned, request time unknown: as before
    assert scored_on_unit("open", None, None) and scored_on_unit("closed", None, window_end)


def test_each_unit_keeps_its_assignment_and_is_scored_on_its_own_part(
    store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    first = [
        # returned within the 24-hour window (received Nov 2 10:00, asked 15:00)
        _case("A1", "兴隆台区住建局", _at(2, 10), status=Status.RETURNED, return_requested_at=_at(2, 15)),
        # asked to return a day late (the window closed Nov 3 10:00)
        _case("A2", "兴隆台区住建局", _at(2, 10), status=Status.RETURN_REQUESTED, return_requested_at=_at(4, 11)),
        _case("A3", "兴海街道办事处", _at(2, 10)),  # stays with its unit
    ]
    store.upsert_cases(first, rules=rules, now=_at(4, 12), source_name="t")
    again = [
        _case("A1", "振兴街道办事处", _at(3, 9)),
        _case("A2", "振兴街道办事处", _at(5, 9)),
        replace(first[2], status=Status.FED_BACK, fed_back_at=_at(5, 16)),
    ]
    store.upsert_cases(again, rules=rules, now=_at(5, 17), source_name="t")
    store.upsert_cases(again, rules=rules, now=_at(5, 18), source_name="t")  # unchanged: nothing more

    with store.engine.connect() as conn:
        kept = conn.execute(select(assignments.c.unit, assignments.c.outcome, assignments.c.received_at,
                                   assignments.c.return_due_at).order_by(assignments.c.id)).all()
        assert [(r.unit, r.outcome) for r in kept] == [("兴隆台区住建局", "returned")] * 2
        assert all(r.received_at == _at(2, 10) and r.return_due_at == _at(3, 10) for r in kept)
        doc = explain_case(conn, rules, calendar, "A1")
    assert doc is not None
    listed = [(a["unit"], a["outcome"], a["current"], a["scored"]) for a in doc["assignments"]]
    assert listed == [("兴隆台区住建局", "returned", False, False), ("振兴街道办事处", "open", True, True)]
    assert doc["assignments"][0]["return_window_ends"] == "2026-11-03T10:00:00+08:00"
    assert doc["assignments"][0]["return_requested_at"] == "2026-11-02T15:00:00+08:00"
    text = format_explain(doc)
    assert "派单 兴隆台区住建局: 交办 2026-11-02T10:00:00+08:00" in text and "not scored (returned in time)" in text

    ranked = sorted((c.number, c.unit) for c in ranked_cases(store, 2026, 11))
    assert ranked == [("A1", "振兴街道办事处"), ("A2", "兴隆台区住建局"), ("A2", "振兴街道办事处"),
                      ("A3", "兴海街道办事处")]
    late = next(c for c in ranked_cases(store, 2026, 11) if c.unit == "兴隆台区住建局")
    assert late.received_at == _at(2, 10) and late.fed_back_at is None and late.closed_at is None


@pytest.mark.parametrize("status", [Status.SIGNED, Status.CLOSED])
def test_a_case_that_keeps_its_unit_has_one_assignment(
    store: Store, rules: RuleSet, calendar: WorkCalendar, status: Status
) -> None:
    rec = _case("B1", "兴海街道办事处", _at(9, 9))
    store.upsert_cases([rec], rules=rules, now=_at(9, 10), source_name="t")
    done = replace(rec, status=status, closed_at=_at(10, 9) if status is Status.CLOSED else None)
    store.upsert_cases([done], rules=rules, now=_at(10, 10), source_name="t")
    with store.engine.connect() as conn:
        assert conn.execute(select(assignments)).all() == []
        doc = explain_case(conn, rules, calendar, "B1")
    assert doc is not None and [a["current"] for a in doc["assignments"]] == [True]
    assert "派单" not in format_explain(doc)
