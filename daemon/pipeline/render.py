"""Message rendering for the outbox: Jinja2 templates in Chinese, one per alert kind and channel family.

Families: ``txt`` (every channel: console, SMS gateways, the email plain part), ``md`` (WeCom, DingTalk) and
``html`` (email). A template sets ``subject`` with ``{% set subject %}…{% endset %}``; the text template's
subject is the message's. The same template renders one alert or a batch: the context always has ``items``
(the alerts' payloads, see daemon/pipeline/tick.py ``_payload``, most urgent first: :func:`urgency_key`),
``count`` (all of the batch) and ``more`` (how many of them a capped message does not list: the template
says so in one line, 还有N件未列出).

Templates ship in ``daemon/pipeline/templates/``; a file of the same name in ``dispatch.templates_dir`` overrides
one. SMS channels send approved templates, not text: :func:`sms_params` gives every kind the same named
parameters and each channel's ``templates.<kind>.params`` picks the ones its approved template has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from daemon.escaping import finalizer, sms_param
from daemon.glossary import ALERT_KINDS, CORRECTION_KINDS
from notifiers.base import mask_mobiles_in

PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE_KINDS = (*ALERT_KINDS, *CORRECTION_KINDS, "dead_letter", "test")
FAMILIES = ("txt", "md", "html")  # a channel declares the ones it sends (``Notifier.formats``)


class RenderError(ValueError):
    """A template is missing or cannot be rendered; the message names the template file."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    markdown: str | None = None
    html: str | None = None
    params: Mapping[str, str] | None = None


def when(value: str | datetime | None, fmt: str = "%m月%d日 %H:%M") -> str:
    """``2026-11-20T09:00:00+08:00`` → ``11月20日 09:00`` (Asia/Shanghai, as the payload already is)."""
    if value is None or value == "":
        return ""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    from daemon.core.timeutil import to_local

    text = to_local(instant).strftime(fmt)
    return text.lstrip("0").replace("月0", "月")


class Renderer:
    """Loads templates from ``templates_dir`` first, then the package's; renders with strict undefineds."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        loaders = [FileSystemLoader(str(PACKAGE_TEMPLATES))]
        if templates_dir is not None:
            loaders.insert(0, FileSystemLoader(str(templates_dir)))
        self.templates_dir = templates_dir
        # one environment per family: each escapes every ``{{ … }}`` for its format (daemon/escaping.py)
        self.envs: dict[str, SandboxedEnvironment] = {}
        for family in FAMILIES:
            env = SandboxedEnvironment(
                loader=ChoiceLoader(loaders),
                undefined=StrictUndefined,
                autoescape=family == "html",
                finalize=finalizer(family),
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
            )
            env.filters["when"] = when
            env.filters["mask"] = mask_mobiles_in
            self.envs[family] = env

    def render(self, kind: str, context: Mapping[str, Any], families: Sequence[str] = FAMILIES) -> Rendered:
        """Render ``kind`` in ``families`` (``txt`` always). Raises :class:`RenderError`."""
        out: dict[str, str] = {}
        subject = ""
        for family in ("txt", *(f for f in families if f != "txt")):
            name = f"{kind}.{family}"
            try:
                template = self.envs[family].get_template(name)
                module = template.make_module(dict(context))
            except TemplateError as exc:
                raise RenderError(f"template {name}: {type(exc).__name__}: {exc.message or exc}") from None
            body = str(module).strip() + "\n"
            out[family] = body
            if family == "txt":
                subject = " ".join(str(getattr(module, "subject", "")).split())
        if not subject:
            raise RenderError(f"template {kind}.txt: sets no subject ({{% set subject %}}…{{% endset %}})")
        return Rendered(subject=subject, text=out["txt"], markdown=out.get("md"), html=out.get("html"))

    def check(self) -> list[str]:
        """Every template (package and override) parses; the problems, naming the file."""
        problems = []
        if self.templates_dir is not None and not self.templates_dir.is_dir():
            return [f"dispatch.templates_dir: {self.templates_dir} is not a folder"]
        for kind in TEMPLATE_KINDS:
            for family in FAMILIES:
                try:
                    self.envs[family].get_template(f"{kind}.{family}")
                except TemplateError as exc:
                    problems.append(f"template {kind}.{family}: {exc.message or exc}")
        return problems


def urgency_key(payload: Mapping[str, Any] | None) -> tuple[bool, int, str, str]:
    """How a batch's alerts are listed, and its messages sent: urgent first (the route says so), then the
    longest overdue, then the earliest deadline, then by case number (so a resent batch renders the same).
    A payload without a case (a report) sorts after the alerts."""
    payload = payload or {}
    case = payload.get("case") or {}
    return (not payload.get("urgent"), -int(payload.get("overdue_working_days") or 0),
            str(case.get("due_at") or "\uffff"), str(case.get("number") or ""))


def alert_context(
    kind: str, items: Sequence[Mapping[str, Any]], recipient: Mapping[str, Any], now: datetime,
    *, limit: int | None = None,
) -> dict[str, Any]:
    """The context of an alert template: one or several alerts of ``kind`` for one recipient, most urgent
    first (:func:`urgency_key`); with ``limit`` only that many are listed and ``more`` counts the rest."""
    from daemon.core.timeutil import iso_local

    items = sorted(items, key=urgency_key)
    listed = items if limit is None else items[:limit]
    units = list(dict.fromkeys(str(i["case"]["unit"]) for i in items))
    # "甲局未配置承办人联系人，转督办人员" for several units reads as one note: "甲局、乙局未配置…"
    grouped: dict[str, list[str]] = {}
    for item in items:
        note, unit = str(item.get("note") or ""), str(item["case"]["unit"])
        if note:
            suffix = note[len(unit):] if note.startswith(unit) and len(note) > len(unit) else note
            names = grouped.setdefault(suffix, [])
            if note != suffix and unit not in names:
                names.append(unit)
    notes = ["、".join(names) + suffix for suffix, names in grouped.items()]
    return {
        "kind": kind,
        "items": listed,
        "all_items": items,
        "first": items[0],
        "count": len(items),
        "more": len(items) - len(listed),
        "recipient": {k: recipient.get(k) for k in ("name", "role", "unit")},
        "is_supervisor": recipient.get("role") == "supervisor",
        "units": units,
        "notes": notes,
        "urgent": any(bool(i.get("urgent")) for i in items),
        "now": iso_local(now),
    }


def sms_params(context: Mapping[str, Any]) -> dict[str, str]:
    """The named parameters every alert kind offers to an SMS template (values are strings, not truncated;
    control characters and line breaks, which vendors reject in a parameter, removed: :func:`sms_param`)."""
    items: list[Mapping[str, Any]] = context.get("all_items", context["items"])  # the whole batch, listed or not
    first = items[0]
    case = first["case"]
    count = len(items)
    due_at = when(min(str(i["case"]["due_at"]) for i in items))
    number = str(case["number"]) if count == 1 else f"{case['number']}等{count}件"
    units = context["units"]
    params = {
        "name": str(context["recipient"].get("name") or ""),
        "count": str(count),
        "case_no": number,
        "unit": units[0] if len(units) == 1 else f"{units[0]}等{len(units)}个单位",
        "summary": str(case.get("summary") or "") if count == 1 else f"{count}件诉求",
        "due_at": due_at + ("(暂定)" if any(i["case"].get("provisional") for i in items) else ""),
        "overdue_days": str(max(int(i.get("overdue_working_days") or 0) for i in items)),
        "rule": str(case.get("rule_name") or ""),
        "limit": str(case.get("limit") or ""),
        "received_at": when(str(case.get("received_at") or "")),
    }
    old = [str(i["old_due_at"]) for i in items if i.get("old_due_at")]
    if old:  # deadline_moved: the overdue instant the earlier breach named
        params["old_due_at"] = when(min(old))
    return {key: sms_param(value) for key, value in params.items()}
