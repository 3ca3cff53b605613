"""Issue 14 finding 3: citizen and unit text arrives inert in every message format (daemon/escaping.py).

Before the fix, ``<@all>``, ``[点此处理](http://evil…)`` and ``<font>`` in a case summary went into WeCom
Markdown as written (a mention of everyone, a link, coloured text), in alerts and in the Markdown digest.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest

from daemon.config import Config
from daemon.core.calendar import WorkCalendar
from daemon.core.rules import RuleSet
from daemon.escaping import markdown_text, plain_text, sms_param
from daemon.pipeline.outbox import Dispatcher
from daemon.pipeline.render import Renderer, alert_context, sms_params
from daemon.reports import digest_render
from daemon.reports.digest import build_digest
from daemon.storage.store import Store
from notifiers.registry import build_notifiers
from notifiers.secrets import SecretResolver
from tests.notifiers.conftest import SECRETS
from tests.outbox_helpers import alert_payload, at, person, queue
from tests.test_digest import AT_0830, record

NOW = at("2026-11-20 09:00")
HOSTILE = (
    "<@all> [点此处理](http://evil.example/x) <font color=\"info\">绿字</font> `代码` **加粗** _斜_ ~~删~~\n"
    "# 标题\n> 引用 <script>alert(1)</script> www.evil.example | 表格 ![图](http://evil.example/i.png)"
)
HOSTILE_UNIT = "<@all>住建局**"


def hostile_context(*, supervisor: bool = False, count: int = 1) -> dict[str, Any]:
    items = [alert_payload(f"C{i}", unit=HOSTILE_UNIT) for i in range(count)]
    for item in items:
        item["case"]["summary"] = HOSTILE
        item["case"]["number"] = "[2611](http://evil.example)"
    role = "supervisor" if supervisor else "handler"
    return alert_context("breach", items, person("王**承办**", role=role, unit=HOSTILE_UNIT), NOW)


def assert_inert_markdown(text: str) -> None:
    """No mention, link, tag, emphasis, code, heading or quote can come from the data."""
    data_lines = [line for line in text.splitlines() if not line.startswith("### <font color=\"warning\">")]
    body = "\n".join(data_lines)
    for bad in ("<@all>", "](", "<font", "</font>", "`", "**加粗**", "**承办**", "<script>", "http://", "www.evil",
                "![", "~~", "_斜_", "| 表格"):
        assert bad not in body, (bad, text)
    assert not re.search(r"^\s*#", body, re.MULTILINE)  # no heading but the template's own
    assert not re.search(r"^> 引用", text, re.MULTILINE)
    assert "＜@all＞" in text and "［点此处理］" in text  # shown, as text


@pytest.mark.parametrize("supervisor", [False, True])
@pytest.mark.parametrize("count", [1, 3])
def test_markdown_alerts_show_hostile_text_inert_and_keep_the_templates_markup(supervisor: bool, count: int) -> None:
    out = Renderer().render("breach", hostile_context(supervisor=supervisor, count=count), ("txt", "md"))
    assert out.markdown is not None
    assert out.markdown.startswith("### <font color=\"warning\">")  # the template's own header still works
    assert re.search(r"^> ", out.markdown, re.MULTILINE)  # and its own quotes
    if count > 1:
        assert "**3件**" in out.markdown  # and its own emphasis
    assert_inert_markdown(out.markdown)


def test_html_alerts_escape_tags() -> None:
    out = Renderer().render("breach", hostile_context(count=2), ("txt", "html"))
    assert out.html is not None
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "<font" not in out.html and "&lt;font color=&#34;info&#34;&gt;" in out.html
    assert "<table" in out.html  # the template's own markup


def test_text_drops_control_characters_but_keeps_lines() -> None:
    context = hostile_context()
    context["first"]["case"]["summary"] = "供暖\x1b[31m不达标\u202e反转\x00\n第二行"
    out = Renderer().render("breach", context, ("txt",))
    assert "\x1b" not in out.text and "\u202e" not in out.text and "\x00" not in out.text
    assert "供暖[31m不达标反转\n第二行" in out.text
    assert "[2611](http://evil.example)" in out.text  # plain text shows it as written: nothing interprets it


def test_sms_parameters_have_no_line_breaks_or_control_characters() -> None:
    context = hostile_context()
    context["first"]["case"]["summary"] = "供暖\r\n不达标\t\x07温度\u2028低  "
    params = sms_params(context)
    assert params["summary"] == "供暖 不达标 温度 低"
    assert all(not re.search(r"[\x00-\x1f\x7f\u2028]", v) for v in params.values())


def test_escaping_is_idempotent_and_text_stays_readable() -> None:
    once = markdown_text(HOSTILE)
    assert markdown_text(once) == once  # a {% set %} block re-inserted is not escaped twice
    assert markdown_text("兴隆台区住建局（2件）") == "兴隆台区住建局（2件）"
    assert plain_text(None) == "" and sms_param(" a\n\nb ") == "a b"


def test_wecom_robot_receives_inert_markdown(tmp_path: Path, wecom: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'esc.sqlite3'}")
    store.upgrade()
    chans = {"bot": {"type": "wecom_bot", "key": {"env": "ROBOT_KEY"}, "base_url": wecom.base_url,
                     "mention_recipient": False}}
    config = Config.model_validate({"channels": chans, "default_channels": ["bot"]})
    notifiers = build_notifiers(config.channels, secrets=SecretResolver(environ=SECRETS))
    payload = alert_payload("C1", "breach", unit=HOSTILE_UNIT)
    payload["case"]["summary"] = HOSTILE
    queue(store, NOW, channel="bot", kind="breach", payload=payload, key="esc-1")
    result = Dispatcher(store, config, notifiers, owner="esc", rng=random.Random(1)).dispatch_once(NOW)
    assert result.sent == 1
    (body,) = wecom.sent("/cgi-bin/webhook/send")
    assert_inert_markdown(body["markdown"]["content"])
    store.close()


def test_markdown_digest_shows_hostile_unit_and_summary_inert(
    store: Store, rules: RuleSet, calendar: WorkCalendar
) -> None:
    store.upsert_cases([record("[X1](http://evil.example)", "2026-11-10 10:00", unit=HOSTILE_UNIT, summary=HOSTILE)],
                       rules=rules, now=NOW, source_name="test")
    with store.engine.connect() as conn:
        d = build_digest(conn, rules, calendar, NOW, AT_0830)
    md, _ = digest_render.render_markdown(d)
    assert "＜@all＞住建局＊＊" in md  # the unit, shown as text
    for bad in ("<@all>", "](", "http://", "**加粗"):
        assert bad not in md, bad
    assert md.startswith("# ") and "<font color=\"warning\">" in md  # the digest's own markup


def test_month_end_reminders_show_unit_and_summary_inert(calendar: WorkCalendar) -> None:
    from datetime import date

    from daemon.reports.month_end import BacklogCase, MonthEndAction, render_reminder, render_unrouted_reminder

    action = MonthEndAction("month_end", "2026-11/T-3", 2026, 11, date(2026, 11, 25), NOW, 3)
    item = BacklogCase("[X1](http://evil.example)", HOSTILE, HOSTILE_UNIT, at("2026-11-10 10:00"),
                       at("2026-11-17 00:00"), provisional=False, carried=False, overdue=True)
    for rendered, heading in ((render_reminder(action, HOSTILE_UNIT, [item], calendar, NOW), "**待办结工单**"),
                              (render_unrouted_reminder(action, {HOSTILE_UNIT: [item]}, calendar, NOW),
                               "**各单位待办结工单**")):
        assert "＜@all＞住建局＊＊" in rendered.markdown
        for bad in ("<@all>", "](", "http://", "<font", "**加粗"):
            assert bad not in rendered.markdown, bad
        assert rendered.markdown.startswith("# 月底清零提醒") and heading in rendered.markdown  # own markup
        assert "<@all>住建局**" in rendered.text  # the plain text shows it as written


def test_ranking_markdown_shows_unit_names_inert() -> None:
    from datetime import datetime

    from daemon.core.timeutil import LOCAL_TZ
    from daemon.reports.ranking import monthly_ranking
    from daemon.reports.ranking_render import render_markdown
    from tests.test_ranking import SMALL, april_cases, case
    from tests.test_ranking import at as april_at

    cases = [*april_cases(), case("Q1", "<@all>[局](http://evil.example)", april_at(3), april_at(8, 0), april_at(4))]
    text = render_markdown(monthly_ranking(cases, 2024, 4, datetime(2024, 5, 1, tzinfo=LOCAL_TZ), SMALL))
    assert "＜@all＞［局］（http：//evil.example）" in text
    assert "<@all>" not in text and "](" not in text and "http://" not in text
    assert "\n# 2024 年 4 月" in text and "|---|" in text  # its own heading (after the masthead) and tables stay
