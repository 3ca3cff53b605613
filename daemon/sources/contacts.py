"""Unit contacts (承办人, 分管领导, 督办) imported from a sheet, validated, with masked error messages.

Columns: 单位 (unit; empty means a supervisor who covers every unit), 姓名, 角色, 手机, 企业微信账号, 邮箱,
and optionally 分组 (the unit's group in the monthly ranking: 市直, 县区基层 …; see :func:`unit_groups`).
A contact needs at least one channel (mobile, WeCom account or email). Error messages never contain a
full mobile number: it is shown as 尾号1234, the way the bulletins name citizens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from daemon.sources.values import clean_text, lookup_key
from notifiers.base import mask_mobile


class ContactRole(StrEnum):
    HANDLER = "handler"  # 承办人
    LEADER = "leader"  # 分管领导 / 领导
    SUPERVISOR = "supervisor"  # 督办 / 监督员 (营商局, 12345 center)


ROLE_WORDS: dict[str, ContactRole] = {
    "承办人": ContactRole.HANDLER,
    "分管领导": ContactRole.LEADER,
    "领导": ContactRole.LEADER,
    "督办": ContactRole.SUPERVISOR,
    "监督员": ContactRole.SUPERVISOR,
    **{role.value: role for role in ContactRole},
}

_COLUMNS = {
    "unit": ("单位", "承办单位", "unit"),
    "name": ("姓名", "name"),
    "role": ("角色", "role"),
    "mobile": ("手机", "手机号", "mobile"),
    "wecom_id": ("企业微信账号", "企业微信", "wecom_id"),
    "email": ("邮箱", "email"),
    "group": ("分组", "单位分组", "group"),
}
_REQUIRED = ("unit", "name")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class ImportedContact:
    """One person read from a contacts sheet (``contacts import``); the store keeps them, and the routing
    directory reads them back as :class:`daemon.pipeline.recipients.Contact`."""

    name: str  # 姓名
    role: ContactRole  # 角色
    unit: str | None = None  # 单位; None for a supervisor who covers every unit
    mobile: str | None = None  # 手机, 11 digits, no +86
    wecom_id: str | None = None  # 企业微信账号
    email: str | None = None  # 邮箱
    group: str | None = None  # 分组 of the unit in the monthly ranking


@dataclass(frozen=True, slots=True)
class ContactResult:
    """One row of a contacts sheet: ``row`` as the spreadsheet shows it; ``contact`` or ``error``."""

    row: int
    contact: ImportedContact | None
    error: str | None = None


class ContactBuilder:
    def __init__(self, headers: Sequence[object]) -> None:
        positions = {
            clean_text(h).lstrip("\ufeff").casefold(): i for i, h in reversed(list(enumerate(headers)))
        }
        self.index = {
            field: next(positions[n.casefold()] for n in names if n.casefold() in positions)
            for field, names in _COLUMNS.items()
            if any(n.casefold() in positions for n in names)
        }
        self.missing = [f"{_COLUMNS[f][0]} ({f})" for f in _REQUIRED if f not in self.index]

    def _cell(self, values: Sequence[object], field: str) -> str:
        i = self.index.get(field)
        return clean_text(values[i]) if i is not None and i < len(values) else ""

    def build(self, row: int, values: Sequence[object]) -> ContactResult:
        try:
            return ContactResult(row, self._contact(values))
        except ValueError as exc:
            return ContactResult(row, None, f"row {row}: {exc}")

    def _contact(self, values: Sequence[object]) -> ImportedContact:
        name = self._cell(values, "name")
        if not name:
            raise ValueError("姓名 (name) is empty")
        unit = self._cell(values, "unit") or None
        role_text = self._cell(values, "role")
        if role_text:
            role = ROLE_WORDS.get(lookup_key(role_text))
            if role is None:
                raise ValueError(
                    f"角色 (role) {role_text!r} is not known; valid: 承办人, 分管领导, 领导, 督办, 监督员 "
                    "(or handler, leader, supervisor)"
                )
        else:
            role = ContactRole.HANDLER if unit else ContactRole.SUPERVISOR
        if unit is None and role is not ContactRole.SUPERVISOR:
            raise ValueError(f"{name}: 单位 (unit) is empty, which only a supervisor (督办) may leave empty")
        mobile = self._mobile(values)
        email = self._cell(values, "email") or None
        if email is not None and not _EMAIL.fullmatch(email):
            raise ValueError(f"{name}: 邮箱 (email) {email!r} is not an email address")
        wecom_id = self._cell(values, "wecom_id") or None
        group = self._cell(values, "group") or None
        if group is not None and unit is None:
            raise ValueError(f"{name}: 分组 (group) {group!r} needs a 单位 (unit): a group belongs to a unit")
        if mobile is None and email is None and wecom_id is None:
            raise ValueError(
                f"{name}: no channel; give 手机 (mobile), 企业微信账号 (wecom_id) or 邮箱 (email)"
            )
        return ImportedContact(
            name=name, role=role, unit=unit, mobile=mobile, wecom_id=wecom_id, email=email, group=group
        )

    def _mobile(self, values: Sequence[object]) -> str | None:
        raw = self._cell(values, "mobile")
        if not raw:
            return None
        digits = re.sub(r"[\s\-]", "", raw)
        digits = digits.removeprefix("+86").removeprefix("0086")
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
        if not _MOBILE.fullmatch(digits):
            raise ValueError(
                f"手机 (mobile) {mask_mobile(raw)} is not a mainland mobile number (11 digits, 13x-19x)"
            )
        return digits


def contact_builder(headers: Sequence[object]) -> ContactBuilder:
    return ContactBuilder(headers)


def unit_groups(results: Sequence[ContactResult]) -> tuple[dict[str, str], list[str]]:
    """Each unit's 分组 from the imported rows, and a problem per unit given two different groups (the
    first row's group is kept, so the rest of the sheet still lands)."""
    groups: dict[str, str] = {}
    first_row: dict[str, int] = {}
    problems: list[str] = []
    for result in results:
        c = result.contact
        if c is None or c.unit is None or c.group is None:
            continue
        if c.unit not in groups:
            groups[c.unit], first_row[c.unit] = c.group, result.row
        elif groups[c.unit] != c.group:
            problems.append(
                f"row {result.row}: 分组 (group) {c.group!r} of {c.unit} differs from {groups[c.unit]!r} "
                f"on row {first_row[c.unit]}; a unit has one group, {groups[c.unit]!r} is kept"
            )
    return groups, problems
