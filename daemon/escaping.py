"""Escaping of citizen and unit text for each message format, in one place.

Every value that reaches a message (a case summary, a unit or contact name, a case number) is data, never
markup: the renderer (daemon/pipeline/render.py) applies :func:`finalizer` to every ``{{ … }}`` of a
template, and the Markdown digest (daemon/reports/digest_render.py) calls :func:`markdown_text` on each
value it writes. The templates' own markup (``### <font color="warning">``, ``>`` quotes, ``**``) is
template text and stays as written. A template that means to insert markup from an expression marks it
``{{ … | safe }}`` (a :class:`markupsafe.Markup` passes through every format).

- ``md`` (WeCom, DingTalk): the characters that make Markdown or WeCom's tags (``< > [ ] ( ) * _ ` # | ~ !
  & \\``) become their full-width forms (＜ ＞ ［ ］ …), ``://`` becomes ``：//`` and ``www.`` becomes
  ``www．`` (no autolink), and line breaks become spaces (a value cannot start a heading or a quote).
  Backslash escapes are not used: WeCom's Markdown subset documents none, so a backslash may show or be
  ignored; full-width forms are inert in every renderer, read naturally in Chinese text and are idempotent
  (escaping twice, as a ``{% set %}`` block re-inserted does, changes nothing).
- ``html`` (e-mail): Jinja's autoescape (``&lt;script&gt;``).
- ``txt`` (SMS gateways' free text, console, the e-mail plain part, WeCom text): control characters other
  than line break and tab are removed, and the bidirectional overrides that can disguise text.
- SMS template parameters (:func:`sms_param`): no control characters and no line breaks at all (vendors
  reject them in a parameter); runs of white space become one space.

Pure functions; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

_FULL_WIDTH = str.maketrans({
    "\\": "＼", "`": "｀", "*": "＊", "_": "＿", "~": "～", "[": "［", "]": "］", "(": "（", ")": "）",
    "<": "＜", ">": "＞", "#": "＃", "|": "｜", "!": "！", "&": "＆",
})
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85\v\f]+")
_AUTOLINK = re.compile(r"://|(?i:\bwww)\.")
# C0 and C1 controls except tab and line feed, DEL, and the bidirectional embeddings/overrides/isolates
_CONTROL_KEEP_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_CONTROL_ALL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u2028\u2029]")
_SPACES = re.compile(r"\s+")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def markdown_text(value: Any) -> str:
    """``value`` as inert Markdown text: shown as written (in full-width forms), never a mention, link,
    heading, quote or emphasis. A :class:`markupsafe.Markup` value is trusted markup and passes unchanged."""
    if isinstance(value, Markup):
        return str(value)
    text = plain_text(value)
    text = _LINE_BREAKS.sub(" ", text).translate(_FULL_WIDTH)
    return _AUTOLINK.sub(lambda m: "：//" if m.group(0) == "://" else m.group(0)[:-1] + "．", text)


def html_text(value: Any) -> str:
    """``value`` escaped for HTML (``<`` → ``&lt;``); a :class:`markupsafe.Markup` passes unchanged."""
    return str(escape(plain_text(value) if not isinstance(value, Markup) else value))


def plain_text(value: Any) -> str:
    """``value`` for plain text: control characters (except line break and tab) and bidi overrides removed."""
    if isinstance(value, Markup):
        return str(value)
    return _CONTROL_KEEP_LINES.sub("", _text(value))


def sms_param(value: Any) -> str:
    """An SMS template parameter: no control characters or line breaks, white space runs as one space."""
    return _SPACES.sub(" ", _CONTROL_ALL.sub(" ", _text(value))).strip()


def finalizer(family: str) -> Callable[[Any], Any]:
    """The Jinja ``finalize`` of template family ``family`` (``txt``, ``md``, ``html``).

    ``html`` relies on autoescape for the escaping itself (so a ``{% set %}`` block, which autoescape
    returns as Markup, is not escaped twice) and removes control characters from plain strings only.
    """
    if family == "md":
        return markdown_text
    if family == "html":
        return lambda value: value if isinstance(value, Markup) else plain_text(value)
    if family == "txt":
        return plain_text
    raise ValueError(f"unknown message format {family!r}; valid: txt, md, html")
