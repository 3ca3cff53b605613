"""The service runs the month-end job in a child process (daemon/runtime/report_process.py): its memory goes
back to the system when the child ends; a failure there is logged, counted and retried like one in-process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from structlog.testing import capture_logs

from daemon.core.timeutil import parse_time
from daemon.runtime import report_process
from daemon.runtime.report_process import ReportProcessError, report_command, run_report_process
from daemon.storage.models import outbox, runs
from tests.daemon_proc import write_config
from tests.test_month_end import UNIT, record

CARRY_OVER_DUE = parse_time("2026-12-01 09:30")  # the first working day of December, after 09:00


def service_at(tmp_path: Path, output_dir: Path) -> Any:
    from daemon.runtime.service import Service

    config = write_config(
        tmp_path / "config.yaml", database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        extra="contacts: {supervisors: [{name: 督办员, role: supervisor, channels: [console]}]}\n"
              f"reports: {{output_dir: '{output_dir}'}}\n",
    )
    service = Service(str(config), clock=lambda: CARRY_OVER_DUE, owner="a:1:x", environ={})
    assert service._startup()
    service.store.upsert_cases([record("N-1", UNIT, "2026-11-20 10:00"), record("N-2", UNIT, "2026-10-02 10:00")],
                               rules=service.rules, now=parse_time("2026-11-21 12:00"), source_name="test")
    with service.store.engine.begin() as conn:  # today's digest was sent: the round is the month-end job's
        conn.execute(insert(runs).values(kind="digest", period="2026-12-01", done_at=CARRY_OVER_DUE, detail={}))
    return service


def carry_overs(service: Any) -> tuple[int, int]:
    with service.store.engine.connect() as conn:
        done, queued = (conn.execute(select(func.count()).select_from(t).where(t.c.kind == "carry_over")).scalar_one()
                        for t in (runs, outbox))
    return int(done), int(queued)


@pytest.mark.slow
def test_the_service_runs_the_carry_over_in_a_child_process_and_retries_a_failed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the reports folder should be")
    service = service_at(tmp_path, blocker / "reports")
    children: list[list[str]] = []

    def spy(command: str, config_path: str | None, now: Any, **kw: Any) -> list[dict[str, Any]]:
        children.append(report_command(command, config_path, now))
        return run_report_process(command, config_path, now, **kw)

    monkeypatch.setattr("daemon.runtime.service.run_report_process", spy)
    job = service._job("reports", service._reports_round)
    try:
        with capture_logs() as logs:
            job()  # the child cannot write its files: it fails, nothing is recorded
        [failed] = [e for e in logs if e["event"] == "job_failed"]
        assert failed["job"] == "reports" and "month-end" in failed["error"] and "exited with 1" in failed["error"]
        told = [e["line"] for e in logs if e["event"] == "report_process_output"]  # the child's stderr, as events
        assert any("NotADirectoryError" in line or "FileExistsError" in line for line in told), told
        assert carry_overs(service) == (0, 0)
        assert b'hotline_sla_job_failures_total{job="reports"} 1.0' in service.metrics.render()

        blocker.unlink()  # the operator fixes the folder: the next trigger sends the report, once
        job()
        job()
        assert carry_overs(service) == (1, 1)
        assert b'hotline_sla_job_failures_total{job="reports"} 1.0' in service.metrics.render()
        assert len(children) == 2  # not started when nothing was due any more
        assert children[0][children[0].index("--now") + 1] == CARRY_OVER_DUE.isoformat()  # time is an argument
        assert list((blocker / "reports").glob("carry-over-2026-11.*"))
    finally:
        service.store.close()


def test_a_child_that_prints_no_summary_or_outlives_its_allowance_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def child(code: str) -> None:
        monkeypatch.setattr(report_process, "report_command", lambda *_: [sys.executable, "-c", code])

    child("print('not json')")
    with pytest.raises(ReportProcessError, match="no JSON summary"):
        run_report_process("month-end", None, CARRY_OVER_DUE, should_stop=lambda: False, timeout=60,
                           monotonic=lambda: 0.0)
    child("import sys; sys.exit(3)")
    with pytest.raises(ReportProcessError, match="exited with 3"):
        run_report_process("month-end", None, CARRY_OVER_DUE, should_stop=lambda: False, timeout=60,
                           monotonic=lambda: 0.0)
    # a hanging child, interrupted by the parent (SIGINT: it can remove its temporary files on the way out)
    child("import sys, time\ntry:\n    while True: time.sleep(0.05)\n"
          "except KeyboardInterrupt:\n    print('interrupted: cleaning up', file=sys.stderr)\n    raise")
    clock = iter(range(100))
    with capture_logs() as logs, pytest.raises(ReportProcessError, match="ran longer than 5 s"):
        run_report_process("month-end", None, CARRY_OVER_DUE, should_stop=lambda: False, timeout=5,
                           monotonic=lambda: float(next(clock)))
    assert "interrupted: cleaning up" in [e.get("line") for e in logs]
    with pytest.raises(ReportProcessError, match="stopping"):
        run_report_process("month-end", None, CARRY_OVER_DUE, should_stop=lambda: True, timeout=60,
                           monotonic=lambda: 0.0)
    child("import json; print(json.dumps({'queued': [{'kind': 'carry_over'}]}))")
    assert run_report_process("month-end", None, CARRY_OVER_DUE, should_stop=lambda: False, timeout=60,
                              monotonic=lambda: 0.0) == [{"kind": "carry_over"}]


def test_the_month_end_command_never_creates_a_missing_sqlite_file(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The service runs it in a child process: a database file deleted under the running service must not
    come back empty from the child (tests/test_hardening.py, the vanished SQLite file)."""
    from daemon.cli import main

    db = tmp_path / "db.sqlite3"
    config = write_config(tmp_path / "config.yaml", database_url=f"sqlite:///{db}")
    assert main(["--config", str(config), "month-end", "--now", "2026-12-01 09:30", "--json"]) == 2
    assert f"the SQLite database {db} does not exist" in capsys.readouterr().err
    assert not db.exists()
