"""``hotline-sla config check``: validate config.yaml, the rules and the calendar before (re)starting."""

from __future__ import annotations

import argparse
from typing import Any

from daemon.errors import ConfigError
from daemon.output import print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="configuration (配置)")
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    c = csub.add_parser("check", help="validate config.yaml, rules, calendar and channels; exit 1 on problems")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=run_check)


def check_all(ctx: Any) -> tuple[list[str], dict[str, Any]]:
    """Every problem found, and a summary that never contains a secret."""
    errors: list[str] = []
    summary: dict[str, Any] = {}
    try:
        config = ctx.config
    except ConfigError as exc:
        return [str(exc)], summary
    summary["config"] = config.source_file or "(built-in defaults)"
    from sqlalchemy.engine import make_url

    try:
        summary["database"] = make_url(config.database_url).render_as_string(hide_password=True)
    except Exception:
        errors.append("database.url: not a valid SQLAlchemy URL, e.g. sqlite:///var/hotline-sla.sqlite3")
    for check in CHECKS:
        errors.extend(check(ctx, summary))
    return errors, summary


def _check_rules(ctx: Any, summary: dict[str, Any]) -> list[str]:
    try:
        rs = ctx.rules
    except ConfigError as exc:
        return str(exc).split("; ")
    summary["rules"] = [r.id for r in rs.rules]
    summary["calendar"] = f"{ctx.calendar.first_year}-{ctx.calendar.last_year}"
    return []


def _check_channels(ctx: Any, summary: dict[str, Any]) -> list[str]:
    """Build every channel through the registry (secrets resolved, never shown) and parse the templates."""
    from daemon.pipeline.render import Renderer
    from notifiers.registry import try_build_notifiers

    config = ctx.config
    built, errors = try_build_notifiers(config.channels)
    for notifier in built.values():
        notifier.close()
    summary["channels"] = {name: str(opts.get("type", "?")) for name, opts in config.channels.items()}
    templates = config.dispatch.templates_dir
    renderer = Renderer(config.path(templates) if templates else None)
    errors.extend(renderer.check())
    if templates:
        summary["templates_dir"] = str(config.path(templates))
    return errors


def _check_startup(ctx: Any, summary: dict[str, Any]) -> list[str]:
    """What ``run`` refuses to start with: health.listen, and every path the service writes."""
    from daemon.runtime.preflight import startup_problems, writable_paths

    config = ctx.config
    summary["writable_paths"] = {setting: str(path) for setting, path in writable_paths(config)}
    return startup_problems(config)


def _check_desk(ctx: Any, summary: dict[str, Any]) -> list[str]:
    """The desk's token must resolve: ``run`` would otherwise start without the desk (it logs
    ``desk_disabled`` and keeps sending alerts), which the operator would only notice at the browser."""
    health = ctx.config.health
    if not (health.listen and health.desk and health.desk_token is not None):
        return []
    from notifiers.base import ChannelConfigError
    from notifiers.secrets import SecretResolver

    try:
        SecretResolver().resolve("health.desk_token", health.desk_token)
    except ChannelConfigError as exc:
        return [f"{exc} (run would start without the desk)"]
    summary["desk"] = "token readable"
    return []


CHECKS: list[Any] = [_check_rules, _check_channels, _check_startup, _check_desk]


def run_check(args: argparse.Namespace) -> int:
    errors, summary = check_all(args.ctx)
    if args.json:
        print_json({"ok": not errors, "errors": errors, "summary": summary})
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
        for e in errors:
            print(f"error: {e}")
        print("config ok" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0
