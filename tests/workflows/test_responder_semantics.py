"""What a responder can do besides acknowledging, on the time-skipping server: an acknowledgement that lapses
(the severity's ack_timeout), a snooze that pauses paging and then resumes it, taking an incident over, and
where each action came from ("via Slack"), including PagerDuty's own acknowledgement, which is never echoed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox, start_incident
from tests.workflows.test_incident_lifecycle import at_minutes, finish, state_of, steps
from tocsin.incident.client import IncidentError, send_update
from tocsin.incident.updates import AcknowledgeRequest, EscalateRequest, SnoozeRequest, TakeRequest
from tocsin.policy.schema import Policy
from tocsin.responders.codes import short_code
from tocsin.settings import Settings


async def test_a_lapsed_acknowledgement_pages_the_owner_again_then_the_chain_resumes(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="alice"))
    # sev1's ack_timeout is 30 minutes (policies/default.yaml): nothing before, the owner at 31.
    await env.sleep(timedelta(minutes=29))
    assert (await state_of(env, inp.key)).status == "acknowledged"
    await env.sleep(timedelta(minutes=2))
    state = await state_of(env, inp.key)
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)

    assert state.status == "triggered" and state.owner == "alice" and state.ack_timeouts == 1
    assert [(m, c, t) for m, c, t, s in rows if s.startswith("ack-timeout/")] == [(31.0, "pagerduty", "PALICE1")]
    lapsed = [e.text for e in state.timeline if e.kind == "ack_timeout"]
    assert lapsed == [
        "acknowledged by alice but neither mitigated nor resolved within 30 minutes: paging alice again, "
        "then the chain resumes"
    ]
    # The chain resumes one step delay (5 minutes on pagerduty) after the owner's page: its second attempt.
    await env.sleep(timedelta(minutes=5))
    rows = at_minutes(outbox(workers, (await state_of(env, inp.key)).key), state.opened_at)
    assert steps(rows, "page/") == [(0.0, "pagerduty"), (36.0, "pagerduty")]
    # Acknowledged again: a new 30 minutes.
    again = await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="alice"))
    assert again.status == "acknowledged"
    assert (await state_of(env, inp.key)).ack_deadline is not None
    await finish(env, inp.key, "alice")


async def test_a_snooze_pauses_paging_then_it_resumes_and_management_does_not_pause(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(seconds=30))
    result = await send_update(
        env.client, inp.key, "snooze", SnoozeRequest(by="bob", duration=timedelta(minutes=20), via="slack")
    )
    assert result.message.startswith("paging snoozed until ")
    await env.sleep(timedelta(minutes=21))
    state = await state_of(env, inp.key)
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)
    # Page 1 at 0; the chain's next page (due at 5) waits for the snooze's end, at 20.5, then goes on.
    assert steps(rows, "page/") == [(0.0, "pagerduty"), (20.5, "pagerduty")]
    snoozed = [e.text for e in state.timeline if e.kind == "snoozed"]
    assert len(snoozed) == 1 and snoozed[0].startswith("paging snoozed by bob via Slack for 20 minutes, until ")
    await env.sleep(timedelta(minutes=10))
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)
    assert steps(rows, "management/") == [(30.0, "slack")]  # management escalation never paused
    await finish(env, inp.key, "bob")


async def test_a_snooze_is_bounded_and_only_while_paging(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    with pytest.raises(ValueError, match="less than or equal to 4 hours"):
        SnoozeRequest(by="bob", duration=timedelta(hours=5))
    await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="alice"))
    with pytest.raises(IncidentError, match="acknowledged: nothing is paging to snooze"):
        await send_update(env.client, inp.key, "snooze", SnoozeRequest(by="bob", duration=timedelta(minutes=5)))
    await finish(env, inp.key, "alice")


async def test_taking_over_changes_the_owner_and_the_timeline_says_who_owned_it_when(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev2")
    await env.sleep(timedelta(minutes=2))
    await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="alice", via="slack"))
    await env.sleep(timedelta(minutes=3))
    taken = await send_update(env.client, inp.key, "take", TakeRequest(by="bob", via="pagerduty"))
    assert taken.message == "bob owns it now" and taken.status == "acknowledged"
    again = await send_update(env.client, inp.key, "take", TakeRequest(by="bob"))
    assert again.message == "bob already owns it"
    state = await state_of(env, inp.key)
    assert (state.owner, state.acknowledged_by) == ("bob", "alice")
    said = [(e.kind, e.text) for e in state.timeline if e.kind in ("acknowledged", "owner")]
    assert said == [
        ("acknowledged", "acknowledged by alice via Slack; paging stopped"),
        ("owner", "bob via PagerDuty took over from alice"),
    ]
    await finish(env, inp.key, "bob")


async def test_pagerdutys_own_acknowledgement_is_not_sent_back_to_it(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(seconds=30))
    state = await state_of(env, inp.key)
    assert any(f.channel == "pagerduty" for f in state.followers)
    await send_update(
        env.client, inp.key, "acknowledge", AcknowledgeRequest(by="alice", via="pagerduty", request_id="pd:E1")
    )
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, inp.key, "escalate", EscalateRequest(by="alice", request_id="cli:1"))
    await env.sleep(timedelta(seconds=30))
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)
    # A sync to PagerDuty would be a `sync/<n>/pagerduty` line: none for the acknowledgement PagerDuty sent.
    assert [s for _, c, _, s in rows if c == "pagerduty" and s.startswith("sync/")] == []
    await finish(env, inp.key, "alice")


def test_the_page_carries_the_short_code_a_reply_can_name() -> None:
    assert short_code("checkout-1") == short_code("checkout-1")
    assert len(short_code("checkout-1")) == 4 and short_code("checkout-1").isdigit()
