"""The built WorkCalendar and the validated rules, cached on disk so that a command does not rebuild them
at every start.

Building the calendar (2004-2060: chinese-calendar's years, the operator's override files, the provisional
years from the lunar tables) takes ~0.2 s; reading it back from a pickle takes ~2 ms. Validating the rule
files needs pydantic (~0.1 s to import and build the schema); their compiled form
(:class:`~daemon.core.rule_spec.CompiledRules`, plain data) reads back in ~1 ms without it. Measured with
``bench/startup_bench.py``.

Each cache file is named by a key that covers everything its value is built from, so a changed input is
a different file and is never served stale:

- both: the cache format, the Python version, this package's version and the *content* of the modules that
  build the value (an edited checkout is a new key);
- the calendar: calendar.py, holidays.py and this file; the chinese-calendar version and the lunar library's
  installed module (path, size, mtime); the override directory as given (its path is recorded in the
  calendar) and the name and SHA-256 of the *content* of every ``*.yaml``/``*.yml`` in it (not their mtimes:
  a file copied with ``cp -p`` or edited within the same second still changes the key); the year range;
- the rules: rules.py, rule_schema.py, rule_spec.py, workhours.py, cases.py and this file; the installed
  pydantic, pydantic-core and PyYAML (path, size, mtime); the rules directory as given (the file names are
  recorded in the rules) and the name and SHA-256 of the content of every rule file in it. The calendar is
  not part of it: cached rules are bound to the calendar of the day at load.

Only a value that was built without error is written (an invalid rule or override file is never cached, so
its errors are reported exactly as without a cache), and only when the inputs still hash to the same key
after the build (a file edited during the build is not cached under its old content). The file is written
to a temporary name and renamed (readers never see half a file), only into a directory owned by this user
and writable by no one else (a pickle is code), and a file that cannot be read, does not hold the key it is
named by, or holds a value of the wrong shape is rebuilt. No usable directory means no cache, silently: the
value is built as before. Which directory is the caller's decision (:func:`daemon.context.cache_dir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pickle
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from daemon.core import calendar as calendar_module
from daemon.core import holidays as holidays_module
from daemon.core import rules as rules_module
from daemon.core.calendar import DEFAULT_LAST_YEAR, FIRST_YEAR, WorkCalendar
from daemon.core.rule_spec import CompiledRules, MonthEndSettings, RuleSpec
from daemon.core.rules import RuleSet, bind_rules, compile_rules, rule_files

FORMAT = 1
PREFIX = "calendar-"
RULES_PREFIX = "rules-"
SUFFIX = ".pickle"
KEEP = 8  # files kept per directory and kind (a calendar ~240 kB, rules a few kB)

T = TypeVar("T")


class CacheKey:
    """A SHA-256 over the reprs of everything fed to it."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, *parts: object) -> None:
        for part in parts:
            self._hash.update(repr(part).encode())
            self._hash.update(b"\0")

    def add_files(self, paths: list[Path], *, names: bool = False) -> None:
        """The SHA-256 of each file's content (and its name when ``names``)."""
        for path in paths:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            self.add(path.name, digest) if names else self.add(digest)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def common_key() -> CacheKey:
    """A key started with what every cached value depends on: the cache format, Python, this package."""
    from daemon import __version__

    key = CacheKey()
    key.add(FORMAT, sys.version, __version__)
    return key


def calendar_key(overrides_dir: Path | None, first_year: int = FIRST_YEAR, last_year: int = DEFAULT_LAST_YEAR) -> str:
    """The hex key of the calendar these inputs build (see the module docstring for what it covers)."""
    import chinese_calendar

    key = common_key()
    key.add("calendar", chinese_calendar.__version__, module_stamp("lunar_python"))
    key.add(first_year, last_year)
    key.add_files([Path(str(m.__file__)) for m in (calendar_module, holidays_module)] + [Path(__file__)])
    key.add(str(overrides_dir) if overrides_dir is not None else None)
    if overrides_dir is not None and overrides_dir.is_dir():
        key.add_files(sorted([*overrides_dir.glob("*.yaml"), *overrides_dir.glob("*.yml")]), names=True)
    return key.hexdigest()


def rules_key(rules_dir: Path) -> str:
    """The hex key of the compiled rules of ``rules_dir`` (see the module docstring for what it covers).

    Raises OSError when a rule file cannot be read (the caller then parses, which reports it)."""
    key = common_key()
    key.add("rules", *(module_stamp(name) for name in ("pydantic", "pydantic_core", "yaml")))
    rules_file = Path(str(rules_module.__file__))
    core = rules_file.parent  # rule_schema.py is read, not imported: it imports pydantic
    modules = [rules_file, core / "rule_schema.py", core / "rule_spec.py", core / "workhours.py", core / "cases.py"]
    key.add_files([*modules, Path(__file__)])
    key.add(str(rules_dir))
    key.add_files(rule_files(rules_dir), names=True)
    return key.hexdigest()


def module_stamp(name: str) -> tuple[str, int, int] | None:
    """Where an installed module lives and its size and mtime: changes when the package is upgraded."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    st = os.stat(spec.origin)
    return spec.origin, st.st_size, st.st_mtime_ns


def load_calendar(
    overrides_dir: Path | None,
    cache_dir: Path | None,
    *,
    first_year: int = FIRST_YEAR,
    last_year: int = DEFAULT_LAST_YEAR,
) -> WorkCalendar:
    """:meth:`WorkCalendar.load`, through the cache in ``cache_dir`` when it is usable (None: no cache).

    Raises what :meth:`WorkCalendar.load` raises (an invalid override file is never cached).
    """
    return through_cache(
        cache_dir, PREFIX,
        lambda: calendar_key(overrides_dir, first_year, last_year),
        lambda: WorkCalendar.load(overrides_dir, first_year=first_year, last_year=last_year),
        lambda value: isinstance(value, WorkCalendar),
    )


def load_rules(rules_dir: Path, calendar: WorkCalendar, cache_dir: Path | None) -> RuleSet:
    """:func:`daemon.core.rules.load_rules`, the compiled rules read through the cache in ``cache_dir`` when it
    is usable (None: no cache), then bound to ``calendar``.

    Raises what :func:`daemon.core.rules.load_rules` raises, with the same message: invalid rule files are
    never cached, so they are parsed and reported every time.
    """
    compiled = through_cache(
        cache_dir, RULES_PREFIX, lambda: rules_key(rules_dir), lambda: compile_rules(rules_dir),
        lambda value: _is_compiled_rules(value, rules_dir),
    )
    return bind_rules(compiled, calendar)


def _is_compiled_rules(value: object, rules_dir: Path) -> bool:
    """The shape a compiled rule set must have, down to each rule, for the files of ``rules_dir``."""
    return (
        isinstance(value, CompiledRules)
        and isinstance(value.month_end, MonthEndSettings)
        and isinstance(value.rules, tuple)
        and all(isinstance(spec, RuleSpec) and isinstance(file, str) for spec, file in value.rules)
        and value.files == tuple(str(p) for p in rule_files(rules_dir))
        and isinstance(value.documents, tuple)
        and len(value.documents) == len(value.files)
        and all(isinstance(document, str) for document in value.documents)
    )


def through_cache(
    cache_dir: Path | None, prefix: str, make_key: Callable[[], str], build: Callable[[], T],
    accept: Callable[[object], bool],
) -> T:
    """The value cached in ``cache_dir`` under ``prefix`` + ``make_key()`` if ``accept`` takes it, else ``build()``
    (its errors propagate and nothing is written), written when the inputs still have the same key afterwards.
    ``cache_dir`` None or unusable: ``build()``. ``make_key`` raising OSError (an unreadable input): ``build()``,
    which reports it."""
    directory = cache_dir if cache_dir is not None and _usable(cache_dir) else None
    if directory is None:
        return build()
    try:
        key = make_key()
    except OSError:  # an input that cannot be read: the build reports it
        return build()
    path = directory / f"{prefix}{key}{SUFFIX}"
    cached = _read(path, key)
    if cached is not None and accept(cached):
        return cached  # type: ignore[return-value]  # accept() checked the type
    built = build()
    with contextlib.suppress(OSError):
        if make_key() == key:  # an input edited during the build is not cached under its old content
            _write(directory, prefix, path, key, built)
    return built


def _usable(directory: Path) -> bool:
    """The directory exists (or can be made, mode 0700), belongs to this user and only this user writes it."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = directory.stat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    return os.access(directory, os.W_OK | os.X_OK)


def _read(path: Path, key: str) -> object | None:
    try:
        with path.open("rb") as f:
            # our own file, in a directory only this user can write (see _usable)
            stored_key, value = pickle.load(f)  # noqa: S301
    except Exception:  # a missing, truncated or foreign file is rebuilt, never fatal
        return None
    if stored_key != key:
        return None
    return value  # type: ignore[no-any-return]


def _write(directory: Path, prefix: str, path: Path, key: str, value: object) -> None:
    """Temp file + rename, then old files of this kind pruned. Best effort: a failure only means no cache."""
    import tempfile  # only when writing (it imports shutil, random: ~4 ms a warm start does not need)

    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-" + prefix, dir=directory)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump((key, value), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return
    _prune(directory, prefix)


def _prune(directory: Path, prefix: str) -> None:
    """Keep the :data:`KEEP` most recently written files of a kind (several configs may share the directory)."""
    entries = []
    for old in directory.glob(f"{prefix}*{SUFFIX}"):
        with contextlib.suppress(OSError):
            entries.append((old.stat().st_mtime_ns, old))
    for _, old in sorted(entries, reverse=True)[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
