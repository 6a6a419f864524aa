"""PagerDuty two-way on the time-skipping server: the real webhook route and `temporal_act` against a real sev1
incident that paged through PagerDuty. Alice's acknowledgement and resolution in PagerDuty come back as signed
webhooks naming the dedup key Tocsin sent; they act as alice via PagerDuty, and Tocsin sends PagerDuty no
acknowledge or resolve event for them (it would echo PagerDuty's own change back to it)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox, settle_postmortem, start_incident
from tests.workflows.test_incident_lifecycle import at_minutes, finish, state_of
from tocsin.channels.base import Message
from tocsin.channels.pagerduty import PagerDutyChannel
from tocsin.incident.client import send_update
from tocsin.incident.contracts import IncidentState, incident_workflow_id
from tocsin.incident.updates import AcknowledgeRequest
from tocsin.intake.contracts import IngestResult, NormalizedAlert
from tocsin.policy.schema import Policy
from tocsin.receiver.app import create_app
from tocsin.receiver.pagerduty_routes import PATH
from tocsin.receiver.responder_settings import Responders, ResponderSecrets
from tocsin.responders.dispatch import temporal_act
from tocsin.settings import Settings

SECRET = "pagerduty-subscription-secret-for-tests"


def signed(event_type: str, event_id: str, dedup_key: str, user: str) -> tuple[bytes, dict[str, str]]:
    """A v3 webhook as PagerDuty sends it, signed as its docs describe (hmac + hashlib, not Tocsin's code)."""
    payload: dict[str, Any] = {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-01-05T10:00:00.000Z",
            "agent": {"id": user, "type": "user_reference", "summary": "Alice Martin"},
            "client": None,
            "data": {
                "id": "PINC001",
                "type": "incident",
                "status": event_type.removeprefix("incident."),
                "incident_key": dedup_key,
                "title": "checkout is down",
                "assignees": [{"id": user, "type": "user_reference"}],
            },
        }
    }
    body = json.dumps(payload).encode()
    signature = "v1=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-PagerDuty-Signature": signature}


def sent_dedup_key(line: dict[str, Any]) -> str:
    """The dedup key the PagerDuty channel sends for this outbox page (what PagerDuty files the incident under)."""
    page = Message(
        idempotency_key=line["id"],
        incident=line["incident"],
        channel=line["channel"],
        target=line["target"],
        text=line["message"],
        at=line["at"],
    )
    return str(PagerDutyChannel("R" * 32, "http://127.0.0.1:9").event(page)["dedup_key"])


async def test_pagerdutys_acknowledge_then_resolve_act_as_alice_and_nothing_goes_back(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(seconds=30))
    before = [line["id"] for line in outbox(workers, inp.key) if line["channel"] == "pagerduty"]
    # Whoever is on call was paged through PagerDuty; alice, who is in the roster too, acknowledges there.
    page = next(line for line in outbox(workers, inp.key) if line["channel"] == "pagerduty" and "/page/" in line["id"])
    dedup_key = sent_dedup_key(page)

    async def no_alerts(alerts: list[NormalizedAlert]) -> IngestResult:
        raise AssertionError("a PagerDuty webhook ingests no alert")

    async def healthy() -> bool:
        return True

    secrets = ResponderSecrets(pagerduty_webhook_secrets=(SecretStr(SECRET),))
    responders = Responders(temporal_act(env.client), default_policy.roster, secrets)
    app = create_app(ingest=no_alerts, healthcheck=healthy, responders=responders)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080") as http:
        body, headers = signed("incident.acknowledged", "01PDACK", dedup_key, "PALICE1")
        acked = await http.post(PATH, content=body, headers=headers)
        assert acked.status_code == 200, acked.text
        assert acked.json() == {
            "acted": True,
            "key": inp.key,
            "status": "acknowledged",
            "message": "acknowledged by alice",
        }
        # PagerDuty delivers at least once: the same event again is the same update (its id is the event's),
        # which Temporal answers with the first result; the timeline below holds one acknowledgement.
        again = await http.post(PATH, content=body, headers=headers)
        assert (again.status_code, again.json()) == (200, acked.json())

        await env.sleep(timedelta(minutes=10))
        body, headers = signed("incident.resolved", "01PDRES", dedup_key, "PALICE1")
        resolved = await http.post(PATH, content=body, headers=headers)
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["status"] == "resolved"

    final = IncidentState.model_validate(await env.client.get_workflow_handle(incident_workflow_id(inp.key)).result())
    if final.postmortem_workflow_id:
        await settle_postmortem(env.client, final.postmortem_workflow_id)
    assert (final.acknowledged_by, final.resolved_by) == ("alice", "alice")
    said = [(e.kind, e.text) for e in final.timeline if e.kind in ("acknowledged", "resolved")]
    assert said == [
        ("acknowledged", "acknowledged by alice via PagerDuty; paging stopped"),
        ("resolved", "resolved by alice via PagerDuty"),
    ]
    rows = at_minutes(outbox(workers, inp.key), final.opened_at)
    # PagerDuty already shows both changes: no `sync/<n>/pagerduty` line (an acknowledge or resolve event), and
    # nothing at all went to PagerDuty after the webhooks (paging stopped with the acknowledgement).
    assert [s for _, c, _, s in rows if c == "pagerduty" and s.startswith("sync/")] == []
    assert [line["id"] for line in outbox(workers, inp.key) if line["channel"] == "pagerduty"] == before


async def test_the_same_acknowledgement_from_the_cli_is_sent_to_pagerduty(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    """The control: without `via=pagerduty` the follower is told, so the assertion above can fail."""
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(seconds=30))
    await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="alice"))
    await env.sleep(timedelta(seconds=30))
    state = await state_of(env, inp.key)
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)
    assert [s for _, c, _, s in rows if c == "pagerduty" and s.startswith("sync/")] != []
    await finish(env, inp.key, "alice")
