"""Slack's callbacks as Slack sends them, signed: a button click (an interactivity `block_actions` payload,
shaped like the example in Slack's block_actions reference) and a slash command, a receiver app whose
responders act through whatever `act` a test gives it, and a local Slack taking what is posted to a click's
`response_url` (the receiver calls it because TOCSIN_SLACK_API_URL names the same origin).

Slack's documented signing example is the fixed vector: its secret, its timestamp and its slash-command body
(https://api.slack.com/authentication/verifying-requests-from-slack).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from pydantic import SecretStr

from tests.support.vendor_server import Reply, VendorServer
from tocsin.channels.base import Message
from tocsin.channels.slack_format import post_content
from tocsin.intake.contracts import IngestResult, NormalizedAlert
from tocsin.policy.roster_schema import Roster
from tocsin.receiver.app import create_app
from tocsin.receiver.config import ReceiverConfig
from tocsin.receiver.responder_settings import Responders, ResponderSecrets
from tocsin.responders.dispatch import Act
from tocsin.responders.slack import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = 1531420618
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = "slack-signing-secret-for-tests"
NOW = 1_790_000_000
ALICE = "U0ALICE01"  # alice's `slack:` in policies/default.yaml
STRANGER = "U0NOBODY9"
FORM = "application/x-www-form-urlencoded"
# The path of a response URL, as Slack's look: /actions/<app>/<id>/<token>. The token makes it a credential.
RESPONSE_PATH = "/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209"
RESPONSE_TOKEN = RESPONSE_PATH.rsplit("/", 1)[1]
SLACK_RESPONSE_URL = "https://hooks.slack.com" + RESPONSE_PATH


def fake_slack() -> VendorServer:
    """Slack's side of response URLs, on a loopback port: "ok" to every POST (start it with `with`)."""
    server = VendorServer()
    server.on("POST", "/actions/{app}/{id}/{token}", Reply(200, body="ok"))
    return server


def response_url(slack: VendorServer) -> str:
    """A click's response URL on the local Slack."""
    return slack.url + RESPONSE_PATH


def answers(slack: VendorServer) -> list[dict[str, Any]]:
    """What the receiver posted to the response URL, in order."""
    return [r.json for r in slack.received("POST", RESPONSE_PATH)]


def signed(body: bytes, *, at: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(at), SIGNATURE_HEADER: sign(secret, str(at), body), "Content-Type": FORM}


def posted(key: str, status: str = "triggered") -> dict[str, Any]:
    """The message Slack shows (and sends back with a click): what Tocsin posted for the incident."""
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    message = Message(
        idempotency_key=f"{key}/page/1",
        incident=key,
        channel="slack",
        target="#sre-alerts",
        text="checkout error rate above 5% for 5 minutes",
        title="Checkout errors",
        status=status,
        at=at,
    )
    return {"type": "message", "ts": "1548261231.000200", "user": "U0TOCSIN1", **post_content(message)}


def click(
    key: str,
    *,
    user: str = ALICE,
    action: str = "tocsin_acknowledge",
    action_ts: str = "1548426417.840180",
    message: dict[str, Any] | None = None,
    response_url: str = SLACK_RESPONSE_URL,
) -> bytes:
    """The form Slack posts when `user` clicks the button `action` of the incident `key`."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T9TK3CUKW", "domain": "example"},
        "user": {"id": user, "username": "someone", "team_id": "T9TK3CUKW"},
        "api_app_id": "AABA1ABCD",
        "token": "9s8d9as89d8as9d8as989",
        "container": {"type": "message", "message_ts": "1548261231.000200", "channel_id": "C0INC0001"},
        "trigger_id": "12466734323.1395872398.eb6b6fa1c6fd8a7dc7d8e8d0b8cbc0a1",
        "channel": {"id": "C0INC0001", "name": "sre-alerts"},
        "message": message if message is not None else posted(key),
        "response_url": response_url,
        "actions": [
            {
                "action_id": action,
                "block_id": "b1",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "value": key,
                "type": "button",
                "action_ts": action_ts,
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def command(text: str, *, user: str = ALICE, trigger_id: str = "398738663015.47445629121.803a0bc887a1") -> bytes:
    """The form Slack posts for `/tocsin <text>` typed by `user`."""
    fields = {
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "team_id": "T0001",
        "team_domain": "example",
        "channel_id": "C2147483705",
        "channel_name": "sre-alerts",
        "user_id": user,
        "user_name": "someone",
        "command": "/tocsin",
        "text": text,
        "response_url": "https://hooks.slack.com/commands/1234/5678",
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode()


async def _no_ingest(alerts: list[NormalizedAlert]) -> IngestResult:
    raise AssertionError("the Slack routes never ingest alerts")


async def _healthy() -> bool:
    return True


def slack_app(
    act: Act,
    roster: Roster,
    *,
    secret: str | None = SECRET,
    clock: float = NOW,
    max_bytes: int | None = None,
    slack: VendorServer | None = None,
) -> FastAPI:
    """The receiver (open: addressed as 127.0.0.1) with Slack's secret set, or not; with `slack`, its
    TOCSIN_SLACK_API_URL is that local Slack's, so response URLs on it are called."""
    api_url = f"{slack.url}/api" if slack is not None else None
    secrets = ResponderSecrets(slack_signing_secret=SecretStr(secret) if secret else None, slack_api_url=api_url)
    responders = Responders(act=act, roster=roster, secrets=secrets, clock=lambda: clock)
    config = ReceiverConfig(max_bytes=max_bytes) if max_bytes else None
    return create_app(ingest=_no_ingest, healthcheck=_healthy, config=config, responders=responders)
