"""The import's fast paths agree with the slow, obvious ones: memoised deadlines with Rule.deadline, the
hand-converted driver values with SQLAlchemy's own column types, on every dialect."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

from daemon.core.calendar import WorkCalendar
from daemon.core.cases import CaseRecord, Category, Priority, Source, Status
from daemon.core.derive import RuleCache, derive, warnings_json
from daemon.core.engine import CaseState, first_check_at
from daemon.core.rules import RuleSet, load_rules
from daemon.core.timeutil import LOCAL_TZ
from daemon.storage.models import cases
from daemon.storage.upsert import CaseValues


def _reference(record: CaseRecord, rules: RuleSet) -> dict[str, object]:
    """derive() as it was before the memo: every deadline computed from scratch."""
    view = {"source": record.source.value, "category": record.category.value, "status": record.status.value,
            "unit": record.unit, "district": record.district, "domain": record.domain,
            "priority": (record.priority or Priority.NORMAL).value}
    rule, return_rule = rules.match(view), rules.return_rule(view)
    deadline = rule.deadline(record.received_at, extended_due_at=record.extended_due_at,
                             platform_due_at=record.platform_due_at, suspensions=record.suspensions,
                             contact_observed=record.contact_tracked)
    ret = return_rule.deadline(record.received_at) if return_rule else None
    return {
        "rule_id": rule.id, "due_at": deadline.due_at, "provisional": deadline.provisional,
        "warnings": warnings_json(deadline.warnings), "return_rule_id": return_rule.id if return_rule else None,
        "return_due_at": ret.due_at if ret else None, "return_warnings": warnings_json(ret.warnings) if ret else None,
        "next_check_at": first_check_at(CaseState.from_record(record), deadline, ret),
        "computed_due_at": deadline.computed_due_at, "deadline_source": deadline.deadline_source,
        "sign_due_at": deadline.sign_by, "contact_due_at": deadline.contact_by,
    }


@pytest.fixture(params=["default", "unusual"])
def rule_set(request: pytest.FixtureRequest, rules: RuleSet, calendar: WorkCalendar) -> RuleSet:
    """The default rules, and tests/data/unusual_rules (end_of_day 17:30, roll_to_workday, working-day
    warnings on an hour rule, a 12-hour return window)."""
    if request.param == "default":
        return rules
    return load_rules(Path(__file__).resolve().parent / "data" / "unusual_rules", calendar)


def test_memoised_derive_matches_rule_deadline(rule_set: RuleSet) -> None:
    rules = rule_set
    rng = random.Random(3)
    cache = RuleCache(rules)
    start = datetime(2024, 9, 20, tzinfo=LOCAL_TZ)  # across National Day, year ends and a provisional year
    for _ in range(4000):
        received = start + timedelta(seconds=rng.randrange(0, 3 * 366 * 86400))
        if rng.random() < 0.3:
            received = received.replace(hour=rng.choice([0, 8, 23]), minute=rng.choice([0, 30, 59]), second=0)
        extra: dict[str, object] = {}
        roll = rng.random()
        if roll < 0.1:
            extra["extended_due_at"] = received + timedelta(days=rng.randint(3, 30))
        elif roll < 0.2:
            extra.update(status=Status.FED_BACK, fed_back_at=received + timedelta(days=2))
        elif roll < 0.3:
            extra.update(status=Status.RETURN_REQUESTED,
                         return_requested_at=received + timedelta(hours=rng.choice([2, 12, 24, 30])))
        elif roll < 0.5:
            extra.update(status=Status.SIGNED, signed_at=received + timedelta(hours=1))
        if rng.random() < 0.3:  # the platform's own deadline (办理时限), earlier or later than ours
            day = (received + timedelta(days=rng.randint(1, 14))).astimezone(LOCAL_TZ)
            extra["platform_due_at"] = day.replace(hour=0, minute=0, second=0, microsecond=0)
        if rng.random() < 0.2:  # 紧急程度
            extra["priority"] = rng.choice(list(Priority))
        if rng.random() < 0.3:  # a source with a 先行联系时间 column: contacted or not yet
            extra["contact_tracked"] = True
            if rng.random() < 0.5:
                extra["contacted_at"] = received + timedelta(minutes=rng.randrange(0, 6 * 60))
        if rng.random() < 0.1:  # a resumed suspension (working-hour rules give back working time)
            extra["suspended_at"] = received + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
            extra["resumed_at"] = extra["suspended_at"] + timedelta(minutes=rng.randrange(0, 5 * 24 * 60))  # type: ignore[operator]
        record = CaseRecord(
            number=str(_), source=rng.choice(list(Source)), category=rng.choice(list(Category)), unit="某单位",
            received_at=received.astimezone(UTC) if rng.random() < 0.2 else received, **extra,  # type: ignore[arg-type]
        )
        assert derive(record, cache) == _reference(record, rules), record


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect(), mysql.pymysql.dialect()],
                         ids=["sqlite", "postgresql", "mariadb"])
def test_driver_values_match_sqlalchemy_types(dialect: object) -> None:
    values = CaseValues(dialect)  # type: ignore[arg-type]
    instants = [datetime(2026, 11, 20, 9, 0, tzinfo=LOCAL_TZ), datetime(2026, 11, 20, 9, 0, 0, 250, tzinfo=UTC),
                datetime(1970, 1, 1, tzinfo=UTC), None]
    sa_instant = cases.c.due_at.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[arg-type]
    for instant in instants:
        expected = sa_instant(instant) if sa_instant else instant
        assert values.instant(instant) == expected
        assert values.shared_instant(instant) == expected
    with pytest.raises(ValueError, match="naive datetime"):
        values.instant(datetime(2026, 11, 20, 9, 0))
    flag = cases.c.difficult.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[arg-type]
    for b in (True, False):
        assert values.flag[b] == (flag(b) if flag else b)
    as_json = cases.c.warnings.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[arg-type]
    assert as_json is not None
    for value in (None, [[1, "2026-11-20T08:30:00+08:00", "2 working days"]]):
        got = values.json_null if value is None else values.json(value)
        expected = as_json(value)
        assert getattr(got, "obj", got) == getattr(expected, "obj", expected)  # psycopg wraps it in Json
