"""Untrusted text made inert for each place it lands: one function per output format.

Untrusted is anything an alert or a caller wrote: incident titles, summaries, label values, service names,
timeline text, notes, runbook output, post-mortem text. A Message carries all of it mixed with Tocsin's own
words, so adapters escape every field they render; what Tocsin adds around it (Slack's `*Status:*`, a table's
header, the hidden marker) is built from trusted parts and stays unescaped.

Every format first drops what no reader should get (`plain_text`): C0/C1 control characters other than a
newline (an ESC colour code, a NUL that makes TwiML invalid XML) and the Unicode bidirectional controls that can
make text display in another order than it reads ("Trojan Source"). Then, per format:

- `slack_text`: Slack's documented escaping, `&` `<` `>` as `&amp;` `&lt;` `&gt;` and nothing else, which
  turns `<!channel>`, `<!here>`, `<@U024BE7LH>` and `<https://evil|https://good>` into text.
- `teams_text`: a backslash before what Adaptive Card and MessageCard Markdown read (emphasis, links, code,
  list and heading markers), as CommonMark defines backslash escapes. Card titles and bodies need none of it:
  they go out as TextRuns, which Teams never reads as Markdown.
- `github_markdown`: GitHub-flavoured Markdown made literal (HTML as entities, Markdown punctuation behind a
  backslash, `$` math included), and GitHub's notifications defused: a zero-width space after `@` before a
  name and after `#` before a number, so `@octocat` pings nobody and `#1` cross-references nothing, while
  reading the same. (Renovate has long done this to release notes it quotes on GitHub, as `&#8203;`; the
  character itself works in titles too, which GitHub does not render as Markdown, and in plain-text mail.)
  A backslash before `@` would not do: GitHub links mentions after Markdown is rendered. `github_title`
  defuses only, on one line: a Markdown escape in a title would show.
- `email_subject`: one line (every line break and control gone), bounded; Python's email package encodes it.
- `xml_text`: for TwiML `<Say>`, `&` `<` `>` as entities after `plain_text`.

`fit` bounds any of them to a vendor's length limit, cutting the raw text so no escape is cut in half.

A generic webhook gets JSON, whose encoding is its escaping: its receiver decides what the text becomes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# C0 except TAB and LF, DEL, C1; then the bidi marks, embeddings, overrides and isolates.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Line breaks of every kind become "\n" before the controls go (a bare CR is a break, not a control to drop).
_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_ZWSP = "\u200b"

_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_TEAMS = str.maketrans({c: f"\\{c}" for c in "\\*_`[]<>~"})
_GITHUB = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", **{c: f"\\{c}" for c in "\\*_`[]|~$"}})
# What opens a block at the start of a line: an ATX heading, a list item, a thematic break or setext line.
_BLOCK_START = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|[-+*](?=\s|$)|[-=]+\s*$|(?:[-*_]\s*){3,}$)")
_NUMBERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)")
# GitHub links `@name` (users, teams as `@org/team`) and `#123`, `GH-123`, `owner/repo#123` (cross-references).
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_REFERENCE = re.compile(r"(#|\bGH-)(?=\d)", re.IGNORECASE)


def plain_text(value: str, *, one_line: bool = False) -> str:
    """The text without control or bidi characters; line breaks kept as "\\n" (or folded, with `one_line`)."""
    text = _CONTROLS.sub("", _BREAKS.sub("\n", value).replace("\t", " "))
    return " ".join(text.split()) if one_line else text


def slack_text(value: str) -> str:
    """For Slack mrkdwn, the top-level `text` and `plain_text` objects alike (Slack decodes these three in
    every text object): only `&`, `<` and `>` escaped, as Slack's "Escaping text" asks."""
    return plain_text(value).translate(_ENTITIES)


def teams_text(value: str) -> str:
    """For a Teams TextBlock, Fact or MessageCard `text`: Markdown punctuation and block markers escaped."""
    return "\n".join(_block_escaped(line.translate(_TEAMS)) for line in plain_text(value).split("\n"))


def github_markdown(value: str, *, inline: bool = False) -> str:
    """For a GitHub issue body: literal Markdown, inert HTML, no mention, no cross-reference. `inline` folds
    it onto one line (a table cell, a link's text)."""
    text = plain_text(value, one_line=inline)
    return "\n".join(_defused(_block_escaped(line.translate(_GITHUB))) for line in text.split("\n"))


def github_title(value: str, limit: int = 256) -> str:
    """For a GitHub issue title (plain text, at most 256 characters): one line, no mention, no reference."""
    return fit(plain_text(value, one_line=True), limit, _defused)


def email_subject(value: str, limit: int = 250) -> str:
    """A Subject that is one line whatever the value holds (no header can be smuggled after it), bounded."""
    return fit(plain_text(value, one_line=True), limit)


def xml_text(value: str) -> str:
    """For XML character data (TwiML's `<Say>`): control characters gone (XML 1.0 forbids most), `&<>` escaped."""
    return plain_text(value).translate(_ENTITIES)


def fit(value: str, limit: int, escape: Callable[[str], str] = str) -> str:
    """`escape(value)` in at most `limit` characters, ending in "…" when cut. The cut is made in the unescaped
    text (the longest prefix that fits, found by bisection), so it never splits an entity or an escape."""
    escaped = escape(value)
    if len(escaped) <= limit:
        return escaped
    low, high = 0, len(value)  # escape(value[:low] + "…") fits (or low is 0); value[:high] does not
    while high - low > 1:
        middle = (low + high) // 2
        if len(escape(value[:middle] + "…")) <= limit:
            low = middle
        else:
            high = middle
    cut = escape(value[:low] + "…")
    return cut if len(cut) <= limit else ""


def _block_escaped(line: str) -> str:
    line = _BLOCK_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", line, count=1)
    return _NUMBERED.sub(r"\1\\\2", line, count=1)


def _defused(text: str) -> str:
    return _REFERENCE.sub(lambda m: m.group(1) + _ZWSP, _MENTION.sub("@" + _ZWSP, text))
