"""A 工单编号 repeated within one file: the later row is kept (the store upserts in file order) and a warning
names both rows (issue 12 item 5).

A dict of every number seen cost ~124 MB per million rows (tracemalloc), on top of an import that stays
under 300 MB. Here each row costs 16 bytes (its number's hash and its row, in two arrays) and a bit in a
filter of ~8 bits a row; the text of a number is kept only when the filter says it may have been seen,
and the repeats are found at the end by sorting the hashes. A 64-bit hash collision between two different
numbers (about 3 in 100 million for a million rows) would be one false warning; a repeat is never missed.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

_MASK64 = (1 << 64) - 1


class Repeats:
    """Feed every good row in file order (:meth:`see`), then :meth:`report` the warnings, by later row."""

    def __init__(self, expected_rows: int = 1 << 20) -> None:
        bits = 1 << max(16, (8 * expected_rows - 1).bit_length())
        self._mask = bits - 1
        self._filter = bytearray(bits >> 3)
        self._hashes = array("q")
        self._rows = array("q")
        self._maybe: dict[int, str] = {}  # hash → number text, for the numbers the filter has seen before

    def see(self, number: str, row: int) -> None:
        h = hash(number)
        self._hashes.append(h)
        self._rows.append(row)
        bit = (h & _MASK64) & self._mask
        byte, flag = bit >> 3, 1 << (bit & 7)
        if self._filter[byte] & flag:
            self._maybe[h] = number
        else:
            self._filter[byte] |= flag

    def see_many(self, numbers: Sequence[str], rows: Sequence[int]) -> None:
        """:meth:`see` of each number at its row, in order: one loop without a call per row (the parallel import
        feeds a piece at a time; 0.29 µs a row against 0.41 µs)."""
        hashes = list(map(hash, numbers))
        self._hashes.extend(hashes)
        self._rows.extend(rows)
        seen, mask, maybe = self._filter, self._mask, self._maybe
        for h, number in zip(hashes, numbers, strict=True):
            bit = h & mask  # the low bits of the 64-bit two's complement, as in see()
            byte, flag = bit >> 3, 1 << (bit & 7)
            if seen[byte] & flag:
                maybe[h] = number
            else:
                seen[byte] |= flag

    def report(self, warnings: list[dict[str, Any]]) -> None:
        """Append ``{"row": later row, "warning": …}`` for every repeat, in the order of the later rows."""
        candidates = set(self._maybe)
        if not candidates:
            return
        repeated = {a for a, b in pairwise(sorted(h for h in self._hashes if h in candidates)) if a == b}
        first: dict[int, int] = {}
        found: list[tuple[int, int, str]] = []
        for h, row in zip(self._hashes, self._rows, strict=True):
            if h in repeated:
                earlier = first.setdefault(h, row)
                if earlier != row:
                    found.append((row, earlier, self._maybe[h]))
        warnings.extend({"row": row, "warning": repeat_warning(number, earlier, row)}
                        for row, earlier, number in sorted(found))


def repeat_warning(number: str, earlier: int, row: int) -> str:
    return f"工单编号 (number) {number!r} is also in row {earlier}; row {row}, the later one, is kept"


def merge_warnings(*streams: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Warnings from several checks (each by row already) as one list by row; for one row, in argument order."""
    return list(heapq.merge(*streams, key=lambda w: int(w["row"])))
