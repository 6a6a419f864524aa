"""The `verify` step: does a PromQL condition hold, and has it held long enough?

Two halves. The pure half, for the workflow: `evaluate` decides one answer (every series must meet the
condition; no series, or NaN, is no evidence), and `advance` turns a sequence of such checks into passed,
failed or pending (the condition must hold continuously for `for`, within `timeout`; it fails as soon as
that can no longer happen). The I/O half, for an activity, is tocsin.runbook.verify_query.

The workflow's loop:  progress = VerifyProgress(started_at=now); until outcome != "pending":
samples = activity(query_prometheus); progress, outcome = advance(step, progress, evaluate(...), now);
sleep(step.interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tocsin.runbook.plan_contracts import PlannedVerify
from tocsin.runbook.thresholds import parse_threshold

VerifyOutcome = Literal["passed", "failed", "pending"]
_SHOWN = 5  # series named in a check's detail


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sample(_Model):
    labels: dict[str, str]
    value: str  # as Prometheus sends it: "0.012", "NaN", "+Inf"

    def number(self) -> float:
        try:
            return float(self.value)
        except ValueError:
            return math.nan


class VerifyCheck(_Model):
    held: bool
    detail: str


class VerifyProgress(_Model):
    started_at: datetime
    held_since: datetime | None = None
    checks: int = 0
    last: str = ""


def _series(sample: Sample) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) or "value"


def evaluate(condition: str, samples: Sequence[Sample], no_data: Literal["fail", "pass"] = "fail") -> VerifyCheck:
    """Whether one answer meets `condition` ('< 0.05'): every series must; none at all is `no_data`."""
    threshold = parse_threshold(condition)
    if not samples:
        return VerifyCheck(
            held=no_data == "pass", detail=f"no data ({'counts as held' if no_data == 'pass' else 'not held'})"
        )
    failing = [s for s in samples if not threshold.holds(s.number())]
    shown = failing or list(samples)
    parts = [f"{_series(s)}: {s.value}" for s in shown[:_SHOWN]]
    more = f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
    verdict = f"not {threshold}" if failing else str(threshold)
    return VerifyCheck(held=not failing, detail=f"{'; '.join(parts)}{more} ({verdict})")


def advance(
    step: PlannedVerify, progress: VerifyProgress, check: VerifyCheck, at: datetime
) -> tuple[VerifyProgress, VerifyOutcome]:
    """The progress after one more check at `at`, and whether the step has passed, failed or goes on."""
    held_since = (progress.held_since or at) if check.held else None
    updated = progress.model_copy(
        update={"held_since": held_since, "checks": progress.checks + 1, "last": check.detail}
    )
    deadline = progress.started_at + step.timeout
    if held_since is not None and at - held_since >= step.hold_for:
        return updated, "passed"
    # The earliest moment it could pass: it must (go on) hold for the whole of `for`.
    earliest = (held_since or at) + step.hold_for
    if at >= deadline or earliest > deadline:
        return updated, "failed"
    return updated, "pending"
