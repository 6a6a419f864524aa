"""IncidentWorkflow end to end on the time-skipping test server: who is told what, at exactly which policy time."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox, settle_postmortem, start_incident
from tests.support.paths import ROOT
from tocsin import search_attributes as sa
from tocsin.incident.client import IncidentError, get_incident, send_update
from tocsin.incident.contracts import IncidentState, PostMortemInput
from tocsin.incident.updates import AcknowledgeRequest, EscalateRequest, ResolveRequest, SetSeverityRequest
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.settings import Settings


def at_minutes(entries: list[dict[str, Any]], opened_at: datetime) -> list[tuple[float, str, str, str]]:
    """(minutes after opening, channel, target, step) per outbox line, to the nearest tenth of a minute."""
    out = []
    for e in entries:
        offset = (datetime.fromisoformat(e["at"]) - opened_at).total_seconds() / 60
        step = e["id"].split("/", 2)[2]
        out.append((round(offset, 1), e["channel"], e["target"], step))
    return sorted(out)


def steps(rows: list[tuple[float, str, str, str]], prefix: str) -> list[tuple[float, str]]:
    return [(m, channel) for m, channel, _, step in rows if step.startswith(prefix)]


async def finish(env: WorkflowEnvironment, key: str, by: str) -> IncidentState:
    """Resolve and wait for the incident and its post-mortem to close, so no task outlives this test's worker."""
    await send_update(env.client, key, "resolve", ResolveRequest(by=by))
    final = IncidentState.model_validate(await env.client.get_workflow_handle(f"incident-{key}").result())
    if final.postmortem_workflow_id:
        await settle_postmortem(env.client, final.postmortem_workflow_id)
    return final


async def state_of(env: WorkflowEnvironment, key: str) -> IncidentState:
    return await get_incident(env.client, key)


async def test_sev1_pages_the_whole_chain_then_management_exactly_on_policy_time(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(minutes=61))
    state = await state_of(env, inp.key)
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)

    # pagerduty x3 five minutes apart, phone x2 two apart, sms x3 one apart (policies/default.yaml).
    assert steps(rows, "page/") == [
        (0.0, "pagerduty"),
        (5.0, "pagerduty"),
        (10.0, "pagerduty"),
        (15.0, "phone"),
        (17.0, "phone"),
        (19.0, "sms"),
        (20.0, "sms"),
        (21.0, "sms"),
    ]
    # Chain exhausted at 22 minutes: every sev1 stakeholder is told, nothing is dropped silently.
    # Each on their own channel, through the roster: sre's Slack channel, the others' email.
    assert sorted((m, c, s.split("/")[1], t) for m, c, t, s in rows if s.startswith("exhausted/")) == [
        (22.0, "email", "cto", "cto@company.com"),
        (22.0, "email", "engineering_manager", "erin@company.com"),
        (22.0, "slack", "sre", "#sre-alerts"),
    ]
    assert {m for m, _, _, s in rows if s.startswith("breach/response/")} == {5.0}
    assert {m for m, _, _, s in rows if s.startswith("breach/mitigation/")} == {15.0}
    assert [(m, c, t) for m, c, t, s in rows if s.startswith("management/")] == [
        (30.0, "slack", "#leadership"),
        (60.0, "email", "cto@company.com, vp-engineering@company.com"),
    ]
    # The sev1 automatic actions ran once each, at the start.
    # (An action whose audience is several people is one delivery each: "action/notify_executives/frank".)
    actions = sorted({s.split("/")[1] for m, _, _, s in rows if s.startswith("action/")})
    assert actions == sorted(default_policy.severity("sev1").automatic_actions)

    assert state.status == "triggered"
    assert state.escalation_level == 3
    assert state.escalation.exhausted
    assert state.next_escalation_at is None
    desc = await handle.describe()
    # What an operator sees in the Web UI: a one-line summary, and current details kept up to date.
    assert await desc.static_summary() == f"[sev1] {inp.title} (checkout)"
    metadata = await handle.query("__temporal_workflow_metadata")
    assert "**sev1**" in metadata.current_details
    assert "chain exhausted" in metadata.current_details
    assert desc.typed_search_attributes.get(sa.LEVEL) == 3
    assert desc.typed_search_attributes.get(sa.SEVERITY) == "sev1"
    assert desc.typed_search_attributes.get(sa.STATUS) == "triggered"
    await finish(env, inp.key, "test")


@pytest.mark.parametrize("severity", ["sev2", "sev3", "sev4"])
async def test_each_severity_follows_its_own_targets(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy, severity: str
) -> None:
    level = default_policy.severity(severity)
    inp, _ = await start_incident(env.client, default_policy, severity=severity)
    await env.sleep(level.escalation_time + timedelta(minutes=1))
    state = await state_of(env, inp.key)
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)

    pages = steps(rows, "page/")
    if default_policy.pages(severity):
        assert pages[:3] == [(0.0, "pagerduty"), (5.0, "pagerduty"), (10.0, "pagerduty")]
    else:
        assert pages == []
    response_at = level.response_time.total_seconds() / 60
    mitigation_at = level.escalation_time.total_seconds() / 60
    assert {m for m, _, _, s in rows if s.startswith("breach/response/")} == {response_at}
    assert {m for m, _, _, s in rows if s.startswith("breach/mitigation/")} == {mitigation_at}
    told = {s.split("/")[2] for _, _, _, s in rows if s.startswith("breach/response/")}
    assert told == set(level.stakeholders)
    # Management escalation is for sev1 only in the default policy.
    assert steps(rows, "management/") == []
    automatic = {s.split("/")[1] for _, _, _, s in rows if s.startswith("action/")}
    automatic |= {s.split("/")[1] for _, _, _, s in rows if s.startswith("action/notify_stakeholders/")}
    assert set(level.automatic_actions) <= automatic
    await finish(env, inp.key, "test")


async def test_acknowledgement_stops_paging_but_not_management(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(minutes=6))
    result = await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="alice"))
    assert result.status == "acknowledged"
    # Past management's 30 minutes, short of the sev1 ack_timeout (30 minutes after the acknowledgement).
    await env.sleep(timedelta(minutes=25))
    state = await state_of(env, inp.key)
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)

    assert steps(rows, "page/") == [(0.0, "pagerduty"), (5.0, "pagerduty")]
    assert state.acknowledged_by == "alice"
    assert state.next_escalation_at is None
    assert {m for m, _, _, s in rows if s.startswith("breach/response/")} == {5.0}  # acked at 6 min: late
    assert steps(rows, "management/") == [(30.0, "slack")]
    await finish(env, inp.key, "alice")


async def test_manual_escalation_jumps_levels_now_and_refuses_past_the_last(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev2")
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, inp.key, "escalate", EscalateRequest(by="bob", reason="need a DBA"))
    await env.sleep(timedelta(seconds=30))
    state = await state_of(env, inp.key)
    assert state.escalation_level == 2
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)
    assert steps(rows, "page/") == [(0.0, "pagerduty"), (1.0, "phone")]
    # The chain goes on from the new level: the phone's second attempt two minutes later.
    await env.sleep(timedelta(minutes=2))
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)
    assert steps(rows, "page/")[-1] == (3.0, "phone")

    await send_update(env.client, inp.key, "escalate", EscalateRequest(by="bob"))
    await env.sleep(timedelta(seconds=10))
    await send_update(env.client, inp.key, "escalate", EscalateRequest(by="bob"))
    await env.sleep(timedelta(seconds=10))
    state = await state_of(env, inp.key)
    assert state.escalation.exhausted
    with pytest.raises(IncidentError, match="past the last level"):
        await send_update(env.client, inp.key, "escalate", EscalateRequest(by="bob"))
    kinds = [e.kind for e in state.timeline]
    assert kinds.count("escalated") == 3
    assert "chain_exhausted" in kinds
    await finish(env, inp.key, "bob")


async def test_set_severity_replans_response_and_escalation(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev3")
    await env.sleep(timedelta(minutes=45))
    state = await state_of(env, inp.key)
    assert steps(at_minutes(outbox(workers, inp.key), state.opened_at), "page/") == []

    await send_update(env.client, inp.key, "set_severity", SetSeverityRequest(by="carol", severity="sev1"))
    await env.sleep(timedelta(minutes=1))
    state = await state_of(env, inp.key)
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)
    # sev1 pages at once, its 30-minute management step is already due, its 5-minute ack target already missed.
    assert steps(rows, "page/")[0] == (45.0, "pagerduty")
    assert steps(rows, "management/") == [(45.0, "slack")]
    assert {m for m, _, _, s in rows if s.startswith("breach/response/")} == {45.0}
    assert {s for _, _, _, s in rows if s.startswith("action/notify_executives")}, "sev1 actions run on upgrade"
    assert (await handle.describe()).typed_search_attributes.get(sa.SEVERITY) == "sev1"

    await env.sleep(timedelta(minutes=15))
    rows = at_minutes(outbox(workers, inp.key), state.opened_at)
    assert steps(rows, "management/") == [(45.0, "slack"), (60.0, "email")]
    await finish(env, inp.key, "carol")


async def test_resolve_hands_off_to_a_postmortem_that_outlives_the_incident(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev2")
    await env.sleep(timedelta(minutes=2))
    await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="dana"))
    await send_update(env.client, inp.key, "resolve", ResolveRequest(by="dana", summary="rolled back"))
    final = IncidentState.model_validate(await handle.result())

    assert final.status == "resolved"
    assert final.resolution_summary == "rolled back"
    assert final.postmortem_workflow_id == f"postmortem-{inp.key}"
    child = env.client.get_workflow_handle(final.postmortem_workflow_id)
    parent_desc, child_desc = await handle.describe(), await child.describe()
    assert parent_desc.status == WorkflowExecutionStatus.COMPLETED
    # The post-mortem outlives its incident: it drafts, then waits days for its review.
    assert child_desc.parent_id == handle.id
    drafted = await settle_postmortem(env.client, final.postmortem_workflow_id)
    assert drafted.phase == "in_review" and drafted.revision == 1
    assert (workers.postmortem_dir / f"{inp.key}.md").exists()

    # The hand-off contract: the incident's whole state and timeline, and the policy it ran under.
    handoff = PostMortemInput.model_validate_json((workers.postmortem_dir / f"{inp.key}.input.json").read_text())
    assert handoff.incident.key == inp.key
    assert handoff.incident.status == "resolved"
    assert handoff.incident.timeline == final.timeline[: len(handoff.incident.timeline)]
    assert "resolved" in [e.kind for e in handoff.incident.timeline]
    assert handoff.policy == default_policy
    assert handoff.parent_workflow_id == handle.id

    told = {e["id"].split("/")[3] for e in outbox(workers, inp.key) if e["id"].split("/", 2)[2].startswith("resolved/")}
    assert told == set(default_policy.severity("sev2").stakeholders)
    with pytest.raises(IncidentError, match="resolved and closed"):
        await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="late"))


async def test_sev3_resolution_starts_no_postmortem(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev3")
    await finish(env, inp.key, "erin")
    final = IncidentState.model_validate(await handle.result())
    assert final.postmortem_workflow_id is None
    assert final.timeline[-1].kind == "postmortem"
    assert "not in the policy's postmortem_severities" in final.timeline[-1].text


async def test_a_running_incident_keeps_the_policy_it_opened_under(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    original = (ROOT / "policies" / "default.yaml").read_text()
    policy_file.write_text(original)
    inp, _ = await start_incident(env.client, load_policy(policy_file), severity="sev1")
    # Someone shortens the pager delay while the incident is open.
    policy_file.write_text(original.replace('escalation_delay: "5 minutes"', 'escalation_delay: "1 minute"'))
    assert load_policy(policy_file).escalation_policies.primary_oncall[0].escalation_delay == timedelta(minutes=1)
    await env.sleep(timedelta(minutes=11))
    state = await state_of(env, inp.key)
    assert steps(at_minutes(outbox(workers, inp.key), state.opened_at), "page/") == [
        (0.0, "pagerduty"),
        (5.0, "pagerduty"),
        (10.0, "pagerduty"),
    ]
    await finish(env, inp.key, "test")


async def test_an_empty_rotation_escalates_to_the_next_level_at_once_and_says_so(
    env: WorkflowEnvironment, workers: Settings, tmp_path: Path
) -> None:
    text = (ROOT / "policies" / "default.yaml").read_text()
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("members: [alice, bob, carol, dave]\n", "members: []\n", 1))
    policy = load_policy(path)
    assert policy.roster.rotations["primary_oncall"].members == []
    inp, _ = await start_incident(env.client, policy, severity="sev1")
    await env.sleep(timedelta(minutes=1))
    state = await state_of(env, inp.key)
    nobody = [e for e in state.timeline if e.kind == "page" and "nobody to page" in e.text]
    assert [e.text.split(":")[0] for e in nobody] == ["level 1", "level 2", "level 3"]
    assert all("the rotation has no members" in e.text for e in nobody)
    # Each empty level moves on within seconds, not after its escalation delay.
    assert all((e.at - state.opened_at) < timedelta(seconds=10) for e in nobody)
    assert state.escalation.exhausted
    assert not [line for line in outbox(workers, inp.key) if line["id"].split("/", 2)[2].startswith("page/")]
    await finish(env, inp.key, "test")
