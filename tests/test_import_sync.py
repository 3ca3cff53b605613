"""Import, sync (files, inbox, a failing source), and the tick/cases/outbox commands end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select

from daemon.config import Config, SourceConfig
from daemon.core.timeutil import parse_time
from daemon.errors import UsageError
from daemon.pipeline.sync import import_file, sync_all
from daemon.storage.models import source_state
from daemon.storage.store import Store
from tests.conftest import ROOT, run_subprocess

SAMPLE = ROOT / "samples" / "cases.csv"
NOW = parse_time("2026-11-20 09:00")


def test_import_sample_reports_bad_rows_and_reimport_changes_nothing(store: Store, rules) -> None:  # type: ignore[no-untyped-def]
    report = import_file(store, rules, SAMPLE, now=NOW)
    assert report.inserted == 56
    assert [r["row"] for r in report.rejected] == [14, 33, 51]
    assert "'市直' is not a known source" in report.rejected[0]["error"]
    again = import_file(store, rules, SAMPLE, now=NOW)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 56)


def test_sync_moves_inbox_files_and_survives_a_broken_source(store: Store, rules, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLE, inbox / "export.csv")
    (inbox / "garbage.csv").write_bytes(b"\xff\xfe\x00\x01 not a table")
    config = Config(
        base_dir=tmp_path,
        sources=[
            SourceConfig(name="db", type="sql", url="sqlite:///" + str(tmp_path / "missing" / "x.db"),
                         query="SELECT * FROM nowhere WHERE 更新时间 >= :watermark"),
            SourceConfig(name="inbox", type="inbox", path="inbox"),
        ],
    )
    result = sync_all(store, rules, config, NOW)
    assert result.failed == ["db"] and "db" in result.sources["db"]["error"]
    assert result.sources["inbox"]["inserted"] == 56
    done = sorted(p.name for p in (inbox / "done").iterdir())
    failed = sorted(p.name for p in (inbox / "failed").iterdir())
    assert any(n.endswith("export.csv") for n in done) and any(n.endswith(".report.json") for n in done)
    assert any(n.endswith("garbage.csv") for n in failed)
    report = json.loads(next((inbox / "done").glob("*.report.json")).read_text(encoding="utf-8"))
    assert [r["row"] for r in report["rejected"]] == [14, 33, 51]
    assert not list(inbox.glob("*.csv"))


def test_cli_import_tick_twice_and_explain(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite3'}'}}\nrules_dir: {ROOT / 'sla_rules'}\n",
                   encoding="utf-8")
    r = run_subprocess("--config", str(cfg), "import", str(SAMPLE), "--now", "2026-11-20 09:00", "--json")
    assert r.returncode == 1  # ran, and found bad rows
    doc = json.loads(r.stdout)
    assert doc["inserted"] == 56 and len(doc["rejected"]) == 3
    c = run_subprocess("--config", str(cfg), "contacts", "import", str(ROOT / "samples" / "contacts.csv"))
    assert c.returncode == 0, c.stdout + c.stderr
    first = json.loads(run_subprocess("--config", str(cfg), "tick", "--now", "2026-11-20 09:00", "--json").stdout)
    assert first["evaluated"] > 0 and first["alerts"]
    kinds = {a["kind"] for a in first["alerts"]}
    assert {"breach", "warning", "return_window"} <= kinds
    second = json.loads(run_subprocess("--config", str(cfg), "tick", "--now", "2026-11-20 09:00", "--json").stdout)
    assert second["alerts"] == [] and second["evaluated"] == 0
    case = next(a["case"] for a in first["alerts"] if a["kind"] == "breach")
    ex = run_subprocess("--config", str(cfg), "cases", "explain", case)
    assert ex.returncode == 0 and "第1天" in ex.stdout and "breach" in ex.stdout
    listing = json.loads(run_subprocess("--config", str(cfg), "cases", "list", "--overdue", "--now",
                                        "2026-11-20 09:00", "--json").stdout)
    assert case in {c["case"] for c in listing["cases"]} and all(c["overdue"] for c in listing["cases"])
    out = run_subprocess("--config", str(cfg), "outbox", "list", "--json")
    messages = json.loads(out.stdout)["messages"]
    assert messages and all("尾号" in m["to"] for m in messages if "(" in m["to"])
    assert any("尾号" in m["to"] for m in messages)
    assert "13800" not in out.stdout  # full mobiles never shown to the operator


def test_cli_import_missing_file_is_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite3'}'}}\nrules_dir: {ROOT / 'sla_rules'}\n",
                   encoding="utf-8")
    r = run_subprocess("--config", str(cfg), "import", str(tmp_path / "nope.csv"))
    assert r.returncode == 2 and "nope.csv: no such file" in r.stderr


def test_sql_sync_records_source_state_once_with_the_watermark(  # type: ignore[no-untyped-def]
    store: Store, rules, tmp_path: Path, monkeypatch
) -> None:
    import sqlite3

    from sqlalchemy import event, select

    import daemon.pipeline.sync
    from daemon.storage.models import source_state

    platform = tmp_path / "platform.db"
    with sqlite3.connect(platform) as conn:
        conn.execute("CREATE TABLE gd (gdbh TEXT, ly TEXT, sqlx TEXT, slsj TEXT, cbdw TEXT, gxsj TEXT)")
        conn.execute("INSERT INTO gd VALUES ('S1', '市级', '投诉', '2026-11-19 10:00:00', '市公安局', "
                     "'2026-11-19 10:05:00')")
    config = Config(base_dir=tmp_path, sources=[SourceConfig(
        name="db", type="sql", url=f"sqlite:///{platform}",
        query="SELECT gdbh AS 工单编号, ly AS 来源, sqlx AS 诉求类型, slsj AS 受理时间, cbdw AS 承办单位, "
              "gxsj AS 更新时间 FROM gd WHERE gxsj >= :watermark ORDER BY gxsj")])
    calls: list[dict[str, object]] = []
    record_state = daemon.pipeline.sync._record_state

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return record_state(*args, **kwargs)

    monkeypatch.setattr(daemon.pipeline.sync, "_record_state", counted)
    result = sync_all(store, rules, config, NOW)
    assert result.sources["db"]["inserted"] == 1
    assert len(calls) == 1 and calls[0]["watermark"] == parse_time("2026-11-19 10:05") and calls[0]["stats"]
    with store.engine.connect() as conn:
        state = conn.execute(select(source_state)).one()
    assert state.watermark == "2026-11-19T10:05:00+08:00" and state.last_ok_at == NOW
    assert state.stats["inserted"] == 1 and state.last_error is None

    writes: list[str] = []  # the second time the row exists: one UPDATE, nothing else

    def count(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if "source_state" in statement and statement.lstrip().upper().startswith(("UPDATE", "INSERT")):
            writes.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    again = sync_all(store, rules, config, NOW)
    event.remove(store.engine, "before_cursor_execute", count)
    assert again.sources["db"]["unchanged"] == 1 and len(writes) == 1


def _office_export(path: Path, *, bad_row: bool) -> Path:
    """An export as offices produce it: a title row and a blank row above the header, a number repeated,
    dates written 年月日 and dotted; with ``bad_row``, one row with an unknown source."""
    lines = [
        "2026年11月工单明细表（兴隆台区）,,,,",
        ",,,,",
        "工单编号,来源,诉求类型,受理时间,承办单位",
        "2611030001,省平台,投诉,2026年11月3日 9:05,兴隆台区住建局",
        "2611030002,市级,咨询,2026.11.03 10:30,兴隆台区卫生健康局",
        "2611030001,省平台,投诉,2026年11月3日9时15分,兴隆台区住建局",
    ]
    if bad_row:
        lines.append("2611030003,火星,投诉,2026-11-03 11:00,兴隆台区住建局")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_and_sync_report_rejected_and_warned_rows_alike(tmp_path: Path) -> None:
    """Before: the title row was taken as the header (exit 2, missing columns), and the repeated number
    silently replaced the earlier row."""
    cfg = tmp_path / "config.yaml"
    clean = _office_export(tmp_path / "clean.csv", bad_row=False)
    bad = _office_export(tmp_path / "bad.csv", bad_row=True)
    cfg.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite3'}'}}\nrules_dir: {ROOT / 'sla_rules'}\n"
                   f"sources:\n  - {{name: office, type: files, path: {clean}}}\n", encoding="utf-8")
    warning = "工单编号 (number) '2611030001' is also in row 4; row 6, the later one, is kept"
    r = run_subprocess("--config", str(cfg), "import", str(clean), "--now", "2026-11-20 09:00", "--json")
    assert r.returncode == 0, r.stderr  # warnings alone
    doc = json.loads(r.stdout)
    assert (doc["inserted"], doc["rejected"]) == (2, [])
    assert doc["warnings"] == [{"row": 6, "warning": warning}]
    r = run_subprocess("--config", str(cfg), "import", str(bad), "--now", "2026-11-20 09:00", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and [x["row"] for x in doc["rejected"]] == [7] and len(doc["warnings"]) == 1
    r = run_subprocess("--config", str(cfg), "sync", "--now", "2026-11-20 09:00")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"  row 6 warning: {warning}" in r.stdout
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(clean), str(bad)), encoding="utf-8")
    r = run_subprocess("--config", str(cfg), "sync", "--now", "2026-11-20 09:00")
    assert r.returncode == 1
    assert "  row 7: 来源 (source) '火星' is not a known source" in r.stdout
    assert f"  row 6 warning: {warning}" in r.stdout


def test_header_row_setting_for_a_header_below_the_search(store: Store, rules, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "deep.csv"
    text = _office_export(tmp_path / "x.csv", bad_row=False).read_text(encoding="utf-8")
    path.write_text("说明\n" * 25 + text, encoding="utf-8")  # the header is row 28
    try:
        import_file(store, rules, path, now=NOW)
    except UsageError as exc:
        assert "no row among the first 20 has them all" in str(exc) and "header_row" in str(exc)
    else:
        raise AssertionError("a header below row 20 was found without header_row")
    report = import_file(store, rules, path, now=NOW, header_row=28)
    assert (report.inserted, report.rejected, [w["row"] for w in report.warnings]) == (2, [], [31])


def test_a_source_sets_its_field_limit_and_header_row(store: Store, rules, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _office_export(tmp_path / "office.csv", bad_row=False)
    path.write_text(path.read_text(encoding="utf-8").replace("兴隆台区卫生健康局", "卫" * 40), encoding="utf-8")
    config = Config(base_dir=tmp_path, sources=[
        SourceConfig(name="office", type="files", path=str(path), header_row=3, max_field_chars=32),
    ])
    stats = sync_all(store, rules, config, NOW).sources["office"]
    assert (stats["inserted"], [r["row"] for r in stats["rejected"]]) == (1, [5])
    assert stats["rejected"][0]["error"].startswith("承办单位 (column 5) is 40 characters long, over the limit of 32;")
    with store.engine.connect() as conn:
        stored = conn.execute(select(source_state.c.stats).where(source_state.c.name == "office")).scalar_one()
    assert stored["rejected"] == 1 and stored["warnings"] == 1  # counts, not the rows, in source_state


def test_sql_sync_imports_an_unknown_status_word_as_an_open_case_with_a_warning(  # type: ignore[no-untyped-def]
    store: Store, rules, tmp_path: Path
) -> None:
    """A platform word nobody mapped (待核实) is a warned row, not a rejected one: the case is stored open
    (before: rejected, and nobody watched it)."""
    import sqlite3

    from daemon.storage.models import cases

    platform = tmp_path / "platform.db"
    with sqlite3.connect(platform) as conn:
        conn.execute("CREATE TABLE gd (gdbh TEXT, ly TEXT, sqlx TEXT, slsj TEXT, cbdw TEXT, zt TEXT, qssj TEXT)")
        conn.executemany("INSERT INTO gd VALUES (?, '市级', '投诉', '2026-11-19 10:00:00', '市公安局', ?, ?)",
                         [("S1", "办理中", "2026-11-19 11:00:00"), ("S2", "待核实", "2026-11-19 11:00:00"),
                          ("S3", "待核实", None)])
    config = Config(base_dir=tmp_path, sources=[SourceConfig(
        name="db", type="sql", url=f"sqlite:///{platform}",
        query="SELECT gdbh AS 工单编号, ly AS 来源, sqlx AS 诉求类型, slsj AS 受理时间, cbdw AS 承办单位, "
              "zt AS 办理状态, qssj AS 签收时间 FROM gd ORDER BY gdbh")])
    stats = sync_all(store, rules, config, NOW).sources["db"]
    assert (stats["inserted"], stats["rejected"]) == (3, [])
    assert [w["row"] for w in stats["warnings"]] == [2, 3]
    assert stats["warnings"][0]["warning"].startswith(
        "record 2: 办理状态 (status) '待核实' is not a known status word; valid: 待签收")
    assert stats["warnings"][0]["warning"].endswith("with the status its times show: signed")
    with store.engine.connect() as conn:
        got = dict(conn.execute(select(cases.c.number, cases.c.status)).all())
    assert got == {"S1": "signed", "S2": "signed", "S3": "dispatched"}
