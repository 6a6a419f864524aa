"""Bar charts laid out as numbers for the HTML template to draw as inline SVG: no script, no external file.

Every label stays text here; the template writes it with autoescape on, so a service or person named
`<script>` is shown, never run. Layout only: which bars, where, how high, what the axes say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 52, 40
MAX_BAR = 48  # a chart of two people is not two slabs a third of the page wide
MAX_LABELS = 12  # category labels under the axis; more would overlap, so every k-th is written
LABEL_CHARS = 16


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bar(_Model):
    x: float
    y: float
    width: float
    height: float
    series: int
    tip: str  # the <title> of the bar: category, series and value, for a hover and a screen reader


class Tick(_Model):
    x: float
    y: float
    text: str


class Legend(_Model):
    x: float
    y: float
    series: int
    name: str


class Chart(_Model):
    id: str
    title: str
    width: int
    height: int
    left: float
    right: float
    baseline: float
    bars: list[Bar]
    x_labels: list[Tick]
    y_labels: list[Tick]
    gridlines: list[float]
    legend: list[Legend]
    empty: bool


def nice_ceiling(value: float) -> float:
    """The top of the axis: 1, 2 or 5 times a power of ten, at or above the value (1 for nothing at all)."""
    if value <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1.0, 2.0, 5.0, 10.0) if step * power >= value)


def short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def bar_chart(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    value_text: Callable[[float], str],
    axis_text: Callable[[float], str] | None = None,
) -> Chart:
    """Grouped bars: one group per category, one bar per series in it; the y axis starts at zero."""
    axis_text = axis_text or value_text
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_h
    top = nice_ceiling(max((v for _, values in series for v in values), default=0.0))
    group_w = plot_w / max(len(categories), 1)
    bar_w = min(group_w * 0.8 / max(len(series), 1), MAX_BAR)
    # Each group's bars are centred in its slot, whatever the cap left of the slot.
    inset = (group_w - bar_w * len(series)) / 2
    bars = []
    for c, category in enumerate(categories):
        for s, (name, values) in enumerate(series):
            height = plot_h * values[c] / top
            bars.append(
                Bar(
                    x=round(LEFT + c * group_w + inset + s * bar_w, 2),
                    y=round(baseline - height, 2),
                    width=round(bar_w, 2),
                    height=round(height, 2),
                    series=s,
                    tip=f"{category}, {name}: {value_text(values[c])}",
                )
            )
    every = max(math.ceil(len(categories) / MAX_LABELS), 1)
    x_labels = [
        Tick(x=round(LEFT + (c + 0.5) * group_w, 2), y=baseline + 16, text=short(category))
        for c, category in enumerate(categories)
        if c % every == 0
    ]
    # A half-way line only where it reads as a whole number on a count axis (no "2.5 incidents").
    whole = axis_text is count_text
    fractions = (0.0, 0.5, 1.0) if not whole or (top / 2).is_integer() else (0.0, 1.0)
    y_labels = [Tick(x=LEFT - 6, y=round(baseline - plot_h * f + 4, 2), text=axis_text(top * f)) for f in fractions]
    legend = [Legend(x=LEFT + 150 * s, y=TOP - 14, series=s, name=name) for s, (name, _) in enumerate(series)]
    return Chart(
        id=chart_id,
        title=title,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        baseline=baseline,
        bars=bars,
        x_labels=x_labels,
        y_labels=y_labels,
        gridlines=[round(baseline - plot_h * f, 2) for f in fractions[1:]],
        legend=legend,
        empty=not categories,
    )


def duration_text(seconds: float | None) -> str:
    """45s, 4m 12s, 2h 03m, 3d 04h: short enough for a table cell, exact to the second below an hour."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def count_text(value: float) -> str:
    return f"{value:g}"


def duration_unit(longest_seconds: float) -> tuple[float, str]:
    """The unit a duration axis counts in, so its labels read 30 s or 20 min, not 0.5 min or 1200 s."""
    if longest_seconds < 120:
        return 1.0, "s"
    if longest_seconds < 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"
