"""Quieter alerts (issue 16 item 4): one message per recipient per round, capped, most urgent first, and
``dispatch`` counting messages apart from rows. (One message per case when several steps are decided at
once: tests/test_engine.py ``announced`` and tests/test_life.py.)"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from daemon.pipeline.outbox import Dispatcher
from daemon.pipeline.recipients import sync_config_contacts
from daemon.pipeline.render import Renderer, alert_context, sms_params
from daemon.storage.store import Store
from notifiers.testing import FakeNotifier
from tests.outbox_helpers import alert_payload, at, config, person, queue, rows

NOW = at("2026-11-20 09:00")


@pytest.fixture
def sqlite_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Store(f"sqlite:///{tmp_path / 'quiet.sqlite3'}")
    s.upgrade()
    yield s
    s.close()


def dispatcher(store: Store, notifiers: dict[str, Any], **dispatch: Any) -> Dispatcher:
    cfg = config(**dispatch)
    with store.engine.begin() as conn:
        sync_config_contacts(conn, cfg)
    return Dispatcher(store, cfg, notifiers, owner="d1", rng=random.Random(7), monotonic=lambda: 0.0)


def test_a_burst_for_one_recipient_is_one_message_listing_the_cap_and_counting_the_rest(sqlite_store: Store) -> None:
    for i in range(70):
        queue(sqlite_store, NOW, number=f"C{i:02d}", kind="breach", due_at=f"2026-11-{10 + i % 10}T00:00:00+08:00")
    fake = FakeNotifier("wecom")
    result = dispatcher(sqlite_store, {"wecom": fake}, max_items_per_message=20).dispatch_once(NOW)
    assert (result.messages, result.messages_sent, result.sent) == (1, 1, 70)
    [message] = fake.sent
    assert message.subject == "70件诉求已超期" and message.params["count"] == "70"
    assert message.text.count("工单C") == 20 and "21. " not in message.text
    assert "还有50件未列出，请登录热线平台查看全部。" in message.text
    assert message.markdown is not None and "还有**50件**未列出" in message.markdown
    assert message.params["due_at"] == "11月10日 00:00"  # the SMS parameters read the whole batch
    assert {r.status for r in rows(sqlite_store)} == {"sent"}


@pytest.mark.parametrize("family", ["txt", "md", "html"])
def test_every_format_of_every_alert_kind_says_how_many_are_not_listed(family: str) -> None:
    renderer = Renderer()
    for kind in ("warning", "breach", "breach_repeat", "return_window", "late_return", "deadline_moved"):
        items = [dict(alert_payload(f"C{i}", kind), old_due_at="2026-11-19T00:00:00+08:00") for i in range(5)]
        capped = renderer.render(kind, alert_context(kind, items, person(), NOW, limit=3), (family,))
        body = {"txt": capped.text, "md": capped.markdown, "html": capped.html}[family]
        assert body is not None and "还有" in body and "2" in body.split("还有")[1][:12], (kind, family)
        assert "C3" not in body and "C4" not in body
        full = renderer.render(kind, alert_context(kind, items, person(), NOW, limit=5), (family,))
        assert "还有" not in {"txt": full.text, "md": full.markdown, "html": full.html}[family]


def test_a_batch_lists_the_most_urgent_first_then_the_earliest_deadline() -> None:
    items = [
        alert_payload("LATER", "breach_repeat", due_at="2026-11-19T00:00:00+08:00", overdue_working_days=1),
        alert_payload("OLDEST", "breach_repeat", due_at="2026-11-12T00:00:00+08:00", overdue_working_days=6),
        alert_payload("URGENT", "breach_repeat", due_at="2026-11-19T00:00:00+08:00", overdue_working_days=1,
                      urgent=True),
        alert_payload("EARLIER", "breach_repeat", due_at="2026-11-18T00:00:00+08:00", overdue_working_days=1),
    ]
    ctx = alert_context("breach_repeat", items, person("督办员", role="supervisor", unit=None), NOW)
    assert [i["case"]["number"] for i in ctx["items"]] == ["URGENT", "OLDEST", "EARLIER", "LATER"]
    text = Renderer().render("breach_repeat", ctx).text
    assert text.index("工单URGENT") < text.index("工单OLDEST") < text.index("工单EARLIER") < text.index("工单LATER")
    assert sms_params(ctx)["case_no"] == "URGENT等4件"


def test_the_messages_of_a_claim_go_most_urgent_first(sqlite_store: Store) -> None:
    def row(i: int, name: str, kind: str, due: str, days: int = 0, urgent: bool = False) -> SimpleNamespace:
        payload = alert_payload(f"C{i}", kind, due_at=due, overdue_working_days=days, urgent=urgent)
        return SimpleNamespace(id=i, kind=kind, channel="wecom", recipient=person(name), payload=payload,
                               parts_sent=0, batch_id=None, not_before=NOW - timedelta(seconds=i))
    claimed = [
        row(1, "甲", "warning", "2026-11-22T00:00:00+08:00"),
        row(2, "乙", "warning", "2026-11-21T00:00:00+08:00"),
        row(3, "丙", "breach_repeat", "2026-11-12T00:00:00+08:00", days=6),
        row(4, "丁", "breach", "2026-11-20T00:00:00+08:00", urgent=True),
        row(5, "甲", "warning", "2026-11-20T12:00:00+08:00"),
    ]
    batches = dispatcher(sqlite_store, {})._batches(claimed)
    assert [[r.id for r in b] for b in batches] == [[4], [3], [5, 1], [2]]


def test_dispatch_says_messages_and_rows_apart(tmp_path: Path, cli: Any) -> None:
    """The bug: three alerts sent as one message printed "sent 3"."""
    db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"url": db}, "channels": {"console": {"type": "console"}}},
                                  allow_unicode=True), "utf-8")
    store = Store(db)
    store.upgrade()
    for number in ("C1", "C2", "C3"):
        queue(store, NOW, channel="console", number=number)
    store.close()
    r = cli("--config", str(cfg), "dispatch", "--now", "2026-11-20 09:00", "--json")
    doc = json.loads(r.out)
    assert r.code == 0 and (doc["messages_sent"], doc["rows_sent"], doc["sent"]) == (1, 3, 3)
    store = Store(db)
    for number in ("C4", "C5"):
        queue(store, NOW, channel="console", number=number, kind="breach")
    store.close()
    r = cli("--config", str(cfg), "dispatch", "--now", "2026-11-20 09:00")
    assert r.code == 0 and "\ndispatch at 2026-11-20T09:00:00+08:00: sent 1 message (2 rows), " in r.out


def test_an_outage_between_tick_and_dispatch_still_sends_one_message_per_case(store: Store, rules: Any) -> None:
    """The tick at the breach queued 已超期; the dispatcher was down until the repeat was queued too: the claim
    holds both for one case and one recipient, and only the repeat (the current state) is sent."""
    from sqlalchemy import select

    from daemon.core.cases import CaseRecord, Category, Source, Status
    from daemon.pipeline.tick import run_tick
    from daemon.storage.models import outbox
    from tests.test_life import UNIT
    from tests.test_life import config as life_config

    record = CaseRecord(number="OUTAGE", source=Source.CITY, category=Category.COMPLAINT, unit=UNIT,
                        received_at=at("2024-09-27 16:30"), summary="诉求", status=Status.SIGNED,
                        signed_at=at("2024-09-27 17:00"))
    calendar = rules.rules[0].calendar
    cfg = life_config()  # a weekend's outage: the breach is not dead-lettered before the repeat is queued
    cfg = cfg.model_copy(update={"dispatch": cfg.dispatch.model_copy(update={"dead_letter_after_hours": 72})})
    store.upsert_cases([record], rules=rules, now=at("2024-09-27 16:30"), source_name="t")
    run_tick(store, rules, calendar, cfg, at("2024-10-10 08:40"))  # the second warning, sent in time
    Dispatcher(store, cfg, {"console": FakeNotifier("console")}, owner="d0").dispatch_due(at("2024-10-10 08:40"))
    assert [a["kind"] for a in run_tick(store, rules, calendar, cfg, at("2024-10-11 00:00")).alerts] == ["breach"]
    assert [a["kind"] for a in run_tick(store, rules, calendar, cfg, at("2024-10-12 09:00")).alerts] == [
        "breach_repeat"]
    fake = FakeNotifier("console")
    result = Dispatcher(store, cfg, {"console": fake}, owner="d1").dispatch_due(at("2024-10-12 09:05"))
    assert [m.subject for m in fake.sent] == ["工单OUTAGE超期仍未办结"]
    assert (result.messages_sent, result.sent, result.superseded) == (1, 1, 1)
    with store.engine.connect() as conn:
        by_kind = {r.kind: (r.status, r.last_error) for r in conn.execute(select(outbox.c.kind, outbox.c.status,
                                                                                 outbox.c.last_error))}
    assert by_kind["breach_repeat"][0] == "sent" and by_kind["breach"][0] == "superseded"
    assert "later breach_repeat" in str(by_kind["breach"][1])
