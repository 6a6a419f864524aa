"""Issue #11's "done when" for the public page: an alert whose summary names an internal host never appears in
`/status`, `/status.json` or the Statuspage request bodies, and a service not in the component list never
appears. End to end: alerts posted to the receiver, incidents in a real Temporal dev server, the worker's live
Statuspage channel (built from its environment and its own policy file) against a local Statuspage, and the
receiver's own page."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.delivery import DeliveryActivities
from activities.outbox import Outbox
from tests.support.harness import run_workers
from tests.support.paths import ROOT
from tests.support.vendor_fakes import FakeStatuspage
from tests.support.vendor_server import VendorServer
from tocsin.channels.registry import channels_from_env
from tocsin.incident.client import get_incident
from tocsin.policy.loader import load_policy
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.serve import temporal_app
from tocsin.settings import Settings

PAGE = "publicpage01"
POLICY = ROOT / "policies" / "default.yaml"  # lists checkout, billing and search
HOST = "vault-int-3.corp.internal"
LEAKS = (HOST, "corp.internal", "token rotation", "TokenRotationFailed", "SecretsSyncStalled", "vault-int")


def alert(name: str, service: str, summary: str) -> dict[str, Any]:
    labels = {"alertname": name, "service": service, "environment": "prod", "severity": "critical"}
    return {"labels": {**labels, "instance": f"{HOST}:8200"}, "summary": summary}


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.3)


async def test_alert_text_and_unlisted_services_never_go_public(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    client = dev_env.client
    settings = Settings(home=tmp_path / "home")
    with VendorServer() as server:
        statuspage = FakeStatuspage(server, PAGE, {"cmp_checkout": "operational", "cmp_vault": "operational"})
        env = {
            "TOCSIN_STATUSPAGE_API_KEY": "statuspage-public-key",
            "TOCSIN_STATUSPAGE_PAGE_ID": PAGE,
            "TOCSIN_STATUSPAGE_API_URL": server.url,
            # Mapped to a Statuspage component, but not listed in the policy: still never published.
            "TOCSIN_STATUSPAGE_COMPONENTS": "checkout=cmp_checkout,vault-int=cmp_vault",
            "TOCSIN_POLICY": str(POLICY),
        }
        delivery = DeliveryActivities(Outbox(settings.outbox_path), channels_from_env(env))
        async with run_workers(client, settings, delivery):
            app = temporal_app(client, load_policy(POLICY), ReceiverConfig())
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http:
                posted = await http.post(
                    "/api/v1/alerts",
                    json=[
                        alert("TokenRotationFailed", "checkout", f"token rotation failed on {HOST}: checkout down"),
                        alert("SecretsSyncStalled", "vault-int", f"token rotation stalled on {HOST}"),
                    ],
                )
                assert posted.status_code == 202
                vault_key, checkout_key = sorted(posted.json()["keys"])  # secretssyncstalled-... first
                assert "checkout" in checkout_key and "vault" in vault_key

                async def delivered() -> bool:
                    states = [await get_incident(client, key) for key in (checkout_key, vault_key)]
                    return all(
                        any(e.kind == "delivered" and "statuspage" in e.text for e in s.timeline) for s in states
                    )

                await until(delivered)

                async def listed() -> bool:
                    return bool((await http.get("/status.json")).json()["incidents"])

                await until(listed)  # visibility is eventually consistent, and the page caches for 10 s
                document = (await http.get("/status.json")).text
                html = (await http.get("/status")).text
            checkout, vault = [await get_incident(client, key) for key in (checkout_key, vault_key)]

    # The incident titles are the alerts' summaries: exactly what must never be published.
    assert HOST in checkout.title and HOST in vault.title
    # Statuspage: one public incident, for the listed service, worded by the policy.
    [public] = statuspage.incidents
    assert public["name"] == "Major outage on checkout"
    assert public["incident_updates"][0]["body"] == "We are investigating an issue affecting checkout."
    assert statuspage.components == {"cmp_checkout": "major_outage", "cmp_vault": "operational"}
    assert any("statuspage:not-public" in e.text for e in vault.timeline), "the unlisted one was withheld"
    # The receiver's page: the listed components only, the policy's title.
    assert '"title":"Major outage on checkout"' in document and "Major outage on checkout" in html
    for text in [document, html, *(r.text for r in server.requests)]:
        for leak in (*LEAKS, checkout_key, vault_key):
            assert leak not in text, leak
