"""Evaluating the triggers' PromQL against Prometheus, with prometheus-api-client.

The client is synchronous (requests): each query runs in a thread, with its own session, so the worker's
event loop never blocks. Its own retries are off, so every attempt is a Temporal attempt in the history.
The URL comes from the worker's environment (TOCSIN_PROMETHEUS_URL): it never enters a workflow input
or a history, and credentials in it are sent as basic auth, never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from temporalio import activity
from temporalio.exceptions import ApplicationError
from urllib3.util.retry import Retry

from tocsin.detection import (
    MAX_ERROR,
    MAX_VALUE,
    Evaluation,
    EvaluationRequest,
    SeriesSample,
    TriggerEvaluation,
    TriggerQuery,
    alertmanager_fingerprint,
    redact,
)

log = logging.getLogger("tocsin.detector")

# Queries in flight at once against one Prometheus.
CONCURRENCY = 4


class _Failure(Exception):
    def __init__(
        self, kind: Literal["bad_query", "unavailable"], message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind: Literal["bad_query", "unavailable"] = kind
        self.message = message
        self.retry_after = retry_after


class PrometheusActivities:
    def __init__(self, url: str | None) -> None:
        self._url: str | None = None
        self._auth: tuple[str, str] | None = None
        if url:
            parts = urlsplit(url.strip())
            if parts.username is not None:
                self._auth = (unquote(parts.username), unquote(parts.password or ""))
            self._url = redact(url.strip()).rstrip("/")

    @activity.defn(name="evaluate_triggers")
    async def evaluate(self, request: EvaluationRequest) -> Evaluation:
        """Each trigger's expr as an instant query. A query Prometheus refuses is that trigger's error and
        is not retried (it fails the same way until the policy changes); when Prometheus cannot answer any
        query at all, the activity fails and Temporal retries it."""
        if self._url is None:
            raise ApplicationError(
                "TOCSIN_PROMETHEUS_URL is not set on this worker", type="DetectorNotConfigured", non_retryable=True
            )
        gate = asyncio.Semaphore(CONCURRENCY)
        waits: list[float] = []

        async def one(query: TriggerQuery) -> TriggerEvaluation:
            async with gate:
                try:
                    raw = await asyncio.to_thread(self._query, query.expr, request.timeout_seconds)
                    return _series(query, raw, request.max_series)
                except _Failure as failure:
                    if failure.kind == "bad_query":
                        log.warning("trigger %s: Prometheus refused its expr: %s", query.id, failure.message)
                    if failure.retry_after is not None:
                        waits.append(failure.retry_after)
                    return TriggerEvaluation(error=failure.message[:MAX_ERROR], error_kind=failure.kind)

        at = datetime.now(UTC)
        results = await asyncio.gather(*(one(q) for q in request.queries))
        unavailable = [r for r in results if r.error_kind == "unavailable"]
        if unavailable and all(r.error is not None for r in results):
            # Nothing could be evaluated: Prometheus is down or unreachable. Temporal retries the activity,
            # after the wait Prometheus (or its proxy) asked for, if it asked.
            raise ApplicationError(
                f"Prometheus at {self._url} did not answer: {unavailable[0].error}",
                type="PrometheusUnavailable",
                next_retry_delay=timedelta(seconds=min(max(waits), 60)) if waits else None,
            )
        return Evaluation(at=at, triggers={q.id: r for q, r in zip(request.queries, results, strict=True)})

    def _query(self, expr: str, timeout: float) -> list[Any]:
        assert self._url is not None
        status: dict[str, Any] = {}

        def remember(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            status["code"] = response.status_code
            status["retry_after"] = response.headers.get("Retry-After")
            if response.status_code != 200:
                status["body"] = response.text[:4000]

        session = requests.Session()
        session.hooks["response"].append(remember)
        # No retries of its own (the default is 3, with backoff): Temporal decides, and each try is recorded.
        options: dict[str, Any] = {"auth": self._auth} if self._auth else {}
        client = PrometheusConnect(url=self._url, session=session, retry=Retry(total=0, read=False), **options)
        wait = math.ceil(timeout) + 2
        try:
            # `timeout` bounds the evaluation in Prometheus; the HTTP timeout bounds the wait for its answer.
            return list(client.custom_query(expr, params={"timeout": f"{timeout:g}"}, timeout=wait))
        except PrometheusApiClientException:
            code = int(status.get("code") or 0)
            if 400 <= code < 500 and code not in (408, 429):
                raise _Failure("bad_query", _prometheus_error(status.get("body", ""), code)) from None
            raise _Failure("unavailable", f"HTTP {code}", _seconds(status.get("retry_after"))) from None
        except requests.Timeout:
            raise _Failure("unavailable", f"no answer within {wait}s") from None
        except requests.JSONDecodeError:
            raise _Failure("bad_query", "the answer is not JSON: is the URL a Prometheus server?") from None
        except requests.RequestException as err:
            raise _Failure("unavailable", type(err).__name__) from None
        except (ValueError, KeyError, TypeError) as err:
            # A 200 that is not Prometheus' JSON: the URL points at something else.
            raise _Failure("bad_query", f"not a Prometheus API answer ({type(err).__name__})") from None
        finally:
            client.close()


def _prometheus_error(body: str, code: int) -> str:
    """Prometheus' own words (`{"status":"error","errorType":"bad_data","error":"..."}`) when it gave them."""
    try:
        answer = json.loads(body)
        message = f"{answer['errorType']}: {answer['error']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {code}"
    return f"HTTP {code} {message}"


def _seconds(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _series(query: TriggerQuery, raw: list[Any], max_series: int) -> TriggerEvaluation:
    """The answer as the alerts Prometheus would raise: `__name__` dropped, the trigger's labels set."""
    found: dict[str, SeriesSample] = {}
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("metric"), dict) and "value" in item):
            raise _Failure("bad_query", "the expr must return an instant vector")
        metric = {str(k): str(v) for k, v in item["metric"].items() if k != "__name__"}
        own = {k: v for k, v in metric.items() if k not in query.labels}
        value = item["value"][1] if isinstance(item["value"], list) and len(item["value"]) == 2 else ""
        fp = alertmanager_fingerprint({**own, **query.labels})
        found[fp] = SeriesSample(labels=own, value=str(value)[:MAX_VALUE])
    kept = sorted(found)[:max_series]
    return TriggerEvaluation(series={fp: found[fp] for fp in kept}, truncated=len(found) - len(kept))
