"""A maintenance window against the dev server, driven by the `tocsin maintenance` commands: it holds the page of
a sev1 alert for its service (nothing in the outbox, the timeline names the window) while another service
still pages; ending it early sends exactly one catch-up page for the incident still firing and none for the
one resolved meanwhile. Ending reaches the incidents through visibility, which only a real server has."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox, run_workers, settle_postmortem
from tests.workflows.test_maintenance_windows import alert_incident, pages, texts
from tocsin.incident.client import get_incident, send_update
from tocsin.incident.contracts import IncidentState, incident_workflow_id
from tocsin.incident.updates import ResolveRequest
from tocsin.policy.schema import Policy
from tocsin.settings import Settings

TOCSIN = Path(sys.executable).parent / "tocsin"


@pytest.fixture
async def workers(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Settings]:
    settings = Settings(home=tmp_path / "home")
    async with run_workers(dev_env.client, settings):
        yield settings


async def tocsin(dev_env: WorkflowEnvironment, home: Path, *args: str) -> str:
    """Run the command line in a thread, so this test's workers keep serving while it waits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TOCSIN_"))}
    env.update(TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host, TOCSIN_HOME=str(home))
    done = await asyncio.to_thread(
        subprocess.run, [str(TOCSIN), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"tocsin {' '.join(args)}: exit {done.returncode}: {done.stderr}"
    return done.stdout


async def until(what: str, check: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.2)):
        if await check():
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out after {seconds:.0f}s waiting for {what}")


async def test_ending_a_window_early_sends_one_catch_up_page_and_none_for_what_resolved(
    dev_env: WorkflowEnvironment, workers: Settings, default_policy: Policy, tmp_path: Path
) -> None:
    home = tmp_path / "cli"
    window_id = (
        await tocsin(dev_env, home, "maintenance", "start", "--service", "checkout", "--for", "2h",
                     "--reason", "deploy v42", "--by", "alice")
    ).strip()  # fmt: skip
    assert window_id.startswith("mw-"), window_id
    listed = json.loads(await tocsin(dev_env, home, "maintenance", "list", "--json"))
    assert [(w["id"], w["service"], w["reason"], w["by"]) for w in listed] == [
        (window_id, "checkout", "deploy v42", "alice")
    ]

    firing = await alert_incident(dev_env, default_policy, "checkout")
    resolved = await alert_incident(dev_env, default_policy, "checkout")
    other = await alert_incident(dev_env, default_policy, "payments")

    async def other_paged() -> bool:
        return pages(workers, other.key) == ["page/0/1"]

    async def both_held() -> bool:
        states = [await get_incident(dev_env.client, k) for k in (firing.key, resolved.key)]
        return all(texts(s, "held") for s in states)

    await until("the other service's page", other_paged)
    await until("both checkout incidents held", both_held)
    state = await get_incident(dev_env.client, firing.key)
    assert texts(state, "held")[0].startswith(f"pages held by maintenance window {window_id} (deploy v42, by alice")
    assert outbox(workers, firing.key) == outbox(workers, resolved.key) == []
    shown = await tocsin(dev_env, home, "incidents", "show", firing.key)
    assert f"paging held: maintenance window {window_id} (deploy v42, by alice, until " in shown
    await send_update(dev_env.client, resolved.key, "resolve", ResolveRequest(by="alice", summary="deploy fixed it"))

    ended = await tocsin(dev_env, home, "maintenance", "end", window_id, "--by", "alice")
    assert ended.startswith(f"{window_id} ended at ")

    async def caught_up() -> bool:
        return bool(pages(workers, firing.key))

    await until("the catch-up page", caught_up)
    await asyncio.sleep(2)  # a second catch-up page, if there were one, would be in the outbox by now
    assert pages(workers, firing.key) == ["page/0/1"]
    assert pages(workers, resolved.key) == []
    state = await get_incident(dev_env.client, firing.key)
    assert texts(state, "catch_up") == [
        f"maintenance window {window_id} ended with the incident still firing: catch-up page, unless a storm holds it"
    ]
    assert json.loads(await tocsin(dev_env, home, "maintenance", "list", "--json")) == []

    for key in (firing.key, resolved.key, other.key):
        if (await get_incident(dev_env.client, key)).status != "resolved":
            await send_update(dev_env.client, key, "resolve", ResolveRequest(by="alice"))
        result = await dev_env.client.get_workflow_handle(incident_workflow_id(key)).result()
        final = IncidentState.model_validate(result)
        if final.postmortem_workflow_id:
            await settle_postmortem(dev_env.client, final.postmortem_workflow_id)


async def test_a_window_started_while_an_incident_pages_holds_its_next_pages_and_its_end_pages_at_once(
    dev_env: WorkflowEnvironment, workers: Settings, default_policy: Policy, tmp_path: Path
) -> None:
    paging = await alert_incident(dev_env, default_policy, "search")

    async def first_page() -> bool:
        return pages(workers, paging.key) == ["page/0/1"]

    await until("the first page", first_page)
    home = tmp_path / "cli"
    window_id = (
        await tocsin(
            dev_env, home, "maintenance", "start", "--service", "search", "--for", "1h", "--reason", "failover"
        )
    ).strip()

    async def held() -> bool:
        return bool(texts(await get_incident(dev_env.client, paging.key), "held"))

    await until("the registry's notice to the open incident", held)
    await tocsin(dev_env, home, "maintenance", "end", window_id)

    async def caught_up() -> bool:
        return len(pages(workers, paging.key)) == 2

    # The next attempt was due 5 minutes after the first page: the window's end pages it now instead.
    await until("the catch-up page", caught_up)
    assert pages(workers, paging.key) == ["page/0/1", "page/0/2"]
    await send_update(dev_env.client, paging.key, "resolve", ResolveRequest(by="alice"))
    final = IncidentState.model_validate(
        await dev_env.client.get_workflow_handle(incident_workflow_id(paging.key)).result()
    )
    if final.postmortem_workflow_id:
        await settle_postmortem(dev_env.client, final.postmortem_workflow_id)
