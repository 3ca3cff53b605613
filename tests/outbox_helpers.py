"""Builders shared by the outbox tests and drills: alert payloads shaped like the tick's, configs, queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from daemon.config import Config
from daemon.core.timeutil import iso_local, parse_time
from daemon.pipeline.queue import enqueue
from daemon.storage.models import deliveries, outbox
from daemon.storage.store import Store

UNIT = "兴隆台区住建局"


def at(text: str) -> datetime:
    return parse_time(text)


def person(name: str = "王承办", mobile: str | None = "13800001234", role: str = "handler", unit: str | None = UNIT,
           wecom_userid: str | None = None, email: str | None = None) -> dict[str, Any]:
    return {"name": name, "role": role, "unit": unit, "mobile": mobile, "wecom_userid": wecom_userid, "email": email}


def alert_payload(number: str = "2611100029", kind: str = "warning", *, unit: str = UNIT,
                  due_at: str = "2026-11-21T00:00:00+08:00", urgent: bool = False, note: str | None = None,
                  overdue_working_days: int = 0, provisional: bool = False) -> dict[str, Any]:
    """What daemon/pipeline/tick.py ``_payload`` writes, plus ``note`` and ``urgent``."""
    return {
        "kind": kind, "level": 1, "fire_at": "2026-11-20T09:00:00+08:00",
        "overdue_working_days": overdue_working_days,
        "case": {
            "number": number, "summary": "反映小区供暖不达标", "unit": unit, "district": "兴隆台区",
            "source": "city", "category": "complaint", "rule_id": "municipal_complaint", "rule_name": "市级投诉类",
            "limit": "5个工作日", "received_at": "2026-11-14T10:30:00+08:00", "due_at": due_at,
            "case_due_at": due_at, "provisional": provisional, "return_requested_at": None,
        },
        "note": note, "urgent": urgent,
    }


def queue(store: Store, now: datetime, *, channel: str = "wecom", recipient: dict[str, Any] | None = None,
          kind: str = "warning", number: str = "2611100029", not_before: datetime | None = None,
          payload: dict[str, Any] | None = None, key: str | None = None, **payload_kw: Any) -> bool:
    with store.engine.begin() as conn:
        return enqueue(
            conn, kind=kind, channel=channel, recipient=recipient or person(),
            payload=payload if payload is not None else alert_payload(number, kind, **payload_kw),
            dedupe_key=key or f"test:{kind}:{number}:{(recipient or person())['name']}", now=now,
            not_before=not_before,
        )


def config(**dispatch: Any) -> Config:
    """Channels named like production ones; the tests pass FakeNotifiers under these names."""
    data: dict[str, Any] = {
        "channels": {
            "wecom": {"type": "wecom_app"}, "sms": {"type": "sms_aliyun"}, "mail": {"type": "smtp"},
            "console": {"type": "console"},
        },
        "default_channels": ["wecom"],
        "contacts": {"supervisors": [{"name": "督办员", "role": "supervisor", "mobile": "13900009999",
                                      "channels": ["wecom"]}]},
        "dispatch": dispatch,
    }
    return Config.model_validate(data)


def rows(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.id)))


def tries(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(deliveries).order_by(deliveries.c.id)))


__all__ = ["UNIT", "alert_payload", "at", "config", "iso_local", "person", "queue", "rows", "tries"]
