"""An SMS `ACK` without a code, against a real dev server: the served receiver (`temporal_app`, configured from
the environment as `tocsin up` configures it) finds the person's latest page through Temporal's visibility,
which the time-skipping server lacks (tests/workflows/test_twilio_acknowledges.py answers that listing itself)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import run_workers, settle_postmortem, start_incident
from tests.support.twilio_callbacks import PUBLIC, TOKEN, TwilioWebhooks
from tocsin.incident.client import get_incident, list_incidents, send_update
from tocsin.incident.contracts import IncidentState
from tocsin.incident.updates import ResolveRequest
from tocsin.policy.schema import Policy
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.serve import temporal_app
from tocsin.settings import Settings


@pytest.fixture
async def twilio(dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path) -> AsyncIterator[TwilioWebhooks]:
    env = {"TOCSIN_TWILIO_AUTH_TOKEN": TOKEN, "TOCSIN_PUBLIC_URL": PUBLIC + "/", "TOCSIN_STATUS_PAGE": "off"}
    app = temporal_app(dev_env.client, default_policy, ReceiverConfig(), env)
    async with (
        run_workers(dev_env.client, Settings(home=tmp_path / "home")),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080") as http,
    ):
        yield TwilioWebhooks(http)


async def paged_and_listed(dev_env: WorkflowEnvironment, key: str, seconds: float = 30) -> IncidentState:
    """The incident once it has paged someone and visibility lists it as triggered (both take a moment)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = await get_incident(dev_env.client, key)
        listed = {row.key for row in await list_incidents(dev_env.client, status="triggered")}
        if state.paged_people and key in listed:
            return state
        await asyncio.sleep(0.2)
    pytest.fail(f"incident {key} paged nobody, or was not listed, within {seconds:.0f}s")


async def test_an_sms_ack_acknowledges_the_latest_page_found_through_visibility(
    dev_env: WorkflowEnvironment, default_policy: Policy, twilio: TwilioWebhooks
) -> None:
    inp, handle = await start_incident(dev_env.client, default_policy, severity="sev1")
    person = (await paged_and_listed(dev_env, inp.key)).paged_people[-1]
    number = default_policy.roster.people[person].phone
    assert number is not None

    response = await twilio.sms(number, "ACK", sid="SM0000000000000000000000000000c001")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert response.text == f"<Response><Message>{inp.key}: acknowledged by {person}</Message></Response>"
    state = await get_incident(dev_env.client, inp.key)
    assert (state.status, state.acknowledged_by) == ("acknowledged", person)
    assert f"acknowledged by {person} via SMS/voice; paging stopped" in [e.text for e in state.timeline]

    await send_update(dev_env.client, inp.key, "resolve", ResolveRequest(by=person))
    final = IncidentState.model_validate(await handle.result())
    if final.postmortem_workflow_id:
        await settle_postmortem(dev_env.client, final.postmortem_workflow_id)
