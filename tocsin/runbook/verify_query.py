"""The `verify` step's I/O half: one instant query through Tocsin's one Prometheus client (tocsin.prometheus: no
retries of its own, so every attempt is a Temporal attempt; the URL, perhaps with credentials, from
TOCSIN_PROMETHEUS_URL and never in a message). The pure half, deciding from the samples, is tocsin.runbook.verify.
"""

from __future__ import annotations

from tocsin.prometheus import DEFAULT_TIMEOUT, Prometheus, PrometheusError, Scalar
from tocsin.runbook.errors import PermanentRemediationError, RetryableRemediationError
from tocsin.runbook.verify import Sample


async def query_prometheus(url: str, query: str, query_timeout: float = DEFAULT_TIMEOUT) -> list[Sample]:
    """One instant query (tocsin.prometheus). RetryableRemediationError when Prometheus cannot answer now;
    Permanent when it refuses the query (4xx: it will refuse it again) or the answer is not an instant vector
    or a scalar."""
    try:
        answer = await Prometheus(url).instant(query, query_timeout=query_timeout)
    except PrometheusError as err:
        if err.retryable:
            raise RetryableRemediationError(str(err), "PrometheusUnavailable", err.retry_after) from None
        # A refusal names the query it refused: the step's timeline shows which condition to fix.
        raise PermanentRemediationError(f"`{query}`: {err}", "BadQuery") from None
    if isinstance(answer, Scalar):
        return [Sample(labels={}, value=answer.value)]
    return [Sample(labels=item.labels, value=item.value) for item in answer]
