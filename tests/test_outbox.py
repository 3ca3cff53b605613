"""The outbox dispatcher: claims, leases, batching, quiet hours, backoff, deferral, failures, dead letter."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon.pipeline.outbox import Dispatcher
from daemon.pipeline.queue import enqueue
from daemon.pipeline.recipients import sync_config_contacts
from daemon.pipeline.render import TEMPLATE_KINDS, Renderer, alert_context, sms_params
from daemon.storage.models import outbox
from daemon.storage.store import Store
from notifiers.base import Message, NotifierError, Receipt, Recipient
from notifiers.testing import FakeNotifier
from tests.outbox_helpers import alert_payload, at, config, person, queue, rows, tries

NOW = at("2026-11-20 09:00")


@pytest.fixture
def sqlite_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Store(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    s.upgrade()
    yield s
    s.close()


def dispatcher(store: Store, notifiers: dict[str, Any], owner: str = "d1", **dispatch: Any) -> Dispatcher:
    cfg = config(**dispatch)
    with store.engine.begin() as conn:
        sync_config_contacts(conn, cfg)
    return Dispatcher(store, cfg, notifiers, owner=owner, rng=random.Random(7), monotonic=lambda: 0.0)


class PerRecipient(FakeNotifier):
    """Fails permanently for the recipients named in ``refuse``; sends to everyone else."""

    def __init__(self, name: str, refuse: set[str]) -> None:
        super().__init__(name)
        self.refuse = refuse

    def send(self, message: Message) -> Receipt:
        if message.recipient.name in self.refuse:
            self.attempts.append(message)
            raise NotifierError(f"{self.name}: 40003 invalid userid", permanent=True)
        return super().send(message)


# --- enqueue, send, record --------------------------------------------------------------------------------


def test_enqueue_ignores_a_duplicate_key(store: Store) -> None:
    assert queue(store, NOW) is True
    assert queue(store, NOW) is False
    assert queue(store, NOW, channel="sms") is True  # the key is unique per channel
    with store.engine.begin() as conn:  # inside a caller's transaction, the duplicate does not abort it
        assert enqueue(conn, kind="warning", channel="wecom", recipient=person(), payload=alert_payload(),
                       dedupe_key="test:warning:2611100029:王承办", now=NOW) is False
        assert enqueue(conn, kind="warning", channel="wecom", recipient=person(), payload=alert_payload(),
                       dedupe_key="another", now=NOW) is True
    assert len(rows(store)) == 3


def test_a_message_is_sent_recorded_and_marked(store: Store) -> None:
    fake = FakeNotifier("wecom")
    queue(store, NOW)
    result = dispatcher(store, {"wecom": fake}).dispatch_once(NOW)
    assert (result.claimed, result.sent, result.failed) == (1, 1, 0)
    (msg,) = fake.sent
    assert msg.subject == "工单2611100029即将超期"
    assert "将于11月21日 00:00起超期" in msg.text and msg.markdown and msg.html is None
    assert msg.params["case_no"] == "2611100029" and msg.params["due_at"] == "11月21日 00:00"
    (row,) = rows(store)
    assert (row.status, row.attempts, row.lease_owner, row.provider_message_id) == ("sent", 1, None, "wecom-1")
    assert row.sent_at == NOW
    (d,) = tries(store)
    assert (d.outcome, d.channel, d.provider_message_id) == ("sent", "wecom", "wecom-1")
    assert d.recipient == "王承办(尾号1234)"
    assert d.latency_ms == 0 and d.attempted_at == NOW
    assert dispatcher(store, {"wecom": fake}).dispatch_once(NOW).claimed == 0  # nothing twice


# --- claims and leases --------------------------------------------------------------------------------------


def test_two_dispatchers_claim_disjoint_rows(store: Store) -> None:
    for i in range(40):
        queue(store, NOW, number=f"C{i:03}", recipient=person(f"承办{i}", mobile=None))
    fakes = [FakeNotifier("wecom"), FakeNotifier("wecom")]
    ds = [dispatcher(store, {"wecom": f}, owner=f"d{i}") for i, f in enumerate(fakes)]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:  # small claims, so the two interleave
        barrier.wait()
        for _ in range(200):  # bounded
            ds[i].dispatch_once(NOW, limit=3)
            if all(r.status == "sent" for r in rows(store)):
                break

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    numbers = [[m.params["case_no"] for m in f.sent] for f in fakes]
    print(f"\ntwo dispatchers ({store.dialect}): {len(numbers[0])} + {len(numbers[1])} messages")
    assert sorted(numbers[0] + numbers[1]) == [f"C{i:03}" for i in range(40)]  # all, each once
    assert not set(numbers[0]) & set(numbers[1])
    assert {r.status for r in rows(store)} == {"sent"}


def test_claimed_rows_are_not_claimed_again_until_the_lease_runs_out(store: Store) -> None:
    queue(store, NOW)
    crashed = dispatcher(store, {"wecom": FakeNotifier("wecom")}, owner="crashed", lease_seconds=120)
    token, claimed = crashed._claim(NOW, 10)
    assert len(claimed) == 1
    crashed._begin_attempt(claimed, token, "b1", NOW)  # …and dies while sending
    other = FakeNotifier("wecom")
    d2 = dispatcher(store, {"wecom": other}, owner="d2", lease_seconds=120)
    assert d2.dispatch_once(NOW + timedelta(seconds=119)).claimed == 0
    result = d2.dispatch_once(NOW + timedelta(seconds=121))
    assert result.sent == 1 and len(other.sent) == 1
    outcomes = [d.outcome for d in tries(store)]
    assert outcomes == ["interrupted", "sent"]  # the crashed attempt is visible as such
    assert rows(store)[0].attempts == 2


def test_a_lost_lease_is_not_sent(sqlite_store: Store) -> None:
    queue(sqlite_store, NOW)
    d1 = dispatcher(sqlite_store, {"wecom": FakeNotifier("wecom")}, owner="slow")
    token, claimed = d1._claim(NOW, 10)
    later = NOW + timedelta(seconds=500)  # d1 stalled past its lease; d2 took the row over
    fake2 = FakeNotifier("wecom")
    assert dispatcher(sqlite_store, {"wecom": fake2}, owner="d2").dispatch_once(later).sent == 1
    assert d1._begin_attempt(claimed, token, "b", NOW) is False
    assert len(fake2.sent) == 1


def test_should_stop_finishes_the_message_in_flight_and_releases_the_rest(sqlite_store: Store) -> None:
    for i in range(3):
        queue(sqlite_store, NOW, number=f"C{i}", recipient=person(f"人{i}", mobile=None))
    fake = FakeNotifier("wecom")
    calls = iter([False, True])
    result = dispatcher(sqlite_store, {"wecom": fake}).dispatch_once(NOW, should_stop=lambda: next(calls, True))
    assert result.stopped and result.sent == 1 and len(fake.sent) == 1
    assert [(r.status, r.lease_owner) for r in rows(sqlite_store)] == [("sent", None), ("pending", None),
                                                                        ("pending", None)]


# --- batching ------------------------------------------------------------------------------------------------


def test_alerts_for_one_recipient_within_the_window_go_as_one_message(sqlite_store: Store) -> None:
    for n in ("C1", "C2", "C3"):
        queue(sqlite_store, NOW, number=n, not_before=NOW - timedelta(seconds=60))
    queue(sqlite_store, NOW, number="C4", not_before=NOW - timedelta(seconds=600))  # outside the window
    queue(sqlite_store, NOW, number="C5", recipient=person("李科长", "13800005678", role="leader"))
    queue(sqlite_store, NOW, number="C6", kind="breach")  # another kind: its own message
    fake = FakeNotifier("wecom")
    result = dispatcher(sqlite_store, {"wecom": fake}, batch_window_seconds=120).dispatch_once(NOW)
    assert result.sent == 6 and result.messages == 4
    batch = next(m for m in fake.sent if m.params["count"] == "3")
    assert batch.subject == "3件诉求即将超期"
    assert batch.text.startswith("王承办：您单位有3件诉求即将超期：\n1. 工单C1")
    assert batch.params["case_no"] == "C1等3件"
    by_number = {r.payload["case"]["number"]: r for r in rows(sqlite_store)}
    assert len({by_number[n].batch_id for n in ("C1", "C2", "C3")}) == 1
    assert by_number["C4"].batch_id != by_number["C1"].batch_id


def test_supervisor_batch_names_units_and_groups_notes() -> None:
    items = [alert_payload(f"C{i}", unit=u, note=f"{u}未配置承办人联系人，转督办人员")
             for i, u in enumerate(["甲局", "乙局", "甲局"])]
    ctx = alert_context("warning", items, person("督办员", role="supervisor", unit=None), NOW)
    out = Renderer().render("warning", ctx)
    assert "您督办的单位有3件诉求即将超期" in out.text and "工单C1（乙局）" in out.text
    assert out.text.rstrip().endswith("注：甲局、乙局未配置承办人联系人，转督办人员")
    assert sms_params(ctx)["unit"] == "甲局等2个单位"


# --- quiet hours ---------------------------------------------------------------------------------------------


def test_sms_is_held_in_quiet_hours_until_they_end_urgent_goes_through(sqlite_store: Store) -> None:
    night = at("2026-11-20 23:10")
    queue(sqlite_store, night, channel="sms", number="C1")
    queue(sqlite_store, night, channel="sms", number="C2", recipient=person("李科长", "13800005678"), urgent=True)
    queue(sqlite_store, night, channel="wecom", number="C3")  # WeCom has no default quiet hours
    sms, wecom = FakeNotifier("sms"), FakeNotifier("wecom")
    d = dispatcher(sqlite_store, {"sms": sms, "wecom": wecom})
    result = d.dispatch_once(night)
    assert (result.sent, result.deferred, result.quiet) == (2, 1, 1)
    assert [m.params["case_no"] for m in sms.sent] == ["C2"] and len(wecom.sent) == 1
    held = next(r for r in rows(sqlite_store) if r.payload["case"]["number"] == "C1")
    assert (held.status, held.not_before, held.attempts) == ("pending", at("2026-11-21 07:30"), 0)
    assert d.dispatch_once(at("2026-11-21 07:29")).claimed == 0
    assert d.dispatch_once(at("2026-11-21 07:30")).sent == 1


def test_configured_quiet_hours_per_channel(sqlite_store: Store) -> None:
    noon = at("2026-11-20 12:15")
    queue(sqlite_store, noon, channel="wecom", number="C1")
    queue(sqlite_store, at("2026-11-20 23:00"), channel="sms", number="C2")
    d = dispatcher(sqlite_store, {"wecom": FakeNotifier("wecom"), "sms": FakeNotifier("sms")},
                   quiet_hours={"wecom": {"start": "12:00", "end": "13:30"}, "sms": None})
    result = d.dispatch_once(at("2026-11-20 23:00"))  # sms: quiet hours switched off; wecom: not quiet now
    assert result.sent == 2
    queue(sqlite_store, noon, channel="wecom", number="C3")
    assert d.dispatch_once(noon).quiet == 1
    assert rows(sqlite_store)[-1].not_before == at("2026-11-20 13:30")


# --- failures ------------------------------------------------------------------------------------------------


def test_backoff_is_exponential_with_jitter_and_a_cap(sqlite_store: Store) -> None:
    d = dispatcher(sqlite_store, {}, backoff_base_seconds=30, backoff_cap_seconds=600)
    for attempt, full in [(1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (20, 600)]:
        delays = [d.backoff(attempt) for _ in range(200)]
        assert all(full / 2 <= x <= full for x in delays), attempt
        assert max(delays) - min(delays) > full / 4  # jittered: instances do not retry in lockstep


def test_transient_failure_backs_off_then_succeeds(sqlite_store: Store) -> None:
    fake = FakeNotifier("wecom")
    fake.fail_next(2)
    queue(sqlite_store, NOW)
    d = dispatcher(sqlite_store, {"wecom": fake}, backoff_base_seconds=30)
    assert d.dispatch_once(NOW).retried == 1
    row = rows(sqlite_store)[0]
    assert row.status == "pending" and row.attempts == 1 and row.last_error == "wecom: scripted transient failure"
    assert NOW + timedelta(seconds=15) <= row.not_before <= NOW + timedelta(seconds=30)
    t = row.not_before
    assert d.dispatch_once(t - timedelta(seconds=1)).claimed == 0
    assert d.dispatch_once(t).retried == 1
    t2 = rows(sqlite_store)[0].not_before
    assert t + timedelta(seconds=30) <= t2 <= t + timedelta(seconds=60)
    assert d.dispatch_once(t2).sent == 1
    assert [x.outcome for x in tries(sqlite_store)] == ["retry", "retry", "sent"]
    assert rows(sqlite_store)[0].last_error is None


def test_flow_control_waits_as_told_and_is_not_a_failure(sqlite_store: Store) -> None:
    fake = FakeNotifier("wecom")
    fake.fail_next(1, retry_after=90)
    queue(sqlite_store, NOW)
    d = dispatcher(sqlite_store, {"wecom": fake})
    assert d.dispatch_once(NOW).deferred == 1
    row = rows(sqlite_store)[0]
    assert (row.status, row.attempts, row.not_before) == ("pending", 0, NOW + timedelta(seconds=90))
    assert d.dispatch_once(NOW + timedelta(seconds=90)).sent == 1
    assert [x.outcome for x in tries(sqlite_store)] == ["deferred", "sent"]


def test_permanent_failure_for_one_recipient_does_not_hold_the_others(store: Store) -> None:
    for i, name in enumerate(["甲", "乙", "丙"]):
        queue(store, NOW, number=f"C{i}", recipient=person(name, mobile=None, wecom_userid=name))
    fake = PerRecipient("wecom", refuse={"乙"})
    result = dispatcher(store, {"wecom": fake}).dispatch_once(NOW)
    assert (result.sent, result.failed) == (2, 1)
    assert result.failures == [{"id": 2, "kind": "warning", "channel": "wecom", "to": "乙",
                                "error": "wecom: 40003 invalid userid"}]
    assert [r.status for r in rows(store)] == ["sent", "failed", "sent"]
    assert rows(store)[1].last_error == "wecom: 40003 invalid userid"


def test_invaliduser_in_a_successful_reply_fails_that_recipient_only(sqlite_store: Store) -> None:
    class Partial(FakeNotifier):
        def send(self, message: Message) -> Receipt:
            super().send(message)
            rejected = (message.recipient.masked,) if message.recipient.name == "乙" else ()
            return Receipt(provider_message_id="m", detail={"invalid_recipients": rejected})

    for name in ("甲", "乙"):
        queue(sqlite_store, NOW, number=f"C-{name}", recipient=person(name, mobile=None, wecom_userid=name))
    result = dispatcher(sqlite_store, {"wecom": Partial("wecom")}).dispatch_once(NOW)
    assert (result.sent, result.failed) == (1, 1)
    assert [r.status for r in rows(sqlite_store)] == ["sent", "failed"]


def test_an_unconfigured_channel_fails_permanently(sqlite_store: Store) -> None:
    queue(sqlite_store, NOW, channel="gone")
    result = dispatcher(sqlite_store, {}).dispatch_once(NOW)
    assert result.failed == 1 and "channels.gone" in rows(sqlite_store)[0].last_error


def test_mobiles_in_provider_errors_are_masked(sqlite_store: Store) -> None:
    fake = FakeNotifier("wecom")
    fake.fail_next(1, permanent=True, reason="sms: isv.MOBILE_NUMBER_ILLEGAL 13800001234")
    queue(sqlite_store, NOW)
    dispatcher(sqlite_store, {"wecom": fake}).dispatch_once(NOW)
    assert rows(sqlite_store)[0].last_error == "sms: isv.MOBILE_NUMBER_ILLEGAL 尾号1234"
    assert "13800001234" not in (tries(sqlite_store)[0].error or "")


# --- dead letter ---------------------------------------------------------------------------------------------


def test_a_row_unsent_past_the_dead_letter_age_dies_and_supervisors_are_told(store: Store) -> None:
    fake = FakeNotifier("wecom")
    queue(store, NOW, channel="sms")  # SMS provider broken: keeps failing
    sms = FakeNotifier("sms")
    sms.fail_next(100)
    d = dispatcher(store, {"wecom": fake, "sms": sms}, dead_letter_after_hours=24, max_attempts=50)
    t = NOW
    while t < NOW + timedelta(hours=24):
        d.dispatch_once(t)
        t += timedelta(minutes=30)
    result = d.dispatch_once(NOW + timedelta(hours=24, minutes=1))
    assert result.dead == 1
    dead = rows(store)[0]
    assert dead.status == "dead"
    (notice,) = [r for r in rows(store) if r.kind == "dead_letter"]
    assert notice.recipient["name"] == "督办员" and notice.channel == "wecom"
    d.dispatch_once(NOW + timedelta(hours=24, minutes=1))
    (told,) = fake.sent
    assert told.subject == "1条提醒未能送达"
    assert "即将超期提醒 工单2611100029 → 王承办(尾号1234)（渠道 sms" in told.text
    assert "13800001234" not in told.text + (told.markdown or "")


def test_a_dead_letter_notice_that_dies_is_not_dead_lettered_again(sqlite_store: Store) -> None:
    wecom = FakeNotifier("wecom")
    wecom.fail_next(1000)
    queue(sqlite_store, NOW, channel="wecom")
    d = dispatcher(sqlite_store, {"wecom": wecom}, dead_letter_after_hours=1, max_attempts=1000)
    d.dispatch_once(NOW + timedelta(hours=2))  # the alert dies; a notice to the supervisor (also wecom) is queued
    assert [r.kind for r in rows(sqlite_store)] == ["warning", "dead_letter"]
    d.dispatch_once(NOW + timedelta(hours=4))  # the notice dies too: no third row
    assert [(r.kind, r.status) for r in rows(sqlite_store)] == [("warning", "dead"), ("dead_letter", "dead")]


def test_too_many_transient_failures_dead_letter(sqlite_store: Store) -> None:
    sms = FakeNotifier("sms")
    sms.fail_next(3)
    queue(sqlite_store, NOW, channel="sms")
    d = dispatcher(sqlite_store, {"sms": sms, "wecom": FakeNotifier("wecom")}, max_attempts=3)
    t = NOW
    for _ in range(3):
        d.dispatch_once(t)
        t += timedelta(hours=2)
    assert rows(sqlite_store)[0].status == "dead"
    assert [r.kind for r in rows(sqlite_store)] == ["warning", "dead_letter"]


# --- reports and templates ----------------------------------------------------------------------------------


def test_report_rows_are_sent_as_rendered_with_attachments_read_at_send_time(sqlite_store: Store,
                                                                               tmp_path: Path) -> None:
    xlsx = tmp_path / "digest.xlsx"
    xlsx.write_bytes(b"PK-fake-xlsx")
    payload = {"rendered": {"subject": "每日超期汇总", "text": "共3件", "markdown": "**共3件**", "html": "<p>共3件</p>",
                            "attachments": [{"filename": "汇总.xlsx", "path": str(xlsx), "mime_type": "application/x"}],
                            "sms_params": {"count": "3"}}, "urgent": False}
    queue(sqlite_store, NOW, channel="mail", kind="digest", payload=payload, key="digest:2026-11-20",
          recipient=person("督办员", role="supervisor", unit=None, email="d@example.org"))
    queue(sqlite_store, NOW, channel="mail", kind="digest", key="digest:gone",
          payload={"rendered": {**payload["rendered"], "attachments": [{"filename": "x", "path": str(tmp_path / "no"),
                                                                       "mime_type": "a/b"}]}})
    mail = FakeNotifier("mail")
    result = dispatcher(sqlite_store, {"mail": mail}).dispatch_once(NOW)
    assert (result.sent, result.failed) == (1, 1)
    (msg,) = mail.sent
    assert (msg.subject, msg.text, msg.html) == ("每日超期汇总", "共3件", "<p>共3件</p>")
    assert dict(msg.params) == {"count": "3"}
    assert msg.attachments[0].content == b"PK-fake-xlsx" and msg.attachments[0].filename == "汇总.xlsx"
    assert "attachment cannot be read" in rows(sqlite_store)[1].last_error


def test_operator_templates_override_the_packaged_ones(sqlite_store: Store, tmp_path: Path) -> None:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "warning.txt").write_text(
        "{% set subject %}【督办】{{ count }}件{% endset %}{{ recipient.name }}，请处理{{ first.case.number }}。",
        "utf-8",
    )
    queue(sqlite_store, NOW)
    queue(sqlite_store, NOW, kind="breach", number="C9")
    fake = FakeNotifier("wecom")
    dispatcher(sqlite_store, {"wecom": fake}, templates_dir=str(tmp_path / "tpl")).dispatch_once(NOW)
    by_kind = {m.kind: m for m in fake.sent}
    assert (by_kind["warning"].subject, by_kind["warning"].text) == ("【督办】1件", "王承办，请处理2611100029。\n")
    assert by_kind["warning"].markdown and "2611100029" in by_kind["warning"].markdown  # packaged .md still used
    assert by_kind["breach"].subject == "工单C9已超期"


def test_a_broken_override_is_retried_not_lost(sqlite_store: Store, tmp_path: Path) -> None:
    (tmp_path / "warning.txt").write_text("{% set subject %}x{% endset %}{{ no_such_variable }}", "utf-8")
    queue(sqlite_store, NOW)
    result = dispatcher(sqlite_store, {"wecom": FakeNotifier("wecom")}, templates_dir=str(tmp_path)).dispatch_once(NOW)
    assert result.retried == 1
    assert "template warning.txt" in rows(sqlite_store)[0].last_error


@pytest.mark.parametrize("kind", TEMPLATE_KINDS)
def test_every_template_renders_in_every_family(kind: str) -> None:
    renderer = Renderer()
    assert renderer.check() == []
    if kind == "test":
        ctx: dict[str, Any] = {"channel": "wecom", "now": "2026-11-20T09:00:00+08:00"}
    elif kind == "dead_letter":
        ctx = {"recipient": {"name": "督办员"}, "count": 1, "hours": "24", "items": [
            {"what": "超期提醒 工单C1", "to": "王承办(尾号1234)", "channel": "sms", "attempts": 9, "last_error": "x"}]}
    else:
        items = [alert_payload("C1", kind, overdue_working_days=2),
                 alert_payload("C2", kind, provisional=True)]
        items[0]["case"]["return_requested_at"] = items[1]["case"]["return_requested_at"] = "2026-11-20T10:00:00+08:00"
        if kind == "deadline_moved":  # a correction names the overdue instant the earlier breach said
            items[0]["old_due_at"] = items[1]["old_due_at"] = "2026-11-19T00:00:00+08:00"
        ctx = alert_context(kind, items[:1], person(), NOW)
        two = Renderer().render(kind, alert_context(kind, items, person(), NOW))
        assert "2" in two.subject and "C2" in two.text and "C2" in (two.markdown or "") and "C2" in (two.html or "")
    out = renderer.render(kind, ctx)
    assert out.subject and out.text.strip() and out.markdown and out.html
    assert "None" not in out.text + out.markdown + out.html
    assert "13800001234" not in out.text + out.markdown + out.html


def test_recipient_for_the_test_command_is_told_apart_by_shape() -> None:
    from daemon.commands.dispatch_cmd import test_recipient

    assert test_recipient("13800001234") == Recipient("测试接收人", mobile="13800001234")
    assert test_recipient("a@b.cn") == Recipient("测试接收人", email="a@b.cn")
    assert test_recipient("zhangsan") == Recipient("测试接收人", wecom_userid="zhangsan")


def test_status_of_sent_rows_is_final(sqlite_store: Store) -> None:
    queue(sqlite_store, NOW)
    dispatcher(sqlite_store, {"wecom": FakeNotifier("wecom")}).dispatch_once(NOW)
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(select(outbox.c.status)).scalar_one() == "sent"
    assert dispatcher(sqlite_store, {}).dispatch_once(NOW + timedelta(days=3)).dead == 0


def test_dispatch_command_json_keeps_console_output_off_stdout(tmp_path: Path, cli: Any) -> None:
    import json

    import yaml

    db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"url": db}, "channels": {"console": {"type": "console"}}},
                                  allow_unicode=True), "utf-8")
    store = Store(db)
    store.upgrade()
    queue(store, NOW, channel="console")
    queue(store, NOW, channel="gone", number="C2")
    store.close()
    r = cli("--config", str(cfg), "dispatch", "--now", "2026-11-20 09:00", "--json")
    doc = json.loads(r.out)
    assert r.code == 1 and (doc["sent"], doc["failed"]) == (1, 1)
    assert doc["failures"][0]["to"] == "王承办(尾号1234)" and "13800001234" not in r.out + r.err
    assert "[console] → 王承办(尾号1234): 工单2611100029即将超期" in r.err
    r = cli("--config", str(cfg), "dispatch", "--now", "2026-11-20 09:00")
    assert r.code == 0 and r.out.startswith("dispatch at 2026-11-20T09:00:00+08:00: sent 0")
