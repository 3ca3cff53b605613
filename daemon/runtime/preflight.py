"""Checks that ``run`` applies before it starts, shared with ``config check`` so that a config that
passes the check also starts: the health listener's address, and every path the daemon writes.

Under the shipped unit (``ProtectSystem=strict``) the whole file system is read-only to the service
except its ``StateDirectory`` (systemd passes it as ``$STATE_DIRECTORY``): when that variable is set,
every writable path must lie under it. Writability is checked as the user running the check, which under
``ExecStartPre=`` is the service user.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from daemon.config import Config
from daemon.errors import ConfigError
from daemon.runtime.health import parse_listen


def writable_paths(config: Config) -> list[tuple[str, Path]]:
    """Every path the daemon writes, with the setting that names it (for messages)."""
    found: list[tuple[str, Path]] = []
    if config.database.password is None:
        url = make_url(config.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            found.append(("database.url", Path(url.database)))
    for src in config.sources:
        if src.type == "inbox" and src.enabled:
            folder = src.options.get("path") or src.options.get("directory")
            if folder:
                found.append((f"sources.{src.name}.path", config.path(str(folder))))
    found.append(("reports.output_dir", config.reports_path))
    return found


def state_directories(environ: Mapping[str, str] | None = None) -> list[Path]:
    """``$STATE_DIRECTORY`` (colon-separated) as systemd sets it for ``StateDirectory=``; else none."""
    value = (os.environ if environ is None else environ).get("STATE_DIRECTORY", "")
    return [Path(p) for p in value.split(":") if p]


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def path_problems(config: Config, state_dirs: Sequence[Path] = ()) -> list[str]:
    """One message per path the service could not write, naming the setting and what would work."""
    problems: list[str] = []
    user = _user_name()
    for setting, configured in writable_paths(config):
        path = configured.absolute()
        if state_dirs and not any(path == d or d in path.parents for d in (p.absolute() for p in state_dirs)):
            problems.append(
                f"{setting}: {path} is outside the service's writable tree ({':'.join(map(str, state_dirs))}); "
                "the unit makes everything else read-only (ProtectSystem=strict): put it under the state "
                "directory, e.g. /var/lib/hotline-sla")
            continue
        existing = _nearest_existing(path if setting != "database.url" else path.parent)
        targets = [existing]
        if setting == "database.url" and path.exists():
            targets.append(path)
        for target in targets:
            if not os.access(target, os.W_OK | (os.X_OK if target.is_dir() else 0)):
                problems.append(f"{setting}: {target} is not writable by user {user} (needed for {path})")
                break
    return problems


def startup_problems(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """Everything ``run`` refuses to start with, beyond what loading the config already checked."""
    problems: list[str] = []
    if config.health.listen:
        try:
            parse_listen(config.health.listen)
        except ConfigError as exc:
            problems.append(str(exc))
    problems.extend(path_problems(config, state_directories(environ)))
    return problems


def setting_of(config: Config, filename: str | os.PathLike[str] | None) -> str | None:
    """The setting whose path contains ``filename`` (for an OSError raised while running), if any."""
    if filename is None:
        return None
    target = Path(os.fsdecode(filename)).absolute()
    for setting, configured in writable_paths(config):
        path = configured.absolute()
        if target == path or path in target.parents:
            return setting
    return None


def _user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())
