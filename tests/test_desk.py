"""The desk (值班台): its three pages rendered in a real headless Chromium, case mutes (暂停提醒) from the CLI
to the tick and the digest, and the /metrics additions."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from daemon.config import Config, ContactConfig, ContactsConfig, HealthConfig, UnitConfig
from daemon.core.calendar import WorkCalendar
from daemon.core.rules import RuleSet
from daemon.core.timeutil import parse_time
from daemon.errors import UsageError
from daemon.pipeline.mutes import mute_case, unmute_case
from daemon.pipeline.sync import import_file
from daemon.pipeline.tick import run_tick
from daemon.reports import digest_render
from daemon.reports.digest import build_digest
from daemon.runtime.desk import Desk, DeskSetup
from daemon.runtime.health import Health, HealthServer, Metrics
from daemon.storage.models import alerts, case_history, cases, outbox, source_state
from daemon.storage.store import Store
from tests.conftest import ROOT

SAMPLE = ROOT / "samples" / "cases.csv"
NOW = parse_time("2026-11-20 15:00")  # a Friday afternoon
HOSTILE = '<script>document.title="pwned"</script>&<b>粗体</b>'
MOBILE = "13812346654"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def need_chromium() -> str:
    found = chromium()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def dump_dom(url: str, *, screenshot: Path | None = None) -> str:
    """The DOM after Chromium loaded and ran the page: what a person's browser holds."""
    # a profile of its own for each run: two test sessions on one machine must not share Chromium's profile lock
    with tempfile.TemporaryDirectory(prefix="desk-chromium-") as profile:
        args = [need_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
        if screenshot is not None:
            shot = subprocess.run([*args, f"--screenshot={screenshot}", "--window-size=1280,900", url],
                                  check=False, capture_output=True, timeout=90)
            assert shot.returncode == 0, shot.stderr.decode(errors="replace")[-2000:]
        done = subprocess.run([*args, "--dump-dom", url], check=False, capture_output=True, timeout=90)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


class _Text(HTMLParser):
    """The visible text of a DOM, and of each table row (cells joined by '|'), as a person reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.skip = 0
        self.text: list[str] = []
        self.rows: dict[str, list[list[str]]] = {}
        self.table: str | None = None
        self.row: list[str] | None = None
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "table":
            self.table = dict(attrs).get("id") or "?"
            self.rows.setdefault(self.table, [])
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.row.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag == "title":
            self._in_title = False
        elif tag == "tr" and self.row is not None and self.table:
            self.rows[self.table].append([c.strip() for c in self.row])
            self.row = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self.skip:
            return
        self.text.append(data)
        if self.row is not None and self.row:
            self.row[-1] += data


def seen(dom: str) -> _Text:
    p = _Text()
    p.feed(dom)
    return p


@pytest.fixture
def desk_store(tmp_path: Path, rules: RuleSet) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'desk.sqlite3'}")
    s.upgrade()
    import_file(s, rules, SAMPLE, now=NOW)
    yield s
    s.close()


def config(unit: str = "兴隆台区住建局", **health: Any) -> Config:
    return Config(contacts=ContactsConfig(units=[UnitConfig(name=unit, contacts=[
        ContactConfig(name="王承办", role="handler", mobile=MOBILE)])]), health=HealthConfig(**health))


@pytest.fixture
def served(desk_store: Store, rules: RuleSet, calendar: WorkCalendar) -> Iterator[tuple[str, Store, Config]]:
    cfg = config(listen="127.0.0.1:0")
    desk = Desk(lambda: DeskSetup(desk_store, cfg, rules, calendar))
    server = HealthServer("127.0.0.1:0", health=lambda: Health(True, "ok"), metrics=lambda: b"",
                          desk=desk, clock=lambda: NOW).start()
    host, port = server.address
    try:
        yield f"http://{host}:{port}", desk_store, cfg
    finally:
        server.stop()


def first_case_of(store: Store, unit: str | None = None) -> str:
    with store.engine.connect() as conn:
        stmt = select(cases.c.number).where(cases.c.fed_back_at.is_(None), cases.c.closed_at.is_(None),
                                            cases.c.status.in_(["dispatched", "signed"]))
        if unit:
            stmt = stmt.where(cases.c.unit == unit)
        return str(conn.execute(stmt.order_by(cases.c.due_at)).scalars().first())


def test_index_shows_the_digests_figures_per_unit_in_chromium(
    served: tuple[str, Store, Config], rules: RuleSet, calendar: WorkCalendar, tmp_path: Path
) -> None:
    url, store, cfg = served
    shot = tmp_path / "index.png"
    page = seen(dump_dom(url + "/", screenshot=shot))
    assert shot.stat().st_size > 10_000
    with store.engine.connect() as conn:
        d = build_digest(conn, rules, calendar, NOW, cfg.scheduler.digest_time)
    shown = page.rows["units"][1:]
    expected = [[u.unit, str(u.open), str(u.due_today), str(u.due_next), str(u.overdue), str(u.longest_overdue_days)]
                for u in d.units]
    assert shown == expected and len(expected) > 3
    assert any(u.overdue for u in d.units) and any(u.due_today for u in d.units)
    text = "".join(page.text)
    assert f"已超期 {d.overview.overdue} 件" in text and f"在办 {d.overview.open} 件" in text
    assert d.calendar_notice and d.calendar_notice in text  # November: 2027 is provisional
    assert "2026-11-20 15:00" in text
    assert re.search(r'<meta http-equiv="refresh" content="60">', dump_dom(url + "/"))


def test_unit_page_lists_open_cases_soonest_first_with_provisional_marked(
    served: tuple[str, Store, Config], rules: RuleSet,
) -> None:
    url, store, _ = served
    unit = "兴隆台区住建局"
    with store.engine.begin() as conn:  # a hostile summary, and a deadline that relies on 2027 (暂定)
        number = first_case_of(store, unit)
        conn.execute(update(cases).where(cases.c.number == number).values(summary=HOSTILE, provisional=True))
    page = seen(dump_dom(url + "/units/" + urllib.request.quote(unit)))
    rows = page.rows["cases"][1:]
    with store.engine.connect() as conn:
        expected = conn.execute(select(cases.c.number).where(
            cases.c.unit == unit, cases.c.fed_back_at.is_(None), cases.c.closed_at.is_(None),
            cases.c.status.not_in(["fed_back", "closed", "returned"])).order_by(cases.c.due_at, cases.c.number)
        ).scalars().all()
    assert [r[0] for r in rows] == list(expected)
    hostile = next(r for r in rows if r[0] == number)
    assert hostile[4] == HOSTILE  # shown as text, not run: the title is the page's own
    assert "暂定" in hostile[1]
    assert "pwned" not in page.title and "兴隆台区住建局" in page.title
    assert sum("暂定" in r[1] for r in rows) == 1


def test_case_page_explains_with_masked_recipients_and_the_mute(
    served: tuple[str, Store, Config], rules: RuleSet, calendar: WorkCalendar, tmp_path: Path,
) -> None:
    url, store, _ = served
    number = "2611100019"  # the longest overdue case of the sample: a breach and a repeat by now
    with store.engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.number == number).values(summary=HOSTILE))
        unit = conn.execute(select(cases.c.unit).where(cases.c.number == number)).scalar_one()
    run_tick(store, rules, calendar, config(unit), NOW)
    with store.engine.begin() as conn:
        conn.execute(update(outbox).values(last_error=f"provider refused {MOBILE}"))
    mute_case(store, number, until=parse_time("2026-11-25 18:00"), reason="复核中<i>勿催</i>", by="督办科张三",
              now=NOW)
    shot = tmp_path / "case.png"
    page = seen(dump_dom(url + "/cases/" + number, screenshot=shot))
    text = "".join(page.text)
    assert [r for r in page.rows["facts"] if r[0] == "问题摘要"] == [["问题摘要", HOSTILE]]
    assert "pwned" not in page.title
    assert any(r[1].startswith("第1天") or r[1] == "第1天" for r in page.rows["days"])
    assert page.rows["messages"][1:] and all("尾号6654" in r[1] for r in page.rows["messages"][1:])
    assert MOBILE not in text and "尾号6654" in text
    assert "暂停至 2026-11-25 18:00" in text and "督办科张三" in text and "复核中<i>勿催</i>" in text
    assert any(r[1] == "mute" for r in page.rows["history"][1:])
    index = seen(dump_dom(url + "/"))
    assert [r[0] for r in index.rows["muted"][1:]] == [number]


def test_unknown_case_is_404_and_other_paths_stay(served: tuple[str, Store, Config]) -> None:
    url, _, _ = served
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url + "/cases/NOPE", timeout=10)
    assert err.value.code == 404
    with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:
        assert resp.status == 200


def test_desk_token_as_bearer_or_basic_and_never_for_healthz(
    desk_store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    cfg = config()
    desk = Desk(lambda: DeskSetup(desk_store, cfg, rules, calendar), token="s3cret-令牌")
    server = HealthServer("127.0.0.1:0", health=lambda: Health(True, "ok"), metrics=lambda: b"m\n",
                          desk=desk, clock=lambda: NOW).start()
    host, port = server.address
    base = f"http://{host}:{port}"

    def status(path: str, auth: str | None = None) -> int:
        req = urllib.request.Request(base + path, headers={"Authorization": auth} if auth else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    try:
        basic = base64.b64encode("督办:s3cret-令牌".encode()).decode()
        assert status("/") == 401
        assert status("/", "Bearer wrong") == 401
        assert status("/", "Basic !!notbase64") == 401
        assert status("/", "Bearer s3cret-令牌".encode().decode("latin-1")) == 200
        assert status("/", f"Basic {basic}") == 200
        assert status("/healthz") == 200 and status("/metrics") == 200
    finally:
        server.stop()


def test_a_muted_case_stays_quiet_until_the_mute_ends_then_gets_its_current_state(
    desk_store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    store, cfg = desk_store, config()
    with store.engine.connect() as conn:
        number, due = conn.execute(select(cases.c.number, cases.c.due_at).where(
            cases.c.status == "signed", cases.c.due_at > NOW).order_by(cases.c.due_at)).first()  # type: ignore[misc]
    mute_case(store, number, until=due + (parse_time("2026-12-02 00:00") - parse_time("2026-12-01 00:00")),
              reason="复核中", by="张三", now=NOW)
    ended = due + (parse_time("2026-12-02 00:00") - parse_time("2026-12-01 00:00"))
    for at in (NOW, due, ended - (ended - due) / 2):
        run_tick(store, rules, calendar, cfg, at)
    with store.engine.connect() as conn:
        case_id, next_check = conn.execute(select(cases.c.id, cases.c.next_check_at)
                                           .where(cases.c.number == number)).first()  # type: ignore[misc]
        assert conn.execute(select(alerts.c.kind).where(alerts.c.case_id == case_id)).all() == []
    assert next_check == ended  # the tick's next look is the mute's end
    with store.engine.connect() as conn:
        d = build_digest(conn, rules, calendar, due, cfg.scheduler.digest_time)
    assert [m.number for m in d.muted] == [number]
    html = digest_render.render_html(d)
    assert "八、已暂停提醒" in html and "复核中" in html
    run_tick(store, rules, calendar, cfg, ended)
    with store.engine.connect() as conn:
        kinds = sorted(r.kind for r in conn.execute(select(alerts.c.kind).where(alerts.c.case_id == case_id)))
        d = build_digest(conn, rules, calendar, ended, cfg.scheduler.digest_time)
    assert kinds == ["breach"]  # one message with its current state, once the mute ends
    assert d.muted == ()


def test_unmute_resumes_at_the_next_tick_and_both_are_in_the_history(
    desk_store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    store, cfg = desk_store, config()
    number = first_case_of(store)
    with store.engine.connect() as conn:
        due = conn.execute(select(cases.c.due_at).where(cases.c.number == number)).scalar_one()
    later = max(NOW, due) + (parse_time("2026-12-01 01:00") - parse_time("2026-12-01 00:00"))
    mute_case(store, number, until=later + (later - NOW), reason="复核中", by="张三", now=NOW)
    run_tick(store, rules, calendar, cfg, later)
    unmute_case(store, number, by="李四", now=later)
    result = run_tick(store, rules, calendar, cfg, later)
    assert [a["case"] for a in result.alerts if a["case"] == number]
    with store.engine.connect() as conn:
        hist = conn.execute(select(case_history.c.reason, case_history.c.new_value).join(cases)
                            .where(cases.c.number == number, case_history.c.field == "mute")).all()
    assert [h.reason for h in hist] == ["mute", "unmute"] and "李四" in hist[1].new_value
    with pytest.raises(UsageError, match="not muted"):
        unmute_case(store, number, by="李四", now=later)


def test_mute_and_unmute_from_the_cli(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_SLA_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    assert cli("import", str(SAMPLE), "--now", "2026-11-20 09:00", "--json").code == 1  # 3 bad sample rows
    r = cli("cases", "mute", "2611100019", "--until", "2026-11-27 18:00", "--reason", "复核中", "--by", "张三",
            "--now", "2026-11-20 09:00", "--json")
    assert r.code == 0, r.err
    assert '"muted_until": "2026-11-27T18:00:00+08:00"' in r.out
    assert cli("cases", "mute", "2611100019", "--until", "2026-11-19 18:00", "--reason", "x",
               "--now", "2026-11-20 09:00").code == 2
    assert cli("cases", "mute", "NOPE", "--until", "2026-11-27", "--reason", "x", "--now", "2026-11-20").code == 2
    assert cli("cases", "mute", "2611100019", "--until", "soon", "--reason", "x").code == 2
    explained = cli("cases", "explain", "2611100019")
    assert "暂停提醒 muted until 2026-11-27T18:00:00+08:00 by 张三: 复核中" in explained.out
    assert cli("cases", "unmute", "2611100019", "--now", "2026-11-21 09:00").code == 0
    assert cli("cases", "unmute", "2611100019", "--now", "2026-11-21 09:00").code == 2


def test_metrics_give_the_digests_figures_per_unit_and_each_sources_sync_age(
    desk_store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    with desk_store.engine.begin() as conn:
        conn.execute(source_state.insert().values(name="files", last_ok_at=parse_time("2026-11-20 14:55")))
        conn.execute(source_state.insert().values(name="broken", last_error="boom"))
        d = build_digest(conn, rules, calendar, NOW, config().scheduler.digest_time)
    text = Metrics(lambda: desk_store, lambda: NOW).render().decode()
    for u in d.units:
        assert f'hotline_sla_unit_cases_open{{unit="{u.unit}"}} {float(u.open)}' in text
        assert f'hotline_sla_unit_cases_overdue{{unit="{u.unit}"}} {float(u.overdue)}' in text
    assert 'hotline_sla_source_last_success_age_seconds{source="files"} 300.0' in text
    assert 'source="broken"' not in text




# --- the pure decision ------------------------------------------------------------------------------------


def _decision(kind: str, fire_at: str) -> Any:
    from daemon.core.engine import Decision

    return Decision(kind, 0, fire_at=parse_time(fire_at), due_at=parse_time(fire_at))  # type: ignore[arg-type]


def test_muted_drops_warnings_and_breaches_and_looks_again_at_the_mutes_end() -> None:
    from daemon.core.engine import Evaluation, muted

    now, until = parse_time("2026-11-20 15:00"), parse_time("2026-11-23 12:00")
    ev = Evaluation((_decision("late_return", "2026-11-19 10:00"), _decision("breach", "2026-11-20 00:00")),
                    parse_time("2026-11-21 09:00"))
    quiet = muted(ev, until, now)
    assert [d.kind for d in quiet.decisions] == ["late_return"]  # a fact for supervisors, not a reminder
    assert quiet.next_check_at == until
    assert muted(ev, None, now) is ev and muted(ev, now, now) is ev  # no mute; a mute ending now has ended
    nothing = Evaluation((), None)  # a finished case: nothing can happen, the mute changes that not
    assert muted(nothing, until, now).next_check_at is None
    silenced_only = Evaluation((_decision("breach", "2026-11-20 00:00"),), None)  # breach repeats off
    assert muted(silenced_only, until, now) == Evaluation((), until)


def test_a_reimport_keeps_the_mute(desk_store: Store, rules: RuleSet, calendar: WorkCalendar) -> None:
    """The mute lives beside the case, not in its columns: the import rewrites those (storage/upsert.py)."""
    number = "2611100019"
    mute_case(desk_store, number, until=parse_time("2026-11-27 18:00"), reason="复核中", by="张三", now=NOW)
    with desk_store.engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.number == number).values(content_hash="changed"))
    import_file(desk_store, rules, SAMPLE, now=NOW)  # the case differs from the file: rewritten
    with desk_store.engine.connect() as conn:
        assert conn.execute(select(cases.c.content_hash).where(cases.c.number == number)).scalar() != "changed"
        d = build_digest(conn, rules, calendar, NOW, config().scheduler.digest_time)
    assert [(m.number, m.reason) for m in d.muted] == [(number, "复核中")]


def test_a_store_that_refuses_is_a_503_page_not_a_500(
    desk_store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    """The service's store getter raises when the SQLite file vanished (SqliteFileGuard): a 503 that says so."""
    from sqlalchemy.exc import DisconnectionError

    def refuse() -> DeskSetup:
        raise DisconnectionError("the SQLite file has vanished")

    page = Desk(refuse).page("/", {}, NOW)
    assert page.status == 503 and "数据库暂时无法访问" in page.body.decode()
