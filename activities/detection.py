"""Evaluating the triggers' PromQL against Prometheus, through Tocsin's one client (tocsin.prometheus).

Each attempt of the activity is one Temporal attempt in the history (the client does not retry). The URL
comes from the worker's environment (TOCSIN_PROMETHEUS_URL): it never enters a workflow input or a history,
and credentials in it are sent as basic auth, never logged.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from tocsin.detection.contracts import (
    MAX_ERROR,
    MAX_VALUE,
    Evaluation,
    EvaluationRequest,
    SeriesSample,
    TriggerEvaluation,
    TriggerQuery,
)
from tocsin.detection.evaluate import alertmanager_fingerprint
from tocsin.prometheus import URL_VARIABLE, Instant, Prometheus, PrometheusError, Scalar

log = logging.getLogger("tocsin.detection.schedule")

# Queries in flight at once against one Prometheus.
CONCURRENCY = 4


class DetectionActivities:
    def __init__(self, url: str | None) -> None:
        self._prometheus = Prometheus(url) if url else None

    @activity.defn(name="evaluate_triggers")
    async def evaluate(self, request: EvaluationRequest) -> Evaluation:
        """Each trigger's expr as an instant query. A query Prometheus refuses is that trigger's error and
        is not retried (it fails the same way until the policy changes); when Prometheus cannot answer any
        query at all, the activity fails and Temporal retries it."""
        prometheus = self._prometheus
        if prometheus is None:
            raise ApplicationError(
                f"{URL_VARIABLE} is not set on this worker", type="DetectorNotConfigured", non_retryable=True
            )
        gate = asyncio.Semaphore(CONCURRENCY)
        waits: list[float] = []

        async def one(query: TriggerQuery) -> TriggerEvaluation:
            async with gate:
                try:
                    answer = await prometheus.instant(query.expr, query_timeout=request.timeout_seconds)
                    result = _series(query, answer, request.max_series)
                except PrometheusError as failure:
                    if failure.retry_after is not None:
                        waits.append(failure.retry_after)
                    kind = "unavailable" if failure.retryable else "bad_query"
                    result = TriggerEvaluation(error=failure.problem[:MAX_ERROR], error_kind=kind)
            if result.error_kind == "bad_query":
                log.warning("trigger %s: Prometheus refused its expr: %s", query.id, result.error)
            return result

        at = datetime.now(UTC)
        results = await asyncio.gather(*(one(q) for q in request.queries))
        unavailable = [r for r in results if r.error_kind == "unavailable"]
        if unavailable and all(r.error is not None for r in results):
            # Nothing could be evaluated: Prometheus is down or unreachable. Temporal retries the activity,
            # after the wait Prometheus (or its proxy) asked for, if it asked.
            raise ApplicationError(
                f"{prometheus.where} did not answer: {unavailable[0].error}",
                type="PrometheusUnavailable",
                next_retry_delay=timedelta(seconds=min(max(waits), 60)) if waits else None,
            )
        return Evaluation(at=at, triggers={q.id: r for q, r in zip(request.queries, results, strict=True)})


def _series(query: TriggerQuery, answer: list[Instant] | Scalar, max_series: int) -> TriggerEvaluation:
    """The answer as the alerts Prometheus would raise: `__name__` dropped, the trigger's labels set."""
    if isinstance(answer, Scalar):
        # An alert is a series: a scalar has no labels to raise one with.
        return TriggerEvaluation(error="the expr must return an instant vector", error_kind="bad_query")
    found: dict[str, SeriesSample] = {}
    for item in answer:
        own = {k: v for k, v in item.labels.items() if k != "__name__" and k not in query.labels}
        fp = alertmanager_fingerprint({**own, **query.labels})
        found[fp] = SeriesSample(labels=own, value=item.value[:MAX_VALUE])
    kept = sorted(found)[:max_series]
    return TriggerEvaluation(series={fp: found[fp] for fp in kept}, truncated=len(found) - len(kept))
