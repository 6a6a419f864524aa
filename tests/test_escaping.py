"""Untrusted text at every edge: each format's escaping against hostile inputs (the vendors' own examples where
they document some), then one hostile alert through the delivery activity to the local Slack, Teams, GitHub,
SMTP and Twilio servers, reading back what each received."""

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
from tests.postmortem_fakes import FakeGitHubRepo
from tests.vendor_fakes import FakeGitHub, FakeSlack, MailRecorder, smtp_server
from tests.vendor_server import Reply, VendorServer
from tocsin.channels.base import Channel, Message
from tocsin.channels.escaping import (
    email_subject,
    fit,
    github_markdown,
    github_title,
    plain_text,
    slack_text,
    teams_text,
    xml_text,
)
from tocsin.channels.github import GitHubIssues
from tocsin.channels.registry import ADAPTERS
from tocsin.channels.slack import war_room_name
from tocsin.channels.slack_format import SECTION_LIMIT, TEXT_LIMIT, post_content
from tocsin.channels.twilio import twiml
from tocsin.incident.contracts import Delivery
from tocsin.postmortem.contracts import ActionItem
from tocsin.postmortem.publish import GitHubPublisher, item_marker

ZWSP = "\u200b"
HOSTILE = "<!channel> @here deploy <https://evil.example/sso|https://sso.example.com> @octocat"
TITLE = f"{HOSTILE}\r\nBcc: victim@example.com"  # a title that tries to start an email header of its own
BODY = (
    f"{HOSTILE}\n[https://sso.example.com](https://evil.example/sso) **now** <img src=x onerror=alert(1)>"
    " see #1\r\nBcc: victim@example.com\x1b[31m\u202e"
)
SLACK_TOKEN, GITHUB_TOKEN, TWILIO_SID = "xoxb-escaping-test", "ghp_escapingtest", "AC" + "0" * 32


# -- one function per format -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("Hello & <world>", "Hello &amp; &lt;world&gt;"),  # Slack's own example
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here>", "&lt;!here&gt;"),
        ("<@U024BE7LH>", "&lt;@U024BE7LH&gt;"),
        ("<#C024BE7LR>", "&lt;#C024BE7LR&gt;"),
        (
            "<https://evil.example/sso|https://sso.example.com>",
            "&lt;https://evil.example/sso|https://sso.example.com&gt;",
        ),
        ("&lt;!channel&gt;", "&amp;lt;!channel&amp;gt;"),  # an entity in the input stays text
        ("@here and @channel, plain", "@here and @channel, plain"),  # not mentions without <!...>: left alone
        ('it\'s "quoted" *bold*\nline 2', 'it\'s "quoted" *bold*\nline 2'),  # only & < > (Slack: no more)
    ],
)
def test_slack_escapes_its_three_control_characters(raw: str, escaped: str) -> None:
    assert slack_text(raw) == escaped


def test_teams_markdown_is_escaped_line_by_line() -> None:
    assert teams_text("[https://sso.example.com](https://evil.example/sso)") == (
        "\\[https://sso.example.com\\](https://evil.example/sso)"
    )
    assert teams_text("**bold** _it_ `code` ~x~ <at>Ops</at>") == (
        "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\~x\\~ \\<at\\>Ops\\</at\\>"
    )
    assert teams_text("- item\n1. first\n# head\n> quote") == "\\- item\n1\\. first\n\\# head\n\\> quote"
    assert teams_text("Checkout availability is 91% (target 99.9%)") == "Checkout availability is 91% (target 99.9%)"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("@octocat", f"@{ZWSP}octocat"),
        ("@acme/oncall please", f"@{ZWSP}acme/oncall please"),
        ("fixes #1, acme/ops#2 and GH-3", f"fixes #{ZWSP}1, acme/ops#{ZWSP}2 and GH-{ZWSP}3"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("<!-- hidden --><script>x</script>", "&lt;!-- hidden --&gt;&lt;script&gt;x&lt;/script&gt;"),
        ("&#64;octocat", f"&amp;#{ZWSP}64;octocat"),  # no entity can spell a mention
        ("[sso](https://evil.example) ![x](y)", "\\[sso\\](https://evil.example) !\\[x\\](y)"),
        ("```\nrm -rf /\n```", "\\`\\`\\`\nrm -rf /\n\\`\\`\\`"),
        ("# Title\n---\n* a\n2) b\n===", "\\# Title\n\\---\n\\* a\n2\\) b\n\\==="),
        ("| a | b |", "\\| a \\| b \\|"),
        ("$\\color{red}{x}$ ~~gone~~ __b__", "\\$\\\\color{red}{x}\\$ \\~\\~gone\\~\\~ \\_\\_b\\_\\_"),
        ("Route 5% of traffic for 10 minutes.", "Route 5% of traffic for 10 minutes."),
    ],
)
def test_github_markdown_is_literal_and_pings_nobody(raw: str, escaped: str) -> None:
    assert github_markdown(raw) == escaped


def test_github_inline_and_title() -> None:
    assert github_markdown("a\r\nb | c", inline=True) == "a b \\| c"
    # A title is not Markdown: no backslashes, but no mention or reference either, one line, 256 at most.
    assert github_title(HOSTILE + "\nfixes #1") == HOSTILE.replace("@", f"@{ZWSP}") + f" fixes #{ZWSP}1"
    long = github_title("@a " * 200)
    assert len(long) <= 256 and long.endswith("…") and "@a" not in long


def test_email_subject_is_one_bounded_line() -> None:
    assert email_subject("Subject\r\nBcc: victim@example.com") == "Subject Bcc: victim@example.com"
    assert email_subject("a\nb\rc\x85d\u2028e\x00f\x1b[0m") == "a b c d ef[0m"
    assert len(email_subject("x" * 1000)) == 250


def test_plain_text_and_xml_drop_controls_and_bidi() -> None:
    assert plain_text("ok\x00\x07\u202egnp.exe\u2066\r\nnext\tcol") == "okgnp.exe\nnext col"
    assert xml_text("a & <Play>x</Play>\x01") == "a &amp; &lt;Play&gt;x&lt;/Play&gt;"
    said = twiml("<Dial>+1555</Dial> & " * 400)
    assert len(said) <= 4000 and "<Dial>" not in said and said.endswith("…</Say></Response>")


def test_fit_never_splits_an_escape() -> None:
    assert fit("&" * 10, 12, slack_text) == "&amp;&amp;…"
    assert fit("abc", 3) == "abc" and fit("abcd", 3) == "ab…"


def test_slack_long_text_splits_into_sections_without_cutting_an_entity() -> None:
    def message(text: str, title: str = "") -> Message:
        at = datetime(2026, 12, 1, tzinfo=UTC)
        return Message(idempotency_key="k", incident="i", channel="slack", target="#x", text=text, title=title, at=at)

    raw = "&" * 2000 + "\n" + "x<" * 2500 + "\nend"
    content = post_content(message(raw, title="T" * 400))
    header, *sections = content["blocks"]
    assert header["text"]["type"] == "plain_text" and len(header["text"]["text"]) <= 150
    texts = [s["text"]["text"] for s in sections]
    assert all(len(t) <= SECTION_LIMIT for t in texts) and len(texts) >= 3
    unescaped = "\n".join(texts).replace("&lt;", "<").replace("&amp;", "&")
    assert unescaped.replace("\n", "") == raw.replace("\n", "")
    huge = post_content(message("&" * 9000))["text"]
    assert len(huge) <= TEXT_LIMIT and huge.endswith("&amp;")


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


def test_a_post_mortems_action_items_reach_github_escaped(server: VendorServer) -> None:
    """The analysis reads alert text, so an item's title, description, owner and evidence are untrusted too."""
    fake = FakeGitHubRepo(server)
    item = ActionItem(
        title=f"Rotate the token @octocat #1 {HOSTILE}",
        description=f"{BODY}\n# Steps\n- [ ] <script>alert(1)</script>",
        owner="@acme/sre",
        due=datetime(2026, 12, 8, tzinfo=UTC).date(),
        evidence=["#42", "<!here>"],
    )
    publisher = GitHubPublisher(GitHubIssues(GITHUB_TOKEN, "acme/ops", server.url, pace=False))
    publication = publisher.publish("inc-hostile", "# Post-mortem\n", [item], revision=1)

    [issue] = fake.issues["acme/ops"]
    assert publication.items[0].issue_number == issue["number"]
    for field in (issue["title"], issue["body"]):
        assert not re.search(r"@[A-Za-z0-9]|#[0-9]", field), "no mention, no cross-reference"
    assert "<script>" not in issue["body"] and "<!here>" not in issue["body"] and "<https://evil" not in issue["body"]
    assert "\\# Steps" in issue["body"] and "\\- \\[ \\]" in issue["body"], "no heading, no task list"
    # The marker still digests the title as written: an issue filed before escaping existed is found again.
    assert issue["body"].rstrip().endswith(item_marker("inc-hostile", item.title))
