"""The `http` step against a loopback admin endpoint: expected statuses, what is permanent and what retries,
secrets that are sent but never shown, and the addresses a step may not reach unless its policy allows them.

The endpoint is on 127.0.0.1, so the steps here allow loopback (`allow_loopback`), as a policy step must."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.paths import ROOT
from tests.support.vendor_server import Reply, VendorServer
from tocsin.policy.loader import load_policy
from tocsin.runbook.egress import Resolver
from tocsin.runbook.errors import PermanentRemediationError, RetryableRemediationError
from tocsin.runbook.http_action import execute_http
from tocsin.runbook.plan_contracts import PlannedHttp
from tocsin.runbook.planner import plan_from_policy
from tocsin.runbook.steps import SecretRef

SECRET = "s3cret-admin-token"


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


def _step(**overrides: object) -> PlannedHttp:
    fields: dict[str, object] = {
        "name": "enable_read_replicas",
        "timeout": timedelta(seconds=5),
        "method": "POST",
        "url": "${TOCSIN_DB_ADMIN_URL}/databases/orders/read-replicas",
        "headers": {"Authorization": SecretRef(secret="TOCSIN_DB_ADMIN_TOKEN", prefix="Bearer "), "X-Team": "sre"},
        "json_body": {"enabled": True},
        "expect": [200, 204],
        "allow_loopback": True,
    }
    return PlannedHttp.model_validate({**fields, **overrides})


def _env(server: VendorServer) -> dict[str, str]:
    return {"TOCSIN_DB_ADMIN_URL": server.url + "/admin/", "TOCSIN_DB_ADMIN_TOKEN": SECRET}


async def test_sends_the_request_with_its_secret_header(server: VendorServer) -> None:
    server.on("POST", "/admin/databases/orders/read-replicas", Reply(204))
    result = await execute_http(_step(), env=_env(server), idempotency_key="runbook-k-1/enable_read_replicas")
    assert result.status == 204
    [request] = server.requests
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.headers["x-team"] == "sre"
    assert request.headers["idempotency-key"] == "runbook-k-1/enable_read_replicas"
    assert request.json == {"enabled": True}
    assert SECRET not in result.model_dump_json()


async def test_secrets_and_base_url_can_come_from_files(tmp_path: Path, server: VendorServer) -> None:
    (tmp_path / "token").write_text(SECRET + "\n", encoding="utf-8")
    (tmp_path / "url").write_text(server.url + "/admin", encoding="utf-8")
    server.on("POST", "/admin/databases/orders/read-replicas", Reply(200, json={"ok": True}))
    env = {"TOCSIN_DB_ADMIN_URL_FILE": str(tmp_path / "url"), "TOCSIN_DB_ADMIN_TOKEN_FILE": str(tmp_path / "token")}
    result = await execute_http(_step(), env=env)
    assert result.status == 200 and result.answer == '{"ok": true}'
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"


async def test_a_status_outside_expect_is_permanent(server: VendorServer) -> None:
    server.on("POST", "/admin/databases/orders/read-replicas", Reply(201, json={"created": True}))
    with pytest.raises(PermanentRemediationError) as err:
        await execute_http(_step(), env=_env(server))
    assert err.value.kind == "EndpointRefused"
    assert str(err.value) == (
        'POST ${TOCSIN_DB_ADMIN_URL}/databases/orders/read-replicas answered 201, expected 200/204: {"created": true}'
    )


async def test_a_refusal_is_permanent_and_an_echoed_secret_is_redacted(server: VendorServer) -> None:
    server.on(
        "POST",
        "/admin/databases/orders/read-replicas",
        Reply(403, json={"error": f"token {SECRET} may not do this", "url": server.url + "/admin/"}),
    )
    with pytest.raises(PermanentRemediationError) as err:
        await execute_http(_step(), env=_env(server))
    message = str(err.value)
    assert "answered 403" in message and "[redacted]" in message
    assert SECRET not in message and server.url not in message


@pytest.mark.parametrize(("code", "retry_after"), [(503, 12.0), (500, None), (429, 3.0), (408, None)])
async def test_overload_and_server_errors_are_retryable(
    server: VendorServer, code: int, retry_after: float | None
) -> None:
    headers = {"Retry-After": str(int(retry_after))} if retry_after else {}
    server.on("POST", "/admin/databases/orders/read-replicas", Reply(code, body="busy", headers=headers))
    with pytest.raises(RetryableRemediationError) as err:
        await execute_http(_step(), env=_env(server))
    assert err.value.kind == "EndpointUnavailable" and err.value.retry_after == retry_after
    assert f"answered {code}, expected 200/204: busy" in str(err.value)


async def test_an_expected_404_is_success(server: VendorServer) -> None:
    # A compensation's DELETE of something already gone (the step's own request never arrived, say).
    step = _step(method="DELETE", json_body=None, expect=[200, 204, 404])
    result = await execute_http(step, env=_env(server))  # nothing registered: the server answers 404
    assert result.status == 404
    assert server.requests[0].method == "DELETE" and server.requests[0].body == b""


async def test_any_2xx_when_nothing_is_expected(server: VendorServer) -> None:
    server.on("PUT", "/admin/throttle", Reply(202))
    step = _step(method="PUT", url="${TOCSIN_DB_ADMIN_URL}/throttle", expect=[], json_body=None, text_body="low")
    assert (await execute_http(step, env=_env(server))).status == 202
    assert server.requests[0].headers["content-type"] == "text/plain; charset=utf-8"
    assert server.requests[0].text == "low"


async def test_a_missing_secret_is_permanent_and_names_the_variable(server: VendorServer) -> None:
    with pytest.raises(PermanentRemediationError) as err:
        await execute_http(_step(), env={"TOCSIN_DB_ADMIN_URL": server.url})
    assert err.value.kind == "NotConfigured"
    assert str(err.value) == "TOCSIN_DB_ADMIN_TOKEN is not set on this worker (needed for header Authorization)"
    with pytest.raises(PermanentRemediationError, match="TOCSIN_DB_ADMIN_URL is not set on this worker"):
        await execute_http(_step(), env={"TOCSIN_DB_ADMIN_TOKEN": SECRET})
    with pytest.raises(PermanentRemediationError, match="TOCSIN_DB_ADMIN_URL: not an absolute http\\(s\\) URL"):
        await execute_http(_step(), env={"TOCSIN_DB_ADMIN_URL": "admin.internal", "TOCSIN_DB_ADMIN_TOKEN": SECRET})
    assert server.requests == []


async def test_a_slow_endpoint_is_retryable(server: VendorServer) -> None:
    server.on("POST", "/admin/databases/orders/read-replicas", Reply(204, delay=2))
    with pytest.raises(RetryableRemediationError, match="no answer within"):
        await execute_http(_step(), env=_env(server), request_timeout=0.2)


async def test_the_seed_runbook_step_as_planned(server: VendorServer) -> None:
    """From the default policy to the wire: the label is escaped into one path segment."""
    plan = plan_from_policy(
        load_policy(ROOT / "policies" / "default.yaml"),
        "database_performance_optimization",
        service="checkout",
        severity="sev2",
        labels={"database": "orders-eu.1"},
    )
    step = next(s for s in plan.steps if s.name == "enable_read_replicas")
    assert isinstance(step, PlannedHttp) and step.compensate is not None
    assert not step.allow_loopback, "the default policy never reaches loopback"
    server.on("POST", "/admin/databases/{db}/read-replicas", Reply(200))
    server.on("DELETE", "/admin/databases/{db}/read-replicas", Reply(204))
    with pytest.raises(PermanentRemediationError, match="refused: the host is a loopback address"):
        await execute_http(step, env=_env(server))
    assert server.requests == []
    await execute_http(step.model_copy(update={"allow_loopback": True}), env=_env(server))
    assert isinstance(step.compensate, PlannedHttp)
    await execute_http(step.compensate.model_copy(update={"allow_loopback": True}), env=_env(server))
    assert server.calls() == [
        "POST /admin/databases/orders-eu.1/read-replicas",
        "DELETE /admin/databases/orders-eu.1/read-replicas",
    ]
    assert server.requests[0].json == {"enabled": True, "reason": "tocsin runbook for checkout"}
    assert server.unmatched == []


# --- where a step may send --------------------------------------------------------------------------------


def _resolver(*addresses: str) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("url", "addresses", "problem"),
    [
        ("http://169.254.169.254/latest/meta-data/iam", (), "a cloud metadata address (allow_link_local)"),
        ("http://[fd00:ec2::254]/latest/meta-data", (), "a cloud metadata address (allow_link_local)"),
        ("http://metadata.google.internal/computeMetadata/v1/", (), "a cloud metadata host (allow_link_local)"),
        ("http://169.254.10.1/x", (), "a link-local address (allow_link_local)"),
        ("http://[fe80::1]/x", (), "a link-local address (allow_link_local)"),
        ("http://127.0.0.1:9/x", (), "a loopback address (allow_loopback)"),
        ("http://[::1]/x", (), "a loopback address (allow_loopback)"),
        ("http://0.0.0.0/x", (), "a loopback address (allow_loopback)"),
        ("http://[::ffff:127.0.0.1]/x", (), "a loopback address (allow_loopback)"),
        # A name is resolved first, and one forbidden address among its answers is enough to refuse.
        ("https://admin.example.com/x", ("10.0.0.5", "169.254.169.254"), "a cloud metadata address (allow_link_local)"),
        ("https://admin.example.com/x", ("127.0.0.53",), "a loopback address (allow_loopback)"),
    ],
)
async def test_loopback_link_local_and_metadata_are_refused_unless_allowed(
    url: str, addresses: tuple[str, ...], problem: str
) -> None:
    step = _step(url=url, headers={}, allow_loopback=False)
    with pytest.raises(PermanentRemediationError) as err:
        await execute_http(step, env={}, resolver=_resolver(*addresses))
    assert err.value.kind == "ForbiddenDestination"
    assert str(err.value) == f"POST {url}: refused: the host is {problem}"


async def test_a_refused_base_url_is_not_named(server: VendorServer) -> None:
    """The base URL is a secret of the worker: the refusal names the variable, never the host."""
    step = _step(allow_loopback=False)
    with pytest.raises(PermanentRemediationError) as err:
        await execute_http(step, env=_env(server))
    assert str(err.value) == (
        "POST ${TOCSIN_DB_ADMIN_URL}/databases/orders/read-replicas: refused: the host is a loopback address "
        "(allow_loopback)"
    )
    assert server.requests == []


async def test_the_request_goes_to_the_address_that_was_checked(server: VendorServer) -> None:
    """A name is resolved once: the connection uses the checked address, the Host header keeps the name."""
    server.on("POST", "/admin/databases/orders/read-replicas", Reply(204))
    port = server.url.rsplit(":", 1)[1]
    env = {"TOCSIN_DB_ADMIN_URL": f"http://admin.db.internal:{port}/admin", "TOCSIN_DB_ADMIN_TOKEN": SECRET}
    await execute_http(_step(), env=env, resolver=_resolver("127.0.0.1"))
    [request] = server.requests
    assert request.headers["host"] == f"admin.db.internal:{port}"
    with pytest.raises(PermanentRemediationError, match="refused: the host is a link-local address"):
        await execute_http(_step(), env=env, resolver=_resolver("169.254.0.7"))
    assert len(server.requests) == 1


async def test_allow_link_local_is_explicit() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    step = _step(url="http://169.254.169.254/latest/meta-data", headers={}, allow_loopback=False)
    with pytest.raises(PermanentRemediationError, match="cloud metadata address"):
        await execute_http(step, env={}, transport=httpx.MockTransport(answer))
    assert sent == []
    allowed = step.model_copy(update={"allow_link_local": True})
    assert (await execute_http(allowed, env={}, transport=httpx.MockTransport(answer))).status == 200
    assert [str(r.url) for r in sent] == ["http://169.254.169.254/latest/meta-data"]
