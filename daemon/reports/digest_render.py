"""The daily overdue digest as Markdown (a WeCom message within 4096 bytes), HTML and XLSX, in Chinese.

HTML and XLSX share one description of the sections (:func:`digest_tables`); the Markdown is a summary
whose lists stop where the byte limit does, and says that the full list is in the attachment.
"""

from __future__ import annotations

from daemon.escaping import markdown_text as md
from daemon.glossary import KIND_ZH, ROLE_ZH
from daemon.reports.digest import Digest
from daemon.reports.tabular import (
    CATEGORY_ZH,
    OUTBOX_STATUS_ZH,
    SOURCE_ZH,
    STATUS_ZH,
    WEEKDAYS,
    MarkdownList,
    ReportTable,
    clip,
    day_text,
    due_text,
    fit_markdown,
    local_text,
    render_html_page,
    render_xlsx_book,
)

DEFAULT_HINT = "完整清单见附件（HTML / XLSX）。"


def title(d: Digest) -> str:
    return "12345 热线每日超期通报"


def subtitle(d: Digest) -> str:
    return f"{d.window.today.year}年{day_text(d.window.today)}，统计截至 {local_text(d.window.now)}（北京时间）"


def overdue_text(days: int, hours: int) -> str:
    return f"{days} 个工作日" if days else f"{hours} 小时"


def _longest(days: int) -> str:
    return f"（最长 {days} 个工作日）" if days else "（均不足 1 个工作日）"


def summary(d: Digest) -> str:
    o, w = d.overview, d.window
    nxt = w.next_workday
    return (
        f"截至 {local_text(w.now)}，全部承办单位在办工单 {o.open} 件，其中今日到期 {o.due_today} 件，"
        f"下一工作日（{nxt.month}月{nxt.day}日，周{WEEKDAYS[nxt.weekday()]}）结束前到期 {o.due_next} 件；"
        f"已超期 {o.overdue} 件，其中自上次通报（{local_text(w.since)}）以来新增超期 {o.new_overdue} 件。"
        f"本月受理尚未办结 {o.this_month} 件，上月及以前结存 {o.carried} 件。"
    )


def paragraphs(d: Digest) -> list[str]:
    out = [summary(d)]
    if d.units and d.units[0].overdue:
        worst = [u for u in d.units if u.overdue][:3]
        names = "、".join(f"{u.unit}（{u.overdue} 件）" for u in worst)
        out.append(f"超期工单较多的单位：{names}。请相关单位抓紧办理、及时反馈，避免扣分。")
    if d.late_returns_total:
        out.append(f"逾期申请退件 {d.late_returns_total} 件（超过接件后 24 小时），请督办人员核实退件单。")
    if d.mismatches_total:
        out.append(f"平台办理时限与本系统计算时限不一致的在办工单 {d.mismatches_total} 件，请督办人员核实。")
    if d.failed_total:
        out.append(f"近 7 日有 {d.failed_total} 条提醒发送失败，相关人员未收到提醒，请核对联系方式或电话通知。")
    return out  # the calendar notice is the overview table's note


def digest_tables(d: Digest) -> list[ReportTable]:
    o, w = d.overview, d.window
    tables = [
        ReportTable("一、总体情况", "总体情况", ("指标", "数量"), [
            ("在办工单", o.open),
            ("今日到期", o.due_today),
            (f"下一工作日（{w.next_workday.isoformat()}）结束前到期", o.due_next),
            ("已超期", o.overdue),
            (f"自上次通报（{local_text(w.since)}）以来新增超期", o.new_overdue),
            ("期限为暂定的在办工单", o.provisional),
            ("本月受理未办结", o.this_month),
            ("上月及以前结存未办结", o.carried),
            ("逾期申请退件", d.late_returns_total),
            ("适用兜底规则的在办工单", d.catch_all_total),
            ("近 7 日发送失败的提醒", d.failed_total),
        ], note=("日历提示：" + d.calendar_notice) if d.calendar_notice else ""),
        ReportTable(
            "二、各承办单位在办及超期情况（按超期件数排序）", "各单位",
            ("序号", "承办单位", "在办", "超期", "新增超期", "今日到期", "最长超期（工作日）", "暂定期限"),
            [(i, u.unit, u.open, u.overdue, u.new_overdue, u.due_today, u.longest_overdue_days, u.provisional)
             for i, u in enumerate(d.units, start=1)],
            wide=frozenset({"承办单位"}),
        ),
        ReportTable(
            f"三、超期工单清单（共 {len(d.overdue)} 件，超期时间最长的在前）", "超期工单",
            ("序号", "工单编号", "问题摘要", "承办单位", "时限规则", "办理状态", "交办时间", "办理期限",
             "超期工作日", "超期小时"),
            [(i, c.number, c.summary or "", c.unit, c.rule_name, STATUS_ZH.get(c.status, c.status),
              local_text(c.received_at), due_text(c.due_at, c.provisional), c.overdue_working_days, c.overdue_hours)
             for i, c in enumerate(d.overdue, start=1)],
            note="办理期限为北京时间；期限后标注“暂定”的，依赖尚未发布的节假日安排。超期工作日只计已整日过去的工作日。",
            wide=frozenset({"问题摘要", "承办单位"}),
        ),
        ReportTable(
            "四、逾期申请退件（接件 24 小时后才申请退件）", "逾期退件",
            ("序号", "工单编号", "问题摘要", "承办单位", "交办时间", "退件时限", "申请退件时间", "逾期小时",
             "办理状态"),
            [(i, c.number, c.summary or "", c.unit, local_text(c.received_at), local_text(c.return_due_at),
              local_text(c.return_requested_at), c.late_hours, STATUS_ZH.get(c.status, c.status))
             for i, c in enumerate(d.late_returns, start=1)],
            total=d.late_returns_total,
            note="列出待审核的逾期退件申请，以及自上次通报以来新提出的逾期申请。",
            wide=frozenset({"问题摘要", "承办单位"}),
        ),
        ReportTable(
            f"五、适用兜底规则（{d.catch_all_rule or '无'}）的在办工单", "兜底规则",
            ("序号", "工单编号", "问题摘要", "承办单位", "来源", "诉求类型", "交办时间", "办理期限"),
            [(i, c.number, c.summary or "", c.unit, SOURCE_ZH.get(c.source, c.source),
              CATEGORY_ZH.get(c.category, c.category), local_text(c.received_at), due_text(c.due_at, c.provisional))
             for i, c in enumerate(d.catch_all, start=1)],
            total=d.catch_all_total,
            note="按来源和类型："
            + ("；".join(f"{SOURCE_ZH.get(s, s)}{CATEGORY_ZH.get(c, c)} {n} 件" for s, c, n in d.catch_all_kinds)
               or "无")
            + "。这些工单没有专门的时限规则，请确认是否需要在 sla_rules/ 中补充。",
            wide=frozenset({"问题摘要", "承办单位"}),
        ),
        ReportTable(
            "六、提醒发送失败（近 7 日，相关人员未收到提醒）", "发送失败",
            ("序号", "提醒类型", "工单编号", "接收人", "角色", "所属单位", "手机", "渠道", "状态", "尝试次数",
             "创建时间", "错误信息"),
            [(i, KIND_ZH.get(f.kind, f.kind), f.case_number or "", f.name, ROLE_ZH.get(f.role, f.role),
              f.unit or "", f.mobile or "", f.channel, OUTBOX_STATUS_ZH.get(f.status, f.status), f.attempts,
              local_text(f.created_at), clip(f.error, 120))
             for i, f in enumerate(d.failed, start=1)],
            total=d.failed_total,
            wide=frozenset({"所属单位", "错误信息"}),
        ),
        ReportTable(
            "七、月底清零进度（本月及上月结存的在办工单）", "月底清零",
            ("序号", "承办单位", "本月受理未办结", "上月及以前结存", "合计", "其中已超期"),
            [(i, u.unit, u.this_month, u.carried, u.open, u.overdue)
             for i, u in enumerate(sorted(d.units, key=lambda u: (-u.open, -u.carried, u.unit)), start=1)],
            note="各承办单位每月月底把当月及上月结存的诉求案件全部清零。",
            wide=frozenset({"承办单位"}),
        ),
        muted_table(d),
    ]
    if d.mismatches_total:  # only exports that carry the platform's own deadline can disagree with ours
        tables.append(ReportTable(
            "八、时限不一致（平台办理时限与本系统计算时限不同的在办工单）", "时限不一致",
            ("序号", "工单编号", "承办单位", "本系统时限", "平台时限", "采用"),
            [(i, m.number, m.unit, local_text(m.computed_due_at), local_text(m.platform_due_at),
              "平台时限" if m.deadline_source == "platform" else "本系统时限")
             for i, m in enumerate(d.mismatches, start=1)],
            total=d.mismatches_total,
            note="时限均为超期起点（北京时间）。默认采用较早的一个（从严）；规则的 deadline_source 可改为只用一方。",
            wide=frozenset({"承办单位"}),
        ))
    return tables


def muted_table(d: Digest) -> ReportTable:
    """八、已暂停提醒: the open cases whose warnings and breaches are paused, and why."""
    return ReportTable(
        f"八、已暂停提醒（{len(d.muted)} 件，暂停期间不发送预警和超期提醒）", "已暂停提醒",
        ("序号", "工单编号", "问题摘要", "承办单位", "办理期限", "暂停至", "原因", "设置人"),
        [(i, c.number, c.summary or "", c.unit, due_text(c.due_at, c.provisional), local_text(c.muted_until),
          c.reason or "", c.muted_by or "") for i, c in enumerate(d.muted, start=1)],
        note="暂停到期后恢复提醒，届时仍未办结的工单按当时状态提醒一次。",
        wide=frozenset({"问题摘要", "承办单位", "原因"}),
    )


def render_html(d: Digest, *, limit: int | None = None, tables: list[ReportTable] | None = None) -> str:
    """The printable page; ``limit`` caps each list (the e-mail body), the attachment has every row.
    ``tables``: :func:`digest_tables` of ``d`` when the caller already has them (they cost ~0.5 s at 50,000 rows)."""
    return render_html_page(
        f"{title(d)}", subtitle(d), paragraphs(d), tables if tables is not None else digest_tables(d), limit=limit,
        footer=f"本通报由 hotline-sla 于 {local_text(d.window.now)} 自动生成；时间均为北京时间（UTC+08:00）。",
    )


def render_xlsx(d: Digest, *, tables: list[ReportTable] | None = None) -> bytes:
    return render_xlsx_book(tables if tables is not None else digest_tables(d))


def render_markdown(d: Digest, *, hint: str = DEFAULT_HINT) -> tuple[str, bool]:
    """The WeCom message (≤ 4096 bytes). Returns (markdown, truncated)."""
    o, w = d.overview, d.window
    head = [
        f"# {title(d)}",
        f"> {subtitle(d)}",
        "",
        f"在办 **{o.open}** 件；今日到期 <font color=\"warning\">{o.due_today}</font> 件；"
        f"下一工作日（{w.next_workday.month}月{w.next_workday.day}日）前到期 {o.due_next} 件；"
        f"超期 <font color=\"warning\">{o.overdue}</font> 件，较上次通报新增 {o.new_overdue} 件。",
        f"月底清零：本月未办结 {o.this_month} 件，上月及以前结存 {o.carried} 件。",
    ]
    if d.calendar_notice:
        head.append(f"> 日历提示：{md(d.calendar_notice)}")
    units = [u for u in d.units if u.overdue or u.due_today]
    lists = [
        MarkdownList(
            f"**各单位超期情况**（{len(units)} 个单位有超期或今日到期）",
            [f"{i}. {md(u.unit)}：超期 {u.overdue} 件" + (_longest(u.longest_overdue_days) if u.overdue else "")
             + f"，今日到期 {u.due_today} 件，在办 {u.open} 件" for i, u in enumerate(units, start=1)],
            more=lambda n: f"……另有 {n} 个单位",
        ),
        MarkdownList(
            f"**超期工单**（共 {len(d.overdue)} 件）",
            [f"{i}. {md(c.number)}｜{md(c.unit)}｜{md(c.rule_name)}｜期限 {due_text(c.due_at, c.provisional)[5:]}"
             f"｜超期 {overdue_text(c.overdue_working_days, c.overdue_hours)}｜{md(clip(c.summary, 18))}"
             for i, c in enumerate(d.overdue[:60], start=1)],
            total=len(d.overdue), more=lambda n: f"……另有 {n} 件",
        ),
        MarkdownList(
            f"**逾期申请退件**（{d.late_returns_total} 件）",
            [f"{i}. {md(c.number)}｜{md(c.unit)}｜{local_text(c.return_requested_at)[5:]} 申请，"
             f"逾期 {c.late_hours} 小时"
             for i, c in enumerate(d.late_returns[:20], start=1)],
            total=d.late_returns_total, more=lambda n: f"……另有 {n} 件",
        ),
        MarkdownList(
            f"**适用兜底规则的在办工单**（{d.catch_all_total} 件）",
            [f"{md(SOURCE_ZH.get(s, s))}{md(CATEGORY_ZH.get(c, c))} {n} 件" for s, c, n in d.catch_all_kinds[:20]],
            total=len(d.catch_all_kinds), more=lambda n: f"……另有 {n} 类",
        ),
        MarkdownList(
            f"**提醒发送失败**（近 7 日 {d.failed_total} 条，以下人员未收到提醒）",
            [f"{i}. {md(f.name)}（{md(ROLE_ZH.get(f.role, f.role))}{'，' + md(f.unit) if f.unit else ''}"
             f"{'，' + md(f.mobile) if f.mobile else ''}）{md(f.channel)}｜{md(KIND_ZH.get(f.kind, f.kind))}"
             f"{' ' + md(f.case_number) if f.case_number else ''}"
             for i, f in enumerate(d.failed[:20], start=1)],
            total=d.failed_total, more=lambda n: f"……另有 {n} 条",
        ),
        *([MarkdownList(  # only when there are some: the message's bytes are scarce
            f"**已暂停提醒**（{len(d.muted)} 件）",
            [f"{i}. {md(c.number)}｜{md(c.unit)}｜暂停至 {local_text(c.muted_until)[5:]}｜{md(clip(c.reason, 30))}"
             for i, c in enumerate(d.muted[:20], start=1)],
            total=len(d.muted), more=lambda n: f"……另有 {n} 件",
        )] if d.muted else []),
    ]
    if d.mismatches_total:
        lists.insert(3, MarkdownList(
            f"**时限不一致**（{d.mismatches_total} 件）",
            [f"{i}. {md(m.number)}｜{md(m.unit)}｜本系统 {local_text(m.computed_due_at)[5:]}"
             f"｜平台 {local_text(m.platform_due_at)[5:]}"
             for i, m in enumerate(d.mismatches[:20], start=1)],
            total=d.mismatches_total, more=lambda n: f"……另有 {n} 件",
        ))
    text, truncated = fit_markdown(head, lists, hint)
    return text, truncated


def render_text(d: Digest) -> str:
    """Plain text for channels without Markdown (SMS-like or console)."""
    lines = [f"{title(d)}（{subtitle(d)}）", summary(d)]
    worst = [u for u in d.units if u.overdue][:5]
    if worst:
        lines.append("超期较多：" + "、".join(f"{u.unit} {u.overdue} 件" for u in worst))
    if d.calendar_notice:
        lines.append("日历提示：" + d.calendar_notice)
    lines.append(DEFAULT_HINT)
    return "\n".join(lines)


def sms_params(d: Digest) -> dict[str, str]:
    o = d.overview
    return {
        "date": f"{d.window.today.month}月{d.window.today.day}日", "open": str(o.open), "overdue": str(o.overdue),
        "new_overdue": str(o.new_overdue), "due_today": str(o.due_today),
    }
