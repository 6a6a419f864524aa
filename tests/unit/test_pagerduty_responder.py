"""PagerDuty two-way, without Temporal: the v3 webhook signature (PagerDuty's own vector, rotation), reading each
event type into an action as the roster person, and the route against a recording fake `act`."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tocsin.channels.base import Message
from tocsin.channels.pagerduty import PagerDutyChannel
from tocsin.intake.contracts import IngestResult, NormalizedAlert, TemporalUnavailable
from tocsin.policy.roster_schema import Roster
from tocsin.policy.schema import Policy
from tocsin.receiver.app import create_app
from tocsin.receiver.pagerduty_routes import MAX_BODY, PATH
from tocsin.receiver.responder_settings import PAGERDUTY_SECRET, Responders, ResponderSecrets, not_configured
from tocsin.responders.contracts import ActOutcome, InboundAction, NotActed
from tocsin.responders.pagerduty import Ignored, MalformedWebhook, WebhookEvent, action_for, parse, verify

# PagerDuty's own test vector: secret, raw body and X-PagerDuty-Signature from the webhookv3 package of
# PagerDuty's Go client (github.com/PagerDuty/go-pagerduty, webhookv3/webhookv3_test.go). Their developer docs'
# signatures page shows a header but no secret or body to check it against.
PD_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
PD_BODY = (
    b'{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated","resource_type":"incident",'
    b'"occurred_at":"2021-04-26T17:36:27.458Z","agent":{"html_url":"https://acme.pagerduty.com/users/PLH1HKV",'
    b'"id":"PLH1HKV","self":"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer",'
    b'"type":"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident",'
    b'"self":"https://api.pagerduty.com/incidents/PGR0VU2","html_url":"https://acme.pagerduty.com/incidents/PGR0VU2",'
    b'"number":2,"status":"triggered","title":"A little bump in the road","service":{"html_url":'
    b'"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH","self":"https://api.pagerduty.com/services/PF9KMXH",'
    b'"summary":"API Service","type":"service_reference"},"assignees":[{"html_url":'
    b'"https://acme.pagerduty.com/users/PTUXL6G","id":"PTUXL6G","self":"https://api.pagerduty.com/users/PTUXL6G",'
    b'"summary":"User 123","type":"user_reference"}],"escalation_policy":{"html_url":'
    b'"https://acme.pagerduty.com/escalation_policies/PUS0KTE","id":"PUS0KTE",'
    b'"self":"https://api.pagerduty.com/escalation_policies/PUS0KTE","summary":"Default",'
    b'"type":"escalation_policy_reference"},"teams":[{"html_url":"https://acme.pagerduty.com/teams/PFCVPS0",'
    b'"id":"PFCVPS0","self":"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering","type":"team_reference"}],'
    b'"priority":{"html_url":"https://acme.pagerduty.com/account/incident_priorities","id":"PSO75BM",'
    b'"self":"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1","type":"priority_reference"},'
    b'"urgency":"high","conference_bridge":{"conference_number":1000,"conference_url":"https://example.com"},'
    b'"resolve_reason":null}}}'
)
PD_SIGNATURE = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
PD_MISMATCH = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"

OLD, NEW = "old-secret-for-tests", "new-secret-for-tests"
KEY = "checkout-4f2a"


def sign(secret: str, body: bytes) -> str:
    """An independent signer (hmac + hashlib, as PagerDuty's docs describe it), not the code under test."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook(
    event_type: str = "incident.acknowledged",
    *,
    agent: str | None = "PALICE1",
    agent_type: str = "user_reference",
    key: str | None = KEY,
    assignees: tuple[str, ...] = ("PALICE1",),
    event_id: str = "01EVENTACK0000000000000001",
) -> dict[str, Any]:
    incident: dict[str, Any] = {
        "id": "PINC123",
        "type": "incident",
        "status": event_type.removeprefix("incident."),
        "title": "checkout is down",
        "assignees": [{"id": a, "type": "user_reference", "summary": a} for a in assignees],
    }
    if key is not None:
        incident["incident_key"] = key
    return {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-01-05T10:00:00.000Z",
            "agent": {"id": agent, "type": agent_type, "summary": "someone"} if agent else None,
            "client": None,
            "data": incident,
        }
    }


def event_of(payload: dict[str, Any]) -> WebhookEvent:
    return parse(json.dumps(payload).encode())


@pytest.fixture
def roster(default_policy: Policy) -> Roster:
    return default_policy.roster


# --- the signature -------------------------------------------------------------------------------------------


def test_pagerdutys_own_vector_verifies_and_its_mismatch_does_not() -> None:
    assert sign(PD_SECRET, PD_BODY) == PD_SIGNATURE  # the independent signer agrees with PagerDuty
    assert verify([SecretStr(PD_SECRET)], PD_SIGNATURE, PD_BODY)
    assert not verify([SecretStr(PD_SECRET)], PD_MISMATCH, PD_BODY)
    assert not verify([SecretStr(PD_SECRET)], PD_SIGNATURE, PD_BODY.replace(b'"P1"', b'"P2"'))


def test_any_signature_under_any_secret_verifies_during_a_rotation() -> None:
    body = json.dumps(webhook()).encode()
    both = [SecretStr(OLD), SecretStr(NEW)]
    # PagerDuty signs with every secret of the subscription; Tocsin may hold the old, the new, or both.
    assert verify([SecretStr(OLD)], f"{sign(OLD, body)},{sign(NEW, body)}", body)
    assert verify([SecretStr(NEW)], f"{sign(OLD, body)}, {sign(NEW, body)}", body)
    assert verify(both, sign(NEW, body), body)
    assert verify(both, sign(OLD, body), body)
    assert not verify([SecretStr(OLD)], sign(NEW, body), body)


@pytest.mark.parametrize(
    "header",
    [None, "", "v1=", "v0=" + sign(OLD, b"{}")[3:], sign(OLD, b"{}")[3:], "v1=ünïcödé", ",".join(["v1=00"] * 11)],
)
def test_a_missing_or_malformed_signature_does_not_verify(header: str | None) -> None:
    assert not verify([SecretStr(OLD)], header, b"{}")


def test_no_secret_verifies_nothing() -> None:
    assert not verify([], sign(OLD, b"{}"), b"{}")


# --- reading events --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "agent", "verb", "person"),
    [
        ("incident.acknowledged", "PALICE1", "acknowledge", "alice"),
        ("incident.resolved", "PBOB002", "resolve", "bob"),
        ("incident.escalated", "PALICE1", "escalate", "alice"),
    ],
)
def test_each_event_becomes_its_update_as_the_roster_person(
    roster: Roster, event_type: str, agent: str, verb: str, person: str
) -> None:
    action = action_for(event_of(webhook(event_type, agent=agent, event_id="E-1")), roster)
    assert action == InboundAction(vendor="pagerduty", verb=verb, person=person, event_id="E-1", key=KEY)


def test_a_reassignment_is_taken_over_by_the_new_assignee(roster: Roster) -> None:
    reassigned = event_of(webhook("incident.reassigned", agent="PALICE1", assignees=("PBOB002",)))
    assert isinstance(taken := action_for(reassigned, roster), InboundAction)
    assert (taken.verb, taken.person) == ("take", "bob")
    # Several assignees: the agent, when they assigned themselves; else the first one in the roster.
    both = event_of(webhook("incident.reassigned", agent="PBOB002", assignees=("PALICE1", "PBOB002")))
    assert isinstance(mine := action_for(both, roster), InboundAction) and mine.person == "bob"
    first = event_of(webhook("incident.reassigned", agent="PXXXXX9", assignees=("PNOBODY", "PBOB002", "PALICE1")))
    assert isinstance(theirs := action_for(first, roster), InboundAction) and theirs.person == "bob"
    stranger = action_for(event_of(webhook("incident.reassigned", assignees=("PNOBODY",))), roster)
    assert stranger == Ignored("no new assignee (PNOBODY) is a pagerduty: id in Tocsin's roster", "unknown_person")


def test_what_is_not_a_rostered_person_acting_on_tocsins_incident_is_ignored(roster: Roster) -> None:
    def kind(payload: dict[str, Any]) -> str:
        ignored = action_for(event_of(payload), roster)
        assert isinstance(ignored, Ignored)
        return ignored.kind

    assert kind(webhook(agent="PNOBODY")) == "unknown_person"
    # An integration's event (Tocsin's own acknowledge, echoed by PagerDuty) and PagerDuty's own escalation.
    assert kind(webhook(agent="PSERVIC", agent_type="service_reference")) == "not_a_person"
    assert kind(webhook("incident.escalated", agent=None)) == "not_a_person"
    assert kind(webhook(key=None)) == "not_tocsins"
    assert kind(webhook(key="Not A Tocsin Key")) == "not_tocsins"
    assert kind(webhook("incident.priority_updated")) == "event_type"
    assert kind({"event": {"id": "E", "event_type": "pagey.ping", "agent": None, "data": {"type": "ping"}}}) == (
        "event_type"
    )


def test_the_dedup_key_tocsins_channel_sends_names_the_incident_back(roster: Roster) -> None:
    page = Message(
        idempotency_key=f"{KEY}/1/page/0/pagerduty",
        incident=KEY,
        channel="pagerduty",
        target="PALICE1",
        text="checkout is down",
        at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    sent = PagerDutyChannel("R" * 32, "http://127.0.0.1:9").event(page)["dedup_key"]
    action = action_for(event_of(webhook(key=sent)), roster)
    assert isinstance(action, InboundAction) and action.key == KEY


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"event": {"event_type": "incident.acknowledged"}}',
        b'{"event": {"id": "", "event_type": "x"}}',
    ],
)
def test_a_body_that_is_not_a_v3_envelope_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        parse(body)


def test_an_incident_that_is_not_an_incident_is_malformed(roster: Roster) -> None:
    payload = webhook()
    payload["event"]["data"]["assignees"] = "PALICE1"
    with pytest.raises(MalformedWebhook, match=r"event\.data is not an incident"):
        action_for(event_of(payload), roster)


# --- the route -------------------------------------------------------------------------------------------------


class FakeAct:
    """Records every action; answers as an incident would, or raises what it is told to."""

    def __init__(self) -> None:
        self.actions: list[InboundAction] = []
        self.error: BaseException | None = None

    async def __call__(self, action: InboundAction) -> ActOutcome:
        if self.error is not None:
            raise self.error
        repeated = any(a.event_id == action.event_id for a in self.actions)
        self.actions.append(action)
        message = f"{action.verb} by {action.person}" + (" (repeated request, not applied again)" if repeated else "")
        return ActOutcome(key=action.key or "?", status="acknowledged", message=message)


class Receiver:
    def __init__(self, roster: Roster, secrets: tuple[str, ...] = (NEW,)) -> None:
        self.act = FakeAct()

        async def ingest(alerts: list[NormalizedAlert]) -> IngestResult:
            raise AssertionError("no alert is ingested by a PagerDuty webhook")

        async def health() -> bool:
            return True

        pagerduty = tuple(SecretStr(s) for s in secrets)
        responders = Responders(self.act, roster, ResponderSecrets(pagerduty_webhook_secrets=pagerduty))
        app = create_app(ingest=ingest, healthcheck=health, responders=responders)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080")

    async def post(self, payload: dict[str, Any], secret: str = NEW, signature: str | None = None) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": signature or sign(secret, body)}
        return await self.http.post(PATH, content=body, headers=headers)


@pytest.fixture
async def receiver(roster: Roster) -> AsyncIterator[Receiver]:
    running = Receiver(roster)
    yield running
    await running.http.aclose()


async def test_alices_acknowledgement_in_pagerduty_acknowledges_as_alice(receiver: Receiver) -> None:
    r = await receiver.post(webhook(event_id="01ACK"))
    assert r.status_code == 200
    assert r.json() == {"acted": True, "key": KEY, "status": "acknowledged", "message": "acknowledge by alice"}
    assert receiver.act.actions == [
        InboundAction(vendor="pagerduty", verb="acknowledge", person="alice", event_id="01ACK", key=KEY)
    ]


async def test_a_redelivered_event_is_the_same_event_id_so_the_same_update(receiver: Receiver) -> None:
    first = await receiver.post(webhook(event_id="01SAME"))
    again = await receiver.post(webhook(event_id="01SAME"))
    assert (first.status_code, again.status_code) == (200, 200)
    assert receiver.act.actions[0] == receiver.act.actions[1]
    assert again.json()["message"].endswith("(repeated request, not applied again)")


async def test_a_bad_or_missing_signature_is_401_and_nothing_is_acted_on(receiver: Receiver) -> None:
    assert (await receiver.post(webhook(), secret="someone-elses")).status_code == 401
    assert (await receiver.post(webhook(), signature=PD_MISMATCH)).status_code == 401
    missing = await receiver.http.post(PATH, content=json.dumps(webhook()).encode())
    assert missing.status_code == 401 and missing.json()["reason"] == "unauthorized"
    assert receiver.act.actions == []


async def test_both_secrets_verify_during_a_rotation(roster: Roster) -> None:
    rotating = Receiver(roster, (OLD, NEW))
    assert (await rotating.post(webhook(event_id="E1"), secret=OLD)).status_code == 200
    assert (await rotating.post(webhook(event_id="E2"), secret=NEW)).status_code == 200
    assert [a.event_id for a in rotating.act.actions] == ["E1", "E2"]
    await rotating.http.aclose()


async def test_an_unknown_pagerduty_user_is_answered_200_logged_and_not_acted_on(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.receiver.pagerduty")
    r = await receiver.post(webhook(agent="PNOBODY", event_id="01WHO"))
    assert r.status_code == 200
    assert r.json() == {
        "acted": False,
        "reason": "unknown_person",
        "message": "PagerDuty user PNOBODY is not a pagerduty: id in Tocsin's roster",
    }
    assert receiver.act.actions == []
    [line] = [r for r in caplog.records if "PNOBODY" in r.getMessage()]
    assert line.levelno == logging.WARNING and "01WHO" in line.getMessage()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (webhook(key="d3640fbd41094207a1c11e58e46b166X"), "not_tocsins"),
        (webhook("incident.priority_updated"), "event_type"),
        (webhook(agent="PSERVIC", agent_type="service_reference"), "not_a_person"),
    ],
)
async def test_what_tocsin_does_not_act_on_is_200_so_pagerduty_does_not_retry(
    receiver: Receiver, payload: dict[str, Any], reason: str
) -> None:
    r = await receiver.post(payload)
    assert (r.status_code, r.json()["acted"], r.json()["reason"]) == (200, False, reason)
    assert receiver.act.actions == []


async def test_a_refusal_by_the_incident_is_200_with_its_reason(receiver: Receiver) -> None:
    receiver.act.error = NotActed("acknowledge refused: incident checkout-4f2a is resolved", "refused")
    r = await receiver.post(webhook())
    assert r.status_code == 200
    assert r.json() == {
        "acted": False,
        "reason": "refused",
        "message": "acknowledge refused: incident checkout-4f2a is resolved",
    }


@pytest.mark.parametrize(
    "error",
    # What `act` raises when Temporal does not answer (tocsin.responders.dispatch decides: test_responder_dispatch).
    [TemporalUnavailable("Temporal did not answer: connection refused")],
)
async def test_temporal_unreachable_is_503_so_pagerduty_delivers_it_again(
    receiver: Receiver, error: BaseException
) -> None:
    receiver.act.error = error
    r = await receiver.post(webhook())
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json()["reason"] == "temporal_unavailable"


async def test_a_bug_is_500_not_503(receiver: Receiver) -> None:
    receiver.act.error = ValueError("a bug")
    r = await receiver.post(webhook())
    assert (r.status_code, r.json()["reason"]) == (500, "internal_error")


async def test_a_signed_body_that_is_not_a_webhook_is_400(receiver: Receiver) -> None:
    body = b'{"messages": []}'
    r = await receiver.http.post(PATH, content=body, headers={"X-PagerDuty-Signature": sign(NEW, body)})
    assert (r.status_code, r.json()["reason"]) == (400, "malformed")
    assert receiver.act.actions == []


async def test_a_body_over_the_limit_is_413_before_it_is_verified(receiver: Receiver) -> None:
    body = b" " * (MAX_BODY + 1)
    r = await receiver.http.post(PATH, content=body, headers={"X-PagerDuty-Signature": sign(NEW, body)})
    assert r.status_code == 413 and receiver.act.actions == []


async def test_without_a_secret_the_route_answers_404_naming_the_variable(roster: Roster) -> None:
    off = Receiver(roster, ())
    r = await off.post(webhook())
    assert r.status_code == 404
    expected = not_configured("PagerDuty", PAGERDUTY_SECRET)
    assert r.content == expected.body and r.json()["detail"].startswith("PagerDuty callbacks are off: set ")
    assert off.act.actions == []
    await off.http.aclose()
