"""Unit contacts (承办人, 分管领导, 督办) imported from a sheet, validated, with masked error messages.

Columns: 单位 (unit; empty means a supervisor who covers every unit), 姓名, 角色, 手机, 企业微信账号, 邮箱.
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
        if mobile is None and email is None and wecom_id is None:
            raise ValueError(
                f"{name}: no channel; give 手机 (mobile), 企业微信账号 (wecom_id) or 邮箱 (email)"
            )
        return ImportedContact(name=name, role=role, unit=unit, mobile=mobile, wecom_id=wecom_id, email=email)

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
