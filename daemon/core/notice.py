"""Parse the State Council's holiday notice (国务院办公厅关于YYYY年部分节假日安排的通知) into rest days and
make-up working days, and check it.

The notice is a short, very regular text; every phrasing used since 2008 is read:

- items ``二、春节：…`` (numbered or not; several holidays in one item, ``六、中秋节、国庆节：``);
- ranges with ``至``, across months and years (``2018年12月30日至2019年1月1日``); a day without a month
  takes the month before it (``2月4日至10日``), a date without a year takes the notice's year;
- annotations in parentheses after a date, weekday (``星期六``, ``周六``) and lunar (``农历腊月二十八``); a
  weekday annotation is checked against the date;
- ``放假`` / ``放假调休`` / ``放假公休`` / ``补休`` / ``与周末连休`` make rest days; ``上班`` makes make-up days;
- ``共N天`` / ``放假N天``: the block's length, checked (a range without it is refused);
- sentences that only comment (``其中…``, ``鼓励…``, ``安排职工在除夕（2月9日）休息``) are not read for days.

Checks: every make-up day is a Saturday or Sunday, no day is both, rest and make-up days fall in the
notice's year or in the December before it (the 2019 notice moved 2018-12-29..31). A failure raises
:class:`NoticeError` carrying the sentence that failed. Pure: text in, :class:`Notice` out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta

WEEKDAY_ZH = "一二三四五六日"
_HOLIDAY = (r"(?:元旦|春节|清明节|清明|[“\"]?五一[”\"]?国际劳动节|国际劳动节|劳动节|[“\"]五一[”\"]"
            r"|端午节|端午|中秋节|中秋|国庆节|国庆|[“\"]十一[”\"])")
_ITEM = re.compile(rf"(?:[一二三四五六七八九十]+、)?({_HOLIDAY}(?:[、和]{_HOLIDAY})*):")
_DATE = re.compile(r"(?:(\d{4})年)?(?:(\d{1,2})月)?(\d{1,2})日(?:\(([^()]*)\))?")
_TOTAL = re.compile(r"(?:共|放假)(\d+)天")
_REST_WORDS = ("放假", "补休", "公休", "连休")
_RANGE = ("至", "到", "-", "—", "~")
_CLAUSE = re.compile(r",(?![^()]*\))")  # a comma outside parentheses
_COMMENT_WORDS = ("其中", "鼓励")
_TITLE_YEAR = re.compile(r"关于(\d{4})年(?:部分)?节假日安排")
_BODY_YEAR = re.compile(r"现将(\d{4})年")
_NUMBER = re.compile(r"国办发(?:明电)?[〔\[]\d{4}[〕\]]\d+号")


class NoticeError(ValueError):
    """The notice cannot be read or does not add up; ``sentence`` is the text that failed."""

    def __init__(self, message: str, sentence: str = "") -> None:
        super().__init__(f"{message}: 「{sentence}」" if sentence else message)
        self.reason = message
        self.sentence = sentence


@dataclass(frozen=True)
class NoticeBlock:
    """One item of the notice (二、春节：…): its rest days and make-up days."""

    name: str
    text: str
    rest_days: tuple[date, ...]
    makeup_days: tuple[date, ...]
    total: int | None  # the notice's 共N天, when given


@dataclass(frozen=True)
class Notice:
    year: int
    number: str | None  # e.g. 国办发明电〔2025〕7号
    blocks: tuple[NoticeBlock, ...]
    rest_days: dict[date, str] = field(default_factory=dict)
    makeup_days: dict[date, str] = field(default_factory=dict)


def decode_notice(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (which covers GBK and GB2312)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise NoticeError("the notice is neither UTF-8 nor GB18030 text")


def normalize(text: str) -> tuple[str, list[int]]:
    """Full-width digits and punctuation to ASCII (NFKC), whitespace removed (titles wrap mid-line); and for
    each character of the result, its index in ``text`` (to quote a failing sentence as the notice has it)."""
    chars: list[str] = []
    origin: list[int] = []
    for i, c in enumerate(text):
        for n in unicodedata.normalize("NFKC", c):
            if not n.isspace():
                chars.append(n)
                origin.append(i)
    return "".join(chars), origin


def parse_notice(text: str, year: int | None = None) -> Notice:
    """The notice's days. ``year`` overrides the year read from the title. Raises :class:`NoticeError`
    whose ``sentence`` is quoted from ``text`` as written."""
    flat, origin = normalize(text)
    try:
        return _parse_flat(flat, year)
    except NoticeError as exc:
        at = flat.find(exc.sentence) if exc.sentence else -1
        if at < 0:
            raise
        quoted = text[origin[at]:origin[at + len(exc.sentence) - 1] + 1]
        raise NoticeError(exc.reason, quoted) from None


def _parse_flat(flat: str, year: int | None) -> Notice:
    found = _TITLE_YEAR.search(flat) or _BODY_YEAR.search(flat)
    if year is None:
        if found is None:
            raise NoticeError("no year in the notice's title (关于YYYY年部分节假日安排的通知); pass --year")
        year = int(found.group(1))
    number_match = _NUMBER.search(flat)
    items = list(_ITEM.finditer(flat))
    if not items:
        raise NoticeError("no holiday item found (e.g. 二、春节：2月10日至17日放假调休，共8天。)")
    blocks: list[NoticeBlock] = []
    rest: dict[date, str] = {}
    makeup: dict[date, str] = {}
    for k, item in enumerate(items):
        end = items[k + 1].start() if k + 1 < len(items) else len(flat)
        name = re.sub(r"[“”\"]", "", item.group(1)).replace("和", "、")
        block = _parse_item(name, flat[item.end():end], year)
        for day in block.rest_days:
            _claim(day, rest, makeup, name, block.text)
            rest[day] = name
        for day in block.makeup_days:
            _claim(day, rest, makeup, name, block.text)
            makeup[day] = f"{name}调休上班"
        blocks.append(block)
    return Notice(year, number_match.group(0) if number_match else None, tuple(blocks), rest, makeup)


def _claim(day: date, rest: dict[date, str], makeup: dict[date, str], name: str, text: str) -> None:
    other = rest.get(day) or makeup.get(day)
    if other is not None:
        raise NoticeError(f"{day.isoformat()} is listed twice (already under {other})", f"{name}：{text}")


def _parse_item(name: str, body: str, year: int) -> NoticeBlock:
    rest: list[date] = []
    makeup: list[date] = []
    total: int | None = None
    # an item that names December of the previous year (2008: 2007年12月30日…) means it by a bare 12月 too
    december_year = year - 1 if f"{year - 1}年12月" in body else year
    last: date | None = None  # the item's last date: a bare 17日 takes its month
    for sentence in (s for s in body.split("。") if s):  # a ； stays inside its sentence (其中…；…)
        if not _DATE.search(sentence):
            continue
        if any(w in sentence for w in _COMMENT_WORDS):
            # commentary (其中…为法定节假日…, 鼓励…): only its own …上班 clauses give days (2007-2010 style)
            for clause in _CLAUSE.split(sentence):
                if clause.endswith("上班") and _DATE.search(clause):
                    days, _ = _sentence_days(clause, year, december_year, last)
                    makeup.extend(_weekends(days, clause))
            continue
        is_work, is_rest = "上班" in sentence, any(w in sentence for w in _REST_WORDS)
        if is_work == is_rest:
            if not is_work:
                continue  # a date in a sentence that neither rests nor works (e.g. the signature)
            raise NoticeError("a sentence both gives rest days and make-up days; split it", sentence)
        days, has_range = _sentence_days(sentence, year, december_year, last)
        last = days[-1] if days else last
        if is_work:
            makeup.extend(_weekends(days, sentence))
            continue
        counted = _TOTAL.search(sentence)
        if counted is not None:
            total = int(counted.group(1))
            if total != len(days):
                raise NoticeError(
                    f"the block says 共{total}天 but its dates give {len(days)} day(s) "
                    f"({_zh(days[0])} to {_zh(days[-1])})", sentence)
        elif has_range:
            raise NoticeError("a range of days (至) without its length 共N天", sentence)
        rest.extend(d for d in days if d not in rest)  # 10月4日、5日照常公休 restates days of the range
    _check_span(name, body, year, [*rest, *makeup])
    return NoticeBlock(name, body, tuple(rest), tuple(makeup), total)


def _weekends(days: list[date], sentence: str) -> list[date]:
    for day in days:
        if day.weekday() < 5:
            raise NoticeError(
                f"make-up working day {_zh(day)} is a 周{WEEKDAY_ZH[day.weekday()]}; "
                "make-up days (调休上班) are Saturdays or Sundays", sentence)
    return days


def _check_span(name: str, item_text: str, year: int, days: list[date]) -> None:
    if not days:
        raise NoticeError("the item gives no days", f"{name}：{item_text}")
    for day in days:
        if not (day.year == year or (day.year == year - 1 and day.month == 12)):
            raise NoticeError(
                f"{_zh(day)} is outside {year} and outside December {year - 1}, the only days a notice for "
                f"{year} may move", f"{name}：{item_text}")


def _sentence_days(
    sentence: str, year: int, december_year: int, context: date | None
) -> tuple[list[date], bool]:
    """The days a sentence names, ranges expanded, in order; and whether it had a range. A date without a
    year takes ``year`` (``december_year`` for a December), without a month the one before it."""
    days: list[date] = []
    has_range = False
    prev: date | None = None
    prev_explicit_year = False
    prev_end = 0
    for m in _DATE.finditer(sentence):
        between = sentence[prev_end:m.start()]
        explicit_year, month_text, day_text, note = m.groups()
        before = prev or context
        mo = int(month_text) if month_text else (before.month if before else 0)
        if explicit_year:
            y = int(explicit_year)
        elif before is not None and not month_text:
            y = before.year
        else:
            y = december_year if mo == 12 else year
        if not mo:
            raise NoticeError(f"{m.group(0)} has no month", sentence)
        try:
            day = date(y, mo, int(day_text))
        except ValueError:
            raise NoticeError(f"{y}年{mo}月{day_text}日 is not a date", sentence) from None
        if note:
            _check_weekday(day, note, sentence)
        if prev is not None and between in _RANGE:
            start = prev
            if start > day and not prev_explicit_year and start.replace(year=start.year - 1) <= day:
                start = start.replace(year=start.year - 1)  # 12月30日至2019年1月1日: the December before
                days[-1] = start
            if start > day:
                raise NoticeError(f"the range ends ({_zh(day)}) before it starts ({_zh(start)})", sentence)
            days.extend(start + timedelta(days=i) for i in range(1, (day - start).days + 1))
            has_range = True
        else:
            days.append(day)
        prev, prev_end, prev_explicit_year = day, m.end(), bool(explicit_year)
    return days, has_range


def _check_weekday(day: date, note: str, sentence: str) -> None:
    m = re.search(r"(?:星期|周)([一二三四五六日天])", note)
    if m is None:
        return
    said = "日" if m.group(1) == "天" else m.group(1)
    if WEEKDAY_ZH.index(said) != day.weekday():
        raise NoticeError(
            f"{_zh(day)} is a 周{WEEKDAY_ZH[day.weekday()]}, but the notice says {m.group(0)}", sentence)


def _zh(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def describe(notice: Notice) -> list[str]:
    """Chinese lines, one per item, for a person to compare with the notice."""
    lines = [f"{notice.year}年节假日安排{('（' + notice.number + '）') if notice.number else ''}："]
    for block in notice.blocks:
        rest = "、".join(f"{_zh(d)}（周{WEEKDAY_ZH[d.weekday()]}）" for d in block.rest_days)
        total = f"，共{len(block.rest_days)}天" if block.rest_days else ""
        lines.append(f"  {block.name}：放假 {rest or '无'}{total}")
        if block.makeup_days:
            work = "、".join(f"{_zh(d)}（周{WEEKDAY_ZH[d.weekday()]}）" for d in block.makeup_days)
            lines.append(f"  {block.name}：调休上班 {work}")
    return lines


def override_yaml(notice: Notice) -> str:
    """The override file (sla_rules/holidays/YYYY.yaml) for the notice, one line per day, as YAML text."""
    lines = [f"# Written by `hotline-sla calendar import-notice` from the State Council notice for {notice.year}.",
             f"year: {notice.year}"]
    if notice.number:
        lines.append(f"notice: {notice.number}")
    lines.append("rest_days:")
    lines.extend(f"  - {{date: {d.isoformat()}, name: {n}}}" for d, n in sorted(notice.rest_days.items()))
    lines.append("make_up_workdays:" + ("" if notice.makeup_days else " []"))
    lines.extend(f"  - {{date: {d.isoformat()}, name: {n}}}" for d, n in sorted(notice.makeup_days.items()))
    return "\n".join(lines) + "\n"
