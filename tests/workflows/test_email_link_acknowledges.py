"""A signed email link against a real incident on the time-skipping server (issue #14, item 4): the links a
page email carries for alice, opened (GET) change nothing; confirmed (POST) they acknowledge as alice via
email, once however often the link is used; an expired or altered link is refused and changes nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import start_incident
from tests.workflows.test_incident_lifecycle import finish, state_of
from tocsin.policy.schema import Policy
from tocsin.receiver.app import add_responder_routes
from tocsin.receiver.responder_settings import Responders, ResponderSecrets
from tocsin.responders.dispatch import temporal_act
from tocsin.responders.links import LinkMaker, sign
from tocsin.settings import Settings

SECRET = "link-secret-for-workflow-tests-51d7"
PUBLIC = "https://tocsin.example.com"
HUMAN_ACTIONS = ("acknowledged", "escalated", "resolved", "owner")


@asynccontextmanager
async def receiver(env: WorkflowEnvironment, policy: Policy) -> AsyncIterator[httpx.AsyncClient]:
    """The responder routes as the receiver serves them, acting through Temporal on the test server."""
    app = FastAPI()
    secrets = ResponderSecrets(action_link_secret=SecretStr(SECRET), public_url=PUBLIC)
    add_responder_routes(app, Responders(act=temporal_act(env.client), roster=policy.roster, secrets=secrets))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
        yield http


def page_links(policy: Policy, key: str) -> dict[str, str]:
    """The links alice's page email carries (as tocsin.channels.smtp puts them there), by verb: their paths."""
    maker = LinkMaker(SECRET, PUBLIC, policy.roster)
    return {link.verb: urlsplit(link.url).path for link in maker.links(key, "alice@company.com", datetime.now(UTC))}


async def test_an_email_link_acknowledges_as_alice_only_once_confirmed(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    links = page_links(default_policy, inp.key)
    assert set(links) == {"acknowledge", "escalate", "resolve"}
    async with receiver(env, default_policy) as http:
        for verb in ("acknowledge", "escalate", "resolve"):  # a mail scanner opens every link in the mail
            opened = await http.get(links[verb])
            assert opened.status_code == 200 and '<form method="post">' in opened.text
        await env.sleep(timedelta(seconds=30))
        state = await state_of(env, inp.key)
        assert state.status == "triggered" and state.acknowledged_by is None and state.escalation_level == 1
        assert [e for e in state.timeline if e.kind in HUMAN_ACTIONS] == []

        done = await http.post(links["acknowledge"])
        assert done.status_code == 200, done.text
        assert f"Incident {inp.key}: acknowledged" in done.text and "Acknowledged by alice." in done.text
        again = await http.post(links["acknowledge"])  # the back button, a second click
        assert again.status_code == 200 and "Already done" in again.text, again.text
    # Another receiver (a replica, or this one restarted) does not remember the link: the update id still does.
    async with receiver(env, default_policy) as replica:
        elsewhere = await replica.post(links["acknowledge"])
        assert elsewhere.status_code == 200, elsewhere.text

    state = await state_of(env, inp.key)
    assert state.status == "acknowledged" and state.acknowledged_by == "alice" and state.owner == "alice"
    acknowledged = [e.text for e in state.timeline if e.kind == "acknowledged"]
    assert acknowledged == ["acknowledged by alice via email; paging stopped"]
    await finish(env, inp.key, "alice")


async def test_an_expired_or_altered_link_is_refused_and_changes_nothing(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy
) -> None:
    inp, _ = await start_incident(env.client, default_policy, severity="sev1")
    expired = "/api/v1/actions/" + sign(SECRET, inp.key, "acknowledge", "alice", int(time.time()) - 1)
    valid = sign(SECRET, inp.key, "acknowledge", "alice", int(time.time()) + 3600)
    # A resolve payload under the acknowledge link's signature.
    forged_payload = sign("not-the-secret", inp.key, "resolve", "alice", int(time.time()) + 3600).split(".")[0]
    altered = f"/api/v1/actions/{forged_payload}.{valid.split('.')[1]}"
    other_secret = "/api/v1/actions/" + sign("not-the-secret", inp.key, "acknowledge", "alice", int(time.time()) + 60)
    async with receiver(env, default_policy) as http:
        for path, words in (
            (expired, "This link has expired"),
            (altered, "This link has been altered"),
            (other_secret, "This link has been altered"),
        ):
            refused = await http.post(path)
            assert refused.status_code == 403 and words in refused.text, refused.text

    state = await state_of(env, inp.key)
    assert state.status == "triggered" and state.acknowledged_by is None
    assert [e for e in state.timeline if e.kind in HUMAN_ACTIONS] == []
    await finish(env, inp.key, "alice")
