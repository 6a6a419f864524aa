"""Median and 90th percentile, with the method stated (the report prints it beside the figures).

Median: the middle value, or the mean of the two middle values for an even count (statistics.median).
p90: nearest rank: the smallest value with at least 90% of the values at or below it, i.e. the
ceil(0.9 * n)-th smallest. It is always one of the measured durations, never an interpolation between two
incidents, which for the handful of incidents a service has in a month is the honest answer.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

MEDIAN_METHOD = "the middle value; the mean of the two middle values for an even count"
P90_METHOD = "nearest rank: the ceil(0.9 * n)-th smallest value (always a measured duration)"


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    # round() first: 0.9 * 10 is 9.000000000000002 in floating point, and ceil would make it 10.
    rank = math.ceil(round(0.9 * len(ordered), 9))
    return ordered[max(rank, 1) - 1]
