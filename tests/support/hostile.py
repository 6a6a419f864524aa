"""One hostile alert's text, for the escaping tests: mass mentions, a disguised link, markup, a cross-reference,
an email header smuggled into a title, terminal escapes and a bidi override; and the fake credentials those
tests give the vendors."""

from __future__ import annotations

HOSTILE = "<!channel> @here deploy <https://evil.example/sso|https://sso.example.com> @octocat"
TITLE = f"{HOSTILE}\r\nBcc: victim@example.com"  # a title that tries to start an email header of its own
BODY = (
    f"{HOSTILE}\n[https://sso.example.com](https://evil.example/sso) **now** <img src=x onerror=alert(1)>"
    " see #1\r\nBcc: victim@example.com\x1b[31m\u202e"
)
SLACK_TOKEN, GITHUB_TOKEN, TWILIO_SID = "xoxb-escaping-test", "ghp_escapingtest", "AC" + "0" * 32
