"""The ``assignments`` table: earlier assignments of a case to other units, written by the import, read by the
ranking and ``cases explain``. The outcome is the core's (:func:`daemon.core.assignment.assignment_outcome`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from daemon.core.assignment import assignment_outcome
from daemon.core.cases import Status
from daemon.storage.models import assignments

__all__ = ["Assignment", "earlier_assignments", "ended_assignment", "write_ended"]

#: the columns of ``cases`` an ended assignment is made of (the import reads them before it overwrites them)
CASE_COLUMNS = ("unit", "status", "received_at", "due_at", "return_due_at", "return_requested_at", "fed_back_at",
                "closed_at")


@dataclass(frozen=True)
class Assignment:
    """One assignment of a case to a unit; instants aware (UTC from the store)."""

    unit: str
    received_at: datetime
    due_at: datetime | None
    return_due_at: datetime | None
    return_requested_at: datetime | None
    fed_back_at: datetime | None
    closed_at: datetime | None
    outcome: str  # returned | closed | open
    ended_at: datetime | None  # None: the current one


def ended_assignment(case_id: int, old: Any, ended_at: datetime) -> dict[str, Any]:
    """The ``assignments`` row of the assignment a re-dispatch ends; ``old`` has :data:`CASE_COLUMNS`."""
    return {
        "case_id": case_id, "unit": old.unit, "received_at": old.received_at, "due_at": old.due_at,
        "return_due_at": old.return_due_at, "return_requested_at": old.return_requested_at,
        "fed_back_at": old.fed_back_at, "closed_at": old.closed_at,
        "outcome": assignment_outcome(Status(old.status), old.return_requested_at), "ended_at": ended_at,
    }


def write_ended(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(assignments), list(rows))


def earlier_assignments(conn: Connection, case_id: int) -> list[Assignment]:
    """A case's ended assignments, oldest first."""
    a = assignments.c
    rows = conn.execute(select(a.unit, a.received_at, a.due_at, a.return_due_at, a.return_requested_at,
                               a.fed_back_at, a.closed_at, a.outcome, a.ended_at)
                        .where(a.case_id == case_id).order_by(a.received_at, a.id))
    return [Assignment(*r) for r in rows]
