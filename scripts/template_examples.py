"""Print every message template rendered with example data, as Markdown (the body of docs/templates.md).

Usage: python scripts/template_examples.py > /tmp/examples.md
"""

from __future__ import annotations

from typing import Any

from daemon.core.timeutil import parse_time
from daemon.glossary import CORRECTION_KINDS
from daemon.pipeline.render import ALERT_KINDS, Renderer, alert_context, sms_params

NOW = parse_time("2026-11-20 09:00")
HANDLER = {"name": "王承办", "role": "handler", "unit": "兴隆台区住建局", "mobile": "13800001234"}
SUPERVISOR = {"name": "区营商局督办员", "role": "supervisor", "unit": None}


def item(
    number: str, kind: str, summary: str, due_at: str, unit: str = "兴隆台区住建局", **extra: Any
) -> dict[str, Any]:
    return {
        "kind": kind, "level": 1, "fire_at": "2026-11-20T09:00:00+08:00",
        "overdue_working_days": extra.pop("days", 0),
        "case": {"number": number, "summary": summary, "unit": unit, "district": "兴隆台区", "source": "city",
                 "category": "complaint", "rule_id": "municipal_complaint", "rule_name": "市级投诉类",
                 "limit": "5个工作日", "received_at": "2026-11-13T10:30:00+08:00", "due_at": due_at,
                 "case_due_at": due_at, "provisional": False,
                 "return_requested_at": extra.pop("returned", None)},
        "note": extra.pop("note", None), "urgent": False,
    }


EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "warning": [item("2611100029", "warning", "反映小区供暖不达标", "2026-11-21T00:00:00+08:00"),
                item("2611130027", "warning", "反映小区占用消防通道停车", "2026-11-21T00:00:00+08:00"),
                item("2611170031", "warning", "咨询不动产证办理进度", "2026-11-24T00:00:00+08:00")],
    "breach": [item("2611120020", "breach", "反映建筑垃圾长期未清理", "2026-11-20T00:00:00+08:00"),
               item("2611090021", "breach", "反映供暖管道漏水无人维修", "2026-11-20T00:00:00+08:00")],
    "breach_repeat": [item("2611100019", "breach_repeat", "反映施工后路面未回填", "2026-11-18T00:00:00+08:00",
                           days=2),
                      item("2611110024", "breach_repeat", "反映路面坑洼无警示牌", "2026-11-19T00:00:00+08:00",
                           days=1)],
    "return_window": [item("2611190037", "return_window", "反映垃圾清运不及时", "2026-11-20T09:40:00+08:00"),
                      item("2611190039", "return_window", "反映危房改造补助未发放", "2026-11-20T11:15:00+08:00")],
    "late_return": [item("2611180040", "late_return", "反映噪音扰民", "2026-11-19T14:00:00+08:00",
                         returned="2026-11-20T08:45:00+08:00", unit="兴海街道办事处"),
                    item("2611180041", "late_return", "反映路灯不亮", "2026-11-19T15:20:00+08:00",
                         returned="2026-11-20T08:50:00+08:00", unit="兴海街道办事处")],
    "unsigned": [dict(item("2611190042", "unsigned", "反映小区电梯停运", "2026-11-20T08:30:00+08:00"),
                      window="1个工作日"),
                 dict(item("2611190043", "unsigned", "反映道路积水", "2026-11-20T09:00:00+08:00"),
                      window="4个工作小时")],
    "first_contact": [dict(item("2611190044", "first_contact", "反映燃气泄漏气味", "2026-11-19T16:30:00+08:00"),
                           window="2小时"),
                      dict(item("2611190045", "first_contact", "反映供水中断", "2026-11-19T17:10:00+08:00"),
                           window="2小时")],
    "deadline_moved": [dict(item("2612300011", "deadline_moved", "反映供暖温度不达标", "2027-01-08T00:00:00+08:00"),
                            old_due_at="2027-01-07T00:00:00+08:00"),
                       dict(item("2612300015", "deadline_moved", "反映楼道照明损坏", "2027-01-09T00:00:00+08:00"),
                            old_due_at="2027-01-08T00:00:00+08:00")],
}


def block(lang: str, text: str) -> str:
    return f"```{lang}\n{text.rstrip()}\n```\n"


def main() -> None:
    renderer = Renderer()
    out: list[str] = []
    for kind in (*ALERT_KINDS, *CORRECTION_KINDS):
        items = EXAMPLES[kind]
        who = SUPERVISOR if kind == "late_return" else HANDLER
        one = renderer.render(kind, alert_context(kind, items[:1], who, NOW))
        many = renderer.render(kind, alert_context(kind, items, who, NOW))
        out.append(f"### `{kind}`\n")
        out.append(f"`{kind}.txt`, one alert — subject **{one.subject}**\n")
        out.append(block("text", one.text))
        out.append(f"`{kind}.txt`, a batch of {len(items)} — subject **{many.subject}**\n")
        out.append(block("text", many.text))
        out.append(f"`{kind}.md` (WeCom, DingTalk), one alert\n")
        out.append(block("markdown", one.markdown or ""))
        out.append(f"`{kind}.html` (email), the batch\n")
        out.append(block("html", many.html or ""))
        params = sms_params(alert_context(kind, items, who, NOW))
        out.append("SMS parameters of the batch: " + ", ".join(f"`{k}`={v}" for k, v in params.items()) + "\n")
    supervisor_batch = [dict(i, note=f"{i['case']['unit']}未配置承办人联系人，转督办人员") for i in
                        [item("2611100029", "warning", "反映小区供暖不达标", "2026-11-21T00:00:00+08:00",
                              unit="兴隆台区环保局"),
                         item("2611130027", "warning", "反映小区占用消防通道停车", "2026-11-21T00:00:00+08:00",
                              unit="兴隆街道办事处")]]
    sup = renderer.render("warning", alert_context("warning", supervisor_batch, SUPERVISOR, NOW))
    out.append("### A supervisor's batch (units without contacts)\n")
    out.append(block("text", sup.text))
    burst = [item(f"26111000{i:02d}", "breach_repeat", summary, f"2026-11-{12 + i}T00:00:00+08:00", days=6 - i)
             for i, summary in enumerate(["反映施工后路面未回填", "反映路面坑洼无警示牌", "反映小区供暖不达标",
                                          "反映楼道照明损坏", "反映噪音扰民"])]
    capped = renderer.render("breach_repeat", alert_context("breach_repeat", burst, HANDLER, NOW, limit=3))
    out.append("### A capped batch (`dispatch.max_items_per_message`, here 3; default 20)\n")
    out.append("A batch lists its alerts most urgent first (urgent routes, then the longest overdue, then the "
               "earliest deadline) and at most `dispatch.max_items_per_message` of them; one line counts the "
               "rest, which are sent (marked sent) with this message.\n")
    out.append(block("text", capped.text))
    out.append(block("markdown", capped.markdown or ""))
    out.append(block("html", capped.html or ""))
    dead = renderer.render("dead_letter", {
        "recipient": {"name": "区营商局督办员"}, "count": 2, "hours": "24", "items": [
            {"what": "超期提醒 工单2611120020", "to": "王承办(尾号1234)", "channel": "sms", "attempts": 9,
             "last_error": "sms: SendSms: HTTP 503 from provider"},
            {"what": "每日超期汇总", "to": "李科长(尾号5678)", "channel": "mail", "attempts": 7,
             "last_error": "mail: cannot talk to smtp.example.gov.cn (ConnectionRefusedError)"}]})
    out.append(f"### `dead_letter` — subject **{dead.subject}**\n")
    out.append(block("text", dead.text))
    out.append(block("markdown", dead.markdown or ""))
    test = renderer.render("test", {"channel": "wecom", "now": "2026-11-20T09:00:00+08:00"})
    out.append(f"### `test` (`hotline-sla notify test`) — subject **{test.subject}**\n")
    out.append(block("text", test.text))
    out.append(block("markdown", test.markdown or ""))
    print("\n".join(out))


if __name__ == "__main__":
    main()
