"""Maintenance windows on the time-skipping server: a window holds the pages of matching incidents (and only
theirs), names itself on their timelines, and when it ends an incident still firing pages exactly once while
one resolved or quiet meanwhile pages nobody. Both kinds: the policy's weekly windows and one-off windows
started in the registry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox, run_workers, settle_postmortem, unique_key
from tests.support.paths import ROOT
from tests.workflows.test_incident_lifecycle import state_of
from tocsin.incident.client import open_incident, send_update
from tocsin.incident.contracts import AlertBatch, AlertEvent, IncidentInput, IncidentState, incident_workflow_id
from tocsin.incident.updates import ResolveRequest
from tocsin.incident.why import decisions
from tocsin.maintenance.client import MaintenanceError, current_windows, end_window, start_window
from tocsin.maintenance.contracts import EndWindow, StartWindow
from tocsin.policy.loader import load_policy
from tocsin.policy.maintenance import ScheduledWindow, Weekly
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.settings import Settings

ALL_DAYS: Any = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


async def alert_incident(env: WorkflowEnvironment, policy: Policy, service: str) -> IncidentInput:
    """An incident the way an alert opens one (not a person's `tocsin trigger`, which no window holds)."""
    request = TriggerRequest(
        service=service, severity="sev1", key=unique_key(service), source="alertmanager", labels={"env": "prod"}
    )
    inp = plan_incident(policy, request, datetime.now(UTC))
    assert await open_incident(env.client, inp)
    await signal_alert(env, inp.key, "firing")
    return inp


async def signal_alert(env: WorkflowEnvironment, key: str, status: str) -> None:
    event = AlertEvent.model_validate({"fingerprint": f"{key}-fp", "status": status, "labels": {"env": "prod"}})
    await env.client.get_workflow_handle(incident_workflow_id(key)).signal("alerts", AlertBatch(events=[event]))


def pages(settings: Settings, key: str) -> list[str]:
    return [line["id"].split("/", 2)[2] for line in outbox(settings, key) if "/page/" in line["id"]]


def texts(state: IncidentState, kind: str) -> list[str]:
    return [e.text for e in state.timeline if e.kind == kind]


async def settle_all(env: WorkflowEnvironment, keys: list[str]) -> None:
    for key in keys:
        state = await state_of(env, key)
        if state.status != "resolved":
            await send_update(env.client, key, "resolve", ResolveRequest(by="alice"))
        final = IncidentState.model_validate(await env.client.get_workflow_handle(incident_workflow_id(key)).result())
        if final.postmortem_workflow_id:
            await settle_postmortem(env.client, final.postmortem_workflow_id)


async def test_a_weekly_window_holds_its_service_then_one_catch_up_page_for_what_still_fires(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window = ScheduledWindow(
        name="checkout-deploy",
        service="checkout",
        labels={"env": "prod"},
        weekly=Weekly(days=ALL_DAYS, start=(now - timedelta(minutes=2)).time(), duration=timedelta(minutes=30)),
        reason="weekly checkout deploy",
    )
    policy = default_policy.model_copy(update={"maintenance": [window]})
    firing = await alert_incident(env, policy, "checkout")
    resolved = await alert_incident(env, policy, "checkout")
    quiet = await alert_incident(env, policy, "checkout")
    other = await alert_incident(env, policy, "payments")
    await env.sleep(timedelta(minutes=1))

    assert pages(workers, firing.key) == pages(workers, resolved.key) == pages(workers, quiet.key) == []
    assert pages(workers, other.key) == ["page/0/1"]  # another service pages as ever
    held = texts(await state_of(env, firing.key), "held")
    assert held == [
        f"pages held by maintenance window policy:checkout-deploy (weekly checkout deploy, by policy, "
        f"until {now - timedelta(minutes=2) + timedelta(minutes=30):%H:%M}Z)"
    ]
    # Stakeholders hear nothing of it either (sev1 tells them when the response target is missed: not held).
    assert not any(line["channel"] == "slack" for line in outbox(workers, firing.key))
    await send_update(env.client, resolved.key, "resolve", ResolveRequest(by="alice", summary="fixed in the deploy"))

    await env.sleep(timedelta(minutes=25))
    await signal_alert(env, quiet.key, "resolved")  # recovers 2 minutes before the window ends
    await env.sleep(timedelta(minutes=4))  # past the window's end (28 minutes after opening)
    state = await state_of(env, firing.key)
    assert pages(workers, firing.key) == ["page/0/1"]
    assert texts(state, "catch_up") == [
        "maintenance window policy:checkout-deploy ended with the incident still firing: catch-up page, "
        "unless a storm holds it"
    ]
    assert state.maintenance.released_at is not None and state.escalation.breaches == []
    assert pages(workers, resolved.key) == []
    assert pages(workers, quiet.key) == []
    assert texts(await state_of(env, quiet.key), "held")[-1].startswith(
        "maintenance window policy:checkout-deploy ended with no alert still firing: no catch-up page"
    )
    # `tocsin why`: the window is the reason nobody was paged, then the catch-up page and its delivery.
    rows = decisions(state, policy, person="alice")
    held_rows = [r for r in rows if r.reason.startswith("maintenance window: pages held by")]
    assert [(r.kind, r.who, r.outcome) for r in held_rows] == [("not_paged", "alice", "not paged")]
    kinds = [r.kind for r in decisions(state, policy)]
    assert kinds.index("held") < kinds.index("catch_up") < kinds.index("page")
    # Then the firing one follows its chain: the next attempt 5 minutes after the catch-up page.
    await env.sleep(timedelta(minutes=5, seconds=30))
    assert pages(workers, firing.key) == ["page/0/1", "page/0/2"]
    await settle_all(env, [firing.key, resolved.key, quiet.key, other.key])


async def test_a_one_off_window_holds_new_incidents_and_pages_once_when_it_runs_out(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    started = await start_window(
        env.client,
        StartWindow(service="checkout", duration=timedelta(minutes=20), reason="deploy v42", by="alice"),
    )
    assert started.id.startswith("mw-") and [w.id for w in (await current_windows(env.client)).windows] == [started.id]
    held = await alert_incident(env, default_policy, "checkout")
    by_hand = plan_incident(default_policy, TriggerRequest(service="checkout", severity="sev1"), datetime.now(UTC))
    assert await open_incident(env.client, by_hand)
    await env.sleep(timedelta(minutes=1))

    assert pages(workers, held.key) == []
    assert pages(workers, by_hand.key) == ["page/0/1"]  # a person asked for this one: never held
    assert texts(await state_of(env, held.key), "held")[0].startswith(f"pages held by maintenance window {started.id} ")

    await env.sleep(timedelta(minutes=20))
    assert pages(workers, held.key) == ["page/0/1"]
    assert (await current_windows(env.client)).windows == []  # the registry let it go too
    await settle_all(env, [held.key, by_hand.key])


async def test_the_registry_refuses_what_it_cannot_do(env: WorkflowEnvironment, workers: Settings) -> None:
    with pytest.raises(ValueError, match="a window lasts between"):
        StartWindow(service="checkout", duration=timedelta(days=8), reason="too long", by="alice")
    with pytest.raises(MaintenanceError, match="no open maintenance window mw-00000000"):
        await end_window(env.client, EndWindow(id="mw-00000000", by="alice"))
    with pytest.raises(MaintenanceError, match="declared in the policy"):
        await end_window(env.client, EndWindow(id="policy:checkout-deploy", by="alice"))
    window = await start_window(
        env.client, StartWindow(service="checkout", duration=timedelta(hours=1), reason="failover drill", by="bob")
    )
    ended = await end_window(env.client, EndWindow(id=window.id, by="bob"))
    assert ended.ended_by == "bob" and ended.ends_at < window.ends_at
    assert (await current_windows(env.client)).windows == []


async def test_a_deploys_burst_held_by_a_window_becomes_one_storm_at_its_end(
    env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path
) -> None:
    """Held from their opening, incidents ask the storm guard when the window lets them page: six catch-up pages
    due at once are a storm (threshold 3 here), so three page on their own and one storm incident pages for the
    rest, not six pages at the window's end."""
    policy_file = tmp_path / "policy.yaml"
    text = (ROOT / "policies" / "default.yaml").read_text(encoding="utf-8")
    policy_file.write_text(text.replace("storm: {threshold: 20,", "storm: {threshold: 3,"), encoding="utf-8")
    policy = load_policy(policy_file)
    settings = Settings(home=tmp_path / "home", policy=policy_file)
    async with run_workers(env.client, settings):
        deploy = StartWindow(service="checkout", duration=timedelta(minutes=10), reason="deploy v43", by="alice")
        await start_window(env.client, deploy)
        keys = [(await alert_incident(env, policy, "checkout")).key for _ in range(6)]
        await env.sleep(timedelta(minutes=1))
        assert all(pages(settings, k) == [] for k in keys)
        assert [(await state_of(env, k)).storm_key for k in keys] == [None] * 6, "nobody asked the guard yet"

        await env.sleep(timedelta(minutes=10))
        # Asking the guard runs in real time (a signal and its answer): wait for every incident to know.
        for _ in range(300):
            states = [await state_of(env, k) for k in keys]
            if all(s.paging_held or pages(settings, s.key) for s in states):
                break
            await asyncio.sleep(0.1)
        own = [s.key for s in states if pages(settings, s.key)]
        held = [s for s in states if s.paging_held]
        assert len(own) == 3 and len(held) == 3, [(s.key, s.paging_held, pages(settings, s.key)) for s in states]
        (storm_key,) = {s.storm_key for s in held}
        assert storm_key is not None
        for _ in range(300):
            if pages(settings, storm_key):
                break
            await asyncio.sleep(0.1)
        assert pages(settings, storm_key) == ["page/0/1"], "the storm incident pages once for the held three"
        await settle_all(env, [*keys, storm_key])
