"""The console's charts as inline SVG, drawn on the server (the Statistics page).

Each function returns one complete ``<svg>`` element that a page embeds as it is. It names
itself (``role="img"``, ``aria-label`` and ``<title>``), scales to the page's width (``viewBox``
with ``width="100%"``, down to a phone's), and carries no script, no external reference and no
``style`` attribute: the console's Content-Security-Policy (``style-src 'self'``) forbids inline
styles, so the stylesheet draws it through the classes ``chart``, ``bar``, ``bar-label``,
``bar-value`` and ``axis``. Every text is escaped. The numbers are written beside the bars, so
the figures are there for a reader who cannot tell lengths apart.

>>> svg = bar_chart("Success rate by type", [("echo", 0.975), ("resize", None)], fmt=percent)
>>> "97.5%" in svg, "—" in svg, "<script" in bar_chart("t", [("<script>", 1.0)])
(True, True, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup

WIDTH = 600
"""Of the ``viewBox``: the charts scale from it to the width of the page."""
NO_VALUE = "—"

# bar_chart: a label column, then the bars, then room for the value written after the longest bar
ROW, PAD, LABEL_CHARS, BAR_X, BAR_WIDTH = 24, 8, 28, 190, 320
# column_chart: the columns between the margins, the maximum above them, the x labels below
TOP, BOTTOM, LEFT, RIGHT, MAX_X_LABELS = 24, 184, 32, 568, 12


def number(x: float) -> str:
    """A figure as a reader wants it: no decimals on a whole number, else at most two.

    >>> number(12.0), number(3.5), number(0.254), number(1234.567)
    ('12', '3.5', '0.25', '1234.57')
    """
    if not math.isfinite(x):
        return str(x)
    if x == int(x):
        return str(int(x))
    return f"{x:.2f}".rstrip("0").rstrip(".")


def percent(x: float) -> str:
    """A fraction as a percentage with at most one decimal.

    >>> percent(0.975), percent(1.0), percent(0.0), percent(0.33333)
    ('97.5%', '100%', '0%', '33.3%')
    """
    text = f"{x * 100:.1f}"
    return (text.removesuffix(".0") if text.endswith(".0") else text) + "%"


def seconds(x: float) -> str:
    """A duration in the units that read best: milliseconds, seconds, minutes or hours.

    >>> seconds(0.85), seconds(12.34), seconds(245.0), seconds(7380.0), seconds(59.97)
    ('850 ms', '12.3 s', '4 m 05 s', '2 h 03 m', '1 m 00 s')
    """
    if x < 0.9995:
        return f"{round(x * 1000)} ms"
    if x < 59.95:
        return f"{x:.1f} s"
    whole = round(x)
    if whole < 3600:
        return f"{whole // 60} m {whole % 60:02d} s"
    minutes = round(x / 60)
    return f"{minutes // 60} h {minutes % 60:02d} m"


def _n(x: float) -> str:
    """A coordinate: two decimals at most, so the SVG stays short."""
    return number(round(x, 2))


def _svg(title: str, height: float, body: Sequence[Markup]) -> Markup:
    head = Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{}"'
        ' viewBox="0 0 {} {}" width="100%"><title>{}</title>'
    ).format(title, WIDTH, _n(height), title)
    return head + Markup("").join(body) + Markup("</svg>")


def _text(css: str, x: float, y: float, content: str, anchor: str = "start") -> Markup:
    # text-anchor is a presentation attribute, not a style: the CSP allows it, and a label stays
    # in place without the stylesheet
    middle = Markup("") if anchor == "start" else Markup(' text-anchor="{}"').format(anchor)
    return Markup('<text class="{}" x="{}" y="{}"{}>{}</text>').format(css, _n(x), _n(y), middle, content)


def _no_data(title: str) -> Markup:
    return _svg(title, 40, [_text("bar-label", PAD, 24, "no data")])


def _fit(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def bar_chart(
    title: str, bars: Sequence[tuple[str, float | None]], *, unit: str = "", fmt: Callable[[float], str] = number
) -> Markup:
    """Horizontal bars, one row per ``(label, value)``: the label on the left, the bar scaled to the
    largest value, the value written after it (``—`` and no bar for ``None``).

    >>> svg = bar_chart("p95 by queue", [("gpu", 90.0), ("cpu", 45.0)], fmt=seconds)
    >>> svg.count('class="bar"'), 'width="320"' in svg, 'width="160"' in svg, "1 m 30 s" in svg
    (2, True, True, True)
    """
    if not bars:
        return _no_data(title)
    values = [v if v is not None and math.isfinite(v) else None for _, v in bars]
    largest = max([v for v in values if v is not None and v > 0], default=0.0)
    suffix = f" {unit}" if unit else ""
    rows = []
    for index, ((label, _), value) in enumerate(zip(bars, values, strict=True)):
        text = NO_VALUE if value is None else fmt(value) + suffix
        width = BAR_WIDTH * max(value, 0.0) / largest if value is not None and largest else 0.0
        bar = Markup('<rect class="bar" x="{}" y="{}" width="{}" height="{}"/>')
        top, baseline = PAD + index * ROW, PAD + index * ROW + ROW / 2 + 4
        rows.append(
            Markup("<g><title>{}: {}</title>{}{}{}</g>").format(
                label,
                text,
                _text("bar-label", PAD, baseline, _fit(label)),
                Markup("") if value is None else bar.format(BAR_X, _n(top + 4), _n(width), ROW - 8),
                _text("bar-value", BAR_X + width + 6, baseline, text),
            )
        )
    return _svg(title, 2 * PAD + len(bars) * ROW, rows)


def column_chart(title: str, columns: Sequence[tuple[str, int | float]], *, unit: str = "") -> Markup:
    """Vertical columns over a series (tasks finished per hour), scaled to the largest value, which
    is written at the top of the y axis. Each column carries its label and value as a ``<title>``
    (shown on hover); at most about twelve x labels are written, evenly spaced.

    >>> svg = column_chart("Finished per hour", [(f"{h:02d}:00", h) for h in range(24)], unit="tasks")
    >>> svg.count('class="bar"'), svg.count('class="bar-label"'), "23 tasks" in svg
    (24, 12, True)
    """
    if not columns:
        return _no_data(title)
    largest = max((float(v) for _, v in columns), default=0.0)
    slot = (RIGHT - LEFT) / len(columns)
    step = math.ceil(len(columns) / MAX_X_LABELS)
    suffix = f" {unit}" if unit else ""
    body = [
        Markup('<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>').format(LEFT, TOP, LEFT, BOTTOM),
        Markup('<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>').format(LEFT, BOTTOM, RIGHT, BOTTOM),
        Markup('<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>').format(LEFT, TOP, RIGHT, TOP),
        _text("axis", LEFT, TOP - 6, number(largest) + suffix),
    ]
    for index, (label, value) in enumerate(columns):
        height = (BOTTOM - TOP) * max(float(value), 0.0) / largest if largest > 0 else 0.0
        x = LEFT + index * slot
        body.append(
            Markup('<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>').format(
                _n(x + slot * 0.1), _n(BOTTOM - height), _n(slot * 0.8), _n(height), label, number(value) + suffix
            )
        )
        if index % step == 0:
            body.append(_text("bar-label", x + slot / 2, BOTTOM + 16, label, anchor="middle"))
    return _svg(title, BOTTOM + 24, body)
