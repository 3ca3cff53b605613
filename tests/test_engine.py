"""The decision engine, on the real calendar and the real rules (sla_rules/default.yaml).

The walk (``walk``) is the heart of these tests: it follows a case through its life the way the tick does,
waking only at each ``next_check_at``, and records what the store would insert (a key is inserted once).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise

import pytest

from daemon.config import AlertsConfig
from daemon.core.calendar import WorkCalendar
from daemon.core.cases import CaseRecord, Category, Source, Status
from daemon.core.engine import (
    CaseState,
    Decision,
    EngineSettings,
    Evaluation,
    announced,
    evaluate,
    reads_return_warnings,
    window_level,
)
from daemon.core.rules import Deadline, RuleSet
from daemon.core.timeutil import LOCAL_TZ, parse_time

DEFAULTS = EngineSettings()
DOMAIN_RECEIVED = "2024-09-27 16:30"  # Fri; Sun Sep 29 and Sat Oct 12 are make-up working days


def at(text: str) -> datetime:
    return parse_time(text)


def iso(instant: datetime) -> str:
    return instant.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def open_case(received: str | datetime, **changes: object) -> CaseState:
    received_at = at(received) if isinstance(received, str) else received
    case = CaseState(number="JD2024092700001", status=Status.DISPATCHED, received_at=received_at)
    return replace(case, **changes)  # type: ignore[arg-type]


def deadlines(rules: RuleSet, rule_id: str, received_at: datetime) -> tuple[Deadline, Deadline]:
    return rules.get(rule_id).deadline(received_at), rules.get("return_request").deadline(received_at)


def run(
    case: CaseState,
    deadline: Deadline,
    return_deadline: Deadline | None,
    now: datetime,
    calendar: WorkCalendar,
    settings: EngineSettings = DEFAULTS,
) -> Evaluation:
    return evaluate(case, deadline, return_deadline, now, calendar=calendar, settings=settings)


def walk(
    case: CaseState,
    deadline: Deadline,
    return_deadline: Deadline | None,
    until: datetime,
    calendar: WorkCalendar,
    settings: EngineSettings = DEFAULTS,
    max_steps: int = 200,
) -> tuple[list[Decision], list[tuple[datetime, Evaluation]]]:
    """Wake at receipt, then only at each next_check_at up to ``until``. Returns the decisions the store
    would insert (each key once, in order) and every (now, evaluation) on the way.

    Checks on every step: next_check_at is strictly after now, and every wake-up finds something new.
    """
    inserted: list[Decision] = []
    seen: set[tuple[str, int]] = set()
    steps: list[tuple[datetime, Evaluation]] = []
    now = case.received_at
    for _ in range(max_steps):
        result = run(case, deadline, return_deadline, now, calendar, settings)
        steps.append((now, result))
        new = [d for d in result.decisions if d.key not in seen]
        if len(steps) > 1:  # a wake-up at next_check_at that finds nothing is a wasted tick
            assert new, f"woke at {iso(now)} for nothing: {result}"
        inserted.extend(new)
        seen.update(d.key for d in new)
        if result.next_check_at is None or result.next_check_at > until:
            return inserted, steps
        assert result.next_check_at > now
        now = result.next_check_at
    raise AssertionError(f"no end after {max_steps} steps")


def summary(decisions: list[Decision]) -> list[tuple[str, str, int]]:
    return [(iso(d.fire_at), d.kind, d.level) for d in decisions]


# --- a whole life ----------------------------------------------------------------------------------------


def test_domain_example_walk_over_the_whole_life_of_an_unsigned_case(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, window = deadlines(rules, "municipal_complaint", received)
    inserted, steps = walk(open_case(received), deadline, window, at("2024-10-21 12:00"), calendar)
    assert summary(inserted) == [
        ("2024-09-28 12:30", "return_window", 1),  # 4h before the 24h return window closes
        ("2024-10-09 08:30", "warning", 1),  # 2 working days before
        ("2024-10-10 08:30", "warning", 2),  # 1 working day before (the last day)
        ("2024-10-11 00:00", "breach", 0),  # 超期: the first overdue instant
        ("2024-10-12 09:00", "breach_repeat", 20241012),  # Sat Oct 12 is a make-up working day
        ("2024-10-14 09:00", "breach_repeat", 20241014),
        ("2024-10-15 09:00", "breach_repeat", 20241015),
        ("2024-10-16 09:00", "breach_repeat", 20241016),
        ("2024-10-17 09:00", "breach_repeat", 20241017),
        ("2024-10-18 09:00", "breach_repeat", 20241018),
        ("2024-10-21 09:00", "breach_repeat", 20241021),  # not on the weekend of Oct 19-20
    ]
    # the tick woke exactly at receipt and at each of those instants, never in between
    assert [iso(now) for now, _ in steps] == [DOMAIN_RECEIVED, *(row[0] for row in summary(inserted))]
    assert [d.overdue_working_days for d in inserted if d.kind == "breach_repeat"] == [1, 2, 3, 4, 5, 6, 7]
    assert all(d.due_at == deadline.due_at for d in inserted if d.kind != "return_window")
    assert [d.due_at for d in inserted if d.kind == "return_window"] == [at("2024-09-28 16:30")]
    assert steps[-1][1].next_check_at == at("2024-10-22 09:00")


def test_signed_case_never_hears_about_the_return_window(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, window = deadlines(rules, "municipal_complaint", received)
    case = open_case(received, status=Status.SIGNED, signed_at=at("2024-09-27 17:00"))
    inserted, _ = walk(case, deadline, window, at("2024-10-12 12:00"), calendar)
    assert summary(inserted) == [
        ("2024-10-09 08:30", "warning", 1),
        ("2024-10-10 08:30", "warning", 2),
        ("2024-10-11 00:00", "breach", 0),
        ("2024-10-12 09:00", "breach_repeat", 20241012),
    ]


def test_provincial_natural_days_warn_through_the_holiday(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, _ = deadlines(rules, "provincial_complaint", received)
    inserted, _ = walk(open_case(received, status=Status.SIGNED), deadline, None, at("2024-10-09 12:00"), calendar)
    assert summary(inserted) == [
        ("2024-10-06 08:30", "warning", 1),  # natural-day leads do not skip the National Day holiday
        ("2024-10-07 08:30", "warning", 2),
        ("2024-10-08 00:00", "breach", 0),
        ("2024-10-09 09:00", "breach_repeat", 20241009),
    ]


def test_breach_on_a_rest_day_repeats_from_the_next_working_day(calendar: WorkCalendar, rules: RuleSet) -> None:
    # last day Fri 2024-10-25 → first overdue instant Sat Oct 26 00:00, a plain weekend
    received = at("2024-10-18 10:00")
    deadline, _ = deadlines(rules, "municipal_complaint", received)
    assert deadline.due_at == at("2024-10-26 00:00")
    inserted, _ = walk(open_case(received, status=Status.SIGNED), deadline, None, at("2024-10-29 12:00"), calendar)
    repeats = [(iso(d.fire_at), d.level, d.overdue_working_days) for d in inserted if d.kind == "breach_repeat"]
    # Monday 09:00 is the first repeat; no whole working day has been lost yet, the weekend does not count
    assert repeats == [("2024-10-28 09:00", 20241028, 0), ("2024-10-29 09:00", 20241029, 1)]


def test_breach_repeat_time_is_configurable(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, _ = deadlines(rules, "municipal_complaint", received)
    settings = EngineSettings(breach_repeat_at=time(14, 30))
    inserted, _ = walk(open_case(received, status=Status.SIGNED), deadline, None, at("2024-10-14 23:00"),
                       calendar, settings)
    assert [iso(d.fire_at) for d in inserted if d.kind == "breach_repeat"] == ["2024-10-12 14:30", "2024-10-14 14:30"]


def test_breach_repeat_off_means_the_breach_is_the_last_word(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, _ = deadlines(rules, "municipal_complaint", received)
    case = open_case(received, status=Status.SIGNED)
    result = run(case, deadline, None, at("2024-10-20 10:00"), calendar, EngineSettings(breach_repeat=False))
    assert result.keys == (("breach", 0),)
    assert result.next_check_at is None  # nothing more can happen unless the case changes


# --- outages: the current state, not every missed step ----------------------------------------------------


@pytest.mark.parametrize(
    ("now", "keys", "next_check"),
    [
        ("2024-10-10 20:00", [("warning", 2)], "2024-10-11 00:00"),  # L1 was missed: only L2 now
        ("2024-10-11 00:00", [("breach", 0)], "2024-10-12 09:00"),  # overdue: the breach, no warning
        ("2024-10-15 08:59", [("breach", 0), ("breach_repeat", 20241014)], "2024-10-15 09:00"),  # today's is ahead
        ("2024-10-15 09:00", [("breach", 0), ("breach_repeat", 20241015)], "2024-10-16 09:00"),
        ("2024-10-20 15:00", [("breach", 0), ("breach_repeat", 20241018)], "2024-10-21 09:00"),  # Sunday
        ("2025-03-01 10:00", [("breach", 0), ("breach_repeat", 20250228)], "2025-03-03 09:00"),  # months later
    ],
)
def test_after_an_outage_each_ladder_gives_its_latest_step_once(
    calendar: WorkCalendar, rules: RuleSet, now: str, keys: list[tuple[str, int]], next_check: str
) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, window = deadlines(rules, "municipal_complaint", received)
    result = run(open_case(received, signed_at=received, status=Status.SIGNED), deadline, window, at(now), calendar)
    assert list(result.keys) == keys
    assert result.next_check_at == at(next_check)


def test_after_an_outage_only_the_latest_step_is_announced(calendar: WorkCalendar, rules: RuleSet) -> None:
    """Issue 16: breach and repeat decided at once give one message, the repeat (the current state)."""
    received = at(DOMAIN_RECEIVED)
    deadline, window = deadlines(rules, "municipal_complaint", received)
    signed = open_case(received, signed_at=received, status=Status.SIGNED)
    both = run(signed, deadline, window, at("2024-10-14 10:00"), calendar).decisions
    assert [d.kind for d in both] == ["breach", "breach_repeat"]
    assert [d.key for d in announced(both)] == [("breach_repeat", 20241014)]
    assert announced(both[:1]) == both[:1]  # the breach alone (its repeat recorded earlier) is announced
    assert announced(()) == ()
    # a late return and a return-window warning are about other things: kept beside the ladder's latest step
    late = Decision("late_return", 0, fire_at=at("2024-09-28 18:00"), due_at=at("2024-09-28 16:30"))
    window_warning = Decision("return_window", 1, fire_at=at("2024-09-28 12:30"), due_at=at("2024-09-28 16:30"))
    assert announced((late, window_warning, *both)) == (late, window_warning, both[1])


def test_repeat_count_counts_working_days_over_the_spring_festival(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, _ = deadlines(rules, "municipal_complaint", received)
    result = run(open_case(received, status=Status.SIGNED), deadline, None, at("2025-03-01 10:00"), calendar)
    repeat = result.decisions[-1]
    assert repeat.kind == "breach_repeat"
    # the level is the day the repeat is for; the overdue count is the working days lost in Oct 11 2024 ..
    # Feb 27 2025 (chinese_calendar counts 96: the Spring Festival week and its make-up Sundays included)
    assert repeat.level == 20250228
    assert repeat.overdue_working_days == 96
    assert iso(repeat.fire_at) == "2025-02-28 09:00"


def test_same_situation_twice_gives_the_same_evaluation(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, window = deadlines(rules, "municipal_complaint", received)
    for now in ("2024-09-28 13:00", "2024-10-10 09:00", "2024-10-16 10:00"):
        first = run(open_case(received), deadline, window, at(now), calendar)
        assert run(open_case(received), deadline, window, at(now), calendar) == first
        # UTC or local, an instant is an instant
        assert run(open_case(received), deadline, window, at(now).astimezone(UTC), calendar) == first


# --- finished cases -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"status": Status.FED_BACK, "fed_back_at": at("2024-10-09 10:00")},
        {"status": Status.CLOSED, "closed_at": at("2024-10-09 10:00")},
        {"status": Status.RETURNED, "return_requested_at": at("2024-09-28 10:00")},
        {"status": Status.SIGNED, "fed_back_at": at("2024-10-09 10:00")},  # the timestamp alone is enough
    ],
)
@pytest.mark.parametrize("now", ["2024-09-28 13:00", "2024-10-10 09:00", "2024-10-11 00:00", "2024-11-20 10:00"])
def test_finished_case_yields_nothing_and_needs_no_check(
    calendar: WorkCalendar, rules: RuleSet, changes: dict[str, object], now: str
) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, window = deadlines(rules, "municipal_complaint", received)
    case = open_case(received, **changes)
    assert case.finished
    result = run(case, deadline, window, at(now), calendar)
    assert result == Evaluation((), None)


# --- the return window (退件) -------------------------------------------------------------------------------


def test_return_window_warning_only_while_unsigned_and_open(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at("2024-09-30 20:00")  # window closes 2024-10-01 20:00 (DOMAIN.md), warning at 16:00
    deadline, window = deadlines(rules, "municipal_complaint", received)
    unsigned = open_case(received)

    before = run(unsigned, deadline, window, at("2024-10-01 15:59"), calendar)
    assert before.decisions == ()
    assert before.next_check_at == at("2024-10-01 16:00")

    during = run(unsigned, deadline, window, at("2024-10-01 16:00"), calendar)
    assert during.decisions == (
        Decision("return_window", 1, fire_at=at("2024-10-01 16:00"), due_at=at("2024-10-01 20:00")),
    )
    assert during.next_check_at == deadline.warnings[0].at  # the window is over; a closed window is no breach

    closed = run(unsigned, deadline, window, at("2024-10-01 20:00"), calendar)
    assert closed.decisions == ()

    for case in (
        open_case(received, signed_at=at("2024-10-01 09:00"), status=Status.SIGNED),
        open_case(received, status=Status.SIGNED),  # the status alone says signed
        open_case(received, signed_at=at("2024-10-01 09:00")),  # and so does the timestamp alone
        open_case(received, status=Status.RETURN_REQUESTED, return_requested_at=at("2024-10-01 10:00")),
    ):
        assert run(case, deadline, window, at("2024-10-01 16:00"), calendar).decisions == ()
        assert run(case, deadline, window, at("2024-10-01 15:00"), calendar).next_check_at == deadline.warnings[0].at

    off = EngineSettings(return_window_warning=False)
    assert run(unsigned, deadline, window, at("2024-10-01 16:00"), calendar, off).decisions == ()
    assert run(unsigned, deadline, None, at("2024-10-01 16:00"), calendar).decisions == ()


@pytest.mark.parametrize(
    ("requested", "late"),
    [("2024-10-01 19:59", False), ("2024-10-01 20:00", True), ("2024-10-03 11:00", True)],
)
@pytest.mark.parametrize("status", [Status.RETURN_REQUESTED, Status.RETURNED])
def test_late_return_is_a_notice_for_supervisors(
    calendar: WorkCalendar, rules: RuleSet, requested: str, late: bool, status: Status
) -> None:
    received = at("2024-09-30 20:00")
    deadline, window = deadlines(rules, "municipal_complaint", received)
    case = open_case(received, status=status, return_requested_at=at(requested))
    result = run(case, deadline, window, at("2024-10-08 09:00"), calendar)
    late_returns = [d for d in result.decisions if d.kind == "late_return"]
    if late:
        assert late_returns == [Decision("late_return", window_level(at("2024-10-01 20:00")), fire_at=at(requested),
                                         due_at=at("2024-10-01 20:00"))]
    else:
        assert late_returns == []
    if status is Status.RETURNED:  # returned: the unit owes nothing more
        assert result.keys == (("late_return", window_level(at("2024-10-01 20:00"))),) * late
        assert result.next_check_at is None
    else:  # a pending return request does not stop the clock: the case keeps its deadline
        assert result.next_check_at == deadline.warnings[0].at


# --- a deadline that moves ---------------------------------------------------------------------------------


def test_extension_re_arms_the_warnings_ahead_of_the_new_deadline(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    rule = rules.get("municipal_complaint")
    case = open_case(received, status=Status.SIGNED)
    now = at("2024-10-10 10:00")
    assert run(case, rule.deadline(received), None, now, calendar).keys == (("warning", 2),)

    extended = rule.deadline(received, extended_due_at=at("2024-10-16 00:00"))  # last day Tue Oct 15
    result = run(case, extended, None, now, calendar)
    assert result.decisions == ()
    assert result.next_check_at == at("2024-10-14 08:30") == extended.warnings[0].at
    later = run(case, extended, None, at("2024-10-14 08:30"), calendar)
    assert later.decisions == (Decision("warning", 1, fire_at=at("2024-10-14 08:30"), due_at=extended.due_at),)
    inserted, _ = walk(case, extended, None, at("2024-10-16 12:00"), calendar)
    assert summary(inserted) == [
        ("2024-10-14 08:30", "warning", 1),
        ("2024-10-15 08:30", "warning", 2),
        ("2024-10-16 00:00", "breach", 0),
    ]


def test_a_short_extension_reports_where_the_case_now_stands(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    rule = rules.get("municipal_complaint")
    extended = rule.deadline(received, extended_due_at=at("2024-10-12 00:00"))  # one more working day
    result = run(open_case(received, status=Status.SIGNED), extended, None, at("2024-10-10 10:00"), calendar)
    # under the new deadline version the current level is 1 (its instant has passed): sent once, for it
    assert result.keys == (("warning", 1),)
    assert result.next_check_at == at("2024-10-11 08:30")


def test_a_deadline_moved_before_now_is_breached_at_once(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    moved = rules.get("municipal_complaint").deadline(received, extended_due_at=at("2024-10-09 00:00"))
    result = run(open_case(received, status=Status.SIGNED), moved, None, at("2024-10-10 10:00"), calendar)
    assert result.keys == (("breach", 0), ("breach_repeat", 20241010))
    assert result.decisions[0].fire_at == at("2024-10-09 00:00")


# --- provisional years -------------------------------------------------------------------------------------


def test_provisional_deadline_walks_like_any_other(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at("2026-12-28 10:00")  # runs into 2027, whose arrangement is not published
    deadline, window = deadlines(rules, "municipal_complaint", received)
    assert deadline.provisional
    inserted, _ = walk(open_case(received), deadline, window, at("2027-01-11 12:00"), calendar)
    assert summary(inserted) == [
        ("2026-12-29 06:00", "return_window", 1),
        ("2027-01-04 08:30", "warning", 1),
        ("2027-01-05 08:30", "warning", 2),
        ("2027-01-06 00:00", "breach", 0),
        ("2027-01-07 09:00", "breach_repeat", 20270107),
        ("2027-01-08 09:00", "breach_repeat", 20270108),
        ("2027-01-11 09:00", "breach_repeat", 20270111),
    ]


# --- inputs and plumbing -----------------------------------------------------------------------------------


def test_naive_now_is_refused(calendar: WorkCalendar, rules: RuleSet) -> None:
    received = at(DOMAIN_RECEIVED)
    deadline, window = deadlines(rules, "municipal_complaint", received)
    with pytest.raises(ValueError, match="timezone-aware"):
        run(open_case(received), deadline, window, datetime(2024, 10, 1, 12, 0), calendar)


def test_settings_and_state_come_from_config_and_record() -> None:
    settings = EngineSettings.from_config(
        AlertsConfig(breach_repeat=False, breach_repeat_at=time(10, 15), return_window_warning=False)
    )
    assert settings == EngineSettings(breach_repeat=False, breach_repeat_at=time(10, 15), return_window_warning=False)
    assert EngineSettings.from_config(AlertsConfig()) == DEFAULTS
    record = CaseRecord(
        number="X1", source=Source.CITY, category=Category.COMPLAINT, unit="住建局",
        received_at=at(DOMAIN_RECEIVED), status=Status.FED_BACK, fed_back_at=at("2024-10-01 10:00"),
    )
    state = CaseState.from_record(record)
    assert state.number == "X1" and state.fed_back_at == record.fed_back_at
    assert state.finished == record.is_finished is True


# --- property: 500 random lives ----------------------------------------------------------------------------


def test_random_lives_wake_only_when_something_is_due(calendar: WorkCalendar, rules: RuleSet) -> None:
    """For 500 seeded receipts: next_check_at is always > now, every wake-up brings a new key, a key is never
    inserted twice, ladders only climb, and between two wake-ups nothing new becomes due (so the tick loses
    nothing by sleeping)."""
    rng = random.Random(12345)
    start = at("2024-01-01 00:00")
    rule_ids = ["municipal_complaint", "provincial_complaint", "inquiry_suggestion"]
    for _ in range(500):
        received = start + timedelta(minutes=rng.randrange(0, 3 * 366 * 24 * 60))  # 2024 into 2027
        deadline, window = deadlines(rules, rng.choice(rule_ids), received)
        signed = rng.random() < 0.5
        case = open_case(received, status=Status.SIGNED if signed else Status.DISPATCHED,
                         signed_at=received + timedelta(hours=1) if signed else None)
        settings = EngineSettings(breach_repeat_at=time(rng.randrange(0, 24), rng.choice([0, 30])))
        until = deadline.due_at + timedelta(days=12)
        inserted, steps = walk(case, deadline, window, until, calendar, settings)

        keys = [d.key for d in inserted]
        assert len(keys) == len(set(keys))
        for kind in ("warning", "breach_repeat", "return_window"):
            levels = [level for k, level in keys if k == kind]
            assert levels == sorted(levels)
        assert keys.count(("breach", 0)) == 1
        assert ("return_window", 1) in keys or signed or not window.warnings
        fire_times = [d.fire_at for d in inserted]
        assert fire_times == sorted(fire_times)
        after_breach = keys[keys.index(("breach", 0)):]
        assert not any(k == "warning" for k, _ in after_breach)

        # sleeping loses nothing: at any instant in [wake_i, wake_i+1) the keys are among wake_i's (they may
        # only shrink, when the return window closes) and the next check is the same
        for (now, result), (later, _) in pairwise(steps):
            instant = now + (later - now) * rng.random()
            between = run(case, deadline, window, instant, calendar, settings)
            assert set(between.keys) <= set(result.keys)
            assert between.next_check_at == result.next_check_at == later


# --- what a caller evaluating many cases at one instant may share or skip ------------------------------------


def test_the_engines_memo_gives_each_case_what_a_fresh_evaluation_gives(
    calendar: WorkCalendar, rules: RuleSet
) -> None:
    """The engine memoises breach ladders per (now, calendar, settings): a case evaluated among a tick's
    others (memo warm) evaluates as it does right after an evaluation at another instant or under other
    settings (memo reset), whatever its due day."""
    rng = random.Random(2024)
    rule_ids = ["municipal_complaint", "provincial_complaint", "inquiry_suggestion"]
    elsewhere = at("2030-01-01 00:00")
    for now_text in ("2024-10-15 09:00", "2024-10-15 08:59", "2024-10-12 09:00", "2024-10-08 00:00"):
        now = at(now_text)
        for settings in (DEFAULTS, EngineSettings(breach_repeat_at=time(0, 0)), EngineSettings(breach_repeat=False)):
            cases: list[tuple[CaseState, Deadline, Deadline | None]] = []
            for _ in range(300):  # receipts over three weeks: many share a due day, some are not due yet
                received = at("2024-09-20 00:00") + timedelta(minutes=rng.randrange(0, 21 * 24 * 60))
                if received > now:
                    continue
                deadline, window = deadlines(rules, rng.choice(rule_ids), received)
                if rng.random() < 0.3:  # an extension to an hour of the day: same due day, another instant
                    deadline = replace(deadline, due_at=deadline.due_at + timedelta(hours=rng.randrange(1, 24)))
                cases.append((open_case(received), deadline, window))
            warm = [evaluate(c, d, w, now, calendar=calendar, settings=settings) for c, d, w in cases]
            fresh = []
            for c, d, w in cases:
                evaluate(c, d, w, elsewhere, calendar=calendar, settings=DEFAULTS)  # resets the memo
                fresh.append(evaluate(c, d, w, now, calendar=calendar, settings=settings))
            assert warm == fresh
            assert sum(d.due_at <= now for _, d, _ in cases) > 20  # the memo was used, and reused


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("requested", [None, "2024-10-01 10:00", "2024-10-02 10:00"])
def test_return_warnings_are_read_only_when_reads_return_warnings_says_so(
    calendar: WorkCalendar, rules: RuleSet, status: Status, signed: bool, requested: str | None
) -> None:
    """The tick leaves a return deadline's warnings unparsed unless the engine reads them: where it does not,
    the evaluation without them is the same; where it does, an unsigned case gets its return-window warning."""
    received = at("2024-09-30 20:00")  # window closes 2024-10-01 20:00, its warning at 16:00
    deadline, window = deadlines(rules, "municipal_complaint", received)
    case = open_case(received, status=status, signed_at=at("2024-10-01 09:00") if signed else None,
                     return_requested_at=at(requested) if requested else None)
    for settings in (DEFAULTS, EngineSettings(return_window_warning=False)):
        for now in (at("2024-10-01 15:00"), at("2024-10-01 16:00"), at("2024-10-03 09:00")):
            full = evaluate(case, deadline, window, now, calendar=calendar, settings=settings)
            bare = evaluate(case, deadline, replace(window, warnings=()), now, calendar=calendar, settings=settings)
            if not reads_return_warnings(case, settings):
                assert bare == full
            elif now == at("2024-10-01 16:00"):
                assert ("return_window", 1) in full.keys and ("return_window", 1) not in bare.keys
    expect = status is Status.DISPATCHED and not signed and requested is None
    assert reads_return_warnings(case, DEFAULTS) is expect
    assert not reads_return_warnings(case, EngineSettings(return_window_warning=False))
