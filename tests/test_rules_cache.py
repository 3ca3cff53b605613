"""Issue 15 item 5: the compiled rules cache (daemon/core/compiled.py) gives exactly the rules a full parse
gives, is never served stale, corrupt or foreign, and never hides an error in a rule file; the config's
directories are cached the same way (daemon/context.py)."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from daemon.context import AppContext
from daemon.core import compiled
from daemon.core.calendar import WorkCalendar
from daemon.core.rules import RuleError, RuleSet, compile_rules, load_rules
from daemon.core.timeutil import LOCAL_TZ
from daemon.errors import ConfigError
from tests.conftest import ROOT

RULES = ROOT / "sla_rules"
EXAMPLES = RULES / "examples"


def _cached(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"{compiled.RULES_PREFIX}*{compiled.SUFFIX}"))


def _same(a: RuleSet, b: RuleSet) -> None:
    assert a.fingerprint == b.fingerprint
    assert a.files == b.files
    assert a.month_end == b.month_end
    assert [(r.id, r.file, r.model) for r in a.rules] == [(r.id, r.file, r.model) for r in b.rules]
    received = datetime(2024, 9, 27, 16, 30, tzinfo=LOCAL_TZ)
    for ra, rb in zip(a.rules, b.rules, strict=True):
        assert ra.deadline(received) == rb.deadline(received)


def _copy(source: Path, target: Path) -> Path:
    target.mkdir()
    for path in [*source.glob("*.yaml"), *source.glob("*.yml")]:
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    return WorkCalendar.load(None)


@pytest.mark.parametrize("source", [RULES, EXAMPLES], ids=["default", "examples"])
def test_the_cache_gives_the_rules_a_full_parse_gives(
    source: Path, tmp_path: Path, calendar: WorkCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _copy(source, tmp_path / "rules")
    cache = tmp_path / "cache"
    first = compiled.load_rules(rules, calendar, cache)
    assert len(_cached(cache)) == 1

    def no_parse(*_args: object) -> None:
        raise AssertionError("parsed again although the cache holds these rules")

    monkeypatch.setattr(compiled, "compile_rules", no_parse)
    second = compiled.load_rules(rules, calendar, cache)
    assert "pydantic" not in type(second.rules[0].model).__module__
    full = load_rules(rules, calendar)
    _same(second, full)
    _same(first, full)


def test_an_edited_rule_file_is_never_served_from_a_stale_cache(tmp_path: Path, calendar: WorkCalendar) -> None:
    """Same size, same mtime, other content: the key hashes content."""
    rules = _copy(RULES, tmp_path / "rules")
    cache = tmp_path / "cache"
    before = compiled.load_rules(rules, calendar, cache)
    assert before.get("municipal_complaint").working_days == 5
    path = rules / "default.yaml"
    text = path.read_text(encoding="utf-8")
    stamp = path.stat()
    changed = text.replace("working_days: 5", "working_days: 4", 1)
    assert changed != text and len(changed) == len(text)
    path.write_text(changed, encoding="utf-8")
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    after = compiled.load_rules(rules, calendar, cache)
    assert after.get("municipal_complaint").working_days == 4
    assert after.fingerprint != before.fingerprint
    _same(after, load_rules(rules, calendar))


def test_an_invalid_rule_file_is_reported_exactly_as_without_a_cache_and_never_cached(
    tmp_path: Path, calendar: WorkCalendar
) -> None:
    rules = _copy(RULES, tmp_path / "rules")
    cache = tmp_path / "cache"
    compiled.load_rules(rules, calendar, cache)  # the valid files are cached …
    path = rules / "default.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("working_days: 5", "working_days: 0", 1),
                    encoding="utf-8")
    with pytest.raises(RuleError) as plain:
        load_rules(rules, calendar)
    for _ in range(2):  # … the invalid ones never
        with pytest.raises(RuleError) as through_cache:
            compiled.load_rules(rules, calendar, cache)
        assert str(through_cache.value) == str(plain.value)
    assert "deadline.working_days" in str(plain.value)
    assert len(_cached(cache)) == 1


def test_a_corrupt_or_foreign_cache_file_never_gives_wrong_rules(tmp_path: Path, calendar: WorkCalendar) -> None:
    rules = _copy(RULES, tmp_path / "rules")
    cache = tmp_path / "cache"
    expected = load_rules(rules, calendar)
    compiled.load_rules(rules, calendar, cache)
    [path] = _cached(cache)
    key = compiled.rules_key(rules)
    good = path.read_bytes()

    path.write_bytes(good[:200])  # truncated
    _same(compiled.load_rules(rules, calendar, cache), expected)
    assert path.read_bytes() == good  # written again, whole

    other = _copy(EXAMPLES, tmp_path / "other")
    foreign = compile_rules(other)
    path.write_bytes(pickle.dumps((compiled.rules_key(other), foreign)))  # another set's file under this name
    _same(compiled.load_rules(rules, calendar, cache), expected)
    path.write_bytes(pickle.dumps((key, foreign)))  # another set's rules under this key: the files differ
    _same(compiled.load_rules(rules, calendar, cache), expected)
    path.write_bytes(pickle.dumps((key, {"rules": "not compiled rules"})))  # the wrong shape
    _same(compiled.load_rules(rules, calendar, cache), expected)
    path.write_bytes(pickle.dumps((key, expected)))  # a RuleSet, not its compiled form
    _same(compiled.load_rules(rules, calendar, cache), expected)
    assert path.read_bytes() == good


def test_a_file_edited_while_it_is_parsed_is_not_cached_under_its_old_content(
    tmp_path: Path, calendar: WorkCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _copy(RULES, tmp_path / "rules")
    cache = tmp_path / "cache"
    path = rules / "default.yaml"
    real_compile = compiled.compile_rules

    def compile_then_edit(directory: Path):  # type: ignore[no-untyped-def]
        result = real_compile(directory)
        path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        return result

    monkeypatch.setattr(compiled, "compile_rules", compile_then_edit)
    compiled.load_rules(rules, calendar, cache)
    assert _cached(cache) == []


def test_the_bound_calendar_is_the_callers(tmp_path: Path) -> None:
    """Cached rules are bound to the calendar given at load: a new calendar is a new fingerprint."""
    rules = _copy(RULES, tmp_path / "rules")
    cache = tmp_path / "cache"
    a = compiled.load_rules(rules, WorkCalendar.load(None), cache)
    short = WorkCalendar.load(None, last_year=2040)
    b = compiled.load_rules(rules, short, cache)
    assert b.rules[0].calendar is short
    assert a.fingerprint != b.fingerprint
    assert b.fingerprint == load_rules(rules, short).fingerprint


def test_the_config_directories_are_cached_and_an_invalid_config_is_always_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    config = tmp_path / "config.yaml"
    config.write_text("rules_dir: my_rules\nholidays_dir: /srv/holidays\n", encoding="utf-8")
    assert AppContext(str(config)).rule_dirs == (tmp_path / "my_rules", Path("/srv/holidays"))
    assert len(list((tmp_path / "xdg" / "hotline-sla").glob("config-*.pickle"))) == 1
    warm = AppContext(str(config))
    monkeypatch.setattr("daemon.config.load_config", lambda *_: pytest.fail("validated again"))
    assert warm.rule_dirs == (tmp_path / "my_rules", Path("/srv/holidays"))
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    config.write_text("rules_dir: my_rules\nholidays_dir: /srv/holidays\nno_such_key: 1\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ConfigError, match="no_such_key: unknown key"):
            _ = AppContext(str(config)).rule_dirs


def test_a_warm_deadline_imports_no_pydantic_and_a_cold_one_prints_the_same(tmp_path: Path) -> None:
    probe = (
        "import sys, daemon.cli\n"
        "code = daemon.cli.main(sys.argv[1:])\n"
        "print('PYDANTIC' if 'pydantic' in sys.modules else 'NO-PYDANTIC', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("HOTLINE_SLA_CONFIG", None)
    argv = [sys.executable, "-c", probe, "deadline", "--rule", "municipal_complaint", "--received",
            "2024-09-27 16:30", "--json"]
    cold = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    warm = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert cold.stderr.strip().endswith("PYDANTIC") and not cold.stderr.strip().endswith("NO-PYDANTIC")
    assert warm.stderr.strip().endswith("NO-PYDANTIC")
    assert warm.stdout == cold.stdout
