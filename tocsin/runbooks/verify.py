"""The `verify` step: does a PromQL condition hold, and has it held long enough?

Two halves. The pure half, for the workflow: `evaluate` decides one answer (every series must meet the
condition; no series, or NaN, is no evidence), and `advance` turns a sequence of such checks into passed,
failed or pending (the condition must hold continuously for `for`, within `timeout`; it fails as soon as
that can no longer happen). The I/O half, for an activity: `query_prometheus` runs one instant query with
prometheus-api-client, the way tocsin's detector does (its own retries off, so every attempt is a Temporal
attempt; the URL, perhaps with credentials, from TOCSIN_PROMETHEUS_URL and never in a message).

The workflow's loop:  progress = VerifyProgress(started_at=now); until outcome != "pending":
samples = activity(query_prometheus); progress, outcome = advance(step, progress, evaluate(...), now);
sleep(step.interval).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from pydantic import BaseModel, ConfigDict
from urllib3.util.retry import Retry

from tocsin.detection import redact
from tocsin.runbooks.errors import PermanentRemediationError, RetryableRemediationError
from tocsin.runbooks.planned import PlannedVerify
from tocsin.runbooks.thresholds import parse_threshold

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


def query_prometheus_sync(url: str, query: str, timeout: float) -> list[Sample]:
    """One instant query. RetryableRemediationError when Prometheus cannot answer now; Permanent when it
    refuses the query (4xx: it will refuse it again) or the answer is not an instant vector or scalar."""
    parts = urlsplit(url.strip())
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username is not None else None
    base = redact(url.strip()).rstrip("/")
    status: dict[str, Any] = {}

    def remember(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        status["code"] = response.status_code
        status["retry_after"] = response.headers.get("Retry-After")
        status["body"] = response.text[:500] if response.status_code != 200 else ""

    session = requests.Session()
    session.hooks["response"].append(remember)
    options: dict[str, Any] = {"auth": auth} if auth else {}
    client = PrometheusConnect(url=base, session=session, retry=Retry(total=0, read=False), **options)
    wait = math.ceil(timeout) + 2
    try:
        raw = client.custom_query(query, params={"timeout": f"{timeout:g}"}, timeout=wait)
    except PrometheusApiClientException:
        code = int(status.get("code") or 0)
        body = " ".join(str(status.get("body", "")).split())[:300]
        message = f"Prometheus at {base} answered {code} to `{query}`" + (f": {body}" if body else "")
        if 400 <= code < 500 and code not in (408, 429):
            raise PermanentRemediationError(message, "BadQuery") from None
        delay = status.get("retry_after")
        retry_after = float(delay) if delay and str(delay).strip().isdigit() else None
        raise RetryableRemediationError(message, "PrometheusUnavailable", retry_after) from None
    except requests.Timeout:
        raise RetryableRemediationError(
            f"Prometheus at {base}: no answer within {wait}s", "PrometheusUnavailable"
        ) from None
    except requests.RequestException as err:
        raise RetryableRemediationError(
            f"Prometheus at {base}: {type(err).__name__}", "PrometheusUnavailable"
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise PermanentRemediationError(f"{base} is not a Prometheus API ({type(err).__name__})", "BadQuery") from None
    finally:
        client.close()
    return _samples(raw, query)


async def query_prometheus(url: str, query: str, query_timeout: float = 10.0) -> list[Sample]:
    """query_prometheus_sync in a thread: the worker's event loop never blocks on requests."""
    return await asyncio.to_thread(query_prometheus_sync, url, query, query_timeout)


def _samples(raw: Any, query: str) -> list[Sample]:
    if isinstance(raw, list) and len(raw) == 2 and not isinstance(raw[0], dict):  # a scalar: [time, "value"]
        return [Sample(labels={}, value=str(raw[1]))]
    if not isinstance(raw, list):
        raise PermanentRemediationError(f"`{query}` must return an instant vector or a scalar", "BadQuery")
    samples = []
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("value"), list) and len(item["value"]) == 2):
            raise PermanentRemediationError(f"`{query}` must return an instant vector or a scalar", "BadQuery")
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        samples.append(Sample(labels=labels, value=str(item["value"][1])))
    return samples
