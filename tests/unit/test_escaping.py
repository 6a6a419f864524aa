"""Untrusted text at every edge: each format's escaping against hostile inputs (the vendors' own examples where
they document some), and a post-mortem's action items filed on the local GitHub. One hostile alert through the
delivery activity to every local vendor, SMTP included: tests/integration/test_escaping_delivery.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.hostile import BODY, GITHUB_TOKEN, HOSTILE
from tests.support.postmortem_fakes import FakeGitHubRepo
from tests.support.vendor_server import VendorServer
from tocsin.channels.base import Message
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
from tocsin.channels.slack_format import SECTION_LIMIT, TEXT_LIMIT, post_content
from tocsin.channels.twilio import twiml
from tocsin.postmortem.contracts import ActionItem
from tocsin.postmortem.publish import GitHubPublisher, item_marker

ZWSP = "\u200b"
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
    header, *sections, buttons = content["blocks"]
    assert header["text"]["type"] == "plain_text" and len(header["text"]["text"]) <= 150
    assert buttons["type"] == "actions" and all(s["type"] == "section" for s in sections)  # the incident is open
    texts = [s["text"]["text"] for s in sections]
    assert all(len(t) <= SECTION_LIMIT for t in texts) and len(texts) >= 3
    unescaped = "\n".join(texts).replace("&lt;", "<").replace("&amp;", "&")
    assert unescaped.replace("\n", "") == raw.replace("\n", "")
    huge = post_content(message("&" * 9000))["text"]
    assert len(huge) <= TEXT_LIMIT and huge.endswith("&amp;")


# -- a post-mortem's action items, filed on the local GitHub --------------------------------------------------


@pytest.fixture
def server() -> Iterator[VendorServer]:
    with VendorServer() as running:
        yield running


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
