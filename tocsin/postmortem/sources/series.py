"""One metric series against its SLI's objective: `summarize` finds its onset, peak and recovery, `findings`
turns them into citable one-line facts ("error_rate rose above 0.01 at 14:02Z (0.034)"). Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from tocsin.postmortem.contracts import SeriesSummary
from tocsin.postmortem.sources.results import Finding, clock

Side = Literal["higher", "lower"]
Sample = tuple[datetime, float]


def summarize(
    name: str, samples: Sequence[Sample], objective: float, worse_is: Side, *, labels: str = ""
) -> SeriesSummary:
    """Onset: the first sample past the objective. Peak: the worst value (highest, or lowest when lower is
    worse) and when it was first seen. Recovery: the first sample back within the objective after the onset
    from which every later sample stayed within; none when the series ends outside. NaN samples are gaps."""
    points = sorted((at, v) for at, v in samples if not math.isnan(v))
    summary = SeriesSummary(name=name, labels=labels, worse_is=worse_is)
    if not points:
        return summary
    sign = 1.0 if worse_is == "higher" else -1.0
    peak_at, peak = points[0]
    for at, value in points:
        if sign * value > sign * peak:
            peak_at, peak = at, value
    summary.peak_at, summary.peak = peak_at, peak
    bad = [i for i, (_, value) in enumerate(points) if sign * value > sign * objective]
    if not bad:
        return summary
    summary.onset = points[bad[0]][0]
    if bad[-1] + 1 < len(points):
        summary.recovery = points[bad[-1] + 1][0]
    return summary


def _number(value: float) -> str:
    return f"{value:.4g}"


def findings(summary: SeriesSummary, samples: Sequence[Sample], objective: float, link: str) -> list[Finding]:
    """The citable points of one summarised series: its onset, peak and recovery, or that it never recovered,
    or that it never left its objective."""
    values = {at: value for at, value in samples if not math.isnan(value)}
    if summary.peak is None or summary.peak_at is None or not values:
        return []
    name = f"{summary.name}{{{summary.labels}}}" if summary.labels else summary.name
    higher = summary.worse_is == "higher"
    limit, peak = _number(objective), _number(summary.peak)
    if summary.onset is None:
        text = f"{name} stayed within {limit} (worst {peak} at {clock(summary.peak_at)})"
        return [Finding(summary.peak_at, text, link)]
    crossed = "rose above" if higher else "fell below"
    onset = f"{name} {crossed} {limit} at {clock(summary.onset)}"
    if summary.onset == summary.peak_at:
        found = [Finding(summary.onset, f"{onset} ({peak}, its peak)", link)]
    else:
        worst = "peaked at" if higher else "bottomed at"
        found = [
            Finding(summary.onset, f"{onset} ({_number(values[summary.onset])})", link),
            Finding(summary.peak_at, f"{name} {worst} {peak} at {clock(summary.peak_at)} (objective {limit})", link),
        ]
    if summary.recovery is not None:
        back = f"{name} back within {limit} at {clock(summary.recovery)} ({_number(values[summary.recovery])})"
        found.append(Finding(summary.recovery, back, link))
    else:
        end = max(values)
        side = "above" if higher else "below"
        text = f"{name} still {side} {limit} at the end of the window ({clock(end)}: {_number(values[end])})"
        found.append(Finding(end, text, link))
    return found
