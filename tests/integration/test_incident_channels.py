"""A sev1 from first page to resolution with every channel live against local vendor servers.

Time-skipped: the whole 62-minute incident takes seconds. Every vendor plays its documented API on one
loopback server (SMTP on aiosmtpd), so the test reads back what each received, in order: PagerDuty
triggered, acknowledged and resolved; the war room created, pinned and its summary rewritten on each
change; the status page opened, identified and resolved; calls, texts, emails, a ticket, Teams and a
webhook. Then it exports the incident's whole history and the captured logs and finds no secret in either.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from activities.delivery import DeliveryActivities
from activities.outbox import Outbox
from tests.support.harness import outbox, run_workers, settle_postmortem, start_incident
from tests.support.paths import ROOT
from tests.support.vendor_fakes import FakeGitHub, FakeSlack, FakeStatuspage, MailRecorder, smtp_server
from tests.support.vendor_server import Recorded, Reply, VendorServer
from tocsin.channels.registry import CHANNEL_NAMES, channels_from_env
from tocsin.incident.client import send_update
from tocsin.incident.contracts import IncidentState
from tocsin.incident.updates import AcknowledgeRequest, ResolveRequest
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.settings import Settings

PD_KEY = "R0UT1NGk3y0123456789abcdefABCDEF"
SLACK_TOKEN = "xoxb-e2e-7f3a9c-slackSecret"
SMTP_USER = "relay-user"
SMTP_PASSWORD = "smtp-e2e-pa55word"
TWILIO_SID = "AC11112222333344445555666677778888"
TWILIO_TOKEN = "twilio-e2e-token-5b2c"
STATUSPAGE_KEY = "statuspage-e2e-key-91d0"
PAGE = "e2epage0001"
GITHUB_TOKEN = "ghp_e2eToken0a1b2c3d4e5f"
TEAMS_SECRET = "teams-sig-8c7d6e"
HOOK_SECRET = "hook-token-4f5e6d"
SECRETS = (PD_KEY, SLACK_TOKEN, SMTP_PASSWORD, TWILIO_TOKEN, STATUSPAGE_KEY, GITHUB_TOKEN, TEAMS_SECRET, HOOK_SECRET)


def e2e_policy(tmp_path: Path) -> Policy:
    """The default policy, plus a ticket for sev1 and two late management steps, so every channel is used."""
    data = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    data["incident_classification"]["severity_levels"]["sev1"]["automatic_actions"].append("create_ticket")
    data["escalation_policies"]["management_escalation"] += [
        {"type": "teams", "channel": "ops-bridge", "conditions": ["severity == 'sev1'", "duration > '40 minutes'"]},
        {"type": "webhook", "channel": "audit", "conditions": ["severity == 'sev1'", "duration > '45 minutes'"]},
    ]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_policy(path)


class Vendors:
    """PagerDuty, Slack, Twilio, Statuspage, GitHub, Teams and a webhook on one loopback server."""

    def __init__(self, server: VendorServer) -> None:
        self.server = server
        self.slack = FakeSlack(server, SLACK_TOKEN)
        self.named = {name: self.slack.add_channel(name) for name in ("sre-alerts", "leadership")}
        self.statuspage = FakeStatuspage(server, PAGE, {"cmp_checkout": "operational"})
        self.github = FakeGitHub(server)
        self.sids = 0
        server.on("POST", "/v2/enqueue", self.pagerduty)
        for resource in ("Calls", "Messages"):
            server.on("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/{resource}.json", self.twilio)
        server.on("POST", "/teams/hook", Reply(200, body="1"))
        server.on("POST", "/hooks/tocsin", Reply(200, json={"ok": True}))

    def pagerduty(self, request: Recorded) -> Reply:
        body = request.json
        if body.get("routing_key") != PD_KEY:
            return Reply(400, json={"status": "invalid event", "errors": ["routing_key is invalid"]})
        return Reply(202, json={"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]})

    def twilio(self, request: Recorded) -> Reply:
        self.sids += 1
        return Reply(201, json={"sid": f"SM{self.sids:032d}", "status": "queued"})

    def env(self, smtp_port: int) -> dict[str, str]:
        url = self.server.url
        return {
            "TOCSIN_PAGERDUTY_ROUTING_KEY": PD_KEY,
            "TOCSIN_PAGERDUTY_EVENTS_URL": url,
            "TOCSIN_SLACK_TOKEN": SLACK_TOKEN,
            "TOCSIN_SLACK_API_URL": f"{url}/api",
            "TOCSIN_SMTP_URL": f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{smtp_port}?starttls=never",
            "TOCSIN_EMAIL_FROM": "tocsin@company.com",
            "TOCSIN_TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TOCSIN_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TOCSIN_TWILIO_FROM": "+15005550006",
            "TOCSIN_TWILIO_API_URL": url,
            "TOCSIN_STATUSPAGE_API_KEY": STATUSPAGE_KEY,
            "TOCSIN_STATUSPAGE_PAGE_ID": PAGE,
            "TOCSIN_STATUSPAGE_API_URL": url,
            "TOCSIN_STATUSPAGE_COMPONENTS": "checkout=cmp_checkout",
            "GITHUB_TOKEN": GITHUB_TOKEN,
            "TOCSIN_GITHUB_REPO": "acme/ops",
            "TOCSIN_GITHUB_API_URL": url,
            "TOCSIN_TEAMS_WEBHOOK_URL": f"{url}/teams/hook?sig={TEAMS_SECRET}",
            "TOCSIN_WEBHOOK_URL": f"{url}/hooks/tocsin?token={HOOK_SECRET}",
        }

    def received(self, prefix: str) -> list[Recorded]:
        return [r for r in self.server.requests if r.path.startswith(prefix)]


@pytest.fixture
def vendors() -> Iterator[Vendors]:
    with VendorServer() as server:
        yield Vendors(server)


async def test_sev1_end_to_end_with_every_channel_live(
    env: WorkflowEnvironment,
    settings: Settings,
    vendors: Vendors,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    policy = e2e_policy(tmp_path)
    mail = MailRecorder(login=(SMTP_USER, SMTP_PASSWORD))
    with smtp_server(mail, authenticator=mail.authenticate, auth_require_tls=False) as port:
        # The worker's own policy file decides what Statuspage may publish.
        live = channels_from_env({**vendors.env(port), "TOCSIN_POLICY": str(tmp_path / "policy.yaml")})
        assert sorted(live) == sorted(CHANNEL_NAMES), "every channel is live in this test"
        delivery = DeliveryActivities(Outbox(settings.outbox_path), live)
        async with run_workers(env.client, settings, delivery):
            inp, handle = await start_incident(env.client, policy, severity="sev1")
            await env.sleep(timedelta(minutes=46))
            await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="alice"))
            await env.sleep(timedelta(minutes=15))
            await send_update(env.client, inp.key, "resolve", ResolveRequest(by="alice", summary="rolled back"))
            final = IncidentState.model_validate(await handle.result())
            await settle_postmortem(env.client, final.postmortem_workflow_id or "")
            history = (await handle.fetch_history()).to_json()

    assert outbox(settings, inp.key) == [], "nothing fell back to the outbox"
    failed = [e.text for e in final.timeline if e.kind == "delivery_failed"]
    assert failed == []

    # PagerDuty: one alert (dedup_key = incident key), re-triggered by each page, then acknowledged, resolved.
    events = [r.json for r in vendors.received("/v2/enqueue")]
    actions = [e["event_action"] for e in events]
    assert {e["dedup_key"] for e in events} == {inp.key}
    assert actions[-2:] == ["acknowledge", "resolve"]
    assert set(actions[:-2]) == {"trigger"}
    # 3 pages to the primary on-call + the emergency response team's 4 people with a PagerDuty user.
    assert len(actions) - 2 == 3 + 4

    # Slack: the war room created once, its summary posted, pinned, then rewritten on ack and on resolve.
    slack_calls = [r.path.removeprefix("/api/") for r in vendors.received("/api/") if r.method == "POST"]
    assert slack_calls.count("conversations.create") == 1
    room = vendors.slack.room(inp.key)
    [summary] = vendors.slack.summaries(room)
    assert summary["ts"] in vendors.slack.pins[room]
    assert "*Status:* resolved" in summary["text"] and "resolved by alice" in summary["text"]
    updates = [r.json for r in vendors.received("/api/chat.update")]
    assert [u["metadata"]["event_payload"]["status"] for u in updates] == ["acknowledged", "resolved"]
    posts = [r.json["channel"] for r in vendors.received("/api/chat.postMessage")]
    # The summary, then stakeholders (#sre-alerts) at breach 5, breach 15, exhaustion, and #leadership at 30,
    # #sre-alerts again at resolution, and the post-mortem's draft as a plain message in the war room.
    assert posts == [room, "#sre-alerts", "#sre-alerts", "#sre-alerts", "#leadership", "#sre-alerts", room]
    draft = vendors.slack.messages[room][-1]
    assert draft["ts"] not in vendors.slack.pins[room] and "Post-mortem draft r1" in draft["text"]
    assert len(vendors.slack.messages[vendors.named["sre-alerts"]]) == 4

    # Statuspage: one public incident, investigating -> identified -> resolved; the component follows. Its
    # words are the policy's, for the listed component: never the incident's title, nor anyone's name.
    [public] = vendors.statuspage.incidents
    assert public["name"] == "Major outage on checkout"
    assert [u["status"] for u in public["incident_updates"]] == ["investigating", "identified", "resolved"]
    assert "alice" not in str(public["incident_updates"])
    assert all(final.title not in r.text and inp.key not in r.text for r in vendors.received(f"/pages/{PAGE}"))
    assert vendors.statuspage.components["cmp_checkout"] == "operational"

    # Twilio: calls at 15 and 17 minutes, texts at 19, 20, 21, in that order.
    twilio = [r.path.rsplit("/", 1)[1] for r in vendors.received("/2010-04-01/")]
    assert twilio == ["Calls.json", "Calls.json", "Messages.json", "Messages.json", "Messages.json"]

    # GitHub: one ticket; Teams at 40 minutes, the webhook at 45.
    assert [i["title"] for i in vendors.github.issues["acme/ops"]] == [final.title]
    assert len(vendors.received("/teams/hook")) == 1
    [hook] = vendors.received("/hooks/tocsin")
    assert hook.json["incident"] == inp.key and hook.json["channel"] == "webhook"

    # Email: executives at the start, stakeholders without a channel at each notice, management at 60.
    rcpts = [tuple(to) for _, to, _ in mail.delivered]
    assert sorted(rcpts[:2]) == [("cto@company.com",), ("vp-engineering@company.com",)]
    assert ("cto@company.com", "vp-engineering@company.com") in rcpts  # the management step's recipients
    # engineering_manager: breach x2, exhausted, resolved; then, as the post-mortem's reviewer, its draft.
    assert rcpts.count(("erin@company.com",)) == 5

    # No secret anywhere in what Temporal stored, nor in anything logged.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (*SECRETS, SMTP_USER + ":" + SMTP_PASSWORD):
        assert secret not in history, "a secret reached the workflow history"
        assert secret not in logged, "a secret reached the logs"
    assert vendors.server.unmatched == []


def _kinds(state: IncidentState, kind: str) -> list[str]:
    return [e.text for e in state.timeline if e.kind == kind]


async def test_followed_channels_sync_on_each_change_through_the_outbox(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev1")
    await env.sleep(timedelta(minutes=2))
    await send_update(env.client, inp.key, "acknowledge", AcknowledgeRequest(by="bob"))
    await env.sleep(timedelta(minutes=1))
    await send_update(env.client, inp.key, "resolve", ResolveRequest(by="bob"))
    final = IncidentState.model_validate(await handle.result())
    await settle_postmortem(env.client, final.postmortem_workflow_id or "")

    steps = [e["id"].split("/", 2)[2] for e in outbox(workers, inp.key)]
    syncs = [s for s in steps if s.startswith("sync/")]
    assert sorted(syncs) == sorted(
        f"sync/{n}/{channel}" for n in (1, 2) for channel in ("pagerduty", "slack", "statuspage")
    )
    # Resolution syncs before the stakeholders hear of it, so nobody is told "resolved" while PagerDuty pages.
    assert max(steps.index(s) for s in syncs) < min(i for i, s in enumerate(steps) if s.startswith("resolved/"))
    assert len(_kinds(final, "sync")) == 6
    followed = {(f.channel, f.synced) for f in final.followers}
    assert followed == {("pagerduty", "resolved"), ("slack", "resolved/sev1"), ("statuspage", "resolved/sev1")}
