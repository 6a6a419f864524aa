"""Intake plans every key before its first Temporal call, and tells a permanent refusal from an outage."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

from activities.intake import IntakeActivities
from tests.support.alerts import alert
from tests.support.fake_temporal import FakeTemporal
from tests.support.paths import ROOT
from tocsin.detection.contracts import IngestRequest
from tocsin.intake.contracts import IntakeRefused, NormalizedAlert, TemporalRefused, TemporalUnavailable
from tocsin.intake.ingest import ingest_alerts
from tocsin.intake.routing import incident_key
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy


async def test_when_the_second_key_cannot_be_planned_nothing_is_sent(default_policy: Policy) -> None:
    temporal = FakeTemporal()
    good = alert(service="billing")
    # Past the schemas (a detector's series is never parsed by them): triage would refuse this service.
    bad = alert(service="s" * 201, fingerprint="long-service")
    with pytest.raises(IntakeRefused) as refused:
        await ingest_alerts(temporal.client, default_policy, [good, bad])
    assert temporal.calls == []
    assert refused.value.errors == [
        f"alert 1 (incident {incident_key(default_policy, bad)}): "
        "labels.service: String should have at most 200 characters"
    ]


@pytest.fixture
def broken_template_policy(tmp_path: Path) -> Policy:
    """The default policy, with an incident title that renders for no label set (a template error)."""
    text = (ROOT / "policies" / "default.yaml").read_text()
    good_title = 'title: "Service {{ $labels.service }} experiencing outage"'
    assert good_title in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace(good_title, 'title: "{{ $labels.service.no.such.field }}"'))
    return load_policy(path)


async def test_a_key_triage_refuses_refuses_the_payload_before_any_call(broken_template_policy: Policy) -> None:
    temporal = FakeTemporal()
    fine = alert(name="DiskFilling", service="billing")
    outage = alert(name="ServiceAvailabilityLow", service="checkout")  # its response workflow's title fails
    with pytest.raises(IntakeRefused) as refused:
        await ingest_alerts(temporal.client, broken_template_policy, [fine, outage])
    assert temporal.calls == []
    (error,) = refused.value.errors
    assert error.startswith(f"alert 1 (incident {incident_key(broken_template_policy, outage)}): template ")


async def test_the_detector_skips_what_cannot_be_planned_and_ingests_the_rest(
    default_policy: Policy, caplog: pytest.LogCaptureFixture
) -> None:
    temporal = FakeTemporal()
    good = alert(service="billing").model_copy(update={"source": "detector"})
    bad = alert(service="s" * 201, fingerprint="long-service").model_copy(update={"source": "detector"})
    same_key_bad = alert(service="billing", fingerprint="pod-2", team="a\x00b").model_copy(
        update={"source": "detector"}
    )
    request = IngestRequest(policy=default_policy, alerts=[bad, good, same_key_bad])
    with caplog.at_level(logging.WARNING):
        result = await ActivityEnvironment().run(IntakeActivities(temporal.client).ingest, request)
    good_key = incident_key(default_policy, good)
    assert result.keys == [good_key]
    assert [(call, wid) for call, wid, _, _ in temporal.calls] == [("start", f"incident-{good_key}")]
    assert result.skipped is not None and len(result.skipped) == 2
    assert result.skipped[0].startswith("alert 0 (incident ")
    assert result.skipped[1] == (
        f"alert 2 (incident {good_key}): labels.team: String should not contain control characters "
        "(U+0000 at position 1)"
    )
    assert caplog.text.count("detected alert skipped") == 2


async def test_the_detector_skips_a_key_temporal_refuses_for_good(default_policy: Policy) -> None:
    temporal = FakeTemporal()
    refused, fine = alert(service="refused"), alert(service="fine")
    refused_id = f"incident-{incident_key(default_policy, refused)}"
    temporal.errors[refused_id] = RPCError("Blob data size exceeds limit.", RPCStatusCode.INVALID_ARGUMENT, b"")
    result = await ActivityEnvironment().run(
        IntakeActivities(temporal.client).ingest, IngestRequest(policy=default_policy, alerts=[refused, fine])
    )
    assert len(temporal.calls) == 1
    assert result.skipped == [
        f"incident {incident_key(default_policy, refused)}: Temporal refused it (too_large): "
        "Blob data size exceeds limit."
    ]
    # An outage is not skipped: the activity fails, and its retry (or the next run) hands the chunk over again.
    temporal.errors["*"] = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(
            IntakeActivities(temporal.client).ingest, IngestRequest(policy=default_policy, alerts=[fine])
        )
    assert failed.value.type == "TemporalUnavailable"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""), "unavailable"),
        (RPCError("context deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""), "unavailable"),
        (RPCError("namespace rate limit exceeded", RPCStatusCode.RESOURCE_EXHAUSTED, b""), "unavailable"),
        (RuntimeError("Failed client connect: transport error"), "unavailable"),
        (RPCError("Blob data size exceeds limit.", RPCStatusCode.INVALID_ARGUMENT, b""), "too_large"),
        (
            RPCError(
                "grpc: received message after decompression larger than max 4194304",
                RPCStatusCode.RESOURCE_EXHAUSTED,
                b"",
            ),
            "too_large",
        ),
        (RPCError("search attribute IncidentService is not defined", RPCStatusCode.INVALID_ARGUMENT, b""), "invalid"),
        (RPCError("request not permitted", RPCStatusCode.FAILED_PRECONDITION, b""), "invalid"),
        (RPCError("Request unauthorized.", RPCStatusCode.PERMISSION_DENIED, b""), "failed"),
        (RPCError("Namespace default is not found.", RPCStatusCode.NOT_FOUND, b""), "failed"),
    ],
)
async def test_only_an_unreachable_or_overloaded_temporal_is_unavailable(
    default_policy: Policy, error: BaseException, expected: str
) -> None:
    temporal = FakeTemporal()
    temporal.errors["*"] = error
    with pytest.raises((TemporalUnavailable, TemporalRefused)) as caught:
        await ingest_alerts(temporal.client, default_policy, [alert()])
    if expected == "unavailable":
        assert isinstance(caught.value, TemporalUnavailable)
    else:
        assert isinstance(caught.value, TemporalRefused) and caught.value.kind == expected
        assert str(caught.value).startswith("Temporal refused the alerts of incident ")


async def test_an_outage_on_one_key_wins_over_a_refusal_on_another(default_policy: Policy) -> None:
    temporal = FakeTemporal()
    one, two, three = alert(service="one"), alert(service="two"), alert(service="three")
    temporal.errors[f"incident-{incident_key(default_policy, one)}"] = RPCError(
        "no", RPCStatusCode.INVALID_ARGUMENT, b""
    )
    temporal.errors[f"incident-{incident_key(default_policy, two)}"] = RPCError("down", RPCStatusCode.UNAVAILABLE, b"")
    with pytest.raises(TemporalUnavailable, match="UNAVAILABLE: down"):
        await ingest_alerts(temporal.client, default_policy, [one, two, three])
    del temporal.errors[f"incident-{incident_key(default_policy, two)}"]
    with pytest.raises(TemporalRefused, match="; the other 2 incident keys were accepted"):
        await ingest_alerts(temporal.client, default_policy, [one, two, three])


def pagerduty(action: str, dedup_key: str = "db-disk") -> NormalizedAlert:
    return NormalizedAlert(
        source="pagerduty",
        status="resolved" if action == "resolve" else "firing",
        labels={"alertname": "pagerduty", "service": "db"},
        fingerprint=dedup_key,
        dedup_key=dedup_key,
        acknowledge=action == "acknowledge",
        resolve_now=action == "resolve",
    )


async def test_a_pagerduty_resolve_signals_then_resolves_with_an_id_fixed_by_its_dedup_key(
    default_policy: Policy,
) -> None:
    temporal = FakeTemporal()
    for _ in range(2):  # the sender retries: the same update id, so the incident applies it once
        await ingest_alerts(temporal.client, default_policy, [pagerduty("resolve")])
    key = incident_key(default_policy, pagerduty("resolve"))
    first, second = temporal.calls[:2], temporal.calls[2:]
    assert first == second
    (signal, update) = first
    assert signal == ("signal", f"incident-{key}", "alerts", None)
    assert update[:3] == ("update", f"incident-{key}", "resolve")
    assert update[3] is not None and update[3].startswith("pagerduty-resolve-")
    other = FakeTemporal()
    await ingest_alerts(other.client, default_policy, [pagerduty("resolve", dedup_key="another")])
    assert other.calls[1][3] != update[3]


async def test_a_refused_or_missing_resolution_is_not_an_error(default_policy: Policy) -> None:
    workflow_id = f"incident-{incident_key(default_policy, pagerduty('resolve'))}"
    already = FakeTemporal()
    already.update_errors[workflow_id] = WorkflowUpdateFailedError(ApplicationError("incident is resolved"))
    result = await ingest_alerts(already.client, default_policy, [pagerduty("resolve")])
    assert result.opened_or_updated == 1  # the signal reached it; the refused update is no error
    closed = FakeTemporal()
    closed.errors[workflow_id] = RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")
    result = await ingest_alerts(closed.client, default_policy, [pagerduty("resolve")])
    assert result.opened_or_updated == 0


async def test_only_a_pagerduty_resolve_resolves_at_once(default_policy: Policy) -> None:
    temporal = FakeTemporal()
    quiet = alert(status="resolved")
    await ingest_alerts(temporal.client, default_policy, [quiet, pagerduty("acknowledge")])
    assert [name for call, _, name, _ in temporal.calls if call == "update"] == ["acknowledge"]
