"""The desk (值班台): read-only pages for supervisors on the health listener (``health.desk``, on by default).

- ``/``: per unit, open, due today, due by the end of the next working day, overdue and the longest overdue,
  with the calendar notice and the muted cases. Built by the digest's own :func:`build_digest` at the
  request's instant, so the figures are the digest's at that instant; the page reloads itself.
- ``/units/<unit>``: the unit's open cases, soonest deadline first, 暂定 and mutes marked.
- ``/cases/<number>``: the explanation of `cases explain` (:func:`explain_case`): rule, counted days with
  holidays named, extension, mute, history, alerts and messages with recipients masked (尾号1234).

Every text goes through Jinja2's autoescaping. ``now`` is the request's instant, read by the HTTP handler
(the outermost layer) and passed in. With ``health.desk_token`` set, a page needs the token as a bearer
token or as a basic-auth password (any user name); the token is never logged, and /healthz and /metrics
never ask for it. The listener is loopback only: people reach the desk through the office's reverse proxy.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

import structlog
from sqlalchemy.exc import SQLAlchemyError

from daemon.config import Config
from daemon.core.calendar import WorkCalendar
from daemon.core.engine import mute_in_force
from daemon.core.rules import RuleSet
from daemon.core.timeutil import parse_time
from daemon.glossary import KIND_ZH
from daemon.reports.case_views import explain_case, open_cases
from daemon.reports.digest import build_digest
from daemon.reports.tabular import HTML_MIME, OUTBOX_STATUS_ZH, STATUS_ZH, due_text, local_text
from daemon.storage.store import Store

log = structlog.get_logger("hotline_sla.desk")

UNIT_LIMIT = 500  # cases listed on a unit's page
DAY_LABELS = {"makeup": "调休上班", "holiday": "法定假日", "weekend": "周末", "workday": "工作日"}
SENT_STATUS_ZH = {"pending": "待发送", "sending": "发送中", "sent": "已发送", **OUTBOX_STATUS_ZH}


@dataclass(frozen=True)
class Page:
    status: int
    body: bytes
    content_type: str = HTML_MIME
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeskSetup:
    """What a page reads: the store and the current configuration, rules and calendar (swapped on reload)."""

    store: Store
    config: Config
    rules: RuleSet
    calendar: WorkCalendar


class Desk:
    """Answers a GET for one of the desk's paths (:meth:`page`); the caller passes the request's instant."""

    def __init__(self, setup: Callable[[], DeskSetup], *, token: str | None = None) -> None:
        self._setup = setup
        self._token = token.encode() if token else None

    @staticmethod
    def serves(path: str) -> bool:
        return path == "/" or path.startswith(("/units/", "/cases/"))

    def page(self, path: str, headers: Mapping[str, str], now: datetime) -> Page:
        """The page at ``path`` as of ``now`` (aware): 200, 401 without the token, 404, or 503 when the
        database does not answer (the reason is logged, the page says only that)."""
        if not self._authorised(headers.get("Authorization")):
            return Page(401, _plain("需要登录：请提供值班台口令。\n"),
                        headers={"WWW-Authenticate": 'Basic realm="hotline-sla desk", charset="UTF-8"'})
        try:
            setup = self._setup()  # may refuse: the SQLite file vanished (runtime.health.SqliteFileGuard)
            if path == "/":
                return Page(200, self._index(setup, now))
            if path.startswith("/units/"):
                return Page(200, self._unit(setup, unquote(path[len("/units/"):]), now))
            found = self._case(setup, unquote(path[len("/cases/"):]), now)
            return Page(200, found) if found is not None else Page(404, _plain("没有这个工单。\n"))
        except SQLAlchemyError as exc:
            log.warning("desk_database_unavailable", error=type(exc).__name__)
            return Page(503, _plain("数据库暂时无法访问，请稍后刷新。\n"))

    def _authorised(self, header: str | None) -> bool:
        if self._token is None:
            return True
        if not header:
            return False
        scheme, _, value = header.strip().partition(" ")
        given = b""
        if scheme.lower() == "bearer":  # http.server hands header bytes over as latin-1 text: back to bytes
            given = value.strip().encode("latin-1", "replace")
        elif scheme.lower() == "basic":
            try:
                given = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
        return hmac.compare_digest(given, self._token)

    def _index(self, s: DeskSetup, now: datetime) -> bytes:
        with s.store.engine.connect() as conn:
            d = build_digest(conn, s.rules, s.calendar, now, s.config.scheduler.digest_time)
        nxt = d.window.next_workday
        return _render("desk_index.html.j2", s, now, title="在办工单总览", notice=d.calendar_notice, o=d.overview,
                       units=d.units, muted=d.muted, next_workday=f"{nxt.month}月{nxt.day}日")

    def _unit(self, s: DeskSetup, unit: str, now: datetime) -> bytes:
        with s.store.engine.connect() as conn:
            rows = open_cases(conn, now, unit=unit, limit=UNIT_LIMIT)
        return _render("desk_unit.html.j2", s, now, title=f"{unit} · 在办工单", unit=unit, cases=rows,
                       limit=UNIT_LIMIT)

    def _case(self, s: DeskSetup, number: str, now: datetime) -> bytes | None:
        with s.store.engine.connect() as conn:
            doc = explain_case(conn, s.rules, s.calendar, number)
        if doc is None:
            return None
        days, n = [], 0
        for day in doc["days"]:
            n += day["counted"]
            days.append({**day, "mark": f"第{n}天" if day["counted"] else "不计",
                         "label": DAY_LABELS.get(day["kind"], day["kind"]),
                         "name": day["name"] if day["name"] and day["kind"] != "weekend" else ""})
        mute = doc["mute"]
        return _render("desk_case.html.j2", s, now, title=f"工单 {number}", d=doc, days=days,
                       mute_active=bool(mute) and mute_in_force(parse_time(mute["until"]), now))


def _plain(text: str) -> bytes:
    return text.encode()


def _local(value: datetime | str) -> str:
    return local_text(parse_time(value) if isinstance(value, str) else value)


def _due(value: datetime | str) -> str:
    return due_text(parse_time(value) if isinstance(value, str) else value)


_ENV: Any = None


def _render(template: str, s: DeskSetup, now: datetime, **context: Any) -> bytes:
    global _ENV  # noqa: PLW0603 - one Jinja2 environment per process, built on the first page
    if _ENV is None:
        from jinja2 import Environment, PackageLoader, select_autoescape

        _ENV = Environment(loader=PackageLoader("daemon.reports", "templates"),
                           autoescape=select_autoescape(["j2", "html"]))
    names = {r.id: r.name for r in s.rules.rules}
    html: str = _ENV.get_template(template).render(
        now_text=local_text(now), refresh=s.config.health.desk_refresh_seconds, local=_local, due=_due,
        unit_href=lambda unit: "/units/" + quote(unit, safe=""), case_href=lambda n: "/cases/" + quote(n, safe=""),
        status=lambda v: STATUS_ZH.get(v, v), outbox_status=lambda v: SENT_STATUS_ZH.get(v, v),
        kind=lambda v: KIND_ZH.get(v, v), rule_name=lambda v: names.get(v, v), **context,
    )
    return html.encode()
