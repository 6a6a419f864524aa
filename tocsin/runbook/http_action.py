"""The `http` step: one request to an admin endpoint, with secrets read from the environment as it is sent.

The plan holds names only: `${TOCSIN_DB_ADMIN_URL}` at the start of the URL and `{secret: NAME}` header values
are read here, from `NAME` or the file `NAME_FILE` names (tocsin.channels.vendor_settings.setting), each time the step
runs. Nothing read here goes into a result or an error: messages show the URL as the plan wrote it, and
an answer's text is shown with every secret value (and the base URL) replaced by `[redacted]`.

The destination is checked before anything is sent (tocsin.runbook.egress): a loopback, link-local or cloud
metadata address is refused unless the step allows it, and the request goes to the address that was checked.

Outcome: a status in `expect` (any 2xx when it is empty) is success; 408, 429 and 5xx are retryable (after
Retry-After when given), as are timeouts and refused connections; anything else is permanent. A 404 is a
success only when the step expects it (a compensation's DELETE of something already gone, say).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import httpx
from pydantic import BaseModel, ConfigDict

from tocsin.channels import _http
from tocsin.channels.base import DeliveryError
from tocsin.channels.vendor_settings import http_url, redact, setting
from tocsin.runbook.egress import Resolver, checked_destination
from tocsin.runbook.errors import PermanentRemediationError, RetryableRemediationError
from tocsin.runbook.plan_contracts import PlannedHttp
from tocsin.runbook.steps import SecretRef

ANSWER_EXCERPT = 500


class HttpResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int
    # The start of the answer, secrets redacted: for the timeline.
    answer: str = ""


class _Resolved:
    def __init__(self, step: PlannedHttp, env: Mapping[str, str]) -> None:
        self.secrets: list[str] = []
        self.url = self._url(step, env)
        self.headers: dict[str, str] = {}
        for name, value in step.headers.items():
            if isinstance(value, SecretRef):
                secret = self._setting(env, value.secret, f"header {name}")
                self.secrets.append(secret)
                value = value.prefix + secret
            if "\r" in value or "\n" in value:
                raise PermanentRemediationError(f"{step.name}: header {name} contains a line break", "Invalid")
            self.headers[name] = value

    def _setting(self, env: Mapping[str, str], name: str, used_for: str) -> str:
        try:
            value = setting(env, name)
        except DeliveryError as err:
            raise PermanentRemediationError(str(err), "NotConfigured") from None
        if not value:
            message = f"{name} is not set on this worker (needed for {used_for})"
            raise PermanentRemediationError(message, "NotConfigured")
        return value

    def _url(self, step: PlannedHttp, env: Mapping[str, str]) -> str:
        name = step.base_setting
        if name is None:
            return step.url
        rest = step.url[len(name) + 3 :]  # after "${NAME}"
        base = self._setting(env, name, f"the URL of step {step.name}")
        self.secrets.append(base)
        try:
            http_url(base, name)
        except DeliveryError as err:
            raise PermanentRemediationError(str(err), "NotConfigured") from None
        return base.rstrip("/") + rest


async def execute_http(
    step: PlannedHttp,
    *,
    env: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    request_timeout: float | None = None,
    resolver: Resolver | None = None,
) -> HttpResult:
    """Send the step's request; HttpResult on an expected status, else Permanent/RetryableRemediationError.

    `idempotency_key` (stable across an activity's attempts, e.g. "<workflow id>/<step name>") is sent as
    `Idempotency-Key`, so an endpoint that honours it applies a retried POST once. `request_timeout` (seconds)
    defaults to the step's own timeout."""
    resolved = _Resolved(step, os.environ if env is None else env)
    shown = f"{step.method} {step.url}"
    destination = await checked_destination(
        resolved.url,
        shown,
        allow_loopback=step.allow_loopback,
        allow_link_local=step.allow_link_local,
        resolver=resolver,
    )
    headers = {"User-Agent": "tocsin", **resolved.headers, **destination.headers}
    if idempotency_key:
        headers.setdefault("Idempotency-Key", idempotency_key)
    content: str | None = None
    if step.text_body is not None:
        content = step.text_body
        if not any(h.lower() == "content-type" for h in headers):
            headers["Content-Type"] = "text/plain; charset=utf-8"
    seconds = request_timeout if request_timeout is not None else step.timeout.total_seconds()
    started = time.monotonic()
    try:
        async with _http.client("", transport=transport, timeout=seconds) as http:
            response = await http.request(
                step.method,
                destination.url,
                headers=headers,
                json=step.json_body,
                content=content,
                extensions=destination.extensions,
            )
    except httpx.TimeoutException:
        elapsed = time.monotonic() - started
        raise RetryableRemediationError(f"{shown}: no answer within {elapsed:.1f}s", "EndpointUnavailable") from None
    except httpx.TransportError as err:
        raise RetryableRemediationError(f"{shown}: unreachable ({type(err).__name__})", "EndpointUnavailable") from None
    answer = redact(" ".join(response.text.split())[:ANSWER_EXCERPT], *resolved.secrets)
    code = response.status_code
    if code in step.expect or (not step.expect and response.is_success):
        return HttpResult(status=code, answer=answer)
    expected = "/".join(str(c) for c in step.expect) or "2xx"
    message = f"{shown} answered {code}, expected {expected}" + (f": {answer}" if answer else "")
    if code in (408, 429) or code >= 500:
        raise RetryableRemediationError(message, "EndpointUnavailable", _http.retry_after(response))
    raise PermanentRemediationError(message, "EndpointRefused")
