"""A click in Slack, end to end on the time-skipping server: the receiver's real Slack route, acting through
Temporal's client on a real incident. A stranger's click and a forged one change nothing; alice's signed click
acknowledges as alice via Slack; Slack delivering the same callback again changes nothing; her Resolve click
closes the incident. Each click is answered with an empty 200, and the message that replaces the one clicked
lands on a local Slack, at the click's response URL; a response URL on another host is never called."""

from __future__ import annotations

from datetime import timedelta

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import settle_postmortem, start_incident
from tests.support.slack_callbacks import STRANGER, answers, click, fake_slack, response_url, signed, slack_app
from tests.workflows.test_incident_lifecycle import state_of
from tocsin.incident.contracts import IncidentState
from tocsin.policy.schema import Policy
from tocsin.receiver.slack_routes import ACTIONS_PATH
from tocsin.responders.dispatch import temporal_act
from tocsin.settings import Settings


async def test_alices_slack_click_acknowledges_as_alice_once(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(minutes=1))
    with fake_slack() as slack, fake_slack() as elsewhere:
        app = slack_app(temporal_act(env.client), default_policy.roster, slack=slack)
        url = response_url(slack)
        acknowledge = click(inp.key, action="tocsin_acknowledge", action_ts="1790000000.000100", response_url=url)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            stranger = click(inp.key, user=STRANGER, action_ts="1790000000.000050", response_url=url)
            refused = await http.post(ACTIONS_PATH, content=stranger, headers=signed(stranger))
            forged = await http.post(ACTIONS_PATH, content=acknowledge, headers=signed(acknowledge, secret="guessed"))
            away = click(inp.key, action_ts="1790000000.000070", response_url=response_url(elsewhere))
            misdirected = await http.post(ACTIONS_PATH, content=away, headers=signed(away))
            assert (refused.status_code, refused.content) == (200, b"")
            assert answers(slack)[0]["response_type"] == "ephemeral" and forged.status_code == 401
            assert misdirected.status_code == 400 and elsewhere.requests == []
            assert (await state_of(env, inp.key)).status == "triggered"  # none of them changed anything

            first = await http.post(ACTIONS_PATH, content=acknowledge, headers=signed(acknowledge))
            replayed = await http.post(ACTIONS_PATH, content=acknowledge, headers=signed(acknowledge))

            assert (first.status_code, first.content) == (200, b""), first.text
            _, acknowledged, again = answers(slack)
            line = acknowledged["blocks"][-2]["elements"][0]["text"]
            assert "acknowledged by alice · status *acknowledged*" in line and "(<@U0ALICE01>) via Slack" in line
            # Same update id (`slack:<action_ts>`): Temporal answers the first outcome again, without re-running it.
            assert replayed.status_code == 200 and again == acknowledged
            state = await state_of(env, inp.key)
            assert (state.status, state.acknowledged_by, state.owner) == ("acknowledged", "alice", "alice")
            said = [e.text for e in state.timeline if e.kind == "acknowledged"]
            assert said == ["acknowledged by alice via Slack; paging stopped"]  # once, for two deliveries

            resolve = click(
                inp.key, action="tocsin_resolve", action_ts="1790000060.000200", message=acknowledged, response_url=url
            )
            resolved = await http.post(ACTIONS_PATH, content=resolve, headers=signed(resolve))
        assert (resolved.status_code, resolved.content) == (200, b"")
        assert "status *resolved*" in str(answers(slack)[-1]) and slack.unmatched == []
        assert elsewhere.requests == []
    final = IncidentState.model_validate(await handle.result())
    assert final.status == "resolved" and [e.text for e in final.timeline if e.kind == "resolved"] == [
        "resolved by alice via Slack"
    ]
    if final.postmortem_workflow_id:
        await settle_postmortem(env.client, final.postmortem_workflow_id)
