"""Metrics evidence: each SLI of the policy's `postmortem.slis` as a Prometheus range query over the incident
window, each series reduced to its onset, peak and recovery against the SLI's objective.

Prometheus is asked through Tocsin's one client (tocsin.prometheus), as the detector and the runbooks'
`verify` step ask it: the URL from the worker's environment (TOCSIN_PROMETHEUS_URL, or the file
TOCSIN_PROMETHEUS_URL_FILE names) with any credentials in it sent as basic auth and never shown. Each query's
template is rendered with the incident's labels. The raw matrices go to the artifact store
(`<key>/metrics.json`); the result carries the summaries and a few citable points per series
(tocsin/postmortem/sources/series.py: `summarize`, `findings`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tocsin.policy.postmortem import Sli
from tocsin.policy.templating import TemplateError, render_template
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import GatherRequest, SeriesSummary, SourceResult
from tocsin.postmortem.sources.results import (
    DEFAULT_TIMEOUT,
    Finding,
    artifact_path,
    clip,
    failed,
    number,
    skipped,
    template_labels,
)
from tocsin.postmortem.sources.series import Sample, findings, summarize
from tocsin.prometheus import URL_VARIABLE, Prometheus, PrometheusError

MAX_SERIES = 10  # series per SLI summarised, the worst first (a query should aggregate to one)
MAX_STORED_SERIES = 100  # series per SLI kept in the artifact
MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series: the step grows to stay below
CONCURRENCY = 4  # queries in flight at once against one Prometheus


Series = tuple[dict[str, str], list[Sample]]


def _labels(labels: Mapping[str, str]) -> str:
    return clip(",".join(f'{k}="{v}"' for k, v in sorted(labels.items())), 120)


def _step_seconds(request: GatherRequest) -> float:
    start, end = request.window
    span = max((end - start).total_seconds(), 0.0)
    return max(request.settings.step.total_seconds(), 1.0, math.ceil(span / MAX_POINTS))


@dataclass
class _Answer:
    name: str
    sli: Sli
    query: str
    series: list[Series] = field(default_factory=list)
    error: str = ""

    def record(self) -> dict[str, Any]:
        """For the artifact: the query and its raw series (non-finite values as text, JSON has no NaN)."""
        kept = [
            {"metric": labels, "values": [[at.timestamp(), v if math.isfinite(v) else str(v)] for at, v in samples]}
            for labels, samples in self.series[:MAX_STORED_SERIES]
        ]
        fields = {"name": self.name, "query": self.query, "objective": self.sli.objective, "error": self.error or None}
        return {**fields, "worse_is": self.sli.worse_is, "series_total": len(self.series), "series": kept}


def _severity(summary: SeriesSummary) -> tuple[bool, float]:
    """Sort key, worst first: series that left the objective, then by how bad their peak was."""
    peak = summary.peak if summary.peak is not None else 0.0
    return (summary.onset is None, -peak if summary.worse_is == "higher" else peak)


async def gather_metrics(
    request: GatherRequest,
    store: ArtifactStore,
    env: Mapping[str, str] | None = None,
    *,
    request_timeout: float = DEFAULT_TIMEOUT,
) -> SourceResult:
    """Each SLI's query over the incident window: SeriesSummaries, their onset/peak/recovery as evidence, and
    the raw series in `<key>/metrics.json`. Skipped without a Prometheus URL or without SLIs; failed when no
    SLI could be asked (the reason says why); ok, naming the SLIs that failed, when some could."""
    try:
        prometheus = Prometheus.from_env(env)
    except ValueError as err:
        return failed("metrics", str(err))
    if prometheus is None:
        return skipped("metrics", f"{URL_VARIABLE} is not set (nor {URL_VARIABLE}_FILE): no metrics gathered")
    if not request.settings.slis:
        return skipped("metrics", "the policy's postmortem.slis names no SLI: no metrics gathered")
    start, end = request.window
    step = _step_seconds(request)
    labels = template_labels(request)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def ask(name: str, sli: Sli) -> _Answer:
        try:
            query = render_template(sli.query, labels)
        except TemplateError as err:
            return _Answer(name, sli, sli.query, error=str(err))
        async with gate:
            try:
                found = await prometheus.range(query, start, end, step, query_timeout=request_timeout)
            except PrometheusError as err:
                return _Answer(name, sli, query, error=str(err))
        series = [({k: v for k, v in s.labels.items() if k != "__name__"}, s.points) for s in found]
        return _Answer(name, sli, query, series=series)

    answers = await asyncio.gather(*(ask(name, sli) for name, sli in request.settings.slis.items()))
    errors = [f"{a.name}: {a.error}" for a in answers if a.error]
    if len(errors) == len(answers):
        distinct = {a.error for a in answers}
        return failed("metrics", answers[0].error if len(distinct) == 1 else "; ".join(errors))

    summaries: list[SeriesSummary] = []
    found: list[Finding] = []
    for answer in answers:
        if answer.error:
            continue
        if not answer.series:
            found.append(Finding(None, f"{answer.name}: Prometheus returned no data for the window", answer.query))
            continue
        summarised = [
            (summarize(answer.name, samples, answer.sli.objective, answer.sli.worse_is, labels=_labels(s)), samples)
            for s, samples in answer.series
        ]
        summarised.sort(key=lambda pair: _severity(pair[0]))
        for summary, samples in summarised[:MAX_SERIES]:
            summaries.append(summary)
            found.extend(findings(summary, samples, answer.sli.objective, answer.query))

    window = {"start": start.isoformat(), "end": end.isoformat(), "step_seconds": step}
    raw = {"window": window, "slis": [answer.record() for answer in answers]}
    ref = await asyncio.to_thread(store.write_json, artifact_path(request.key, "metrics"), raw)
    return SourceResult(
        source="metrics",
        status="ok",
        reason="; ".join(errors),
        evidence=number("metrics", found),
        series=summaries,
        artifact=ref,
    )


__all__ = ["findings", "gather_metrics", "summarize"]
