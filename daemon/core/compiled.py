"""The built WorkCalendar, cached on disk so that a command does not rebuild it at every start.

Building the calendar (2004-2060: chinese-calendar's years, the operator's override files, the provisional
years from the lunar tables) takes ~0.2 s; reading it back from a pickle takes ~2 ms. Measured with
``bench/startup_bench.py``.

The cache file is named by a key that covers everything the calendar is built from, so a changed input is
a different file and is never served stale:

- the cache format, the Python version, this package's version and the *content* of the modules that
  build the calendar (calendar.py, holidays.py, this file: an edited checkout is a new key);
- the chinese-calendar version and the lunar library's installed module (path, size, mtime);
- the override directory as given (its path is recorded in the calendar) and the name and SHA-256 of the
  *content* of every ``*.yaml``/``*.yml`` in it (not their mtimes: a file copied with ``cp -p`` or edited
  within the same second still changes the key);
- the year range.

The file is written to a temporary name and renamed (readers never see half a file), only into a directory
owned by this user and writable by no one else (a pickle is code), and a file that cannot be read or does
not hold the key it is named by is rebuilt. No usable directory means no cache, silently: the calendar is
built as before. Which directory is the caller's decision (:func:`daemon.context.cache_dir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pickle
import stat
import sys
from pathlib import Path

from daemon.core import calendar as calendar_module
from daemon.core import holidays as holidays_module
from daemon.core.calendar import DEFAULT_LAST_YEAR, FIRST_YEAR, WorkCalendar

FORMAT = 1
PREFIX = "calendar-"
SUFFIX = ".pickle"
KEEP = 8  # calendars kept per directory (~240 kB each)


def calendar_key(overrides_dir: Path | None, first_year: int = FIRST_YEAR, last_year: int = DEFAULT_LAST_YEAR) -> str:
    """The hex key of the calendar these inputs build (see the module docstring for what it covers)."""
    import chinese_calendar

    from daemon import __version__

    h = hashlib.sha256()

    def add(*parts: object) -> None:
        for part in parts:
            h.update(repr(part).encode())
            h.update(b"\0")

    add(FORMAT, sys.version, __version__, chinese_calendar.__version__, _module_stamp("lunar_python"))
    add(first_year, last_year)
    for module_file in (calendar_module.__file__, holidays_module.__file__, __file__):
        add(hashlib.sha256(Path(str(module_file)).read_bytes()).hexdigest())
    add(str(overrides_dir) if overrides_dir is not None else None)
    if overrides_dir is not None and overrides_dir.is_dir():
        for path in sorted([*overrides_dir.glob("*.yaml"), *overrides_dir.glob("*.yml")]):
            add(path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    return h.hexdigest()


def _module_stamp(name: str) -> tuple[str, int, int] | None:
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
    directory = cache_dir if cache_dir is not None and _usable(cache_dir) else None
    if directory is None:
        return WorkCalendar.load(overrides_dir, first_year=first_year, last_year=last_year)
    key = calendar_key(overrides_dir, first_year, last_year)
    path = directory / f"{PREFIX}{key}{SUFFIX}"
    cached = _read(path, key)
    if cached is not None:
        return cached
    built = WorkCalendar.load(overrides_dir, first_year=first_year, last_year=last_year)
    _write(directory, path, key, built)
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


def _read(path: Path, key: str) -> WorkCalendar | None:
    try:
        with path.open("rb") as f:
            # our own file, in a directory only this user can write (see _usable)
            stored_key, value = pickle.load(f)  # noqa: S301
    except Exception:  # a missing, truncated or foreign file is rebuilt, never fatal
        return None
    if stored_key != key or not isinstance(value, WorkCalendar):
        return None
    return value


def _write(directory: Path, path: Path, key: str, calendar: WorkCalendar) -> None:
    """Temp file + rename, then old calendars pruned. Best effort: a failure only means no cache."""
    import tempfile  # only when writing (it imports shutil, random: ~4 ms a warm start does not need)

    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-" + PREFIX, dir=directory)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump((key, calendar), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return
    _prune(directory)


def _prune(directory: Path) -> None:
    """Keep the :data:`KEEP` most recently written calendars (several configs may share the directory)."""
    entries = []
    for old in directory.glob(f"{PREFIX}*{SUFFIX}"):
        with contextlib.suppress(OSError):
            entries.append((old.stat().st_mtime_ns, old))
    for _, old in sorted(entries, reverse=True)[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
