"""Tocsin's one Prometheus client: where Prometheus is, and its HTTP API asked for an instant or a range.

Trigger evaluation (activities/detection.py), the runbooks' `verify` step (tocsin/runbook/verify.py) and the
post-mortem's SLIs (tocsin/postmortem/sources/metrics.py) all ask through `Prometheus`, so they find it, wait
for it and fail the same way:

- the URL is TOCSIN_PROMETHEUS_URL, or the first line of the file TOCSIN_PROMETHEUS_URL_FILE names (a URL with
  credentials kept as a secret). Credentials in it are sent as basic auth and never shown: every message names
  the URL without them (tocsin.addresses.redact);
- prometheus-api-client's own retries are off (its default is 3, with backoff), so each attempt is one
  Temporal attempt, recorded in the history;
- the library is synchronous (requests): each query runs in a thread with its own session, so the worker's
  event loop never blocks;
- every failure is a PrometheusError, retryable when Prometheus cannot answer now (5xx, 408, 429, no answer
  in time, no connection) and not when asking again gets the same answer (any other 4xx: it refused the
  query or the credentials; or what answered is not Prometheus' API). Each caller turns it into its own
  kind of error.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from tocsin.addresses import is_http_url, redact
from tocsin.secret_settings import file_setting, read_secret_file

# requests and prometheus-api-client are imported at the first query (`_ask`), not here: every CLI command
# reads the URL setting through this module, and importing them costs about 0.15 s (measured).
if TYPE_CHECKING:
    from prometheus_api_client.prometheus_connect import PrometheusConnect

URL_VARIABLE = "TOCSIN_PROMETHEUS_URL"
# Seconds Prometheus may spend evaluating one query; the HTTP wait is a little longer (see `_ask`).
DEFAULT_TIMEOUT = 10.0


def check_url(url: str, where: str = URL_VARIABLE) -> str:
    url = url.strip()
    if not is_http_url(url):
        raise ValueError(f"{where}: expected an http(s) URL such as http://127.0.0.1:9090, got {redact(url)!r}")
    return url


def prometheus_url_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """TOCSIN_PROMETHEUS_URL, or the first line of the file TOCSIN_PROMETHEUS_URL_FILE names (for a URL with
    credentials kept as a secret). Unset or empty: None, the detector is off."""
    env = os.environ if env is None else env
    # SecretSettingError is a ValueError, like check_url's: the caller reports either the same way.
    direct, file = file_setting(env, URL_VARIABLE)
    if file:
        lines = read_secret_file(file, f"{URL_VARIABLE}_FILE").strip().splitlines()
        direct = lines[0].strip() if lines else ""
        if not direct:
            raise ValueError(f"{URL_VARIABLE}_FILE: {file} is empty")
        return check_url(direct, f"{URL_VARIABLE}_FILE")
    return check_url(direct) if direct else None


@dataclass(frozen=True)
class Instant:
    """One series of an instant vector: its labels (`__name__` among them when it has one) and its value as
    Prometheus sent it ("0.012", "NaN", "+Inf")."""

    labels: dict[str, str]
    value: str


@dataclass(frozen=True)
class Scalar:
    """An instant query's answer that is one number (or string), without labels."""

    value: str


@dataclass(frozen=True)
class Series:
    """One series of a range query's matrix: its labels (`__name__` among them when it has one) and its
    points in time order (NaN where Prometheus sent NaN)."""

    labels: dict[str, str]
    points: list[tuple[datetime, float]]


class PrometheusError(Exception):
    """A query that got no usable answer. The message is `<where> <problem>`, e.g. "Prometheus at
    http://prom:9090 answered 400: bad_data: ...": never the URL's credentials."""

    def __init__(self, where: str, problem: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(f"{where} {problem}")
        self.problem = problem
        self.retryable = retryable
        # Seconds Prometheus (or its proxy) asked us to wait before the next attempt, when it asked.
        self.retry_after = retry_after


class Prometheus:
    """One Prometheus server's query API. `where` names it in messages, without credentials."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url.strip())
        self._auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username is not None else None
        self.base = redact(url.strip()).rstrip("/")
        self.where = f"Prometheus at {self.base}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Prometheus | None:
        """The Prometheus the worker's environment names; None when it names none. A malformed setting is a
        ValueError naming the variable, never its value."""
        url = prometheus_url_from_env(env)
        return cls(url) if url else None

    async def instant(
        self, query: str, at: datetime | None = None, *, query_timeout: float = DEFAULT_TIMEOUT
    ) -> list[Instant] | Scalar:
        """`query` evaluated at `at` (Prometheus' own now when None), Prometheus spending at most
        `query_timeout` seconds on it. A range vector (`up[5m]`) is a PrometheusError, not retryable."""
        params = {"timeout": f"{query_timeout:g}"}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"

        def ask() -> list[Instant] | Scalar:
            raw = self._ask(lambda client, wait: client.custom_query(query, params=params, timeout=wait), query_timeout)
            return self._instant(raw)

        return await asyncio.to_thread(ask)

    async def range(
        self, query: str, start: datetime, end: datetime, step: float, *, query_timeout: float = DEFAULT_TIMEOUT
    ) -> list[Series]:
        """`query` from `start` to `end` (whole seconds), a point every `step` seconds."""
        params = {"timeout": f"{query_timeout:g}"}

        def ask() -> list[Series]:
            raw = self._ask(
                lambda client, wait: client.custom_query_range(
                    query, start_time=start, end_time=end, step=f"{step:g}", params=params, timeout=wait
                ),
                query_timeout,
            )
            return self._matrix(raw)

        return await asyncio.to_thread(ask)

    def _ask(self, call: Callable[[PrometheusConnect, int], Any], query_timeout: float) -> Any:
        """`call` with a client of its own, the one place a library or HTTP failure becomes a PrometheusError."""
        import requests  # see the note on imports at the top
        from prometheus_api_client.exceptions import PrometheusApiClientException
        from prometheus_api_client.prometheus_connect import PrometheusConnect
        from urllib3.util.retry import Retry

        status: dict[str, Any] = {}

        def remember(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            # The library's exception says only "HTTP Status Code ...": keep what the answer itself said.
            status["code"] = response.status_code
            status["retry_after"] = response.headers.get("Retry-After")
            status["body"] = response.text[:4000] if response.status_code != 200 else ""

        session = requests.Session()
        session.hooks["response"].append(remember)
        options: dict[str, Any] = {"auth": self._auth} if self._auth else {}
        client = PrometheusConnect(url=self.base, session=session, retry=Retry(total=0, read=False), **options)
        # `query_timeout` bounds the evaluation in Prometheus; the HTTP wait, a little longer, bounds its answer.
        wait = math.ceil(query_timeout) + 2
        try:
            return call(client, wait)
        except PrometheusApiClientException:
            code = int(status.get("code") or 0)
            problem = f"answered {code}{_own_words(status.get('body', ''))}"
            if 400 <= code < 500 and code not in (408, 429):
                raise PrometheusError(self.where, problem, retryable=False) from None
            retry_after = _seconds(status.get("retry_after"))
            raise PrometheusError(self.where, problem, retryable=True, retry_after=retry_after) from None
        except requests.Timeout:
            raise PrometheusError(self.where, f"gave no answer within {wait}s", retryable=True) from None
        except requests.JSONDecodeError:
            problem = "answered with something that is not JSON (is the URL a Prometheus server?)"
            raise PrometheusError(self.where, problem, retryable=False) from None
        except requests.ConnectionError as err:
            # A plain refusal says what it is; a subclass (SSLError, ProxyError) is named, it is another fix.
            why = "connection refused or failed" if type(err) is requests.ConnectionError else type(err).__name__
            raise PrometheusError(self.where, f"unreachable ({why})", retryable=True) from None
        except requests.RequestException as err:
            raise PrometheusError(self.where, f"could not be asked ({type(err).__name__})", retryable=True) from None
        except (ValueError, KeyError, TypeError) as err:
            # JSON, but not Prometheus' `{"data": {"result": ...}}`: the URL points at something else.
            raise self._not_the_api(type(err).__name__) from None
        finally:
            client.close()

    def _instant(self, raw: Any) -> list[Instant] | Scalar:
        if isinstance(raw, list) and len(raw) == 2 and not isinstance(raw[0], dict):  # a scalar: [time, "value"]
            return Scalar(value=str(raw[1]))
        if not isinstance(raw, list):
            raise self._not_the_api("no result list")
        found: list[Instant] = []
        for item in raw:
            if isinstance(item, dict) and "values" in item:
                problem = "answered a range vector: an instant query must return an instant vector or a scalar"
                raise PrometheusError(self.where, problem, retryable=False)
            if not (isinstance(item, dict) and isinstance(item.get("value"), list) and len(item["value"]) == 2):
                raise self._not_the_api("expected an instant vector")
            labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            found.append(Instant(labels=labels, value=str(item["value"][1])))
        return found

    def _matrix(self, raw: Any) -> list[Series]:
        if not isinstance(raw, list):
            raise self._not_the_api("no result list")
        found: list[Series] = []
        for item in raw:
            if not (isinstance(item, dict) and isinstance(item.get("values"), list)):
                raise self._not_the_api("expected a matrix")
            labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            points: list[tuple[datetime, float]] = []
            for point in item["values"]:
                try:
                    at, value = point
                    points.append((datetime.fromtimestamp(float(at), UTC), float(value)))
                except (TypeError, ValueError, OverflowError):
                    raise self._not_the_api('a sample is not [time, "value"]') from None
            found.append(Series(labels=labels, points=points))
        return found

    def _not_the_api(self, why: str) -> PrometheusError:
        return PrometheusError(self.where, f"answered with something that is not its API ({why})", retryable=False)


def _own_words(body: str) -> str:
    """Prometheus' own words (`{"status":"error","errorType":"bad_data","error":"..."}`) when it gave them."""
    try:
        answer = json.loads(body)
        return f": {answer['errorType']}: {str(answer['error'])[:300]}"
    except (ValueError, KeyError, TypeError):
        return ""


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds; its HTTP-date form counts as not given (Temporal's own backoff applies)."""
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
