"""A chunk of cases without the facts added later is inserted without their columns (codec.BulkInsert): what
lands is what the whole INSERT writes, on every backend, and a chunk with any such fact is written whole."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from daemon.core.cases import CaseRecord, Category, Priority, Source, Status
from daemon.core.derive import RuleCache, content_hash, derive_parts
from daemon.core.rules import RuleSet
from daemon.core.timeutil import LOCAL_TZ
from daemon.storage.codec import BulkInsert
from daemon.storage.models import cases
from daemon.storage.store import Store
from daemon.storage.upsert import INSERT_COLUMNS, PLAIN_COLUMNS, ChunkWriter

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=LOCAL_TZ)
RECEIVED = datetime(2026, 11, 18, 10, 30, tzinfo=LOCAL_TZ)
COMPARED = [c for c in INSERT_COLUMNS if c not in ("number", "content_hash")]  # the number is in the hash


def _plain(number: str, **kw: Any) -> CaseRecord:
    fields: dict[str, Any] = {"status": Status.SIGNED, "signed_at": RECEIVED + timedelta(minutes=5),
                              "summary": "反映供暖问题", **kw}
    return CaseRecord(number=number, source=Source.CITY, category=Category.COMPLAINT, unit="兴隆台区住建局",
                      received_at=RECEIVED, **fields)


def _later_facts(number: str) -> CaseRecord:
    return _plain(number, accepted_at=RECEIVED - timedelta(hours=3), platform_due_at=RECEIVED + timedelta(days=4),
                  platform_overdue=False, suspended_at=RECEIVED + timedelta(days=1),
                  resumed_at=RECEIVED + timedelta(days=2), priority=Priority.URGENT)


class _Spy:
    def __init__(self, name: str, inner: Any, ran: list[str]) -> None:
        self.name, self.inner, self.ran = name, inner, ran

    def run(self, conn: Any, rows: list[tuple[Any, ...]]) -> None:
        self.ran.append(self.name)
        self.inner.run(conn, rows)


def _stored(store: Store, prefix: str) -> list[tuple[Any, ...]]:
    columns = [cases.c[c] for c in COMPARED]
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(cases.c.number, *columns)
                                               .where(cases.c.number.like(f"{prefix}%")).order_by(cases.c.number))]


def test_a_chunk_without_later_facts_lands_as_the_whole_insert_writes_it(store: Store, rules: RuleSet) -> None:
    writer = ChunkWriter(store.engine.dialect, RuleCache(rules))
    bulk = BulkInsert(store.engine.dialect, cases, INSERT_COLUMNS, PLAIN_COLUMNS)
    assert bulk.defaults == (None,) * len(PLAIN_COLUMNS)
    ran: list[str] = []
    whole = bulk.whole
    bulk.short, bulk.whole = _Spy("short", bulk.short, ran), _Spy("whole", bulk.whole, ran)  # type: ignore[assignment]
    now_bound = writer.values.instant(NOW)

    def rows(records: list[CaseRecord]) -> list[tuple[Any, ...]]:
        return [writer.record_row(r, content_hash(r), derive_parts(r, writer.cache), "t", 1, now_bound)
                for r in records]

    with store.engine.begin() as conn:
        bulk.run(conn, rows([_plain("A1"), _plain("A2", stars=5)]))
        whole.run(conn, rows([_plain("B1"), _plain("B2", stars=5)]))  # the same cases, every column sent
        bulk.run(conn, rows([_plain("C1"), _later_facts("C2")]))  # one case with the later facts: all whole
        whole.run(conn, rows([_plain("D1"), _later_facts("D2")]))
    assert ran == ["short", "whole"]
    a, b = _stored(store, "A"), _stored(store, "B")
    assert [r[1:] for r in a] == [r[1:] for r in b]
    assert all(r[COMPARED.index("deadline_source") + 1] == "computed" for r in a)  # the server default
    c, d = _stored(store, "C"), _stored(store, "D")
    assert [r[1:] for r in c] == [r[1:] for r in d]
    priority, overdue = COMPARED.index("priority") + 1, COMPARED.index("platform_overdue") + 1
    assert c[1][priority] == "urgent" and c[0][priority] is None
    assert c[1][overdue] is False and c[0][overdue] is None


def test_an_update_leaves_out_the_later_facts_only_when_no_case_had_or_has_them(store: Store, rules: RuleSet) -> None:
    """A chunk of changed cases without the later facts before and after is updated without those columns;
    a case that loses them (紧急程度 no longer in the export) or gains them is written whole, in any chunk."""
    store.upsert_cases(iter([_plain("P1"), _later_facts("L1"), _plain("G1")]), rules=rules, now=NOW, source_name="t")
    fed_back = RECEIVED + timedelta(days=1)
    store.upsert_cases(iter([_plain("P1", status=Status.FED_BACK, fed_back_at=fed_back)]), rules=rules, now=NOW,
                       source_name="t")
    store.upsert_cases(iter([_plain("L1", status=Status.FED_BACK, fed_back_at=fed_back)]), rules=rules, now=NOW,
                       source_name="t")
    store.upsert_cases(iter([_later_facts("G1")]), rules=rules, now=NOW, source_name="t")
    with store.engine.connect() as conn:
        got = {r.number: r for r in conn.execute(select(cases))}
    assert got["P1"].status == "fed_back" and got["P1"].priority is None and got["P1"].deadline_version == 1
    assert got["L1"].status == "fed_back"
    assert (got["L1"].priority, got["L1"].platform_due_at, got["L1"].accepted_at) == (None, None, None)
    assert got["G1"].priority == "urgent" and got["G1"].platform_overdue is False
    assert got["G1"].suspended_at is not None and got["G1"].deadline_source == "platform"
