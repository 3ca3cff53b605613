"""Issue 14: hostile or broken input (formula cells, echoed secrets, deep JSON, vanished files, idle sockets,
symlinks in the inbox) and the log stream the daemon writes."""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from daemon.pipeline.outbox import Dispatcher
from daemon.pipeline.recipients import sync_config_contacts
from daemon.reports import ranking_render
from daemon.reports.xlsx_writer import Sheet, workbook_bytes
from daemon.storage.store import Store
from notifiers.secrets import SecretResolver, redact_secrets
from notifiers.testing import FakeNotifier
from tests.daemon_proc import DaemonProcess, write_config
from tests.outbox_helpers import at, config, queue, rows, tries

NOW = at("2026-11-20 09:00")
HOSTILE = ["=HYPERLINK(\"http://evil.example/\",\"点此\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\tTAB", "\rCR"]


# --- finding 2: formula injection in every workbook --------------------------------------------------------


def _assert_text_cells(data: bytes, sheet: str, row: int, values: list[str]) -> None:
    book = load_workbook(io.BytesIO(data))
    cells = list(book[sheet][row])
    for cell, expected in zip(cells, values, strict=False):
        assert cell.data_type == "s", f"{expected!r} was written as {cell.data_type!r}"
        assert cell.value == expected.replace("\r", "\n")  # XML readers normalise a CR to LF
        assert cell.quotePrefix, f"{expected!r} lacks the quote prefix that keeps it text when edited"


def test_the_ranking_workbook_writes_a_formula_looking_unit_name_as_text() -> None:
    from datetime import datetime

    from daemon.core.timeutil import LOCAL_TZ
    from daemon.reports.ranking import monthly_ranking
    from tests.test_ranking import SMALL, april_cases, case
    from tests.test_ranking import at as april_at

    cases = [*april_cases(), case("Q1", HOSTILE[0], april_at(3), april_at(8, 0), april_at(4))]
    data = ranking_render.render_xlsx(monthly_ranking(cases, 2024, 4, datetime(2024, 5, 1, tzinfo=LOCAL_TZ), SMALL))
    book = load_workbook(io.BytesIO(data))
    found = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row
             if isinstance(cell.value, str) and "HYPERLINK" in cell.value]
    assert found, "the hostile unit name is in the workbook"
    for cell in found:
        assert (cell.data_type, cell.value, cell.quotePrefix) == ("s", HOSTILE[0], True), cell.coordinate
    numbers = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row
               if cell.number_format == "0.00%" and isinstance(cell.value, float)]
    assert numbers, "rates stay numbers with a percent format"


def test_the_one_writer_guards_every_trigger_character() -> None:
    sheet = Sheet("s")
    sheet.append(HOSTILE)
    sheet.append(["普通文本", "a=b", 5])
    data = workbook_bytes([sheet])
    _assert_text_cells(data, "s", 1, HOSTILE)
    plain = list(load_workbook(io.BytesIO(data))["s"][2])
    assert not plain[0].quotePrefix and plain[2].value == 5


# --- finding 6: secret values redacted wherever they appear ------------------------------------------------


def test_a_provider_reply_echoing_a_secret_is_redacted_in_outbox_deliveries_and_logs(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA"  # the Tencent SecretId, configured as a secret
    SecretResolver(environ={"TENCENT_SECRET_ID": secret_id}).resolve(
        "channels.sms.secret_id", {"env": "TENCENT_SECRET_ID"})
    fake = FakeNotifier("wecom")
    fake.fail_next(1, permanent=True, reason=f"sms: AuthFailure.SecretIdNotFound ({secret_id}) x%s" % secret_id[:6])
    queue(store, NOW)
    cfg = config()
    with store.engine.begin() as conn:
        sync_config_contacts(conn, cfg)
    Dispatcher(store, cfg, {"wecom": fake}, owner="d1", rng=random.Random(7), monotonic=lambda: 0.0).dispatch_once(NOW)
    stored = [rows(store)[0].last_error or "", *(t.error or "" for t in tries(store))]
    assert all(secret_id not in text and "<redacted>" in text for text in stored), stored
    assert secret_id not in capsys.readouterr().err


def test_redaction_finds_the_value_anywhere_and_url_encoded() -> None:
    SecretResolver(environ={"K": "s3cr/t+value"}).resolve("channels.x.key", {"env": "K"})
    text = redact_secrets("a=s3cr/t+value b=s3cr%2Ft%2Bvalue ?xs3cr/t+valuex")
    assert "s3cr" not in text and text.count("<redacted>") == 3


# --- console channel and the JSON log stream ---------------------------------------------------------------


def test_every_line_of_a_run_with_the_console_channel_is_json(tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    cases.write_text(
        "工单编号,来源,诉求类型,承办单位,受理时间,问题摘要\n"
        "2611100001,市级,投诉,兴隆台区住建局,2026-11-05 09:00,供暖不达标\n", encoding="utf-8")
    extra = (f"sources: [{{name: s, type: files, path: {cases}}}]\n"
             "contacts: {units: [{name: 兴隆台区住建局, contacts: [{name: 王承办, mobile: '13800001234', "
             "channels: [console]}]}]}\n"
             "dispatch: {batch_window_seconds: 0}\n")
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", extra=extra)
    with DaemonProcess.start(cfg) as daemon:
        daemon.wait_for_event("console_message", 60)
        assert daemon.stop(30) == 0
    assert daemon.raw, "the daemon wrote nothing"
    for line in daemon.raw:
        assert isinstance(json.loads(line), dict), line
    message = daemon.find("console_message")[0]
    assert message["recipient"] == "王承办(尾号1234)" and "2611100001" in message["subject"] + message["text"]


# --- signals: a second SIGTERM during the stop is harmless ------------------------------------------------


@pytest.mark.slow
def test_twenty_double_sigterms_all_exit_within_the_stop_timeout(tmp_path: Path) -> None:
    import re
    import signal
    import threading
    import time

    from tests.daemon_proc import ROOT

    unit = (ROOT / "systemd" / "hotline-sla.service").read_text(encoding="utf-8")
    stop_timeout = float(re.search(r"^TimeoutStopSec=(\d+)s?$", unit, re.MULTILINE).group(1))  # type: ignore[union-attr]
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    for attempt in range(20):
        with DaemonProcess.start(cfg, name=f"try {attempt}") as daemon:
            daemon.wait_for_event("ready", 60)
            started = time.monotonic()
            daemon.signal(signal.SIGTERM)
            threading.Event().wait(0.05)  # the gap the issue prescribes, not a wait for anything
            if daemon.proc.poll() is None:
                daemon.signal(signal.SIGTERM)
            code = daemon.proc.wait(stop_timeout)
            assert code == 0, f"try {attempt}: exit {code}"
            assert time.monotonic() - started < stop_timeout


# --- finding 1: any exception of a source is that source's failure; bounded JSON ---------------------------


@pytest.fixture
def hostile_api():  # type: ignore[no-untyped-def]
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    bodies = {"/deep": b"[" * 200_000 + b"]" * 200_000,
              "/big": b'{"data": {"items": []}, "pad": "' + b"x" * 5000 + b'"}'}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = bodies[self.path.split("?")[0]]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_hostile_http_sources_fail_alone_and_the_next_sources_still_run(
    store: Store, rules: Any, hostile_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daemon.config import Config
    from daemon.pipeline.sync import sync_all
    from daemon.sources.http import HttpSource

    cases = tmp_path / "cases.csv"
    cases.write_text("工单编号,来源,诉求类型,承办单位,受理时间,问题摘要\n"
                     "2611100001,市级,投诉,兴隆台区住建局,2026-11-05 09:00,供暖不达标\n", encoding="utf-8")
    cfg = Config.model_validate({"base_dir": tmp_path, "sources": [
        {"name": "deep", "type": "http", "url": f"{hostile_api}/deep", "retries": 0},
        {"name": "big", "type": "http", "url": f"{hostile_api}/big", "retries": 0, "max_body_bytes": 1000},
        {"name": "broken", "type": "http", "url": f"{hostile_api}/deep"},
        {"name": "csv", "type": "files", "path": str(cases)},
    ]})
    real_stream = HttpSource.stream

    def stream(self: HttpSource, watermark: Any) -> Any:
        if self.name == "broken":  # a bug of some source, not one of our error types
            raise ZeroDivisionError("division by zero")
        return real_stream(self, watermark)

    monkeypatch.setattr(HttpSource, "stream", stream)
    result = sync_all(store, rules, cfg, NOW)
    assert "nested deeper than 64 levels" in result.sources["deep"]["error"]
    assert "larger than 1000 bytes" in result.sources["big"]["error"]
    assert "ZeroDivisionError" in result.sources["broken"]["error"]
    assert result.sources["csv"]["inserted"] == 1
    assert result.failed == ["deep", "big", "broken"]


# --- finding 8: `config check` applies every check `run` applies -------------------------------------------


def test_config_check_refuses_a_health_listener_that_run_refuses(tmp_path: Path, cli: Any) -> None:
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                       extra="health: {listen: '0.0.0.0:9817'}\n")
    r = cli("--config", str(cfg), "config", "check", "--json")
    doc = json.loads(r.out)
    assert r.code == 1 and any("health.listen" in e for e in doc["errors"]), doc


def test_config_check_refuses_a_writable_path_outside_the_state_directory(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{state / 'db.sqlite3'}",
                       extra=f"reports: {{output_dir: {tmp_path / 'reports'}}}\n")
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    r = cli("--config", str(cfg), "config", "check", "--json")
    doc = json.loads(r.out)
    assert r.code == 1 and len(doc["errors"]) == 1 and doc["errors"][0].startswith("reports.output_dir:"), doc
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    assert cli("--config", str(cfg), "config", "check").code == 0


def test_config_check_refuses_a_desk_token_it_cannot_read(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                       extra="health: {listen: '127.0.0.1:9817', desk_token: {env: DESK_TOKEN_FOR_TEST}}\n")
    monkeypatch.delenv("DESK_TOKEN_FOR_TEST", raising=False)
    r = cli("--config", str(cfg), "config", "check", "--json")
    doc = json.loads(r.out)
    assert r.code == 1 and any("health.desk_token" in e and "DESK_TOKEN_FOR_TEST" in e for e in doc["errors"]), doc
    monkeypatch.setenv("DESK_TOKEN_FOR_TEST", "t0ken-秘密")
    r = cli("--config", str(cfg), "config", "check", "--json")
    assert r.code == 0 and "t0ken" not in r.out, r.out


# --- finding 11: idle health connections are closed ---------------------------------------------------------


def test_the_health_listener_closes_idle_connections() -> None:
    import socket
    import time

    from daemon.runtime.health import Health, HealthServer

    server = HealthServer("127.0.0.1:0", health=lambda: Health(True, "ok"), metrics=lambda: b"",
                          idle_timeout=0.5).start()
    idle = [socket.create_connection(server.address, timeout=5) for _ in range(30)]
    try:
        deadline = time.monotonic() + 10
        for sock in idle:  # the server closes each: recv sees EOF (or a reset), never our 5 s timeout
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
        server.stop()


# --- finding 10: a vanished SQLite file ---------------------------------------------------------------------


def test_a_vanished_sqlite_file_fails_health_and_is_never_recreated(tmp_path: Path) -> None:
    import socket
    import urllib.error
    import urllib.request

    from tests.daemon_proc import wait_until

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = tmp_path / "db.sqlite3"
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{db}",
                       extra=f"health: {{listen: '127.0.0.1:{port}'}}\n")

    def health() -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    with DaemonProcess.start(cfg) as daemon:
        daemon.wait_for_event("ready", 60)
        assert health()[0] == 200
        mark = daemon.mark()
        db.unlink()
        code, body = wait_until(lambda: (h := health())[0] == 503 and h, 10, "503 from /healthz")
        assert code == 503 and "vanished" in body["reason"], body
        event = daemon.wait_for_event("database_unavailable", 30, after=mark)
        assert str(db) in event["error"] and "vanished" in event["error"]
        daemon.wait_for_event("database_unavailable", 30, after=daemon.mark())  # a later round: still refused
        assert not db.exists(), "a new, empty SQLite file was created"
        assert daemon.stop(30) == 0
    assert not db.exists()


# --- finding 11: the inbox refuses symlinks and anything not a regular file --------------------------------


def test_the_inbox_refuses_symlinks_and_special_files(store: Store, rules: Any, tmp_path: Path) -> None:
    import os

    from daemon.config import Config
    from daemon.pipeline.sync import sync_all

    header = "工单编号,来源,诉求类型,承办单位,受理时间,问题摘要\n"
    outside = tmp_path / "elsewhere.csv"  # e.g. another unit's export the service can read
    outside.write_text(header + "2611100666,市级,投诉,兴海街道办事处,2026-11-05 09:00,外部文件\n", encoding="utf-8")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "ok.csv").write_text(header + "2611100001,市级,投诉,兴隆台区住建局,2026-11-05 09:00,正常\n",
                                  encoding="utf-8")
    (inbox / "link.csv").symlink_to(outside)
    os.mkfifo(inbox / "pipe.csv")
    (inbox / "folder.xlsx").mkdir()
    cfg = Config.model_validate({"base_dir": tmp_path, "sources": [{"name": "inbox", "type": "inbox",
                                                                    "path": str(inbox)}]})
    result = sync_all(store, rules, cfg, NOW)
    assert result.sources["inbox"]["inserted"] == 1 and result.sources["inbox"]["files"] == 1
    failed = sorted(p.name for p in (inbox / "failed").iterdir() if not p.name.endswith(".report.json"))
    assert [name.split("-", 1)[1] for name in failed] == ["folder.xlsx", "link.csv", "pipe.csv"]
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in (inbox / "failed").glob("*.report.json")]
    assert any("symbolic link" in r["error"] for r in reports)
    assert outside.read_text(encoding="utf-8").startswith(header)  # the target is untouched
    from sqlalchemy import select

    from daemon.storage.models import cases

    with store.engine.connect() as conn:
        numbers = set(conn.execute(select(cases.c.number)).scalars())
    assert "2611100666" not in numbers and "2611100001" in numbers


# --- run: an OSError on a configured path is one log line naming the path and the setting -------------------


def test_a_job_that_cannot_write_a_configured_path_logs_one_line_without_traceback(tmp_path: Path) -> None:
    import errno

    from structlog.testing import capture_logs

    from daemon.runtime.service import Service

    reports = tmp_path / "state" / "reports"
    cfg = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                       extra=f"reports: {{output_dir: {reports}}}\n")
    service = Service(str(cfg), clock=lambda: NOW, owner="a:1:x", environ={})

    def body(_now: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(reports / "digest-2026-11-20.xlsx"))

    try:
        with capture_logs() as events:
            service._job("reports", body)()
    finally:
        service.store.close()
    assert [e["event"] for e in events] == ["path_not_writable"]
    event = events[0]
    assert event["setting"] == "reports.output_dir" and event["path"].endswith("digest-2026-11-20.xlsx")
    assert event["error"] == "Read-only file system" and "exc_info" not in event


def test_a_source_token_echoed_in_an_error_is_redacted(store: Store, rules: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.config import Config
    from daemon.pipeline.sync import sync_all
    from daemon.sources.base import SourceError
    from daemon.sources.http import HttpSource

    token = "platform-token-7f3a9c2e51"
    monkeypatch.setenv("PLATFORM_TOKEN", token)

    def stream(self: HttpSource, watermark: Any) -> Any:
        raise SourceError(self.name, f"HTTP 401: invalid token {token}")  # a server echoing the token

    monkeypatch.setattr(HttpSource, "stream", stream)
    cfg = Config.model_validate({"base_dir": tmp_path, "sources": [
        {"name": "api", "type": "http", "url": "http://127.0.0.1:9/cases", "token_env": "PLATFORM_TOKEN"}]})
    result = sync_all(store, rules, cfg, NOW)
    assert token not in result.sources["api"]["error"]
    from sqlalchemy import select

    from daemon.storage.models import source_state

    with store.engine.connect() as conn:
        stored = conn.execute(select(source_state.c.last_error)).scalar_one()
    assert token not in stored and "<redacted>" in stored
