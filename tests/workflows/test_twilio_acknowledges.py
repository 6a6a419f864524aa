"""Twilio replies acting on real incidents (the time-skipping server, the real `temporal_act`): an SMS `ACK`
from the paged person's number acknowledges their latest page and answers TwiML, `ACK <code>` names another
incident, a webhook Twilio sends again lands once, and a page call's digit 1 acknowledges.

The time-skipping server has no visibility (ListWorkflowExecutions is unimplemented), which "my latest page" and
codes use to list open incidents. Here `list_incidents` answers from the started incidents' own live state
(status and opening time from their `status` query), so everything after the listing is the real thing:
reading `paged_people`, choosing the newest, the update and its idempotency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox, start_incident
from tests.support.twilio_callbacks import PUBLIC, TOKEN, TwilioWebhooks, receiver
from tests.workflows.test_incident_lifecycle import finish, state_of
from tocsin.incident.client import IncidentRow, get_incident
from tocsin.policy.schema import Policy
from tocsin.receiver.responder_settings import Responders, ResponderSecrets
from tocsin.responders import dispatch
from tocsin.responders.codes import short_code
from tocsin.responders.dispatch import temporal_act
from tocsin.settings import Settings

Opened = list[str]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Opened:
    """The keys this test opened; visibility's listing of them, answered from each incident's live state."""
    keys: Opened = []

    async def list_incidents(
        client: Client, status: str | tuple[str, ...] | None = None, limit: int = 100, **_: str
    ) -> list[IncidentRow]:
        wanted = (status,) if isinstance(status, str) else status
        rows = []
        for key in keys:
            state = await get_incident(client, key)
            if wanted is None or state.status in wanted:
                rows.append(
                    IncidentRow(state.key, state.severity, state.status, state.service, 0, state.opened_at, state.title)
                )
        return rows[:limit]

    monkeypatch.setattr(dispatch, "list_incidents", list_incidents)
    return keys


@pytest.fixture
async def twilio(env: WorkflowEnvironment, workers: Settings, default_policy: Policy) -> AsyncIterator[TwilioWebhooks]:
    secrets = ResponderSecrets(twilio_auth_token=SecretStr(TOKEN), public_url=PUBLIC)
    async with receiver(Responders(temporal_act(env.client), default_policy.roster, secrets)) as http:
        yield TwilioWebhooks(http)


def twiml(response: httpx.Response) -> str:
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    return response.text


async def test_an_sms_ack_from_the_paged_number_acknowledges_the_latest_page(
    env: WorkflowEnvironment, twilio: TwilioWebhooks, default_policy: Policy, opened: Opened
) -> None:
    older, _ = await start_incident(env.client, default_policy, severity="sev1", service="checkout")
    await env.sleep(timedelta(minutes=1))
    latest, _ = await start_incident(env.client, default_policy, severity="sev1", service="billing")
    await env.sleep(timedelta(minutes=1))
    quiet, _ = await start_incident(env.client, default_policy, severity="sev3", service="search")  # pages nobody
    opened.extend([older.key, latest.key, quiet.key])

    paged = (await state_of(env, latest.key)).paged_people
    assert paged == (await state_of(env, older.key)).paged_people and len(paged) == 1
    assert (await state_of(env, quiet.key)).paged_people == []
    person = paged[0]
    number = default_policy.roster.people[person].phone
    assert number is not None

    answer = twiml(await twilio.sms(number, "ack", sid="SM0000000000000000000000000000a001"))
    assert answer == f"<Response><Message>{latest.key}: acknowledged by {person}</Message></Response>"
    state = await state_of(env, latest.key)
    assert (state.status, state.acknowledged_by) == ("acknowledged", person)
    assert [e.text for e in state.timeline if e.kind == "acknowledged"] == [
        f"acknowledged by {person} via SMS/voice; paging stopped"
    ]
    assert (await state_of(env, older.key)).status == "triggered"
    assert (await state_of(env, quiet.key)).status == "triggered"

    # Twilio sends the same webhook again (its MessageSid): the same update id, so Temporal answers it with the
    # first one's result and the incident applies it once.
    again = twiml(await twilio.sms(number, "ack", sid="SM0000000000000000000000000000a001"))
    assert again == answer
    assert len([e for e in (await state_of(env, latest.key)).timeline if e.kind == "acknowledged"]) == 1

    # The code the older page carried names it.
    named = twiml(await twilio.sms(number, f"ACK {short_code(older.key)}", sid="SM0000000000000000000000000000a002"))
    assert f"{older.key}: acknowledged by {person}" in named
    assert (await state_of(env, older.key)).status == "acknowledged"

    # A code no open incident has: the refusal, in words, and nothing changed.
    unused = next(c for c in (f"{n:04d}" for n in range(10_000)) if c not in {short_code(k) for k in opened})
    refused = twiml(await twilio.sms(number, f"RES {unused}", sid="SM0000000000000000000000000000a003"))
    assert refused == f"<Response><Message>Not done: no open incident has the code {unused}</Message></Response>"
    for key in (older.key, latest.key, quiet.key):
        await finish(env, key, person)


async def test_an_unknown_number_changes_nothing(
    env: WorkflowEnvironment, twilio: TwilioWebhooks, default_policy: Policy, opened: Opened
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    opened.append(inp.key)
    await env.sleep(timedelta(minutes=1))
    answer = twiml(await twilio.sms("+15551230077", f"ACK {short_code(inp.key)}"))
    assert answer == "<Response><Message>This number is not in Tocsin's roster.</Message></Response>"
    assert (await state_of(env, inp.key)).status == "triggered"
    await finish(env, inp.key, "alice")


async def test_digit_1_on_the_page_call_acknowledges(
    env: WorkflowEnvironment, workers: Settings, twilio: TwilioWebhooks, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    # sev1's chain calls at 15 minutes (policies/default.yaml); the call's Gather posts the digit with the key.
    await env.sleep(timedelta(minutes=16))
    [call] = [row for row in outbox(workers, inp.key) if row["channel"] == "phone"]
    callee = call["target"]
    person = (await state_of(env, inp.key)).paged_people[-1]
    assert default_policy.roster.people[person].phone == callee

    answer = twiml(await twilio.digit(inp.key, "1", callee, call="CA00000000000000000000000000000b01"))
    assert answer == f"<Response><Say>{inp.key}: acknowledged by {person}. Goodbye.</Say></Response>"
    state = await state_of(env, inp.key)
    assert (state.status, state.acknowledged_by) == ("acknowledged", person)
    assert f"acknowledged by {person} via SMS/voice; paging stopped" in [e.text for e in state.timeline]
    await finish(env, inp.key, person)
