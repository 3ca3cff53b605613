"""Repeated 工单编号 within one file: every repeat warned, naming the first row and the later one, in the order
of the later rows, with memory that does not hold every number."""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

from daemon.sources.repeats import Repeats


def _warned(numbers: list[tuple[str, int]], expected_rows: int = 1 << 10) -> list[tuple[int, int, str]]:
    repeats = Repeats(expected_rows)
    for number, row in numbers:
        repeats.see(number, row)
    warnings: list[dict[str, Any]] = []
    repeats.report(warnings)
    out = []
    for w in warnings:
        number = w["warning"].split("'")[1]
        earlier = int(w["warning"].split("also in row ")[1].split(";")[0])
        out.append((w["row"], earlier, number))
    return out


def test_every_repeat_names_the_first_row_and_the_later_one() -> None:
    rows = [("A1", 2), ("B2", 3), ("A1", 5), ("C3", 6), ("A1", 9), ("B2", 10)]
    assert _warned(rows) == [(5, 2, "A1"), (9, 2, "A1"), (10, 3, "B2")]
    assert _warned([("A1", 2), ("B2", 3)]) == []


def test_the_same_as_a_dict_of_every_number_with_a_crowded_filter() -> None:
    """A filter far too small for the file (most bits set): still exact, as a plain dict would say."""
    rng = random.Random(5)
    numbers = [(f"2611{rng.randrange(3000):06d}", row) for row in range(2, 5002)]
    expected: list[tuple[int, int, str]] = []
    first: dict[str, int] = {}
    for number, row in numbers:
        earlier = first.setdefault(number, row)
        if earlier != row:
            expected.append((row, earlier, number))
    assert expected and _warned(numbers, expected_rows=16) == expected


def test_memory_is_a_few_bytes_a_row_not_a_dict_of_numbers() -> None:
    """Before (a dict of every number): ~124 bytes a row."""
    tracemalloc.start()
    try:
        repeats = Repeats(200_000)
        for row in range(200_000):
            repeats.see(f"2026{row:08d}", row + 2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200_000 * 40, f"{peak / 200_000:.0f} bytes a row"


def test_see_many_warns_what_see_warns() -> None:
    """The parallel import feeds a piece at a time; with a crowded filter and repeats inside a batch and across
    batches, the warnings are those of one call per row."""
    rng = random.Random(9)
    numbers = [(f"2611{rng.randrange(3000):06d}", row) for row in range(2, 5002)]
    one_by_one, batched = Repeats(16), Repeats(16)
    for number, row in numbers:
        one_by_one.see(number, row)
    for start in range(0, len(numbers), 700):
        batch = numbers[start:start + 700]
        batched.see_many([n for n, _ in batch], [r for _, r in batch])
    expected: list[dict[str, Any]] = []
    got: list[dict[str, Any]] = []
    one_by_one.report(expected)
    batched.report(got)
    assert len(expected) > 1000 and got == expected
