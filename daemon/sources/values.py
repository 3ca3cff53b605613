"""Cell values as platform exports write them: times, numbers, yes/no, and the default value words.

Everything here is pure. Naive times are Asia/Shanghai (the platform's local time).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

from daemon.core.cases import Category, Satisfaction, Source, Status
from daemon.core.timeutil import LOCAL_TZ, TimeFormatError, parse_time

#: 来源 words → Source (the platform exports these; English enum values are accepted as well)
DEFAULT_SOURCES: dict[str, Source] = {
    "省平台": Source.PROVINCE, "省级": Source.PROVINCE, "省平台交办件": Source.PROVINCE,
    "省": Source.PROVINCE,
    "市级": Source.CITY, "市平台": Source.CITY, "12345": Source.CITY, "8890": Source.CITY, "市": Source.CITY,
    "热线": Source.HOTLINE, "区热线": Source.HOTLINE, "话务端": Source.HOTLINE, "区级": Source.HOTLINE,
}  # fmt: skip

#: 诉求类型 words → Category
DEFAULT_CATEGORIES: dict[str, Category] = {
    "投诉": Category.COMPLAINT, "投诉类": Category.COMPLAINT,
    "咨询": Category.INQUIRY, "政策咨询": Category.INQUIRY,
    "建议": Category.SUGGESTION, "意见建议": Category.SUGGESTION,
    "求助": Category.HELP, "举报": Category.REPORT, "其他": Category.OTHER,
}  # fmt: skip

#: 办理状态 words → Status
DEFAULT_STATUSES: dict[str, Status] = {
    "待签收": Status.DISPATCHED, "已交办": Status.DISPATCHED, "待接件": Status.DISPATCHED,
    "已签收": Status.SIGNED, "办理中": Status.SIGNED, "处理中": Status.SIGNED, "跟踪": Status.SIGNED,
    "申请退件": Status.RETURN_REQUESTED, "退件中": Status.RETURN_REQUESTED,
    "已退件": Status.RETURNED,
    "已反馈": Status.FED_BACK, "待回访": Status.FED_BACK,
    "已办结": Status.CLOSED, "已结案": Status.CLOSED, "办结": Status.CLOSED,
}  # fmt: skip

#: 满意度 words → Satisfaction
DEFAULT_SATISFACTIONS: dict[str, Satisfaction] = {
    "满意": Satisfaction.SATISFIED,
    "基本满意": Satisfaction.BASICALLY_SATISFIED,
    "不满意": Satisfaction.DISSATISFIED,
}

#: 疑难件 words → bool (an empty cell is "no")
DEFAULT_FLAGS: dict[str, bool] = {
    "是": True, "否": False, "疑难": True, "疑难件": True, "y": True, "n": False, "yes": True, "no": False,
    "true": True, "false": False, "1": True, "0": False, "√": True, "×": False,
}  # fmt: skip

#: 2026-11-03 09:05[:00], 2026/11/3 9:05, 2026.11.03 09:05, 2026年11月3日 9:05, 2026年11月3日9时05分, with a
#: date alone where a date is enough
_FAST_TIME = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:(?:[ T]+|(?<=日))(\d{1,2})[:时点](\d{1,2})(?:[:分](\d{1,2})(?:\.(\d{1,6}))?秒?|分)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)
#: an Excel serial date as text (a date column exported as numbers): 10000-99999 are 1927-05-18 to 2173-10-14
_SERIAL_TEXT = re.compile(r"\d{5}(?:\.\d+)?")
#: the forms a time cell may take, for error messages
TIME_FORMS = ("'YYYY-MM-DD HH:MM[:SS]', 'YYYY/M/D H:MM', 'YYYY.MM.DD HH:MM', '2026年11月3日 9:05', "
              "an Excel date cell or serial number (46329.375), or ISO 8601 with an offset; Asia/Shanghai")
_EXCEL_EPOCH = datetime(1899, 12, 30)  # noqa: DTZ001 - Excel serials are naive local time
_CHINESE_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}


def clean_text(value: object) -> str:
    """A cell as trimmed text ('' for None). Whole-number floats (Excel numbers) lose their '.0'."""
    if type(value) is str:  # the common case first: str.strip() also drops full-width spaces (U+3000)
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_cell_time(value: object, *, date_only_ok: bool = True) -> datetime:
    """A time cell → an aware datetime. Naive values are Asia/Shanghai.

    Accepts datetime/date objects (Excel cells, database columns), Excel serial numbers (also as text:
    '46329.375'), 'YYYY-MM-DD HH:MM[:SS]', 'YYYY/M/D H:MM', 'YYYY.MM.DD HH:MM', '2026年11月9日 8:30',
    '2026年11月9日8时30分', and ISO 8601 with an offset; a date alone when ``date_only_ok``.
    Raises :class:`TimeFormatError`.
    """
    if type(value) is str:
        return _parse_text_time(value.strip(), date_only_ok)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=LOCAL_TZ)
    if isinstance(value, date):
        if not date_only_ok:
            raise TimeFormatError(value.isoformat())
        return datetime.combine(value, time(), tzinfo=LOCAL_TZ)
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value < 2958466:
        return _serial(float(value))
    return _parse_text_time(clean_text(value), date_only_ok)


def _parse_text_time(text: str, date_only_ok: bool) -> datetime:
    match = _FAST_TIME.fullmatch(text)
    if match is None:
        if _SERIAL_TEXT.fullmatch(text):  # read as the number cell it was in the workbook
            return _serial(float(text))
        return parse_time(text)  # raises TimeFormatError with the accepted forms
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if hour is None and not date_only_ok:
        raise TimeFormatError(text)
    tz = LOCAL_TZ if offset is None else _offset(offset)
    try:
        return datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            int((fraction or "0").ljust(6, "0")), tzinfo=tz,
        )  # fmt: skip
    except ValueError:
        raise TimeFormatError(text) from None


def _serial(days: float) -> datetime:
    """An Excel serial date (days since 1899-12-30, local time), to the nearest second: the fraction of a
    day in binary floating point is rarely exact (9:05 is 0.37847222…)."""
    return (_EXCEL_EPOCH + timedelta(seconds=round(days * 86400))).replace(tzinfo=LOCAL_TZ)


def _offset(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def parse_stars(value: object) -> int:
    """评星 → 1-5. Accepts 4, 4.0, '4', '4星', '四星'. Raises ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        stars = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        stars = int(value)
    else:
        text = clean_text(value).removesuffix("星").removesuffix("级").strip()
        stars = _CHINESE_DIGITS[text] if text in _CHINESE_DIGITS else int(float(text))
        if text not in _CHINESE_DIGITS and not float(text).is_integer():
            raise ValueError(value)
    if not 1 <= stars <= 5:
        raise ValueError(value)
    return stars


def lookup_key(text: str) -> str:
    """How value words are compared: trimmed, ASCII case-insensitive."""
    return text.strip().casefold()
