"""Metrics evidence: each SLI of the policy's `postmortem.slis` as a Prometheus range query over the incident
window, each series reduced to its onset, peak and recovery against the SLI's objective.

Prometheus is asked the way Tocsin's detector and the runbooks' `verify` step ask it: prometheus-api-client,
its own retries off, one session per query in a thread (the worker's event loop never blocks), the URL from
the worker's environment (TOCSIN_PROMETHEUS_URL, or the file TOCSIN_PROMETHEUS_URL_FILE names) with any
credentials in it sent as basic auth and never shown. Each query's template is rendered with the incident's
labels. The raw matrices go to the artifact store (`<key>/metrics.json`); the result carries the summaries and
a few citable points per series (tocsin/postmortem/sources/series.py: `summarize`, `findings`).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from tocsin.detection import redact
from tocsin.detector import URL_VARIABLE, prometheus_url_from_env
from tocsin.policy.postmortem import Sli
from tocsin.policy.templating import TemplateError, render_template
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.models import GatherRequest, SeriesSummary, SourceResult
from tocsin.postmortem.sources.results import (
    DEFAULT_TIMEOUT,
    Finding,
    SourceFailure,
    artifact_path,
    clip,
    failed,
    number,
    skipped,
    template_labels,
)
from tocsin.postmortem.sources.series import Sample, findings, summarize

MAX_SERIES = 10  # series per SLI summarised, the worst first (a query should aggregate to one)
MAX_STORED_SERIES = 100  # series per SLI kept in the artifact
MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series: the step grows to stay below
CONCURRENCY = 4  # queries in flight at once against one Prometheus


Series = tuple[dict[str, str], list[Sample]]


class _Prometheus:
    """Range queries against one Prometheus; each call in its own thread with its own session."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url.strip())
        self.auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username is not None else None
        self.base = redact(url.strip()).rstrip("/")
        self.timeout = timeout

    def query_range(self, query: str, start: datetime, end: datetime, step: float) -> list[Series]:
        status: dict[str, Any] = {}

        def remember(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            status["code"] = response.status_code
            status["body"] = response.text[:2000] if response.status_code != 200 else ""

        session = requests.Session()
        session.hooks["response"].append(remember)
        options: dict[str, Any] = {"auth": self.auth} if self.auth else {}
        # No retries of its own: the activity's attempt is the retry, and a post-mortem can do without a source.
        client = PrometheusConnect(url=self.base, session=session, retry=Retry(total=0, read=False), **options)
        where = f"Prometheus at {self.base}"
        try:
            raw = client.custom_query_range(
                query,
                start_time=start,
                end_time=end,
                step=f"{step:g}",
                params={"timeout": f"{self.timeout:g}s"},
                timeout=self.timeout,  # type: ignore[arg-type]  # requests takes a float; the stub says int
            )
        except PrometheusApiClientException:
            code = int(status.get("code") or 0)
            raise SourceFailure(f"{where} answered {code}{_prometheus_error(status.get('body', ''))}") from None
        except requests.Timeout:
            raise SourceFailure(f"{where}: no answer within {self.timeout:g}s (timeout)") from None
        except requests.ConnectionError:
            raise SourceFailure(f"{where} unreachable (connection refused or failed)") from None
        except requests.JSONDecodeError:
            raise SourceFailure(f"{where}: the answer is not JSON (is the URL a Prometheus server?)") from None
        except requests.RequestException as err:
            raise SourceFailure(f"{where}: {type(err).__name__}") from None
        except (ValueError, KeyError, TypeError) as err:
            raise SourceFailure(f"{where}: not a Prometheus API answer ({type(err).__name__})") from None
        finally:
            client.close()
        return _matrix(raw, where)


def _prometheus_error(body: str) -> str:
    """Prometheus' own words (`{"status":"error","errorType":"bad_data","error":"..."}`) when it gave them."""
    try:
        answer = json.loads(body)
        return f": {answer['errorType']}: {str(answer['error'])[:300]}"
    except (ValueError, KeyError, TypeError):
        return ""


def _matrix(raw: Any, where: str) -> list[Series]:
    if not isinstance(raw, list):
        raise SourceFailure(f"{where}: not a range query answer (expected a matrix)")
    found: list[Series] = []
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("values"), list)):
            raise SourceFailure(f"{where}: not a range query answer (expected a matrix)")
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items() if k != "__name__"}
        samples: list[Sample] = []
        for point in item["values"]:
            try:
                at, value = point
                samples.append((datetime.fromtimestamp(float(at), UTC), float(value)))
            except (TypeError, ValueError, OverflowError):
                raise SourceFailure(f'{where}: a sample is not [time, "value"]') from None
        found.append((labels, samples))
    return found


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
        url = prometheus_url_from_env(env)
    except ValueError as err:
        return failed("metrics", str(err))
    if not url:
        return skipped("metrics", f"{URL_VARIABLE} is not set (nor {URL_VARIABLE}_FILE): no metrics gathered")
    if not request.settings.slis:
        return skipped("metrics", "the policy's postmortem.slis names no SLI: no metrics gathered")
    prometheus = _Prometheus(url, request_timeout)
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
                series = await asyncio.to_thread(prometheus.query_range, query, start, end, step)
            except SourceFailure as failure:
                return _Answer(name, sli, query, error=failure.reason)
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
