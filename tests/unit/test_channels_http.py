"""PagerDuty, Slack, Teams and generic-webhook adapters against a real local HTTP server playing each vendor.

Each test scripts the vendor's documented answers (success shapes, 400/401/404, 429 with Retry-After, 500,
Slack's HTTP-200 `ok: false` errors, a hung server) and asserts exactly what the vendor received. An autouse
fixture captures every log line at DEBUG (httpx's request lines included) and fails a test that logged a
configured secret; every error a test sees is checked for secrets too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.vendor_fakes import FakeSlack
from tests.support.vendor_server import Reply, VendorServer
from tocsin.channels.base import Channel, Message, PermanentDeliveryError, RetryableDeliveryError
from tocsin.channels.pagerduty import PagerDutyChannel
from tocsin.channels.slack import SlackChannel, channel_name, war_room_name
from tocsin.channels.vendor_settings import setting
from tocsin.channels.webhook import TeamsChannel, WebhookChannel

PD_KEY = "e93facc04764012d7bfb002500d5d1a6"
SLACK_TOKEN = "xoxb-1234-5678-s3cretSlackT0ken"
HOOK_SECRET = "s3cret-hook-path-0f9e8d"
TEAMS_SECRET = "IncomingWebhook/abc123/t3amsSecretSig"
SECRETS = (PD_KEY, SLACK_TOKEN, HOOK_SECRET, TEAMS_SECRET, "topsecret-query")
INCIDENT = "serviceavailabilitylow-checkout-prod-311b734629"
AT = datetime(2025, 3, 30, 1, 30, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    # caplog.text is per phase (empty by teardown): read the call's records themselves.
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)
    for secret in SECRETS:
        assert secret not in logged, f"a secret was logged: {secret[:4]}..."


def clean(err: BaseException) -> BaseException:
    for secret in SECRETS:
        assert secret not in str(err) and secret not in repr(err)
    return err


def message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {
        "idempotency_key": f"{INCIDENT}/page/0/1",
        "incident": INCIDENT,
        "channel": "pagerduty",
        "target": "primary_oncall",
        "text": "Checkout availability is 91% (target 99.9%)",
        "title": "Checkout availability low",
        "severity": "sev1",
        "service": "checkout",
        "status": "triggered",
        "at": AT,
    }
    return Message(**{**fields, **overrides})


def pagerduty(server: VendorServer, **kwargs: Any) -> PagerDutyChannel:
    return PagerDutyChannel(PD_KEY, server.url, **kwargs)


PD_ACCEPTED = Reply(202, json={"status": "success", "message": "Event processed", "dedup_key": INCIDENT})


# -- PagerDuty ---------------------------------------------------------------------------------------------


async def test_pagerduty_trigger_sends_the_documented_event(server):
    server.on("POST", "/v2/enqueue", PD_ACCEPTED)
    channel = pagerduty(server)
    assert isinstance(channel, Channel)

    receipt = await channel.send(message())

    assert receipt.provider_id == INCIDENT and not receipt.duplicate
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v2/enqueue")
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers  # the routing key is the only credential, in the body
    event = request.json
    assert event["routing_key"] == PD_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == INCIDENT
    payload = event["payload"]
    assert payload["summary"] == "Checkout availability is 91% (target 99.9%)"
    assert payload["source"] == "tocsin"
    assert payload["severity"] == "critical"
    assert payload["component"] == "checkout"
    assert payload["timestamp"] == "2025-03-30T01:30:00+00:00"
    assert payload["custom_details"]["incident"] == INCIDENT
    assert payload["custom_details"]["target"] == "primary_oncall"
    assert server.unmatched == []


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("sev1", "critical"), ("sev2", "error"), ("sev3", "warning"), ("sev4", "info"), ("", "critical")],
)
async def test_pagerduty_severity_mapping(server, severity, expected):
    server.on("POST", "/v2/enqueue", PD_ACCEPTED)
    await pagerduty(server).send(message(severity=severity))
    assert server.requests[0].json["payload"]["severity"] == expected


async def test_pagerduty_summary_is_cut_to_1024_characters(server):
    server.on("POST", "/v2/enqueue", PD_ACCEPTED)
    await pagerduty(server).send(message(text="x" * 5000))
    payload = server.requests[0].json["payload"]
    assert len(payload["summary"]) == 1024
    assert payload["custom_details"]["text"] == "x" * 5000


@pytest.mark.parametrize(("status", "action"), [("acknowledged", "acknowledge"), ("resolved", "resolve")])
async def test_pagerduty_acknowledge_and_resolve_use_the_same_dedup_key(server, status, action):
    server.on("POST", "/v2/enqueue", PD_ACCEPTED)
    receipt = await pagerduty(server).send(message(status=status))
    assert receipt.provider_id == INCIDENT
    assert server.requests[0].json == {"routing_key": PD_KEY, "event_action": action, "dedup_key": INCIDENT}


async def test_pagerduty_every_page_and_retry_of_one_incident_shares_its_dedup_key(server):
    server.on(
        "POST",
        "/v2/enqueue",
        Reply(
            429,
            headers={"Retry-After": "3"},
            json={"status": "throttle event", "message": "Requests for this service are arriving too quickly"},
        ),
        PD_ACCEPTED,
    )
    channel = pagerduty(server)
    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(message())
    assert caught.value.retry_after == 3.0
    clean(caught.value)
    await channel.send(message())  # the activity's retry
    await channel.send(message(idempotency_key=f"{INCIDENT}/page/1/1"))  # the next step's page
    assert [r.json["dedup_key"] for r in server.requests] == [INCIDENT] * 3


async def test_pagerduty_full_enqueue_url_is_accepted(server):
    server.on("POST", "/v2/enqueue", PD_ACCEPTED)
    await PagerDutyChannel(PD_KEY, f"{server.url}/v2/enqueue").send(message())
    assert server.calls() == ["POST /v2/enqueue"]


async def test_pagerduty_invalid_event_is_permanent_with_pagerduty_reason(server):
    server.on(
        "POST",
        "/v2/enqueue",
        Reply(
            400,
            json={
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [f"'routing_key' {PD_KEY} is invalid"],  # even if PagerDuty echoed the key
            },
        ),
    )
    with pytest.raises(PermanentDeliveryError) as caught:
        await pagerduty(server).send(message())
    text = str(clean(caught.value))
    assert "pagerduty answered 400" in text and "Event object is invalid" in text and "[redacted]" in text


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_pagerduty_other_4xx_are_permanent(server, status):
    server.on("POST", "/v2/enqueue", Reply(status, body="Not Found"))
    with pytest.raises(PermanentDeliveryError) as caught:
        await pagerduty(server).send(message())
    assert f"answered {status}" in str(clean(caught.value))


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_pagerduty_5xx_are_retryable(server, status):
    server.on("POST", "/v2/enqueue", Reply(status, body="upstream error"))
    with pytest.raises(RetryableDeliveryError) as caught:
        await pagerduty(server).send(message())
    assert caught.value.retry_after is None
    clean(caught.value)


async def test_pagerduty_timeout_is_retryable(server):
    server.on("POST", "/v2/enqueue", Reply(202, delay=5))
    with pytest.raises(RetryableDeliveryError) as caught:
        await pagerduty(server, timeout=0.2).send(message())
    assert "timed out" in str(clean(caught.value))


async def test_pagerduty_unreachable_is_retryable():
    with VendorServer() as gone:
        url = gone.url
    with pytest.raises(RetryableDeliveryError) as caught:
        await PagerDutyChannel(PD_KEY, url).send(message())
    assert "unreachable" in str(clean(caught.value))


async def test_pagerduty_check_validates_the_key_format_without_sending(server):
    line = await pagerduty(server).check()
    assert "32 characters" in line and "no credential check" in line and PD_KEY not in line
    with pytest.raises(PermanentDeliveryError) as caught:
        await PagerDutyChannel("too-short-" + PD_KEY[:8], server.url).check()
    assert "integration keys are 32" in str(clean(caught.value))
    assert server.requests == []


def test_pagerduty_from_env(tmp_path: Path):
    assert PagerDutyChannel.from_env({}) is None
    channel = PagerDutyChannel.from_env({"TOCSIN_PAGERDUTY_ROUTING_KEY": PD_KEY})
    assert channel is not None and channel.events_url == "https://events.pagerduty.com"
    secret = tmp_path / "pd-key"
    secret.write_text(PD_KEY + "\n")
    channel = PagerDutyChannel.from_env(
        {"TOCSIN_PAGERDUTY_ROUTING_KEY_FILE": str(secret), "TOCSIN_PAGERDUTY_EVENTS_URL": "http://tocsin:8080/"}
    )
    assert channel is not None and channel.events_url == "http://tocsin:8080"
    assert PD_KEY not in repr(channel)
    with pytest.raises(PermanentDeliveryError) as caught:
        PagerDutyChannel.from_env(
            {"TOCSIN_PAGERDUTY_ROUTING_KEY": PD_KEY, "TOCSIN_PAGERDUTY_ROUTING_KEY_FILE": str(secret)}
        )
    assert "not both" in str(clean(caught.value))
    with pytest.raises(PermanentDeliveryError):
        PagerDutyChannel.from_env({"TOCSIN_PAGERDUTY_ROUTING_KEY": PD_KEY, "TOCSIN_PAGERDUTY_EVENTS_URL": "ftp://x"})


def test_setting_reads_files_and_names_no_value(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(PermanentDeliveryError, match="is empty"):
        setting({"X_FILE": str(empty)}, "X")
    with pytest.raises(PermanentDeliveryError, match="cannot read"):
        setting({"X_FILE": str(tmp_path / "missing")}, "X")
    assert setting({"X": "  value  "}, "X") == "value"
    assert setting({"X": ""}, "X") is None


# -- Slack: posts ------------------------------------------------------------------------------------------


def slack(server: VendorServer, **kwargs: Any) -> SlackChannel:
    return SlackChannel(SLACK_TOKEN, f"{server.url}/api", **kwargs)


def posted(channel: str = "C0INCIDENTS", ts: str = "1711760000.000100") -> Reply:
    return Reply(200, json={"ok": True, "channel": channel, "ts": ts, "message": {"text": "...", "ts": ts}})


async def test_slack_post_to_a_named_channel(server):
    server.on("POST", "/api/chat.postMessage", posted())
    receipt = await slack(server).send(message(channel="slack", target="#incidents"))

    assert receipt.provider_id == "C0INCIDENTS:1711760000.000100"
    [request] = server.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {SLACK_TOKEN}"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    body = request.json
    assert body["channel"] == "#incidents"
    assert body["text"] == "*Checkout availability low*\nCheckout availability is 91% (target 99.9%)"
    [buttons] = [b for b in body["blocks"] if b["type"] == "actions"]  # Slack sends a click to the receiver
    assert [(e["action_id"], e["value"]) for e in buttons["elements"]] == [
        (f"tocsin_{verb}", INCIDENT) for verb in ("acknowledge", "escalate", "resolve", "snooze")
    ]
    assert body["metadata"] == {
        "event_type": "tocsin_notification",
        "event_payload": {"incident": INCIDENT, "delivery": f"{INCIDENT}/page/0/1", "status": "triggered"},
    }


async def test_slack_team_target_posts_to_the_team_channel(server):
    server.on("POST", "/api/chat.postMessage", posted())
    await slack(server).send(message(target="team:Checkout"))
    await slack(server, team_channel="#oncall-{team}").send(message(target="team:checkout"))
    assert [r.json["channel"] for r in server.requests] == ["#team-checkout", "#oncall-checkout"]


@pytest.mark.parametrize(
    "error", ["invalid_auth", "not_authed", "channel_not_found", "is_archived", "not_in_channel", "account_inactive"]
)
async def test_slack_ok_false_errors_are_permanent(server, error):
    server.on("POST", "/api/chat.postMessage", Reply(200, json={"ok": False, "error": error}))
    with pytest.raises(PermanentDeliveryError) as caught:
        await slack(server).send(message(target="#leadership"))
    assert str(clean(caught.value)) == f"slack chat.postMessage: {error}"


async def test_slack_missing_scope_names_the_scope(server):
    server.on(
        "POST",
        "/api/chat.postMessage",
        Reply(200, json={"ok": False, "error": "missing_scope", "needed": "chat:write", "provided": "channels:read"}),
    )
    with pytest.raises(PermanentDeliveryError, match=r"missing_scope \(needs chat:write\)") as caught:
        await slack(server).send(message(target="#incidents"))
    clean(caught.value)


async def test_slack_invalid_arguments_carry_slacks_explanation(server):
    server.on(
        "POST",
        "/api/chat.postMessage",
        Reply(
            200,
            json={
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": ["[ERROR] missing required field: channel"]},
            },
        ),
    )
    with pytest.raises(PermanentDeliveryError) as caught:
        await slack(server).send(message(target="#incidents"))
    assert str(clean(caught.value)) == (
        "slack chat.postMessage: invalid_arguments: [ERROR] missing required field: channel"
    )


async def test_slack_ratelimited_429_is_retryable_after_its_delay(server):
    server.on(
        "POST",
        "/api/chat.postMessage",
        Reply(429, headers={"Retry-After": "30"}, json={"ok": False, "error": "ratelimited"}),
        posted(),
    )
    channel = slack(server)
    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(message(target="#incidents"))
    assert caught.value.retry_after == 30.0
    assert "429" in str(clean(caught.value)) and "ratelimited" in str(caught.value)
    assert (await channel.send(message(target="#incidents"))).provider_id.startswith("C0INCIDENTS:")


@pytest.mark.parametrize("error", ["internal_error", "fatal_error", "service_unavailable", "request_timeout"])
async def test_slack_server_side_ok_false_errors_are_retryable(server, error):
    server.on("POST", "/api/chat.postMessage", Reply(200, json={"ok": False, "error": error}))
    with pytest.raises(RetryableDeliveryError) as caught:
        await slack(server).send(message(target="#incidents"))
    clean(caught.value)


async def test_slack_http_errors(server):
    channel = slack(server)
    server.on("POST", "/api/chat.postMessage", Reply(500, body="<html>oops</html>"))
    with pytest.raises(RetryableDeliveryError) as retryable:
        await channel.send(message(target="#incidents"))
    clean(retryable.value)
    for status in (400, 401, 404):
        server.on("POST", "/api/chat.postMessage", Reply(status, json={"ok": False, "error": "unknown_method"}))
        with pytest.raises(PermanentDeliveryError) as permanent:
            await channel.send(message(target="#incidents"))
        assert f"answered {status}" in str(clean(permanent.value))
    server.on("POST", "/api/chat.postMessage", Reply(200, body="<html>a captive portal</html>"))
    with pytest.raises(PermanentDeliveryError, match="answer without ok"):
        await channel.send(message(target="#incidents"))


async def test_slack_timeout_is_retryable(server):
    server.on("POST", "/api/chat.postMessage", Reply(200, json={"ok": True}, delay=5))
    with pytest.raises(RetryableDeliveryError) as caught:
        await slack(server, timeout=0.2).send(message(target="#incidents"))
    assert "timed out" in str(clean(caught.value))


async def test_slack_check_is_auth_test(server):
    server.on(
        "POST",
        "/api/auth.test",
        Reply(
            200,
            json={"ok": True, "url": "https://acme.slack.com/", "team": "Acme", "user": "tocsin", "team_id": "T1"},
            headers={"x-oauth-scopes": "chat:write,channels:manage,channels:read,channels:join,channels:history"},
        ),
    )
    line = await slack(server).check()
    assert line == (
        "authenticated as tocsin in Acme (https://acme.slack.com/); missing scopes for war rooms: pins:read, pins:write"
    )
    assert server.calls() == ["POST /api/auth.test"]
    assert server.requests[0].headers["authorization"] == f"Bearer {SLACK_TOKEN}"

    server.on("POST", "/api/auth.test", Reply(200, json={"ok": False, "error": "invalid_auth"}))
    with pytest.raises(PermanentDeliveryError, match="invalid_auth") as caught:
        await slack(server).check()
    clean(caught.value)


def test_slack_from_env(tmp_path: Path):
    assert SlackChannel.from_env({}) is None
    token = tmp_path / "slack"
    token.write_text(SLACK_TOKEN)
    channel = SlackChannel.from_env(
        {
            "TOCSIN_SLACK_TOKEN_FILE": str(token),
            "TOCSIN_SLACK_WAR_ROOM_USERS": "U1, U2,",
            "TOCSIN_SLACK_API_URL": "http://x/api/",
        }
    )
    assert channel is not None
    assert channel.api_url == "http://x/api" and channel.war_room_users == ("U1", "U2")
    assert SLACK_TOKEN not in repr(channel)


def test_channel_names_follow_slacks_rule():
    assert war_room_name("Checkout.Down 42") == "inc-checkout-down-42"
    long = war_room_name("x" * 200)
    assert len(long) == 80 and long != war_room_name("x" * 199)
    assert channel_name("#Incidents") == "incidents"


# -- Slack: the war room -----------------------------------------------------------------------------------


def war_room_message(**overrides: Any) -> Message:
    return message(
        **{
            "channel": "slack",
            "target": f"#inc-{INCIDENT}",
            "idempotency_key": f"{INCIDENT}/action/create_war_room",
            **overrides,
        }
    )


async def test_slack_war_room_is_created_with_stakeholders_and_a_pinned_summary(server):
    fake = FakeSlack(server, SLACK_TOKEN)
    receipt = await slack(server, war_room_users=["U0ALICE", "U0BOB"]).send(war_room_message())

    cid = fake.room(INCIDENT)
    [summary] = fake.summaries(cid)
    assert receipt.provider_id == f"{cid}:{summary['ts']}" and not receipt.duplicate
    assert fake.pins[cid] == [summary["ts"]]
    assert fake.members[cid] == {"UTOCSIN", "U0ALICE", "U0BOB"}
    assert server.calls() == [
        "POST /api/conversations.create",
        "POST /api/conversations.invite",
        "GET /api/pins.list",
        "GET /api/conversations.history",
        "POST /api/chat.postMessage",
        "POST /api/pins.add",
    ]
    create, invite = server.requests[0].json, server.requests[1].json
    assert create == {"name": f"inc-{INCIDENT}", "is_private": False}
    assert invite == {"channel": cid, "users": "U0ALICE,U0BOB", "force": True}
    assert "Checkout availability low" in summary["text"] and "*Status:* triggered" in summary["text"]
    assert summary["blocks"][-1]["type"] == "actions" and len(summary["blocks"][-1]["elements"]) == 4
    assert all(r.headers["authorization"] == f"Bearer {SLACK_TOKEN}" for r in server.requests)


async def test_slack_war_room_second_send_creates_nothing_and_updates_the_summary_in_place(server):
    fake = FakeSlack(server, SLACK_TOKEN)
    # A lookalike channel first, so that finding the war room takes the list's cursor.
    fake.conversations_create({"name": "inc-something-else"})
    await slack(server, war_room_users=["U0ALICE"]).send(war_room_message())
    cid = fake.room(INCIDENT)
    [first] = fake.summaries(cid)
    server.reset()

    # Another worker (a fresh adapter: nothing cached) delivers the acknowledgement to the war room.
    update = war_room_message(idempotency_key=f"{INCIDENT}/ack", status="acknowledged", text="alice is on it")
    receipt = await slack(server, war_room_users=["U0ALICE"]).send(update)

    assert len(fake.channels) == 2 and len(fake.messages[cid]) == 1
    [summary] = fake.summaries(cid)
    assert summary["ts"] == first["ts"] and fake.pins[cid] == [first["ts"]]
    assert "*Status:* acknowledged" in summary["text"] and "alice is on it" in summary["text"]
    acknowledged = [e["action_id"] for e in summary["blocks"][-1]["elements"]]
    assert acknowledged == ["tocsin_escalate", "tocsin_resolve"]  # acknowledging it again is not offered
    assert receipt.provider_id == f"{cid}:{first['ts']}" and not receipt.duplicate
    assert server.calls() == [
        "POST /api/conversations.create",  # answered name_taken
        "GET /api/conversations.list",
        "GET /api/conversations.list",
        "POST /api/conversations.invite",  # answered already_in_channel
        "GET /api/pins.list",
        "POST /api/chat.update",
    ]
    assert server.requests[-1].json["ts"] == first["ts"]
    assert server.requests[-1].json["metadata"]["event_payload"]["delivery"] == f"{INCIDENT}/ack"


async def test_slack_war_room_retry_of_the_same_delivery_is_a_duplicate(server):
    fake = FakeSlack(server, SLACK_TOKEN)
    channel = slack(server)
    first = await channel.send(war_room_message())
    server.reset()
    again = await channel.send(war_room_message())
    assert again.provider_id == first.provider_id and again.duplicate
    assert server.calls() == ["GET /api/pins.list"]  # the room is known to this worker; nothing is written
    assert len(fake.messages[fake.room(INCIDENT)]) == 1


async def test_slack_war_room_summary_posted_but_not_pinned_is_found_again(server):
    """An attempt that posted the summary and then failed (pins.add 500) must not post a second one."""
    fake = FakeSlack(server, SLACK_TOKEN, pins_carry_metadata=False)
    fake.fail_next["pins.add"] = Reply(500, body="upstream")
    with pytest.raises(RetryableDeliveryError):
        await slack(server).send(war_room_message())
    cid = fake.room(INCIDENT)
    assert len(fake.summaries(cid)) == 1 and fake.pins[cid] == []

    receipt = await slack(server).send(war_room_message())

    [summary] = fake.summaries(cid)
    assert fake.pins[cid] == [summary["ts"]]
    assert receipt.duplicate and receipt.provider_id == f"{cid}:{summary['ts']}"
    assert len(server.received("POST", "/api/chat.postMessage")) == 1
    history = server.received("GET", "/api/conversations.history")[-1]
    assert history.query["include_all_metadata"] == ["true"]


async def test_slack_war_room_concurrent_deliveries_make_one_room_and_one_summary(server):
    fake = FakeSlack(server, SLACK_TOKEN)
    channel = slack(server)
    await asyncio.gather(
        channel.send(war_room_message()),
        channel.send(war_room_message(idempotency_key=f"{INCIDENT}/action/create_slack_channel")),
    )
    assert len(fake.channels) == 1
    assert len(fake.summaries(fake.room(INCIDENT))) == 1
    assert len(server.received("POST", "/api/conversations.create")) == 1


async def test_slack_war_room_archived_is_permanent(server):
    fake = FakeSlack(server, SLACK_TOKEN)
    fake.conversations_create({"name": war_room_name(INCIDENT)})
    fake.channels[fake.room(INCIDENT)]["is_archived"] = True
    with pytest.raises(PermanentDeliveryError, match="archived") as caught:
        await slack(server).send(war_room_message())
    clean(caught.value)
    assert server.received("POST", "/api/chat.postMessage") == []


async def test_slack_war_room_refused_invitation_does_not_fail_the_delivery(server):
    fake = FakeSlack(server, SLACK_TOKEN)
    fake.fail_next["conversations.invite"] = Reply(200, json={"ok": False, "error": "user_not_found"})
    receipt = await slack(server, war_room_users=["U0GONE"]).send(war_room_message())
    assert receipt.provider_id.startswith(fake.room(INCIDENT))
    assert len(fake.summaries(fake.room(INCIDENT))) == 1


async def test_slack_war_room_rate_limit_mid_way_is_retryable_and_the_retry_completes(server):
    fake = FakeSlack(server, SLACK_TOKEN)
    fake.fail_next["chat.postMessage"] = Reply(
        429, headers={"Retry-After": "1"}, json={"ok": False, "error": "ratelimited"}
    )
    with pytest.raises(RetryableDeliveryError) as caught:
        await slack(server).send(war_room_message())
    assert caught.value.retry_after == 1.0
    await slack(server).send(war_room_message())
    assert len(fake.channels) == 1 and len(fake.summaries(fake.room(INCIDENT))) == 1


# -- generic webhook ---------------------------------------------------------------------------------------


def hook_url(server: VendorServer) -> str:
    return f"{server.url}/hooks/{HOOK_SECRET}?token=topsecret-query"


async def test_webhook_posts_the_message_with_its_idempotency_key(server):
    server.on("POST", f"/hooks/{HOOK_SECRET}", Reply(200, json={"received": True}, headers={"X-Request-Id": "req-1"}))
    channel = WebhookChannel(hook_url(server))
    assert isinstance(channel, Channel)

    receipt = await channel.send(message(channel="webhook", target="ops"))

    assert receipt.provider_id == "req-1" and not receipt.duplicate
    [request] = server.requests
    assert request.path == f"/hooks/{HOOK_SECRET}" and request.query == {"token": ["topsecret-query"]}
    assert request.headers["idempotency-key"] == f"{INCIDENT}/page/0/1"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "source": "tocsin",
        "idempotency_key": f"{INCIDENT}/page/0/1",
        "incident": INCIDENT,
        "channel": "webhook",
        "target": "ops",
        "text": "Checkout availability is 91% (target 99.9%)",
        "title": "Checkout availability low",
        "severity": "sev1",
        "service": "checkout",
        "status": "triggered",
        "at": "2025-03-30T01:30:00Z",
    }


async def test_webhook_replayed_answer_is_a_duplicate(server):
    server.on("POST", f"/hooks/{HOOK_SECRET}", Reply(200, headers={"Idempotent-Replayed": "true"}))
    receipt = await WebhookChannel(hook_url(server)).send(message())
    assert receipt.duplicate and receipt.provider_id == f"{INCIDENT}/page/0/1"


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(400, json={"error": "bad payload"}), PermanentDeliveryError, None),
        (Reply(401, body="unauthorized"), PermanentDeliveryError, None),
        (Reply(404, body="no such hook"), PermanentDeliveryError, None),
        (Reply(429, headers={"Retry-After": "12"}, body="slow down"), RetryableDeliveryError, 12.0),
        (Reply(500, body="boom"), RetryableDeliveryError, None),
    ],
)
async def test_webhook_errors(server, reply, error, retry_after):
    server.on("POST", f"/hooks/{HOOK_SECRET}", reply)
    with pytest.raises(error) as caught:
        await WebhookChannel(hook_url(server)).send(message())
    assert f"webhook answered {reply.status}" in str(clean(caught.value))
    if retry_after is not None:
        assert caught.value.retry_after == retry_after


async def test_webhook_error_echoing_the_url_is_redacted(server):
    server.on("POST", f"/hooks/{HOOK_SECRET}", Reply(403, body=f"forbidden: {hook_url(server)}"))
    with pytest.raises(PermanentDeliveryError) as caught:
        await WebhookChannel(hook_url(server)).send(message())
    assert "[redacted]" in str(clean(caught.value))


async def test_webhook_timeout_is_retryable(server):
    server.on("POST", f"/hooks/{HOOK_SECRET}", Reply(200, delay=5))
    with pytest.raises(RetryableDeliveryError) as caught:
        await WebhookChannel(hook_url(server), timeout=0.2).send(message())
    clean(caught.value)


async def test_webhook_check_names_the_host_only(server):
    line = await WebhookChannel(hook_url(server)).check()
    assert line.startswith(f"POST to 127.0.0.1:{server.port};") and "nothing was sent" in line
    clean(Exception(line))
    assert server.requests == []


def test_webhook_from_env(tmp_path: Path):
    assert WebhookChannel.from_env({}) is None and TeamsChannel.from_env({}) is None
    url_file = tmp_path / "hook"
    url_file.write_text(f"https://hooks.example.com/{HOOK_SECRET}\n")
    channel = WebhookChannel.from_env({"TOCSIN_WEBHOOK_URL_FILE": str(url_file)})
    assert channel is not None and HOOK_SECRET not in repr(channel)
    with pytest.raises(PermanentDeliveryError) as caught:
        WebhookChannel.from_env({"TOCSIN_WEBHOOK_URL": f"hooks.example.com/{HOOK_SECRET}"})
    assert str(clean(caught.value)) == "TOCSIN_WEBHOOK_URL: not an absolute http(s) URL"
    teams = TeamsChannel.from_env(
        {"TOCSIN_TEAMS_WEBHOOK_URL": "https://x.webhook.office.com/a", "TOCSIN_TEAMS_CARD": "MessageCard"}
    )
    assert teams is not None and teams.card == "messagecard"


# -- Microsoft Teams ---------------------------------------------------------------------------------------


def teams_path() -> str:
    return f"/webhookb2/1111@2222/{TEAMS_SECRET}"


async def test_teams_posts_an_adaptive_card_and_reads_1_as_success(server):
    server.on("POST", teams_path(), Reply(200, body="1"))
    channel = TeamsChannel(f"{server.url}{teams_path()}")
    assert isinstance(channel, Channel)

    receipt = await channel.send(message(channel="teams", target="ops"))

    assert receipt.provider_id == f"{INCIDENT}/page/0/1"
    [request] = server.requests
    assert request.path == teams_path()
    body = request.json
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    title, text, facts = card["body"]
    # Title and text are TextRuns (never read as Markdown), so they go as written.
    assert title["type"] == text["type"] == "RichTextBlock"
    [title_run], [text_run] = title["inlines"], text["inlines"]
    assert title_run["type"] == text_run["type"] == "TextRun"
    assert title_run["text"] == "Checkout availability low" and title_run["color"] == "attention"
    assert title_run["weight"] == "Bolder"
    assert text_run["text"] == "Checkout availability is 91% (target 99.9%)"
    assert {"title": "Incident", "value": INCIDENT} in facts["facts"]


async def test_teams_messagecard_and_workflows_202(server):
    server.on("POST", teams_path(), Reply(202))
    await TeamsChannel(f"{server.url}{teams_path()}", card="messagecard").send(message(severity="sev2"))
    body = server.requests[0].json
    assert body["@type"] == "MessageCard" and body["@context"] == "https://schema.org/extensions"
    assert body["themeColor"] == "FF8C00" and body["title"] == "Checkout availability low"
    assert body["text"] == "Checkout availability is 91% (target 99.9%)"


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(400, body="Summary or Text is required."), PermanentDeliveryError, None),
        (Reply(401, body="Unauthorized"), PermanentDeliveryError, None),
        (Reply(404, body="Webhook not found"), PermanentDeliveryError, None),
        (Reply(429, headers={"Retry-After": "5"}, body="Too Many Requests"), RetryableDeliveryError, 5.0),
        (Reply(500, body="Internal Server Error"), RetryableDeliveryError, None),
        (
            Reply(200, body="Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0"),
            RetryableDeliveryError,
            None,
        ),
        (
            Reply(200, body="Microsoft Teams endpoint returned HTTP error 400 with ContextId tcid=0"),
            PermanentDeliveryError,
            None,
        ),
    ],
)
async def test_teams_errors(server, reply, error, retry_after):
    server.on("POST", teams_path(), reply)
    with pytest.raises(error) as caught:
        await TeamsChannel(f"{server.url}{teams_path()}").send(message())
    assert "teams answered" in str(clean(caught.value))
    if retry_after is not None:
        assert caught.value.retry_after == retry_after


async def test_teams_timeout_is_retryable(server):
    server.on("POST", teams_path(), Reply(200, body="1", delay=5))
    with pytest.raises(RetryableDeliveryError) as caught:
        await TeamsChannel(f"{server.url}{teams_path()}", timeout=0.2).send(message())
    clean(caught.value)


async def test_teams_check_names_the_host_only(server):
    line = await TeamsChannel(f"{server.url}{teams_path()}").check()
    assert f"127.0.0.1:{server.port}" in line and TEAMS_SECRET not in line
    assert server.requests == []


async def test_webhook_urls_never_reach_the_logs_even_from_httpx(server, caplog):
    """httpx logs each request's URL at INFO; for webhooks the URL is the credential."""
    server.on("POST", f"/hooks/{HOOK_SECRET}", Reply(200))
    server.on("POST", teams_path(), Reply(200, body="1"))
    await WebhookChannel(hook_url(server)).send(message())
    await TeamsChannel(f"{server.url}{teams_path()}").send(message())
    requests = [r for r in caplog.records if r.name == "httpx"]
    assert len(requests) == 2 and all("[redacted]" in r.getMessage() for r in requests)
