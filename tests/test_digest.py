"""The daily overdue digest: its content on the sample data, its renderings, and the once-a-day job."""

from __future__ import annotations

import io
import threading
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import func, insert, select

from daemon.config import Config, ContactConfig, ContactsConfig
from daemon.core.calendar import WorkCalendar
from daemon.core.cases import CaseRecord, Category, Source, Status
from daemon.core.rules import RuleSet
from daemon.core.timeutil import parse_time
from daemon.glossary import ALERT_KINDS, CORRECTION_KINDS, KIND_ZH, REPORT_KINDS
from daemon.pipeline.sync import import_file
from daemon.reports import digest_render
from daemon.reports.digest import Digest, build_digest
from daemon.reports.jobs import REPORT_JOBS, run_digest_job
from daemon.storage.models import cases, outbox, runs
from daemon.storage.store import Store
from tests.conftest import ROOT

SAMPLE = ROOT / "samples" / "cases.csv"
NOW = parse_time("2026-11-20 09:00")  # a Friday
AT_0830 = time(8, 30)
SHEETS = ["总体情况", "各单位", "超期工单", "逾期退件", "兜底规则", "发送失败", "月底清零", "已暂停提醒"]


def digest_of(store: Store, rules: RuleSet, calendar: WorkCalendar, now: Any = NOW) -> Digest:
    with store.engine.connect() as conn:
        return build_digest(conn, rules, calendar, now, AT_0830)


def record(number: str, received: str, **kw: Any) -> CaseRecord:
    base: dict[str, Any] = {"number": number, "source": Source.CITY, "category": Category.COMPLAINT,
                            "unit": "兴隆台区住建局", "received_at": parse_time(received), "summary": "反映供暖问题"}
    base.update(kw)
    return CaseRecord(**base)


def test_sample_digest_counts_match_the_store(store: Store, rules: RuleSet, calendar: WorkCalendar) -> None:
    import_file(store, rules, SAMPLE, now=NOW)
    d = digest_of(store, rules, calendar)
    assert d.overview.open == store.count_cases(open_only=True) == 37  # a pending return request is still open
    with store.engine.connect() as conn:
        overdue = conn.execute(select(cases.c.number).where(
            cases.c.due_at <= NOW, cases.c.fed_back_at.is_(None), cases.c.closed_at.is_(None),
            cases.c.status.in_(["dispatched", "signed", "return_requested"]))).scalars().all()
    assert sorted(c.number for c in d.overdue) == sorted(overdue)
    assert d.overview.overdue == len(d.overdue) == 8
    # longest overdue first: a municipal complaint received 11-10, due 11-17 24:00, two whole working days
    first = d.overdue[0]
    assert (first.number, first.overdue_working_days) == ("2611100019", 2)
    assert digest_render.due_text(first.due_at) == "2026-11-17 24:00"
    # new since yesterday's 08:30 digest: the deadlines that ended 11-19 24:00
    assert d.overview.new_overdue == sum(1 for c in d.overdue if c.due_at > parse_time("2026-11-19 08:30"))
    assert d.overview.due_today == 5 and d.overview.due_next >= d.overview.due_today
    overdue_units = [u.overdue for u in d.units]
    assert overdue_units == sorted(overdue_units, reverse=True)  # worst first
    assert sum(u.open for u in d.units) == d.overview.open
    assert d.catch_all_total == 4 and d.catch_all_rule.startswith("其他诉求")
    assert d.calendar_notice and "2027" in d.calendar_notice  # November: next year not yet published
    assert d.overview.this_month == d.overview.open and d.overview.carried == 0


def test_renderings_fit_wecom_and_keep_every_row_in_the_files(
    store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    store.upsert_cases(
        [record(f"X{i:04d}", "2026-11-02 10:00", unit=f"第{i % 40}街道办事处", summary="长摘要" * 30)
         for i in range(300)],
        rules=rules, now=NOW, source_name="test",
    )
    d = digest_of(store, rules, calendar)
    assert len(d.overdue) == 300
    md, truncated = digest_render.render_markdown(d)
    assert truncated and len(md.encode()) <= 4096
    assert "另有" in md and "完整清单见附件" in md
    html = digest_render.render_html(d)
    assert html.count("<tr>") >= 300 + 40 and "X0299" in html
    email = digest_render.render_html(d, limit=50)
    assert "X0299" not in email and "仅列出前 50 条，共 300 条" in email
    book = load_workbook(io.BytesIO(digest_render.render_xlsx(d)))
    assert book.sheetnames == SHEETS
    sheet = book["超期工单"]
    assert [c.value for c in sheet[2]][:4] == ["序号", "工单编号", "问题摘要", "承办单位"]
    numbers = [row[1] for row in sheet.iter_rows(min_row=3, values_only=True) if isinstance(row[0], int)]
    assert len(numbers) == 300


def test_provisional_deadlines_are_marked_everywhere(store: Store, rules: RuleSet, calendar: WorkCalendar) -> None:
    # received in the last days of 2026: its 5 working days run into 2027, not yet published
    store.upsert_cases([record("P1", "2026-12-29 10:00")], rules=rules, now=NOW, source_name="test")
    d = digest_of(store, rules, calendar, parse_time("2027-01-12 09:00"))
    [case] = d.overdue
    assert case.provisional and d.overview.provisional == 1
    assert "暂定" in (d.calendar_notice or "")
    md, _ = digest_render.render_markdown(d)
    assert "（暂定）" in md and "（暂定）" in digest_render.render_html(d)
    book = load_workbook(io.BytesIO(digest_render.render_xlsx(d)))
    assert any("（暂定）" in str(v) for row in book["超期工单"].iter_rows(values_only=True) for v in row)


def test_late_returns_and_failed_deliveries_with_masked_mobiles(
    store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    store.upsert_cases([
        record("R-LATE", "2026-11-18 08:00", status=Status.RETURN_REQUESTED,
               return_requested_at=parse_time("2026-11-19 10:00")),
        record("R-OK", "2026-11-19 08:00", status=Status.RETURN_REQUESTED,
               return_requested_at=parse_time("2026-11-19 10:00")),
    ], rules=rules, now=NOW, source_name="test")
    with store.engine.begin() as conn:
        conn.execute(insert(outbox).values(
            kind="warning", channel="sms", status="dead", dedupe_key="k1", not_before=NOW, attempts=12,
            created_at=NOW - timedelta(hours=30), last_error="isv.MOBILE_NUMBER_ILLEGAL for 13812346654",
            recipient={"name": "王承办", "role": "handler", "unit": "兴隆台区住建局", "mobile": "13812346654"},
            payload={"case": {"number": "R-LATE"}},
        ))
        conn.execute(insert(outbox).values(  # older than a week: no longer listed
            kind="breach", channel="sms", status="failed", dedupe_key="k0", not_before=NOW, attempts=1,
            created_at=NOW - timedelta(days=9), recipient={"name": "旧", "role": "handler"}, payload={},
        ))
    d = digest_of(store, rules, calendar)
    assert [c.number for c in d.late_returns] == ["R-LATE"] and d.late_returns[0].late_hours == 2
    [failed] = d.failed
    assert failed.mobile == "尾号6654" and "13812346654" not in failed.error
    md, _ = digest_render.render_markdown(d)
    html = digest_render.render_html(d)
    xlsx = load_workbook(io.BytesIO(digest_render.render_xlsx(d)))
    cells = " ".join(str(v) for ws in xlsx for row in ws.iter_rows(values_only=True) for v in row if v is not None)
    for text in (md, html, cells):
        assert "13812346654" not in text and "尾号6654" in text and "R-LATE" in text
        assert KIND_ZH["warning"] == "即将超期提醒" and "即将超期提醒" in text  # the templates' word


def test_every_kind_has_one_chinese_name_and_every_report_job_queues_report_kinds() -> None:
    assert set(KIND_ZH) == {*ALERT_KINDS, *CORRECTION_KINDS, *REPORT_KINDS}
    assert len(set(KIND_ZH.values())) == len(KIND_ZH)
    assert [job.name for job in REPORT_JOBS] == ["digest", "month_end"]
    assert {kind for job in REPORT_JOBS for kind in job.kinds} <= set(REPORT_KINDS)


# --- the job: once a day, across calls and instances ---------------------------------------------------------


def job_config(tmp_path: Path) -> Config:
    return Config(base_dir=tmp_path, contacts=ContactsConfig(supervisors=[
        ContactConfig(name="马督办", role="supervisor", mobile="13900000001"),
        ContactConfig(name="高督办", role="supervisor", mobile="13900000002"),
    ]))


def counts(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        return (int(conn.execute(select(func.count()).select_from(runs).where(runs.c.kind == "digest")).scalar_one()),
                int(conn.execute(select(func.count()).select_from(outbox).where(outbox.c.kind == "digest"))
                    .scalar_one()))


def test_digest_job_sends_once_per_working_day(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path
) -> None:
    import_file(store, rules, SAMPLE, now=NOW)
    config = job_config(tmp_path)
    assert run_digest_job(store, rules, calendar, config, parse_time("2026-11-20 08:29")) is None
    first = run_digest_job(store, rules, calendar, config, parse_time("2026-11-20 08:30"))
    assert first is not None and first["recipients"] == 2 and first["outbox_rows"] == 2
    assert run_digest_job(store, rules, calendar, config, parse_time("2026-11-20 08:31")) is None
    other = Store(store.url)  # a second daemon instance
    try:
        assert run_digest_job(other, rules, calendar, config, parse_time("2026-11-20 17:00")) is None
    finally:
        other.close()
    assert counts(store) == (1, 2)
    assert run_digest_job(store, rules, calendar, config, parse_time("2026-11-21 09:00")) is None  # Saturday
    with store.engine.connect() as conn:
        payload = conn.execute(select(outbox.c.payload).where(outbox.c.kind == "digest")).first()[0]
    rendered = payload["rendered"]
    assert len(rendered["markdown"].encode()) <= 4096 and "每日超期通报" in rendered["subject"]
    assert [a["mime_type"].split(";")[0] for a in rendered["attachments"]] == [
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "text/html"]
    assert all(Path(a["path"]).is_file() and Path(a["path"]).is_absolute() for a in rendered["attachments"])
    assert set(rendered["sms_params"]) >= {"date", "open", "overdue"}
    assert load_workbook(rendered["attachments"][0]["path"]).sheetnames == SHEETS


def test_digest_job_catches_up_once_after_a_late_start(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path
) -> None:
    import_file(store, rules, SAMPLE, now=NOW)
    config = job_config(tmp_path)
    late = run_digest_job(store, rules, calendar, config, parse_time("2026-11-20 15:42"))  # down at 08:30
    assert late is not None and late["period"] == "2026-11-20"
    assert run_digest_job(store, rules, calendar, config, parse_time("2026-11-20 15:43")) is None
    monday = run_digest_job(store, rules, calendar, config, parse_time("2026-11-23 08:30"))
    assert monday is not None and monday["period"] == "2026-11-23"
    assert counts(store) == (2, 4)


def test_two_instances_racing_send_the_digest_once(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path
) -> None:
    import_file(store, rules, SAMPLE, now=NOW)
    config = job_config(tmp_path)
    stores = [Store(store.url) for _ in range(2)]
    barrier = threading.Barrier(2, timeout=30)
    results: list[Any] = []
    errors: list[BaseException] = []

    def instance(s: Store) -> None:
        try:
            barrier.wait()
            results.append(run_digest_job(s, rules, calendar, config, parse_time("2026-11-20 08:30")))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=instance, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in stores:
        s.close()
    assert not errors, errors
    assert sorted(r is None for r in results) == [False, True]
    assert counts(store) == (1, 2)


def test_queued_digest_is_delivered_with_its_attachments(
    store: Store, rules: RuleSet, calendar: WorkCalendar, tmp_path: Path
) -> None:
    import random

    from daemon.pipeline.outbox import Dispatcher
    from notifiers.testing import FakeNotifier

    import_file(store, rules, SAMPLE, now=NOW)
    config = job_config(tmp_path)
    config = config.model_copy(update={"channels": {"console": {"type": "console"}}})
    assert run_digest_job(store, rules, calendar, config, NOW) is not None
    fake = FakeNotifier("console")
    Dispatcher(store, config, {"console": fake}, owner="t", rng=random.Random(7)).dispatch_once(NOW)
    assert len(fake.sent) == 2
    message = fake.sent[0]
    assert message.kind == "digest" and message.markdown and len(message.markdown.encode()) <= 4096
    names = sorted(a.filename for a in message.attachments)
    assert names == ["每日超期通报-2026-11-20.html", "每日超期通报-2026-11-20.xlsx"]
    xlsx = next(a for a in message.attachments if a.filename.endswith(".xlsx"))
    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames == SHEETS
