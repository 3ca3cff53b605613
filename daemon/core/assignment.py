"""A case's assignments to units (退件 → 重新派单 under the same 工单编号): how one ended, and whose it is.

Pure: no clock, database or network. The import records an assignment when a case's unit changes
(:mod:`daemon.storage.assignments`); the ranking asks :func:`scored_on_unit` whether the unit that had it
is scored on it. Instants are aware datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from daemon.core.cases import Status
from daemon.core.engine import is_late_return

__all__ = ["Outcome", "assignment_outcome", "scored_on_unit"]

Outcome = Literal["returned", "closed", "open"]

_RETURNED = frozenset({Status.RETURN_REQUESTED, Status.RETURNED})
_CLOSED = frozenset({Status.FED_BACK, Status.CLOSED})


def assignment_outcome(status: Status, return_requested_at: datetime | None) -> Outcome:
    """How an assignment ended when the case went to another unit: ``returned`` when the unit had asked to
    return it (申请退件 / 已退件, or a 退件申请时间), ``closed`` when it had fed back or closed it, else
    ``open`` (the platform took it away while the unit still held it)."""
    if status in _RETURNED or return_requested_at is not None:
        return "returned"
    if status in _CLOSED:
        return "closed"
    return "open"


def scored_on_unit(outcome: str, return_requested_at: datetime | None, return_due_at: datetime | None) -> bool:
    """Whether the unit of an earlier assignment is ranked on it: yes, unless it returned the case (退件: the
    case was not its business, and the platform accepted that by dispatching it elsewhere). A return asked
    for at or after the window's end (:func:`~daemon.core.engine.is_late_return`) leaves it the unit's; a
    return without a known request time or window is taken as in time, as the ranking always took a
    returned case. An assignment that ended open or closed is the unit's."""
    if outcome != "returned":
        return True
    if return_requested_at is None or return_due_at is None:
        return False
    return is_late_return(return_requested_at, return_due_at)
