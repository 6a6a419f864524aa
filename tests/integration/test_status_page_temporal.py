"""The public status page, the whole path against a real Temporal dev server: incidents opened, acknowledged and
resolved by the real workers, read back through visibility and the status query, and served by the receiver's
real wiring without a word of what is internal (the pure parts: tests/unit/test_status_page.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import run_workers, start_incident, unique_key
from tocsin.incident.client import open_incident, send_update
from tocsin.incident.updates import AcknowledgeRequest, ResolveRequest
from tocsin.policy.schema import Policy
from tocsin.policy.status_page import StatusPagePolicy
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.public_status import IncidentSummary, StatusPage, fetch_incidents
from tocsin.receiver.public_status_setup import StatusPageConfig
from tocsin.receiver.serve import temporal_app
from tocsin.settings import Settings

# What an alert sender may write as a summary (the incident's title): markup, an internal host, a secret's story.
LEAK = "<script>alert('owned')</script> token rotation failed on vault-int-3.corp.internal"


def listing(*components: str, **titles: str) -> StatusPagePolicy:
    return StatusPagePolicy(components=list(components), titles=titles)


# --- against a real Temporal dev server -----------------------------------------------------------------


async def poll(status: StatusPage, done: Any, seconds: float = 30.0) -> Any:
    """The view once `done(view)` holds (visibility is eventually consistent; the workflow closes after its
    resolution's notifications)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        view = await status.view()
        if done(view) or asyncio.get_running_loop().time() > deadline:
            return view
        await asyncio.sleep(0.3)


async def test_status_page_against_temporal(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path: Path
) -> None:
    client = dev_env.client
    down, slow, fixed = unique_key("down"), unique_key("slow"), unique_key("fixed")
    public = listing(down, slow, fixed)
    async with run_workers(client, Settings(home=tmp_path / "home")):
        inp, _ = await start_incident(client, default_policy, service=down, severity="sev1", labels={"pod": "pod-x1"})
        inp = inp.model_copy(update={"title": LEAK})  # what the page must never show, on a listed component...
        leaky = inp.model_copy(update={"key": unique_key("leaky"), "service": unique_key("vault-int")})
        assert await open_incident(client, leaky)  # ...and an unlisted one, which must not appear at all
        await asyncio.sleep(1.1)  # else the acknowledgement lands in the first workflow task, at the same instant
        await send_update(client, inp.key, "acknowledge", AcknowledgeRequest(by="alice.oncall"))
        await start_incident(client, default_policy, service=slow, severity="sev2")
        old, handle = await start_incident(client, default_policy, service=fixed, severity="sev3")
        await send_update(client, old.key, "resolve", ResolveRequest(by="bob.oncall", summary="rolled back v2.3"))
        await handle.result()

        known: dict[str, IncidentSummary] = {}

        async def fetch(since: datetime) -> list[IncidentSummary]:
            return await fetch_incidents(client, since, known)

        mine = {down, slow, fixed}
        live = StatusPage(fetch, StatusPageConfig(cache_seconds=0, public=public))
        view = await poll(
            live,
            lambda v: (
                {i.component for i in v.incidents} >= {down, slow} and any(i.component == fixed for i in v.history)
            ),
        )
        current = {i.component: i for i in view.incidents if i.component in mine}
        assert set(current) == {down, slow}
        assert current[down].status == "identified"
        assert current[down].impact == "major_outage"
        assert current[down].title == f"Major outage on {down}"
        assert current[down].updated_at > current[down].started_at  # the acknowledgement
        assert current[slow].status == "investigating"
        assert current[slow].impact == "partial_outage"
        assert current[slow].updated_at == current[slow].started_at
        (past,) = [i for i in view.history if i.component == fixed]
        assert past.status == "resolved" and past.impact == "degraded_performance"
        assert past.resolved_at is not None and past.duration_seconds is not None
        assert past.duration_seconds == int((past.resolved_at - past.started_at).total_seconds())
        statuses = {c.name: c.status for c in view.components}
        assert statuses[down] == "major_outage"
        assert statuses[slow] == "partial_outage"
        assert statuses[fixed] == "operational"
        assert list(statuses) == [down, slow, fixed], "the listed components, nothing else"
        assert view.status == "major_outage"
        assert known, "the closed run's result is remembered"

        # The real wiring, public despite a token on the alert endpoints, listing what its policy lists.
        policy = default_policy.model_copy(update={"status_page": public})
        app = temporal_app(client, policy, ReceiverConfig(token=SecretStr("t" * 32)))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as http:
            document = await http.get("/status.json")
            html = await http.get("/status")
        assert document.status_code == 200 and html.status_code == 200
        body = document.json()
        assert {i["component"] for i in body["incidents"]} == {down, slow}
        assert {i["title"] for i in body["incidents"]} == {f"Major outage on {down}", f"Partial outage on {slow}"}
        assert fixed in {i["component"] for i in body["history"]}
        assert down in html.text and fixed in html.text
        for text in (document.text, html.text):
            secrets = ("alice", "bob", "pod-x1", "rolled back", inp.key, old.key, "sev1", "sev2", "sev3")
            for secret in (*secrets, "vault-int", "token rotation", "corp.internal", "script", leaky.key):
                assert secret not in text, secret

    # No worker to answer the status query: visibility alone, within the lookup budget, instead of no page.
    fresh: dict[str, IncidentSummary] = {}

    async def fetch_without_worker(since: datetime) -> list[IncidentSummary]:
        return await fetch_incidents(client, since, fresh)

    blind = StatusPage(fetch_without_worker, StatusPageConfig(cache_seconds=0, public=public))
    started = asyncio.get_running_loop().time()
    view = await blind.view()
    assert asyncio.get_running_loop().time() - started < 4.5
    current = {i.component: i for i in view.incidents if i.component in mine}
    assert current[down].status == "identified"  # from the IncidentStatus search attribute
    assert current[slow].impact == "partial_outage"
    assert current[down].title == f"Major outage on {down}"  # worded from the severity attribute
    assert current[down].updated_at == current[down].started_at  # visibility knows no later change
    (past,) = [i for i in view.history if i.component == fixed]
    assert past.duration_seconds is not None, "a closed run's result needs no worker"
    assert len(fresh) >= 1
