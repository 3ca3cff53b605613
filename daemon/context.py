"""What a command needs, loaded lazily: a command that needs no database never opens one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.errors import ConfigError

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.core.calendar import WorkCalendar
    from daemon.core.rules import RuleSet
    from daemon.storage.store import Store

DEFAULT_CONFIG_PATHS = (Path("config.yaml"), Path("/etc/hotline-sla/config.yaml"))


def cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where the compiled calendar is cached (:mod:`daemon.core.compiled`), or None for no cache.

    ``$CACHE_DIRECTORY`` (systemd's ``CacheDirectory=``), else ``$XDG_CACHE_HOME/hotline-sla``, else
    ``~/.cache/hotline-sla``; never under /etc. A directory that turns out not to be usable (read-only,
    another user's) means no cache, without an error.
    """
    env = os.environ if environ is None else environ
    candidates: list[Path] = []
    if env.get("CACHE_DIRECTORY"):
        candidates.append(Path(env["CACHE_DIRECTORY"].split(":")[0]))
    if env.get("XDG_CACHE_HOME"):
        candidates.append(Path(env["XDG_CACHE_HOME"]) / "hotline-sla")
    if env.get("HOME"):
        candidates.append(Path(env["HOME"]) / ".cache" / "hotline-sla")
    for candidate in candidates:
        if candidate.is_absolute() and not candidate.resolve().is_relative_to("/etc"):
            return candidate
    return None


def find_config(explicit: str | None) -> Path | None:
    """``--config``, else ``$HOTLINE_SLA_CONFIG``, else ``./config.yaml``, else ``/etc/hotline-sla/config.yaml``."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (given with --config)")
        return path
    env = os.environ.get("HOTLINE_SLA_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (given with $HOTLINE_SLA_CONFIG)")
        return path
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    return None


class AppContext:
    def __init__(self, config_path: str | None) -> None:
        self._config_arg = config_path
        self._closers: list[Any] = []

    @cached_property
    def config(self) -> Config:
        from daemon.config import Config, load_config

        path = find_config(self._config_arg)
        return load_config(path) if path else Config.default()

    @cached_property
    def calendar(self) -> WorkCalendar:
        """Built once per set of inputs and then read from the cache (~2 ms instead of ~0.2 s)."""
        from daemon.core.compiled import load_calendar

        return load_calendar(self.config.holidays_path, cache_dir())

    @cached_property
    def rules(self) -> RuleSet:
        from daemon.core.rules import load_rules

        return load_rules(self.config.rules_path, self.calendar)

    @cached_property
    def store(self) -> Store:
        """The database, migrated to the current schema (idempotent, cheap when already current)."""
        from daemon.storage.store import Store

        store = Store(self.config.database_url, echo=self.config.database.echo)
        self.on_close(store.close)
        store.upgrade()
        return store

    def on_close(self, closer: Any) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()
