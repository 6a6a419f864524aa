"""Twilio SMS replies and page-call digits (tocsin/responders/twilio.py, tocsin/receiver/twilio_routes.py): the
signature against Twilio's own published examples, what a reply asks for, the TwiML answers, and the routes
through `create_app` with a fake `act` that records what would be done."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr

from tests.support.twilio_callbacks import FORM, PUBLIC, TOCSIN_NUMBER, TOKEN, TwilioWebhooks, receiver
from tocsin.intake.contracts import TemporalUnavailable
from tocsin.policy.schema import Policy
from tocsin.receiver import twilio_routes
from tocsin.receiver.responder_settings import Responders, ResponderSecrets
from tocsin.responders.contracts import ActOutcome, InboundAction, NotActed
from tocsin.responders.twilio import (
    HELP,
    SMS_PATH,
    VOICE_PATH,
    SmsReply,
    gather_twiml,
    message_twiml,
    parse_sms,
    signature,
    signature_valid,
    voice_action,
)

ALICE, BOB = "+4915100000001", "+12025550102"

# Twilio's webhook security guide ("Validating requests"), and the same example as the helper libraries' docs
# printed it earlier, with another caller.
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "To": "+18005551212"}


@pytest.mark.parametrize(
    ("caller", "expected"),
    [("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="), ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")],
)
def test_twilios_published_signature_examples(caller: str, expected: str) -> None:
    params = [*DOC_PARAMS.items(), ("From", caller), ("Caller", caller)]  # out of order: the signature sorts
    assert signature("12345", DOC_URL, params) == expected
    assert signature_valid("12345", DOC_URL, params, expected)


def test_a_signature_over_anything_else_is_refused() -> None:
    params = [*DOC_PARAMS.items(), ("From", "+12349013030"), ("Caller", "+12349013030")]
    good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert not signature_valid("12345", DOC_URL, [*params[:-1], ("Caller", "+12349013031")], good)
    assert not signature_valid("12345", DOC_URL.replace("bar=2", "bar=3"), params, good)
    assert not signature_valid("12345", DOC_URL, [*params, ("Body", "ACK")], good)
    assert not signature_valid("54321", DOC_URL, params, good)
    assert not signature_valid("12345", DOC_URL, params, good[:-2])
    assert not signature_valid("12345", DOC_URL, params, None)
    assert not signature_valid("12345", DOC_URL, params, "")
    assert not signature_valid("12345", DOC_URL, params, "ü")
    assert not signature_valid("", DOC_URL, params, signature("", DOC_URL, params))


def test_the_default_port_may_be_signed_or_not() -> None:
    params = [("Body", "ACK")]
    with_port = signature(TOKEN, "https://tocsin.example.com:443/ops/api/v1/twilio/sms", params)
    assert signature_valid(TOKEN, "https://tocsin.example.com/ops/api/v1/twilio/sms", params, with_port)
    without = signature(TOKEN, "https://tocsin.example.com/ops/api/v1/twilio/sms", params)
    assert signature_valid(TOKEN, "https://tocsin.example.com:443/ops/api/v1/twilio/sms", params, without)
    assert not signature_valid(TOKEN, "https://tocsin.example.com:8443/ops/api/v1/twilio/sms", params, without)


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        ("ACK", SmsReply("acknowledge", None)),
        ("ack 4821", SmsReply("acknowledge", "4821")),
        ("  Esc\t0042 ", SmsReply("escalate", "0042")),
        ("RES", SmsReply("resolve", None)),
        ("res 1234\n", SmsReply("resolve", "1234")),
    ],
)
def test_replies_that_act(body: str, reply: SmsReply) -> None:
    assert parse_sms(body) == reply


@pytest.mark.parametrize("body", ["", "ok", "ACK4821", "ack 482", "ack 48211", "acknowledge", "ACK please", "HELP"])
def test_anything_else_is_not_a_reply(body: str) -> None:
    assert parse_sms(body) is None


def test_twiml_is_escaped() -> None:
    assert message_twiml("a & <Redirect>x</Redirect>\x00") == (
        "<Response><Message>a &amp; &lt;Redirect&gt;x&lt;/Redirect&gt;</Message></Response>"
    )
    assert len(message_twiml("x" * 5000)) < 1700
    action = voice_action(PUBLIC + "/", 'db & "cache"/1')
    assert action == f"{PUBLIC}{VOICE_PATH}?key=db%20%26%20%22cache%22%2F1"
    assert gather_twiml("<Dial>", "https://h/v?key=a&x=1") == (
        '<Response><Gather numDigits="1" action="https://h/v?key=a&amp;x=1" method="POST">'
        "<Say>&lt;Dial&gt;</Say><Say>Press 1 to acknowledge, 2 to escalate.</Say></Gather>"
        "<Say>Nothing was pressed. The incident stays as it was. Goodbye.</Say></Response>"
    )
    assert 'action="https://h/v?k=&quot;&gt;&lt;Dial&gt;"' in gather_twiml("", 'https://h/v?k="><Dial>')


# ======================================================================================================
# The routes
# ======================================================================================================


class FakeAct:
    def __init__(self) -> None:
        self.actions: list[InboundAction] = []
        self.error: Exception | None = None
        self.delay = 0.0

    async def __call__(self, action: InboundAction) -> ActOutcome:
        self.actions.append(action)
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return ActOutcome(key=action.key or "checkout-1", status="acknowledged", message=f"{action.verb}d by x")


class Twilio(TwilioWebhooks):
    def __init__(self, http: httpx.AsyncClient, act: FakeAct) -> None:
        super().__init__(http)
        self.act = act

    async def digit(self, key: str | None, digits: str, callee: str = ALICE, call: str = "CA9e1d") -> httpx.Response:
        return await super().digit(key, digits, callee, call)


def responders(act: FakeAct, policy: Policy, secrets: ResponderSecrets) -> Responders:
    return Responders(act, policy.roster, secrets)


@pytest.fixture
async def twilio(default_policy: Policy) -> AsyncIterator[Twilio]:
    act = FakeAct()
    secrets = ResponderSecrets(twilio_auth_token=SecretStr(TOKEN), public_url=PUBLIC)
    async with receiver(responders(act, default_policy, secrets)) as http:
        yield Twilio(http, act)


def twiml_of(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("text/xml")
    return response.text


async def test_an_ack_from_alices_number_acknowledges_her_latest_page(twilio: Twilio) -> None:
    response = await twilio.sms("+49 151 0000 0001", "ACK", sid="SM0001")
    assert response.status_code == 200
    assert twiml_of(response) == "<Response><Message>checkout-1: acknowledged by x</Message></Response>"
    assert twilio.act.actions == [
        InboundAction(vendor="twilio", verb="acknowledge", person="alice", event_id="SM0001", key=None, code=None)
    ]


async def test_a_reply_with_a_code_names_its_incident(twilio: Twilio) -> None:
    await twilio.sms(ALICE, "ack 4821", sid="SM0002")
    await twilio.sms(BOB, "Res", sid="SM0003")
    await twilio.sms(BOB, "esc 0042", sid="SM0004")
    assert [(a.person, a.verb, a.code, a.event_id) for a in twilio.act.actions] == [
        ("alice", "acknowledge", "4821", "SM0002"),
        ("bob", "resolve", None, "SM0003"),
        ("bob", "escalate", "0042", "SM0004"),
    ]


async def test_anything_else_gets_help_and_acts_on_nothing(twilio: Twilio) -> None:
    response = await twilio.sms(ALICE, "on my way")
    assert response.status_code == 200 and twiml_of(response) == message_twiml(HELP)
    assert twilio.act.actions == []


async def test_an_unknown_number_is_refused_and_logged(twilio: Twilio, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "tocsin.receiver")
    response = await twilio.sms("+15551230077", "ACK")
    assert response.status_code == 200
    assert twiml_of(response) == "<Response><Message>This number is not in Tocsin's roster.</Message></Response>"
    call = await twilio.digit("checkout-1", "1", callee="+15551230077")
    assert twiml_of(call) == "<Response><Say>This number is not in Tocsin's roster.</Say></Response>"
    assert twilio.act.actions == []
    refusals = [r.getMessage() for r in caplog.records if "not in the roster" in r.getMessage()]
    assert len(refusals) == 2 and all("ending 0077" in r and "+1555123" not in r for r in refusals)


async def test_a_bad_or_missing_signature_is_403_and_acts_on_nothing(twilio: Twilio) -> None:
    assert (await twilio.sms(ALICE, "ACK", token="another-token")).status_code == 403
    # Signed over the address the receiver sees, not the public one Twilio was given: refused too.
    wrong_url = f"http://127.0.0.1:8080{SMS_PATH}"
    assert (await twilio.sms(ALICE, "ACK", url=wrong_url)).status_code == 403
    # The key is part of the signed URL: a digit posted for another incident is refused.
    signed_for = f"{PUBLIC}{VOICE_PATH}?key=checkout-1"
    forged = await twilio.post(
        VOICE_PATH, {"CallSid": "CA1", "From": ALICE, "Digits": "1"}, "key=other", url=signed_for
    )
    assert forged.status_code == 403
    unsigned = await twilio.http.post(
        SMS_PATH, content=urlencode({"MessageSid": "SM1", "From": ALICE, "Body": "ACK"}), headers=FORM
    )
    assert unsigned.status_code == 403 and twiml_of(unsigned) == "<Response/>"
    assert twilio.act.actions == []


async def test_bad_input_is_4xx(twilio: Twilio) -> None:
    assert (await twilio.post(SMS_PATH, {"From": ALICE, "Body": "ACK"})).status_code == 400  # no MessageSid
    assert (await twilio.http.post(SMS_PATH, json={"Body": "ACK"})).status_code == 415
    big = await twilio.http.post(SMS_PATH, content=b"Body=" + b"x" * 70_000, headers=FORM)
    assert big.status_code == 413
    too_long_key = await twilio.digit("k" * 200, "1")
    assert too_long_key.status_code == 400
    assert twilio.act.actions == []


async def test_not_acted_is_answered_with_its_reason(twilio: Twilio) -> None:
    twilio.act.error = NotActed("no open incident has paged you; name it by its code or key", "no_incident")
    response = await twilio.sms(ALICE, "ACK")
    assert response.status_code == 200
    assert "Not done: no open incident has paged you; name it by its code or key" in twiml_of(response)


async def test_temporal_unreachable_is_503_anything_else_500(twilio: Twilio) -> None:
    twilio.act.error = TemporalUnavailable("Temporal did not answer: connection refused")
    response = await twilio.sms(ALICE, "ACK")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "<Message>Tocsin cannot reach its incidents right now" in twiml_of(response)
    call = await twilio.digit("checkout-1", "1")
    assert call.status_code == 503 and "<Say>Tocsin cannot reach" in twiml_of(call)
    twilio.act.error = KeyError("bug")
    assert (await twilio.sms(ALICE, "ACK", sid="SM9")).status_code == 500


async def test_an_act_that_hangs_is_answered_before_twilio_gives_up(
    twilio: Twilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(twilio_routes, "ACT_TIMEOUT", 0.05)
    twilio.act.delay = 10.0  # no worker runs the update
    response = await twilio.sms(ALICE, "ACK")
    assert response.status_code == 503 and "It may still apply" in twiml_of(response)


async def test_digit_1_acknowledges_the_incident_in_the_url_and_2_escalates(twilio: Twilio) -> None:
    response = await twilio.digit("checkout-7f3a", "1")
    assert response.status_code == 200
    assert twiml_of(response) == "<Response><Say>checkout-7f3a: acknowledged by x. Goodbye.</Say></Response>"
    await twilio.digit("checkout-7f3a", "2")
    assert twilio.act.actions == [
        InboundAction(vendor="twilio", verb="acknowledge", person="alice", event_id="CA9e1d-1", key="checkout-7f3a"),
        InboundAction(vendor="twilio", verb="escalate", person="alice", event_id="CA9e1d-2", key="checkout-7f3a"),
    ]


async def test_no_digit_or_another_asks_again_at_the_same_url(twilio: Twilio) -> None:
    again = f"{PUBLIC}{VOICE_PATH}?key=checkout-1"
    first = twiml_of(await twilio.digit("checkout-1", ""))
    assert first.startswith(f'<Response><Gather numDigits="1" action="{again}" method="POST"><Say>Press 1')
    other = twiml_of(await twilio.digit("checkout-1", "9"))
    assert "<Say>Sorry, that key does nothing here.</Say>" in other and f'action="{again}"' in other
    assert twilio.act.actions == []


async def test_a_call_the_person_places_acts_on_their_latest_page(twilio: Twilio) -> None:
    params = {"CallSid": "CA77", "From": BOB, "To": TOCSIN_NUMBER, "Direction": "inbound"}
    prompt = twiml_of(await twilio.post(VOICE_PATH, params))
    assert f'action="{PUBLIC}{VOICE_PATH}"' in prompt and "your latest page" in prompt
    await twilio.post(VOICE_PATH, params | {"Digits": "1"})
    assert twilio.act.actions == [InboundAction(vendor="twilio", verb="acknowledge", person="bob", event_id="CA77-1")]


@pytest.mark.parametrize(
    ("secrets", "variable"),
    [
        (ResponderSecrets(public_url=PUBLIC), "TOCSIN_TWILIO_AUTH_TOKEN"),
        (ResponderSecrets(twilio_auth_token=SecretStr(TOKEN)), "TOCSIN_PUBLIC_URL"),
    ],
)
async def test_off_until_both_token_and_public_url_are_set(
    default_policy: Policy, secrets: ResponderSecrets, variable: str
) -> None:
    act = FakeAct()
    async with receiver(responders(act, default_policy, secrets)) as http:
        for path in (SMS_PATH, VOICE_PATH):
            response = await http.post(path, content="Body=ACK", headers=FORM)
            assert response.status_code == 404 and variable in response.json()["detail"]
    assert act.actions == []
