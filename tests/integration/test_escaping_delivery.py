"""One hostile alert through the delivery activity to the local Slack, Teams, GitHub, SMTP (aiosmtpd) and
Twilio servers, reading back what each received: nothing mentions, links, opens markup or starts a header
(each format's escaping on its own: tests/unit/test_escaping.py)."""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from activities.outbox import Outbox
from tests.support.hostile import BODY, GITHUB_TOKEN, HOSTILE, SLACK_TOKEN, TITLE, TWILIO_SID
from tests.support.vendor_fakes import FakeGitHub, FakeSlack, MailRecorder, smtp_server
from tests.support.vendor_server import Reply, VendorServer
from tocsin.channels.base import Channel
from tocsin.channels.escaping import slack_text
from tocsin.channels.registry import ADAPTERS
from tocsin.channels.slack import war_room_name
from tocsin.incident.contracts import Delivery

# -- one hostile alert through the delivery activity to every local vendor ---------------------------------


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


def delivery(channel: str, target: str) -> Delivery:
    return Delivery(
        idempotency_key=f"inc-hostile/{channel}/{target}",
        incident="inc-hostile",
        channel=channel,
        target=target,
        message=BODY,
        at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        title=TITLE,
        severity="sev1",
        service="checkout <!here>",
    )


def live(server: VendorServer, smtp_port: int) -> dict[str, Channel]:
    env = {
        "TOCSIN_SLACK_TOKEN": SLACK_TOKEN,
        "TOCSIN_SLACK_API_URL": f"{server.url}/api",
        "TOCSIN_TEAMS_WEBHOOK_URL": f"{server.url}/teams/hook",
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "TOCSIN_GITHUB_REPO": "acme/ops",
        "TOCSIN_GITHUB_API_URL": server.url,
        "TOCSIN_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}?starttls=never",
        "TOCSIN_EMAIL_FROM": "tocsin@example.com",
        "TOCSIN_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TOCSIN_TWILIO_AUTH_TOKEN": "twilio-escaping-test",
        "TOCSIN_TWILIO_FROM": "+15005550006",
        "TOCSIN_TWILIO_API_URL": server.url,
    }
    channels = {name: ADAPTERS[name](env) for name in ("slack", "teams", "github", "email", "sms", "phone")}
    return {name: channel for name, channel in channels.items() if channel is not None}


def markdown_fields(card: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(what Teams reads as Markdown: TextBlock texts, fact titles and values; what it shows as written: TextRuns)"""
    markdown: list[str] = []
    plain: list[str] = []
    for element in card["body"]:
        if element["type"] == "TextBlock":
            markdown.append(element["text"])
        elif element["type"] == "FactSet":
            markdown += [v for fact in element["facts"] for v in (fact["title"], fact["value"])]
        elif element["type"] == "RichTextBlock":
            plain += [run["text"] for run in element["inlines"]]
    return markdown, plain


async def test_a_hostile_alert_reaches_every_vendor_escaped(tmp_path: Path, server: VendorServer) -> None:
    slack = FakeSlack(server, SLACK_TOKEN)
    slack.add_channel("sre-alerts")
    github = FakeGitHub(server)
    server.on("POST", "/teams/hook", Reply(200, body="1"))
    twilio = Reply(201, json={"sid": "SM0001", "status": "queued"})
    for resource in ("Calls", "Messages"):
        server.on("POST", f"/2010-04-01/Accounts/{TWILIO_SID}/{resource}.json", twilio)
    mail = MailRecorder()
    with smtp_server(mail) as port:
        activities = DeliveryActivities(Outbox(tmp_path / "outbox.jsonl"), live(server, port))
        sends = [
            ("slack", "#sre-alerts"),
            ("slack", "#" + war_room_name("inc-hostile")),
            ("teams", "ops"),
            ("github", "tickets"),
            ("email", "oncall@example.com"),
            ("sms", "+15551234567"),
            ("phone", "+15551234567"),
        ]
        for channel, target in sends:
            receipt = await ActivityEnvironment().run(activities.deliver, delivery(channel, target))
            assert not receipt.provider_id.startswith("outbox:"), f"{channel} was not live"
    assert server.unmatched == []

    # Slack: no mass mention, no disguised link, anywhere in what it was sent; titles in plain_text headers.
    posts = [r for r in server.requests if r.path in ("/api/chat.postMessage", "/api/chat.update")]
    assert len(posts) == 2
    for post in posts:
        sent = post.json
        for raw in ("<!channel>", "<!here>", "<https://evil", "<img"):
            assert raw not in json.dumps(sent, ensure_ascii=False)
        assert sent["parse"] == "none" and sent["link_names"] is False
        header, *rest = sent["blocks"]
        assert header["type"] == "header" and header["text"]["type"] == "plain_text"
        assert slack_text(HOSTILE) in header["text"]["text"]
        assert all(b["text"]["verbatim"] for b in rest if b["type"] == "section")
    assert "@here" in posts[0].json["text"], "plain @here stays plain text, not converted to <!here>"

    # Teams: title and text only in TextRuns (never Markdown); everything read as Markdown escaped.
    [teams] = [r.json for r in server.requests if r.path == "/teams/hook"]
    markdown, plain = markdown_fields(teams["attachments"][0]["content"])
    assert plain[0] == f"{HOSTILE} Bcc: victim@example.com"
    assert "[https://sso.example.com](https://evil.example/sso)" in plain[1]
    assert "\x1b" not in plain[1] and "\u202e" not in plain[1]
    assert "checkout \\<!here\\>" in markdown
    assert not any(re.search(r"(?<!\\)[<>\[\]*_`]", field) for field in markdown), markdown

    # GitHub: nobody mentioned, nothing cross-referenced, no HTML, the link's text and target visible as text.
    [issue] = github.issues["acme/ops"]
    for field in (issue["title"], issue["body"]):
        assert "@octocat" not in field and "@here" not in field and "#1" not in field
    for raw in ("<!channel>", "<https://evil", "<img"):
        assert raw not in issue["body"]
    assert not re.search(r"(?<!\\)[\[\]]", issue["body"]), "every bracket escaped: no link"
    assert "\\[https://sso.example.com\\](https://evil.example/sso)" in issue["body"]

    # Email: the subject is one line; the text's "Bcc:" line stays in the body, never a header.
    [(_, recipients, raw_mail)] = mail.delivered
    parsed = email.message_from_bytes(raw_mail, policy=email.policy.default)
    assert recipients == ["oncall@example.com"] and parsed["Bcc"] is None
    assert parsed["Subject"] == f"[sev1] {HOSTILE} Bcc: victim@example.com"

    # Twilio: the call's TwiML opens no element of the caller's; the SMS has no control characters.
    [sms, call] = [r for r in server.requests if r.path.startswith("/2010-04-01/")]
    assert "\x1b" not in (sms.form_value("Body") or "") and "\u202e" not in (sms.form_value("Body") or "")
    said = call.form_value("Twiml") or ""
    assert said.count("<") == 4 and "&lt;img src=x" in said
