"""Slack as a responder, without Temporal: the v0 signature against Slack's own documented example, what a click
and a `/tocsin` command parse into, the buttons Tocsin's posts carry, and the routes of the receiver against a
fake `act` that records every action (nothing may reach it from an unverified or unknown sender). What a click
is answered with is posted to its response URL, on a local Slack (tests/support/slack_callbacks.py): only
Slack's hosts, or TOCSIN_SLACK_API_URL's, are ever called."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from tests.support.slack_callbacks import (
    ALICE,
    DOC_BODY,
    DOC_SECRET,
    DOC_SIGNATURE,
    DOC_TIMESTAMP,
    NOW,
    RESPONSE_PATH,
    RESPONSE_TOKEN,
    SLACK_RESPONSE_URL,
    STRANGER,
    answers,
    click,
    command,
    fake_slack,
    response_url,
    signed,
    slack_app,
)
from tests.support.vendor_server import Reply, VendorServer
from tocsin.channels.base import Message
from tocsin.channels.slack_format import post_content, summary_content
from tocsin.intake.contracts import TemporalUnavailable
from tocsin.policy.schema import Policy
from tocsin.receiver import slack_response_url
from tocsin.receiver.responder_settings import ResponderConfigError, load_responder_secrets
from tocsin.receiver.slack_response_url import ResponseUrls
from tocsin.receiver.slack_routes import ACTIONS_PATH, COMMANDS_PATH
from tocsin.responders.contracts import ActOutcome, InboundAction, NotActed
from tocsin.responders.slack import (
    CommandUsageError,
    SlackRequestError,
    SlackSignatureError,
    parse_action,
    parse_command,
    sign,
    verify,
)

KEY = "checkout-7f3a9c"


class FakeAct:
    """Records every InboundAction; answers like an incident that did it, or raises what it is told to."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.seen: list[InboundAction] = []
        self.error = error

    async def __call__(self, action: InboundAction) -> ActOutcome:
        if self.error is not None:
            raise self.error
        self.seen.append(action)
        status = {"acknowledge": "acknowledged", "resolve": "resolved"}.get(action.verb, "triggered")
        return ActOutcome(key=action.key or "by-code", status=status, message=f"{action.verb}d by {action.person}")


# -- the signature -----------------------------------------------------------------------------------------


def test_slacks_documented_example_verifies_at_its_own_time() -> None:
    assert sign(DOC_SECRET, str(DOC_TIMESTAMP), DOC_BODY) == DOC_SIGNATURE
    verify(DOC_SECRET, str(DOC_TIMESTAMP), DOC_SIGNATURE, DOC_BODY, now=DOC_TIMESTAMP)
    verify(DOC_SECRET, str(DOC_TIMESTAMP), DOC_SIGNATURE, DOC_BODY, now=DOC_TIMESTAMP + 300)


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "why"),
    [
        (str(DOC_TIMESTAMP), DOC_SIGNATURE, DOC_BODY, DOC_TIMESTAMP + 301, "more than 300 seconds"),
        (str(DOC_TIMESTAMP), DOC_SIGNATURE, DOC_BODY, DOC_TIMESTAMP - 301, "more than 300 seconds"),
        (str(DOC_TIMESTAMP), DOC_SIGNATURE[:-1] + "4", DOC_BODY, DOC_TIMESTAMP, "does not match"),
        (str(DOC_TIMESTAMP), DOC_SIGNATURE, DOC_BODY + b"&text=ack", DOC_TIMESTAMP, "does not match"),
        (str(DOC_TIMESTAMP + 1), DOC_SIGNATURE, DOC_BODY, DOC_TIMESTAMP, "does not match"),
        (str(DOC_TIMESTAMP), DOC_SIGNATURE.removeprefix("v0="), DOC_BODY, DOC_TIMESTAMP, "does not match"),
        (str(DOC_TIMESTAMP), "v0=ä" * 20, DOC_BODY, DOC_TIMESTAMP, "does not match"),
        (None, DOC_SIGNATURE, DOC_BODY, DOC_TIMESTAMP, "are required"),
        (str(DOC_TIMESTAMP), None, DOC_BODY, DOC_TIMESTAMP, "are required"),
        ("1531420618.5", DOC_SIGNATURE, DOC_BODY, DOC_TIMESTAMP, "not a Unix time"),
        ("9" * 400, DOC_SIGNATURE, DOC_BODY, DOC_TIMESTAMP, "not a Unix time"),
    ],
)
def test_a_bad_or_stale_signature_is_refused_without_saying_the_secret(
    timestamp: str | None, signature: str | None, body: bytes, now: int, why: str
) -> None:
    with pytest.raises(SlackSignatureError, match=why) as refused:
        verify(DOC_SECRET, timestamp, signature, body, now=now)
    assert DOC_SECRET not in str(refused.value) and DOC_SIGNATURE[3:] not in str(refused.value)


# -- what a click and a command ask for ---------------------------------------------------------------------


def test_a_click_is_the_slack_user_the_verb_the_incident_and_slacks_action_ts() -> None:
    action = parse_action(click(KEY, action_ts="1548426417.840180"))
    assert (action.user_id, action.verb, action.key, action.event_id) == (
        ALICE,
        "acknowledge",
        KEY,
        "1548426417.840180",
    )
    assert action.button and action.original is not None and action.snooze_for is None
    assert action.response_url == SLACK_RESPONSE_URL
    assert action.inbound("alice") == InboundAction(
        vendor="slack", verb="acknowledge", person="alice", event_id="1548426417.840180", key=KEY
    )
    assert parse_action(click(KEY, action="tocsin_snooze")).snooze_for == timedelta(minutes=30)
    assert parse_action(click(KEY, action="tocsin_resolve")).verb == "resolve"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "payload: missing"),
        (b"payload=%7Bnot+json", "invalid JSON"),
        (b"payload=%5B%5D", "not a block_actions"),
        (b"payload=" + b"%5B" * 5000, "invalid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"&".join([b"a=1"] * 100), "form fields"),
        (click(KEY).replace(b"block_actions", b"view_submission"), "not a block_actions"),
        (click(KEY, action="approve_button"), "not a Tocsin button"),
        (click("<!channel>"), "value: missing or malformed"),
        (click(KEY, user="U0ALICE01&x"), "user.id"),
        (click(KEY, action_ts=""), "action_ts"),
        (click(KEY, response_url=""), "response_url: missing"),
    ],
)
def test_what_slack_would_not_send_is_a_bad_request(body: bytes, why: str) -> None:
    with pytest.raises(SlackRequestError, match=why):
        parse_action(body)


@pytest.mark.parametrize(
    ("text", "verb", "key", "code", "snooze"),
    [
        (f"ack {KEY}", "acknowledge", KEY, None, None),
        (f"ACK {KEY.upper()}", "acknowledge", KEY, None, None),
        ("escalate 4821", "escalate", None, "4821", None),
        ("resolve", "resolve", None, None, None),
        (f"take {KEY}", "take", KEY, None, None),
        (f"snooze {KEY} 1h", "snooze", KEY, None, timedelta(hours=1)),
        (f"snooze {KEY}", "snooze", KEY, None, timedelta(minutes=30)),
        ("snooze 20m", "snooze", None, None, timedelta(minutes=20)),
    ],
)
def test_a_command_names_the_verb_and_a_key_a_code_or_nothing(
    text: str, verb: str, key: str | None, code: str | None, snooze: timedelta | None
) -> None:
    action = parse_command(command(text, trigger_id="1234.5678.abc"))
    assert (action.user_id, action.verb, action.key, action.code) == (ALICE, verb, key, code)
    assert (action.snooze_for, action.event_id, action.button) == (snooze, "1234.5678.abc", False)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "Usage"),
        ("help", "Usage"),
        ("frobnicate x", "does not know 'frobnicate'"),
        (f"ack {KEY} now", "Usage"),
        ("ack <!channel>", "neither an incident key nor a 4-digit code"),
        (f"snooze {KEY} 5h", "at most 4 hours"),
        (f"snooze {KEY} {'9' * 30}w", "Usage"),
    ],
)
def test_a_mistyped_command_is_told_how_to_write_it(text: str, why: str) -> None:
    with pytest.raises(CommandUsageError, match=why):
        parse_command(command(text))


def test_slacks_documented_command_body_parses_and_asks_for_nothing() -> None:
    with pytest.raises(CommandUsageError, match="Usage"):
        parse_command(DOC_BODY)  # `/webhook-collect` with no text


# -- the buttons Tocsin posts --------------------------------------------------------------------------------


def _message(status: str) -> Message:
    at = datetime(2026, 12, 3, tzinfo=UTC)
    return Message(
        idempotency_key="k", incident=KEY, channel="slack", target="#x", text="t", title="T", status=status, at=at
    )


def _buttons(content: dict[str, Any]) -> list[tuple[str, str, str]]:
    actions = [b for b in content["blocks"] if b["type"] == "actions"]
    if not actions:
        return []
    assert len(actions) == 1 and content["blocks"][-1] is actions[0]
    return [(e["action_id"], e["value"], e["text"]["text"]) for e in actions[0]["elements"]]


def test_posts_and_the_war_room_summary_carry_the_buttons_the_status_allows() -> None:
    for content in (post_content, summary_content):
        assert _buttons(content(_message("triggered"))) == [
            ("tocsin_acknowledge", KEY, "Acknowledge"),
            ("tocsin_escalate", KEY, "Escalate"),
            ("tocsin_resolve", KEY, "Resolve"),
            ("tocsin_snooze", KEY, "Snooze 30m"),
        ]
        assert [b[0] for b in _buttons(content(_message("acknowledged")))] == ["tocsin_escalate", "tocsin_resolve"]
        assert _buttons(content(_message("resolved"))) == []
    confirmed = [e for e in post_content(_message("triggered"))["blocks"][-1]["elements"] if "confirm" in e]
    assert [e["action_id"] for e in confirmed] == ["tocsin_resolve"]  # a stray tap does not resolve


# -- the routes --------------------------------------------------------------------------------------------------


@pytest.fixture
def act() -> FakeAct:
    return FakeAct()


@pytest.fixture
def slack() -> Iterator[VendorServer]:
    with fake_slack() as running:
        yield running


@pytest.fixture
async def http(act: FakeAct, default_policy: Policy, slack: VendorServer) -> AsyncIterator[httpx.AsyncClient]:
    app = slack_app(act, default_policy.roster, slack=slack)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        yield client


async def test_alices_click_acknowledges_as_alice_and_replaces_the_message_through_its_response_url(
    http: httpx.AsyncClient, act: FakeAct, slack: VendorServer
) -> None:
    body = click(KEY, action_ts="1548426417.840180", response_url=response_url(slack))
    answer = await http.post(ACTIONS_PATH, content=body, headers=signed(body))
    # Slack reads nothing of the answer to a click: an empty 200, and the message goes to the response URL.
    assert (answer.status_code, answer.content) == (200, b""), answer.text
    assert act.seen == [
        InboundAction(vendor="slack", verb="acknowledge", person="alice", event_id="1548426417.840180", key=KEY)
    ]
    [posted] = slack.received("POST", RESPONSE_PATH)
    assert posted.headers["content-type"] == "application/json"
    reply = posted.json
    assert reply["replace_original"] is True
    blocks = reply["blocks"]
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"] == "Checkout errors"  # the message is kept
    [said] = [b for b in blocks if b.get("block_id", "").startswith("tocsin_outcome")]
    line = said["elements"][0]["text"]
    assert f"*{KEY}*" in line and "acknowledged by alice" in line and "status *acknowledged*" in line
    assert f"alice (<@{ALICE}>) via Slack" in line
    assert [e["action_id"] for e in blocks[-1]["elements"]] == ["tocsin_escalate", "tocsin_resolve"]
    # A second click on the replaced message keeps one outcome line: the latest.
    url = response_url(slack)
    again = click(KEY, action="tocsin_resolve", action_ts="1548426499.000001", message=reply, response_url=url)
    assert (await http.post(ACTIONS_PATH, content=again, headers=signed(again))).content == b""
    reply = answers(slack)[-1]
    outcomes = [b for b in reply["blocks"] if b.get("block_id", "").startswith("tocsin_outcome")]
    assert len(outcomes) == 1 and "status *resolved*" in outcomes[0]["elements"][0]["text"]
    assert not any(b["type"] == "actions" for b in reply["blocks"])
    assert len(answers(slack)) == 2 and slack.unmatched == []


@pytest.mark.parametrize(
    "headers",
    [
        lambda body: signed(body, secret="not-the-secret"),
        lambda body: signed(body, at=NOW - 301),
        lambda body: signed(body, at=NOW + 301),
        lambda body: {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64},
        lambda body: {"Content-Type": "application/x-www-form-urlencoded"},
    ],
)
async def test_a_bad_or_stale_signature_gets_401_and_nothing_is_acted(
    http: httpx.AsyncClient, act: FakeAct, headers: Any
) -> None:
    for path, body in ((ACTIONS_PATH, click(KEY)), (COMMANDS_PATH, command(f"ack {KEY}"))):
        answer = await http.post(path, content=body, headers=headers(body))
        assert answer.status_code == 401 and answer.json()["reason"] == "unauthorized"
    assert act.seen == []


async def test_an_unknown_slack_user_is_refused_ephemerally_and_logged(
    http: httpx.AsyncClient, act: FakeAct, slack: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.receiver.slack")
    clicked = click(KEY, user=STRANGER, response_url=response_url(slack))
    assert (await http.post(ACTIONS_PATH, content=clicked, headers=signed(clicked))).content == b""
    typed = command("ack", user=STRANGER)
    answer = await http.post(COMMANDS_PATH, content=typed, headers=signed(typed))
    assert answer.status_code == 200
    # The click's refusal went to its response URL, the command's is its answer: the same ephemeral message.
    for said in (*answers(slack), answer.json()):
        assert said["response_type"] == "ephemeral" and said["replace_original"] is False
        assert "not in Tocsin's roster" in said["text"]
    assert len(answers(slack)) == 1 and act.seen == []
    assert sum(f"{STRANGER} is not in the roster" in r.getMessage() for r in caplog.records) == 2


async def test_a_command_acts_in_the_channel_and_a_mistyped_one_answers_alone(
    http: httpx.AsyncClient, act: FakeAct
) -> None:
    body = command(f"snooze {KEY} 20m", trigger_id="777.888.fff")
    answer = await http.post(COMMANDS_PATH, content=body, headers=signed(body))
    assert answer.status_code == 200 and answer.json()["response_type"] == "in_channel"
    assert "snoozed by alice" in answer.json()["text"]
    [seen] = act.seen
    assert (seen.verb, seen.key, seen.snooze_for, seen.event_id) == (
        "snooze",
        KEY,
        timedelta(minutes=20),
        "777.888.fff",
    )
    typo = command("ack <!channel> now")
    answer = await http.post(COMMANDS_PATH, content=typo, headers=signed(typo))
    assert answer.json()["response_type"] == "ephemeral" and "Usage" in answer.json()["text"]
    assert "<!channel>" not in answer.text and len(act.seen) == 1


async def test_what_the_incident_refuses_is_said_to_the_person_escaped(
    default_policy: Policy, slack: VendorServer
) -> None:
    act = FakeAct(NotActed("incident <!channel> is resolved; it can no longer be acknowledged", "refused"))
    app = slack_app(act, default_policy.roster, slack=slack)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        body = click(KEY, response_url=response_url(slack))
        answer = await client.post(ACTIONS_PATH, content=body, headers=signed(body))
    assert (answer.status_code, answer.content) == (200, b"")
    assert answers(slack) == [
        {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": "Nothing done: incident &lt;!channel&gt; is resolved; it can no longer be acknowledged",
        }
    ]


@pytest.mark.parametrize(
    "error",
    # TemporalUnavailable is what `act` raises when Temporal does not answer; TimeoutError is the route's own
    # bound, under Slack's three seconds.
    [TemporalUnavailable("Temporal did not answer: connection refused"), TimeoutError()],
)
async def test_temporal_out_of_reach_is_a_503(
    default_policy: Policy, slack: VendorServer, error: BaseException
) -> None:
    app = slack_app(FakeAct(error), default_policy.roster, slack=slack)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        body = click(KEY, response_url=response_url(slack))
        answer = await client.post(ACTIONS_PATH, content=body, headers=signed(body))
    # An HTTP error, not a message: Slack shows the person the click failed, and they can click again.
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.json()["reason"] == "temporal_unavailable" and slack.requests == []


async def test_temporal_refusing_for_good_is_said_to_the_person_not_retried(default_policy: Policy) -> None:
    error = RPCError("Workflow ID length exceeds limit", RPCStatusCode.INVALID_ARGUMENT, b"")
    app = slack_app(FakeAct(error), default_policy.roster)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        body = command(f"ack {KEY}")
        answer = await client.post(COMMANDS_PATH, content=body, headers=signed(body))
    assert answer.status_code == 200 and answer.json()["response_type"] == "ephemeral"
    assert answer.json()["text"].startswith("Temporal refused this action; nothing was done.")


async def test_unset_secret_is_404_and_bad_input_is_4xx(act: FakeAct, default_policy: Policy) -> None:
    off = slack_app(act, default_policy.roster, secret=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=off), base_url="http://127.0.0.1") as client:
        for path in (ACTIONS_PATH, COMMANDS_PATH):
            answer = await client.post(path, content=click(KEY), headers=signed(click(KEY)))
            assert answer.status_code == 404 and "TOCSIN_SLACK_SIGNING_SECRET" in answer.json()["detail"]
    small = slack_app(act, default_policy.roster, max_bytes=1000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=small), base_url="http://127.0.0.1") as client:
        big = click(KEY)
        assert len(big) > 1000
        answer = await client.post(ACTIONS_PATH, content=big, headers=signed(big))
        assert answer.status_code == 413
        as_json = {**signed(click(KEY)), "Content-Type": "application/json"}
        answer = await client.post(ACTIONS_PATH, content=click(KEY)[:900], headers=as_json)
        assert answer.status_code == 401  # the body is not what was signed: refused before its type is looked at
        short = command("ack")
        answer = await client.post(
            COMMANDS_PATH, content=short, headers={**signed(short), "Content-Type": "text/plain"}
        )
        assert answer.status_code == 415
        broken = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
        answer = await client.post(ACTIONS_PATH, content=broken, headers=signed(broken))
        assert answer.status_code == 400 and "user.id" in answer.json()["message"]
    assert act.seen == []


async def test_the_route_verifies_slacks_documented_request_at_its_time(act: FakeAct, default_policy: Policy) -> None:
    app = slack_app(act, default_policy.roster, secret=DOC_SECRET, clock=DOC_TIMESTAMP)
    headers = {
        "X-Slack-Request-Timestamp": str(DOC_TIMESTAMP),
        "X-Slack-Signature": DOC_SIGNATURE,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        answer = await client.post(COMMANDS_PATH, content=DOC_BODY, headers=headers)
        assert answer.status_code == 200 and answer.json()["response_type"] == "ephemeral"
        assert "Usage" in answer.json()["text"]  # verified; its command has no text, so it asks for nothing
        late = slack_app(act, default_policy.roster, secret=DOC_SECRET, clock=DOC_TIMESTAMP + 301)
        transport = httpx.ASGITransport(app=late)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as stale:
            assert (await stale.post(COMMANDS_PATH, content=DOC_BODY, headers=headers)).status_code == 401
    assert act.seen == []


# -- where a click's answer may go -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "api_url", "called"),
    [
        (SLACK_RESPONSE_URL, None, True),
        ("https://HOOKS.slack.com:443" + RESPONSE_PATH, None, True),
        ("http://hooks.slack.com" + RESPONSE_PATH, None, False),  # https only
        ("https://hooks.slack.com:8443" + RESPONSE_PATH, None, False),
        ("https://hooks.slack.com.evil.example" + RESPONSE_PATH, None, False),
        ("https://evil.example/?next=https://hooks.slack.com" + RESPONSE_PATH, None, False),
        ("https://hooks.slack.com%2f@evil.example" + RESPONSE_PATH, None, False),
        ("https://evil.example\\@hooks.slack.com" + RESPONSE_PATH, None, False),  # a user, however it parses
        ("https://slack.com/api/chat.postMessage", None, False),
        ("http://127.0.0.1:9" + RESPONSE_PATH, None, False),  # a local Slack only when TOCSIN_SLACK_API_URL says
        ("http://127.0.0.1:9" + RESPONSE_PATH, "http://127.0.0.1:9/api", True),
        (SLACK_RESPONSE_URL, "http://127.0.0.1:9/api", True),
        ("http://127.0.0.1:10" + RESPONSE_PATH, "http://127.0.0.1:9/api", False),
        ("http://localhost:9" + RESPONSE_PATH, "http://127.0.0.1:9/api", False),
        ("https://127.0.0.1:9" + RESPONSE_PATH, "http://127.0.0.1:9/api", False),
        ("https://[::1", None, False),
        ("", None, False),
    ],
)
def test_only_slacks_hooks_or_the_configured_slacks_origin_may_be_called(
    url: str, api_url: str | None, called: bool
) -> None:
    allowed = ResponseUrls(api_url).allowed(url)
    assert (allowed is not None) == called
    if allowed is not None:
        assert allowed == httpx.URL(url)  # the very URL checked is the one called


async def test_a_response_url_elsewhere_is_refused_never_called_and_nothing_is_acted(
    http: httpx.AsyncClient, act: FakeAct, slack: VendorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.receiver.slack")
    with fake_slack() as elsewhere:
        for url in (
            response_url(elsewhere),  # another port: another origin
            f"http://localhost:{slack.port}{RESPONSE_PATH}",  # the same server by another name
            f"http://someone@127.0.0.1:{slack.port}{RESPONSE_PATH}",
        ):
            body = click(KEY, response_url=url)
            answer = await http.post(ACTIONS_PATH, content=body, headers=signed(body))
            assert answer.status_code == 400 and "response_url" in answer.json()["message"]
        assert elsewhere.requests == []
    assert slack.requests == [] and act.seen == []
    refusals = [r.getMessage() for r in caplog.records if "response_url" in r.getMessage()]
    assert len(refusals) == 3 and f"on http://127.0.0.1:{elsewhere.port}, not Slack's" in refusals[0]
    assert not any(RESPONSE_TOKEN in r.getMessage() for r in caplog.records)  # the URL's token is a credential


async def test_without_a_local_slack_configured_its_response_url_is_refused(
    act: FakeAct, default_policy: Policy, slack: VendorServer
) -> None:
    app = slack_app(act, default_policy.roster)  # no TOCSIN_SLACK_API_URL: only hooks.slack.com
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        body = click(KEY, response_url=response_url(slack))
        assert (await client.post(ACTIONS_PATH, content=body, headers=signed(body))).status_code == 400
    assert slack.requests == [] and act.seen == []


async def test_an_answer_slack_does_not_take_is_tried_once_more_then_logged_never_raised(
    http: httpx.AsyncClient,
    act: FakeAct,
    slack: VendorServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.receiver.slack")
    monkeypatch.setattr(slack_response_url, "PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(slack_response_url, "TIMEOUT", httpx.Timeout(0.2))
    cases = [
        ([Reply(500), Reply(503)], 2, "HTTP 503"),  # Slack's side failed twice: one more attempt, no third
        ([Reply(404, body="expired_url")], 1, "HTTP 404"),  # expired or used up: asking again changes nothing
        ([Reply(delay=2.0)], 2, "ReadTimeout"),
        ([Reply(502), Reply(200, body="ok")], 2, None),
    ]
    for n, (replies, attempts, failure) in enumerate(cases):
        slack.reset()
        caplog.clear()
        slack.on("POST", RESPONSE_PATH, *replies)
        body = click(KEY, action_ts=f"1548426417.00000{n}", response_url=response_url(slack))
        answer = await http.post(ACTIONS_PATH, content=body, headers=signed(body))
        assert (answer.status_code, answer.content) == (200, b"")  # the incident acted; Slack was told 200
        assert len(answers(slack)) == attempts
        said = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
        expected = f"slack: the answer to a click was not delivered to {slack.url} ({failure})"
        assert said == ([expected] if failure else [])
    assert len(act.seen) == len(cases)
    assert not any(RESPONSE_TOKEN in r.getMessage() for r in caplog.records)


def test_the_receiver_reads_the_slack_api_url_the_slack_channel_uses() -> None:
    assert load_responder_secrets({}).slack_api_url is None
    local = load_responder_secrets({"TOCSIN_SLACK_API_URL": " http://127.0.0.1:9/api "})
    assert local.slack_api_url == "http://127.0.0.1:9/api"
    with pytest.raises(ResponderConfigError, match="TOCSIN_SLACK_API_URL must be an http"):
        load_responder_secrets({"TOCSIN_SLACK_API_URL": "slack.example.com/api"})
