"""Issue 15 item 5: start-up. The compiled calendar cache (daemon/core/compiled.py) is never served stale
and never fatal; the CLI imports only the command it runs, and the light commands none of the heavy
libraries. The timings themselves are a benchmark (bench/startup_bench.py), not a test."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

import daemon.cli
from daemon.context import cache_dir
from daemon.core import compiled
from daemon.core.calendar import DaySource, WorkCalendar
from daemon.core.holidays import HolidayFileError
from tests.conftest import ROOT

OVERRIDE_2027 = """year: 2027
notice: 国办发明电〔2026〕N号
rest_days:
  - {date: 2027-02-05, to: 2027-02-11, name: 春节}
make_up_workdays:
  - {date: 2027-02-14, name: 春节调休上班}
"""


def _cached_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"{compiled.PREFIX}*{compiled.SUFFIX}"))


def _same(a: WorkCalendar, b: WorkCalendar) -> None:
    assert a.fingerprint == b.fingerprint
    assert a.years == b.years
    assert (a.first_year, a.last_year) == (b.first_year, b.last_year)
    for day in (date(2024, 9, 29), date(2027, 2, 9), date(2027, 2, 14), date(2030, 10, 3)):
        assert a.day(day) == b.day(day)
        assert a.add_working_days(day, 5) == b.add_working_days(day, 5)


def test_second_load_reads_the_cache_and_equals_a_fresh_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "2027.yaml").write_text(OVERRIDE_2027, encoding="utf-8")
    cache = tmp_path / "cache"
    first = compiled.load_calendar(holidays, cache)
    assert len(_cached_files(cache)) == 1
    fresh = WorkCalendar.load(holidays)

    def no_build(*_args: object, **_kwargs: object) -> WorkCalendar:
        raise AssertionError("built again although the cache holds this calendar")

    monkeypatch.setattr(WorkCalendar, "load", no_build)
    second = compiled.load_calendar(holidays, cache)
    _same(second, fresh)
    _same(second, first)
    assert second.year_source(2027) is DaySource.OVERRIDE


def test_a_changed_override_file_is_never_served_from_a_stale_cache(tmp_path: Path) -> None:
    """Same size, same mtime, other content: the key hashes content, so the new file wins."""
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    override = holidays / "2027.yaml"
    override.write_text(OVERRIDE_2027, encoding="utf-8")
    stamp = override.stat()
    cache = tmp_path / "cache"
    before = compiled.load_calendar(holidays, cache)
    assert not before.is_workday(date(2027, 2, 11))
    changed = OVERRIDE_2027.replace("to: 2027-02-11", "to: 2027-02-10")
    assert len(changed) == len(OVERRIDE_2027)
    override.write_text(changed, encoding="utf-8")
    os.utime(override, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    after = compiled.load_calendar(holidays, cache)
    assert after.is_workday(date(2027, 2, 11))
    _same(after, WorkCalendar.load(holidays))


def test_an_added_or_removed_override_file_changes_the_calendar(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    cache = tmp_path / "cache"
    assert compiled.load_calendar(holidays, cache).year_source(2027) is DaySource.PROVISIONAL
    (holidays / "2027.yml").write_text(OVERRIDE_2027, encoding="utf-8")
    assert compiled.load_calendar(holidays, cache).year_source(2027) is DaySource.OVERRIDE
    (holidays / "2027.yml").unlink()
    assert compiled.load_calendar(holidays, cache).year_source(2027) is DaySource.PROVISIONAL


def test_an_invalid_override_file_is_an_error_every_time_and_never_cached(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "2027.yaml").write_text("year: 2027\nrest_days:\n  - {date: 2027-02-30}\n", encoding="utf-8")
    cache = tmp_path / "cache"
    for _ in range(2):
        with pytest.raises(HolidayFileError, match=r"2027\.yaml:3: '2027-02-30' is not a date"):
            compiled.load_calendar(holidays, cache)
    assert _cached_files(cache) == []


def test_a_truncated_or_foreign_cache_file_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    expected = compiled.load_calendar(None, cache)
    [path] = _cached_files(cache)
    path.write_bytes(path.read_bytes()[:1000])
    _same(compiled.load_calendar(None, cache), expected)
    assert len(path.read_bytes()) > 1000  # written again, whole
    import pickle

    path.write_bytes(pickle.dumps(("another key", expected)))
    _same(compiled.load_calendar(None, cache), expected)


@pytest.mark.skipif(os.getuid() == 0, reason="root writes through permissions")
def test_a_read_only_cache_directory_means_no_cache_and_no_error(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o500)
    try:
        _same(compiled.load_calendar(None, cache), WorkCalendar.load(None))
        assert _cached_files(cache) == []
    finally:
        cache.chmod(0o700)


def test_a_write_that_fails_half_way_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk or a read-only mount at the rename: the calendar is still returned, no temp file stays."""
    cache = tmp_path / "cache"

    def full(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compiled.os, "replace", full)
    _same(compiled.load_calendar(None, cache), WorkCalendar.load(None))
    assert list(cache.iterdir()) == []


def test_a_directory_others_can_write_or_that_cannot_exist_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could plant a pickle here
    _same(compiled.load_calendar(None, shared), WorkCalendar.load(None))
    assert _cached_files(shared) == []
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _same(compiled.load_calendar(None, blocker / "cache"), WorkCalendar.load(None))


def test_cache_directory_choice(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert cache_dir({"HOME": home}) == Path(home) / ".cache" / "hotline-sla"
    assert cache_dir({"HOME": home, "XDG_CACHE_HOME": "/x/cache"}) == Path("/x/cache/hotline-sla")
    systemd = {"HOME": home, "XDG_CACHE_HOME": "/x/cache", "CACHE_DIRECTORY": "/var/cache/hotline-sla:/other"}
    assert cache_dir(systemd) == Path("/var/cache/hotline-sla")
    assert cache_dir({"XDG_CACHE_HOME": "/etc/hotline-sla"}) is None  # never under /etc
    assert cache_dir({"XDG_CACHE_HOME": "relative", "HOME": home}) == Path(home) / ".cache" / "hotline-sla"
    assert cache_dir({}) is None


# --- the command line ----------------------------------------------------------------------------------


def test_the_command_table_is_what_the_modules_register() -> None:
    """``--help`` prints the table without importing the modules: the table must say what they say."""
    registered: dict[str, tuple[str, str | None]] = {}
    for module in daemon.cli.COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        helps = {choice.dest: choice.help for choice in sub._choices_actions}
        registered.update({name: (module, helps.get(name)) for name in sub.choices})
    assert registered == {name: (module, text) for name, module, text, _ in daemon.cli.COMMANDS}


HEAVY = ("sqlalchemy", "alembic", "openpyxl", "jinja2", "requests", "apscheduler", "prometheus_client", "structlog")
LIGHT = [
    ["--help"],
    ["deadline", "--rule", "municipal_complaint", "--received", "2024-09-27 16:30"],
    ["deadline", "--rule", "municipal_complaint", "--received", "2024-09-27 16:30", "--json"],
    ["calendar", "status", "--now", "2026-11-20 09:00", "--json"],
    ["calendar", "show", "2026"],
    ["rules", "check"],
]


@pytest.mark.parametrize("argv", LIGHT, ids=" ".join)
def test_light_commands_import_none_of_the_heavy_libraries(argv: list[str], tmp_path: Path) -> None:
    """They ran with every module imported before (``--help`` imported SQLAlchemy and every channel)."""
    probe = (
        "import json, sys, daemon.cli\n"
        "try:\n    code = daemon.cli.main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("HOTLINE_SLA_CONFIG", None)
    done = subprocess.run([sys.executable, "-c", probe, *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}, done.stderr


def test_deadline_from_a_warm_cache_prints_what_a_cold_one_does(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("HOTLINE_SLA_CONFIG", None)
    argv = [sys.executable, "-m", "daemon", "deadline", "--rule", "municipal_complaint",
            "--received", "2027-02-05 10:00", "--json"]
    cold = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert len(_cached_files(tmp_path / "hotline-sla")) == 1
    warm = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert warm.stdout == cold.stdout
    assert json.loads(warm.stdout)["rule"] == "municipal_complaint"
