"""The kinds of message the daemon sends, and their one Chinese name each (用语表).

Every alert, report and notice that names a kind in Chinese (the dead-letter notice, the digest's
发送失败 list, …) takes the word from :data:`KIND_ZH`; the words are the ones the message templates and the
README use. Roles of contacts are named here too. Pure data: importable from every layer.
"""

from __future__ import annotations

#: the alerts the tick writes (one template per kind in daemon/pipeline/templates/)
ALERT_KINDS = ("warning", "breach", "breach_repeat", "return_window", "late_return", "unsigned", "first_contact")
#: corrections the recompute writes after a delivered breach became untrue (sent to that breach's recipients,
#: not routed by ``routes:``; one template per kind as well)
CORRECTION_KINDS = ("deadline_moved",)
#: messages the reports and the dead letter queue, rendered when queued (never batched)
REPORT_KINDS = ("digest", "month_end", "carry_over", "dead_letter")

KIND_ZH = {
    "warning": "即将超期提醒",
    "breach": "超期提醒",
    "breach_repeat": "超期未办结提醒",
    "return_window": "退件时限提醒",
    "late_return": "超时申请退件通知",
    "unsigned": "未签收提醒",
    "first_contact": "未先行联系提醒",
    "deadline_moved": "时限调整更正",
    "digest": "每日超期通报",
    "month_end": "月底清零提醒",
    "carry_over": "结存通报",
    "dead_letter": "提醒未能送达通知",
}

ROLES = ("handler", "leader", "supervisor")
ROLE_ZH = {"handler": "承办人", "leader": "分管领导", "supervisor": "督办"}
