"""Charts for printed reports as inline SVG: drawn here, no JavaScript, no external resources, every label
escaped. The bulletins' "案件比例" is a share chart; we draw shares as a pie with a legend and counts as
horizontal bars, in black, grey and one accent, so that they print legibly in black and white too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from markupsafe import escape

FONT = '"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "SimHei", sans-serif'
# distinguishable on screen and in grey print
PALETTE = ("#c00000", "#1f4e79", "#7f7f7f", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#404040")


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 13, bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{weight}>'
            f"{escape(text)}</text>")


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family=\'{FONT}\'><title>{escape(title)}</title>'
        + _text(width / 2, 20, title, anchor="middle", size=15, bold=True)
        + "".join(body) + "</svg>"
    )


def pie_chart(title: str, items: Sequence[tuple[str, int]], *, width: int = 640, radius: int = 110) -> str:
    """Shares of a whole (领域 of the month's cases): a pie, largest slice first from 12 o'clock, and a
    legend with count and percent. Items with 0 are left out; an empty chart says 无数据."""
    items = [(name, n) for name, n in items if n > 0]
    total = sum(n for _, n in items)
    height = max(2 * radius + 60, 40 + 22 * len(items) + 20)
    cx, cy = radius + 30, 40 + radius
    body: list[str] = []
    if not total:
        body.append(_text(width / 2, height / 2, "无数据", anchor="middle"))
        return _svg(width, height, title, body)
    angle = -math.pi / 2
    for i, (name, n) in enumerate(items):
        color = PALETTE[i % len(PALETTE)]
        if n == total:
            body.append(f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="{color}" stroke="#fff"/>')
        else:
            sweep = 2 * math.pi * n / total
            x1, y1 = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
            angle += sweep
            x2, y2 = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
            large = 1 if sweep > math.pi else 0
            body.append(f'<path d="M{cx},{cy} L{x1:.2f},{y1:.2f} A{radius},{radius} 0 {large} 1 {x2:.2f},{y2:.2f} Z" '
                        f'fill="{color}" stroke="#fff" stroke-width="1.5"><title>{escape(name)}</title></path>')
        ly = 48 + 22 * i
        lx = 2 * radius + 80
        share = (Decimal(n) * 100 / total).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        body.append(f'<rect x="{lx}" y="{ly - 11}" width="14" height="14" fill="{color}"/>')
        body.append(_text(lx + 22, ly, f"{name}  {n} 件  {share}%"))
    return _svg(width, height, title, body)


def bar_chart(title: str, items: Sequence[tuple[str, int]], *, width: int = 640, unit: str = "件") -> str:
    """Counts per name as horizontal bars, largest first (units by overdue cases); names are clipped to 14
    characters on the chart (the tables carry them whole)."""
    items = sorted(((name, n) for name, n in items if n > 0), key=lambda kv: (-kv[1], kv[0]))
    row, label_w = 24, 230
    height = 50 + row * max(1, len(items))
    body: list[str] = []
    if not items:
        body.append(_text(width / 2, 45, "无", anchor="middle"))
        return _svg(width, 70, title, body)
    top = max(n for _, n in items)
    span = width - label_w - 70
    for i, (name, n) in enumerate(items):
        y = 40 + row * i
        shown = name if len(name) <= 14 else name[:13] + "…"
        body.append(_text(label_w - 8, y + 15, shown, anchor="end"))
        length = max(2.0, span * n / top)
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" fill="{PALETTE[0]}">'
                    f"<title>{escape(name)}</title></rect>")
        body.append(_text(label_w + length + 6, y + 15, f"{n} {unit}"))
    return _svg(width, height, title, body)
