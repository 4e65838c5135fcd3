"""Small SVG charts rendered on the server: horizontal bars with intervals, and columns.

The SVG uses a fixed viewBox and scales to its container, so text stays
readable on a booth monitor and in print. Colours come from presentation
attributes, which static/css/results.css overrides by class. Every label is
escaped.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# Sizes in viewBox units. A chart of width WIDTH drawn 800 px wide shows 16 px
# text, so a wider card should get a larger width to keep the text size.
WIDTH = 800
FONT_SIZE = 16
# An estimate of the average character width of the sans-serif font, used to
# shorten labels that would not fit.
CHARACTER_WIDTH = 0.6 * FONT_SIZE
BAR_ROW_HEIGHT = 34
BAR_THICKNESS = 20
LABEL_WIDTH = 230
NOTE_WIDTH = 170
AXIS_HEIGHT = 30
COLUMN_CHART_HEIGHT = 260
MAX_X_LABELS = 6


@dataclass(frozen=True)
class Bar:
    """One bar. ``value``, ``low`` and ``high`` share the chart's scale; None draws no bar."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""
    highlight: bool = False


@dataclass(frozen=True)
class Column:
    label: str
    value: float


def percent_label(value: float) -> str:
    return f"{value * 100:.0f}%"


def nice_ceiling(value: float) -> float:
    """Return the smallest of 1, 2, 2.5 or 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * power * (1 + 1e-9):
            return factor * power
    return 10 * power


def bar_chart(
    bars: Sequence[Bar],
    *,
    description: str,
    max_value: float = 1.0,
    reference: float | None = None,
    reference_label: str = "",
    tick_format: Callable[[float], str] = percent_label,
    ticks: int = 4,
    width: int = WIDTH,
    label_width: int = LABEL_WIDTH,
) -> SafeString:
    """Return an SVG of horizontal bars with interval whiskers and an optional reference line.

    ``description`` becomes the accessible name. Values outside 0 to
    ``max_value`` are clipped to the plot, and labels are shortened to fit
    ``label_width``.
    """
    if max_value <= 0:
        raise ValueError(f"max_value must be positive, got {max_value}")
    if width <= label_width + NOTE_WIDTH:
        raise ValueError(f"width must exceed {label_width + NOTE_WIDTH}, got {width}")
    plot_left = label_width
    plot_width = width - label_width - NOTE_WIDTH
    top = FONT_SIZE + 8 if reference is not None else 8
    height = top + max(len(bars), 1) * BAR_ROW_HEIGHT + AXIS_HEIGHT

    def x(value: float) -> float:
        return plot_left + plot_width * min(max(value, 0.0), max_value) / max_value

    parts = [_svg_open(width, height, description, "chart chart-bars")]
    plot_bottom = top + max(len(bars), 1) * BAR_ROW_HEIGHT
    for index in range(ticks + 1):
        value = max_value * index / ticks
        parts.append(
            format_html(
                '<line class="chart-grid" x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" '
                'stroke="#d8d4ca" stroke-width="1"/>'
                '<text class="chart-tick" x="{x}" y="{text_y}" text-anchor="middle">{label}</text>',
                x=_number(x(value)),
                top=top,
                bottom=plot_bottom,
                text_y=plot_bottom + FONT_SIZE + 6,
                label=tick_format(value),
            )
        )
    if not bars:
        parts.append(
            format_html(
                '<text class="chart-empty" x="{x}" y="{y}" text-anchor="middle">{text}</text>',
                x=_number(plot_left + plot_width / 2),
                y=top + BAR_ROW_HEIGHT / 2 + FONT_SIZE / 3,
                text="–",
            )
        )
    for index, bar in enumerate(bars):
        parts.append(
            _bar(
                bar,
                top + index * BAR_ROW_HEIGHT,
                x,
                label_width=label_width,
                note_x=width - NOTE_WIDTH + 10,
            )
        )
    if reference is not None:
        parts.append(
            format_html(
                '<line class="chart-reference" x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" '
                'stroke="#1b1d21" stroke-width="2" stroke-dasharray="6 4"/>'
                '<text class="chart-reference-label" x="{x}" y="{label_y}" '
                'text-anchor="middle">{label}</text>',
                x=_number(x(reference)),
                top=top - 2,
                bottom=plot_bottom,
                label_y=FONT_SIZE,
                label=reference_label,
            )
        )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))


def _bar(
    bar: Bar,
    row_top: float,
    x: Callable[[float], float],
    *,
    label_width: float,
    note_x: float,
) -> SafeString:
    center = row_top + BAR_ROW_HEIGHT / 2
    text_y = center + FONT_SIZE / 3
    parts = [
        format_html(
            '<text class="chart-label" x="{x}" y="{y}" text-anchor="end">{label}</text>',
            x=label_width - 10,
            y=_number(text_y),
            label=_shorten(bar.label, int((label_width - 16) / CHARACTER_WIDTH)),
        )
    ]
    if bar.value is not None:
        bar_class = "chart-bar chart-bar-highlight" if bar.highlight else "chart-bar"
        fill = "#b3541e" if bar.highlight else "#1f4fbf"
        parts.append(
            format_html(
                '<rect class="{bar_class}" x="{x}" y="{y}" width="{width}" height="{height}" '
                'fill="{fill}"><title>{title}</title></rect>',
                bar_class=bar_class,
                x=label_width,
                y=_number(center - BAR_THICKNESS / 2),
                width=_number(x(bar.value) - label_width),
                height=BAR_THICKNESS,
                fill=fill,
                title=f"{bar.label}: {bar.note}" if bar.note else bar.label,
            )
        )
    if bar.low is not None and bar.high is not None:
        low, high = x(bar.low), x(bar.high)
        cap = BAR_THICKNESS / 2 + 3
        parts.append(
            format_html(
                '<path class="chart-interval" d="M{low} {center}H{high}'
                'M{low} {cap_top}V{cap_bottom}M{high} {cap_top}V{cap_bottom}" '
                'stroke="#1b1d21" stroke-width="2" fill="none"/>',
                low=_number(low),
                high=_number(high),
                center=_number(center),
                cap_top=_number(center - cap),
                cap_bottom=_number(center + cap),
            )
        )
    parts.append(
        format_html(
            '<text class="chart-note" x="{x}" y="{y}">{note}</text>',
            x=note_x,
            y=_number(text_y),
            note=bar.note,
        )
    )
    return mark_safe("".join(parts))


def column_chart(
    columns: Sequence[Column],
    *,
    description: str,
    tick_format: Callable[[float], str] = lambda value: f"{value:g}",
    ticks: int = 4,
    width: int = WIDTH,
) -> SafeString:
    """Return an SVG of vertical columns on a linear axis starting at 0.

    Column labels are drawn under at most MAX_X_LABELS evenly spaced columns.
    """
    plot_left = 60
    plot_right = width - 10
    plot_top = 10
    plot_bottom = COLUMN_CHART_HEIGHT - AXIS_HEIGHT
    peak = max((column.value for column in columns), default=0.0)
    top_value = nice_ceiling(peak)

    def y(value: float) -> float:
        return plot_bottom - (plot_bottom - plot_top) * max(value, 0.0) / top_value

    parts = [_svg_open(width, COLUMN_CHART_HEIGHT, description, "chart chart-columns")]
    for index in range(ticks + 1):
        value = top_value * index / ticks
        parts.append(
            format_html(
                '<line class="chart-grid" x1="{left}" y1="{y}" x2="{right}" y2="{y}" '
                'stroke="#d8d4ca" stroke-width="1"/>'
                '<text class="chart-tick" x="{text_x}" y="{text_y}" text-anchor="end">'
                "{label}</text>",
                left=plot_left,
                right=plot_right,
                y=_number(y(value)),
                text_x=plot_left - 8,
                text_y=_number(y(value) + FONT_SIZE / 3),
                label=tick_format(value),
            )
        )
    if columns:
        slot = (plot_right - plot_left) / len(columns)
        gap = min(4.0, slot * 0.2)
        label_every = max(1, math.ceil(len(columns) / MAX_X_LABELS))
        for index, column in enumerate(columns):
            left = plot_left + index * slot
            parts.append(
                format_html(
                    '<rect class="chart-column" x="{x}" y="{y}" width="{width}" height="{height}" '
                    'fill="#1f4fbf"><title>{title}</title></rect>',
                    x=_number(left + gap / 2),
                    y=_number(y(column.value)),
                    width=_number(slot - gap),
                    height=_number(plot_bottom - y(column.value)),
                    title=f"{column.label}: {tick_format(column.value)}",
                )
            )
            if index % label_every == 0:
                parts.append(
                    format_html(
                        '<text class="chart-tick" x="{x}" y="{y}" text-anchor="start">'
                        "{label}</text>",
                        x=_number(left + gap / 2),
                        y=plot_bottom + FONT_SIZE + 6,
                        label=column.label,
                    )
                )
    else:
        parts.append(
            format_html(
                '<text class="chart-empty" x="{x}" y="{y}" text-anchor="middle">–</text>',
                x=_number((plot_left + plot_right) / 2),
                y=_number((plot_top + plot_bottom) / 2),
            )
        )
    parts.append(
        format_html(
            '<line class="chart-axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" '
            'stroke="#1b1d21" stroke-width="2"/>',
            left=plot_left,
            right=plot_right,
            bottom=plot_bottom,
        )
    )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))


def _svg_open(width: int, height: float, description: str, css_class: str) -> SafeString:
    return format_html(
        '<svg class="{css_class}" viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
        'xmlns="http://www.w3.org/2000/svg" font-size="{font_size}" '
        'font-family="system-ui, sans-serif"><title>{label}</title>',
        css_class=css_class,
        width=width,
        height=_number(height),
        label=description,
        font_size=FONT_SIZE,
    )


def _number(value: float) -> str:
    """Format a coordinate with at most one decimal, which is finer than a pixel here."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _shorten(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
