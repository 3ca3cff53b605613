"""The CLI contract of the foundation commands: deadline, calendar, rules, config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_subprocess


def test_deadline_json_matches_domain_example(cli) -> None:
    r = cli("deadline", "--rule", "municipal_complaint", "--received", "2024-09-27 16:30", "--json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["due_at"] == "2024-10-11T00:00:00+08:00"
    assert doc["received_at"] == "2024-09-27T16:30:00+08:00"
    assert doc["rule"] == "municipal_complaint"
    assert doc["provisional"] is False and doc["provisional_days"] == []
    assert doc["warnings"] == ["2024-10-09T08:30:00+08:00", "2024-10-10T08:30:00+08:00"]


def test_deadline_accepts_iso_with_z(cli) -> None:
    r = cli("deadline", "--rule", "return_request", "--received", "2024-09-30T12:00:00Z", "--json")
    assert json.loads(r.out)["due_at"] == "2024-10-01T20:00:00+08:00"


def test_deadline_human_marks_provisional(cli) -> None:
    r = cli("deadline", "--rule", "municipal_complaint", "--received", "2026-12-28 10:00")
    assert r.code == 0
    assert "2027-01-06T00:00:00+08:00" in r.out
    assert "暂定" in r.out and "PROVISIONAL" in r.out


def test_deadline_batch_reads_stdin_and_reports_bad_lines(cli) -> None:
    r = cli("deadline", "--rule", "municipal_complaint", "--received", "-",
            stdin="2024-09-27 16:30\nnot a time\n\n2026-12-28T10:00:00+08:00\n")
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert len(lines) == 3
    assert lines[0]["due_at"] == "2024-10-11T00:00:00+08:00"
    assert lines[1]["line"] == 2 and "invalid time 'not a time'" in lines[1]["error"]
    assert lines[2]["provisional"] is True
    assert r.code == 1  # ran, and found a bad line


def test_deadline_unknown_rule_and_bad_time_exit_2(cli) -> None:
    r = cli("deadline", "--rule", "no_such_rule", "--received", "2024-09-27 16:30")
    assert r.code == 2 and "unknown rule 'no_such_rule'" in r.err and "municipal_complaint" in r.err
    r = cli("deadline", "--rule", "municipal_complaint", "--received", "2024-13-40 16:30")
    assert r.code == 2 and "--received: invalid time '2024-13-40 16:30'" in r.err


def test_calendar_status_warns_after_november_when_next_year_is_provisional(cli) -> None:
    r = cli("calendar", "status", "--json", "--now", "2026-11-21 10:00")
    doc = json.loads(r.out)
    years = {y["year"]: y for y in doc["years"]}
    assert set(years) == set(range(2004, 2028))
    assert years[2026]["source"] == "official" and years[2026]["makeup_days"] == 6
    assert years[2027]["source"] == "provisional" and years[2027]["makeup_days"] == 0
    assert "2027" in doc["warning"]
    early = json.loads(cli("calendar", "status", "--json", "--now", "2026-10-31 10:00").out)
    assert early["warning"] is None


def test_calendar_show_lists_days_with_source(cli) -> None:
    doc = json.loads(cli("calendar", "show", "2024", "--json").out)
    assert {"date": "2024-09-29", "weekday": 7, "name": "国庆节调休上班", "source": "official"} in doc["makeup_days"]
    prov = json.loads(cli("calendar", "show", "2027", "--json").out)
    assert prov["provisional"] is True and prov["makeup_days"] == []


def test_rules_check_and_test_pass_on_the_shipped_rules(cli) -> None:
    r = cli("rules", "check", "--json")
    assert r.code == 0 and json.loads(r.out)["ok"] is True
    r = cli("rules", "test")
    assert r.code == 0 and "0 failed" in r.out


def test_rules_check_catches_a_broken_file(tmp_path: Path) -> None:
    rules = tmp_path / "sla_rules"
    rules.mkdir()
    (rules / "default.yaml").write_text(
        "rules:\n  - {id: broken, name: 坏规则, match: {}, deadline: {working_days: 0}}\n", encoding="utf-8"
    )
    (tmp_path / "config.yaml").write_text("rules_dir: sla_rules\n", encoding="utf-8")
    r = run_subprocess("--config", str(tmp_path / "config.yaml"), "rules", "check")
    assert r.returncode == 1
    assert f"{rules / 'default.yaml'}: rule 'broken': deadline.working_days" in r.stdout


def test_config_check_on_the_shipped_config(cli) -> None:
    r = cli("config", "check", "--json")
    doc = json.loads(r.out)
    assert r.code == 0, doc
    assert "municipal_complaint" in doc["summary"]["rules"]


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("scheduler:\n  tick_interval_seconds: 1\n  tikc: 3\n", encoding="utf-8")
    r = run_subprocess("--config", str(tmp_path / "config.yaml"), "config", "check")
    assert r.returncode == 1
    assert "scheduler.tick_interval_seconds: Input should be greater than or equal to 5" in r.stdout
    assert "scheduler.tikc: unknown key" in r.stdout


def test_python_dash_m_daemon_runs(tmp_path: Path) -> None:
    r = run_subprocess("deadline", "--rule", "provincial_complaint", "--received", "2024-09-27 16:30", "--json",
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["due_at"] == "2024-10-08T00:00:00+08:00"


@pytest.mark.parametrize("rule_id", ["municipal_complaint", "provincial_complaint", "inquiry_suggestion",
                                     "return_request"])
def test_deadline_batch_equals_the_single_deadline_for_every_line(cli, rule_id: str) -> None:
    """The batch path memoises per day and serialises once per distinct deadline: same answers as one-by-one.

    Reference: the single-case computation from its parts (no memo), for instants at any time of day, on
    holidays and make-up days, in several input forms, including ones inside a warning's day.
    """
    import json
    import random
    from datetime import datetime, timedelta

    from daemon.commands.deadline import deadline_json
    from daemon.context import AppContext
    from daemon.core.rules import Deadline
    from daemon.core.timeutil import LOCAL_TZ

    rule = AppContext(None).rules.get(rule_id)
    rnd = random.Random(rule_id)
    instants = [datetime(2024, 9, 27, 16, 30, tzinfo=LOCAL_TZ) + timedelta(minutes=rnd.randrange(0, 60 * 24 * 120))
                for _ in range(400)]
    instants += [datetime(2026, 12, 28, 8, 30, tzinfo=LOCAL_TZ), datetime(2026, 12, 31, 23, 59, 59, tzinfo=LOCAL_TZ)]
    forms = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S+08:00", "%Y/%m/%d %H:%M"]
    lines = []
    for i, t in enumerate(instants):
        form = forms[i % len(forms)]
        lines.append((t.replace(second=0) if form == "%Y/%m/%d %H:%M" else t).strftime(form))
    lines.append((instants[0] - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    r = cli("deadline", "--rule", rule_id, "--received", "-", stdin="\n".join(lines) + "\n")
    assert r.code == 0, r.err
    got = [json.loads(x) for x in r.out.splitlines()]
    assert len(got) == len(lines)
    for line, doc in zip(lines, got, strict=True):
        from daemon.core.timeutil import parse_time

        received = parse_time(line)
        due = rule.due_at(received)
        reference = Deadline(rule.id, rule.name, received, due, rule.warning_points(received, due),
                             rule._provisional_days(received, due))
        assert doc == deadline_json(reference), line


def test_light_commands_start_without_the_store() -> None:
    """`deadline` runs in pipelines: it must not pay for importing SQLAlchemy and the store at start-up."""
    import subprocess
    import sys

    code = ("import sys; from daemon.cli import main; "
            "rc = main(['deadline', '--rule', 'municipal_complaint', '--received', '2024-09-27 16:30']); "
            "assert rc == 0; assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'; "
            "assert 'daemon.storage.store' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "2024-10-11T00:00:00+08:00" in r.stdout
