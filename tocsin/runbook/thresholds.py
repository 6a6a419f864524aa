"""A verify step's condition: a comparator and a threshold, `< 0.05`, `>= 99.5%`, `== 0`.

Parsed, never evaluated with eval(). A NaN sample meets no condition (it is not evidence of anything).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_SYNTAX = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class Threshold:
    op: str
    value: float

    def holds(self, sample: float) -> bool:
        if math.isnan(sample):
            return False
        return _OPS[self.op](sample, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


def parse_threshold(text: str) -> Threshold:
    """`< 0.05` -> Threshold('<', 0.05); a percentage is a fraction (`< 5%` is `< 0.05`)."""
    match = _SYNTAX.match(text)
    if not match:
        raise ValueError(
            f"condition {text!r} is not a comparator and a number, e.g. '< 0.05', '>= 99%' "
            f"(comparators: {', '.join(_OPS)})"
        )
    op, number, percent = match.groups()
    value = float(number) / 100 if percent else float(number)
    if not math.isfinite(value):
        raise ValueError(f"condition {text!r}: the threshold must be a finite number")
    return Threshold(op, value)


def normalise_threshold(text: str) -> str:
    """The condition as the plan and the timeline show it: `<0.05` and `< 5%` both become `< 0.05`."""
    return str(parse_threshold(text))
