"""What a Slack message says: the text and Block Kit blocks of a notification and of a war room's summary.

Everything a Message carries may have come from an alert or a caller, so every value goes through
`slack_text` (Slack's `&` `<` `>` escaping), which leaves `<!channel>` or `<https://evil|https://good>`
as text instead of a mass mention or a disguised link. Beyond that:

- the title is a `header` block, which takes `plain_text` only: no mrkdwn, link or mention in it can work;
- the body is `section` blocks of mrkdwn with `verbatim: true`, so Slack does not turn plain channel names,
  URLs or mentions in it into links (a section holds 3000 characters: a long body takes several);
- the top-level `text` stays, as the fallback that notifications and screen readers use, escaped the same;
- every post and update says `parse: none` and `link_names: false`: a plain `@here` or `@channel` is text
  unless written as `<!here>`, and that form cannot survive the escaping.

While the incident is open, posts and the summary end in buttons (Acknowledge, Snooze 30m while it pages;
Escalate, Resolve until it is resolved): `action_id` `tocsin_<verb>`, `value` the incident key. Slack sends a
click to the receiver (tocsin/receiver/slack_routes.py), which answers with `acted_content`.

What Tocsin writes around the values (`*Status:*`, the emoji, "Updated ...") is its own mrkdwn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tocsin.channels.base import Message
from tocsin.channels.escaping import fit, slack_text
from tocsin.responders.slack import BUTTON_SNOOZE

TEXT_LIMIT = 40_000  # Slack truncates a longer top-level text
HEADER_LIMIT = 150  # a header block's plain_text
SECTION_LIMIT = 3000  # a section block's text
MAX_SECTIONS = 45  # a message holds 50 blocks: room for a header, the facts, a context line and the buttons
# Which buttons an incident in each status shows: a click that would only be refused is not offered.
BUTTONS: dict[str, tuple[str, ...]] = {
    "triggered": ("acknowledge", "escalate", "resolve", "snooze"),
    "acknowledged": ("escalate", "resolve"),
    "mitigated": ("escalate", "resolve"),
}
LABELS = {
    "acknowledge": "Acknowledge",
    "escalate": "Escalate",
    "resolve": "Resolve",
    "snooze": f"Snooze {BUTTON_SNOOZE.seconds // 60}m",
}
OUTCOME_BLOCK = "tocsin_outcome"  # block_id prefix of the line a click adds, replaced by the next click's
# Both chat.postMessage and chat.update take these; nothing in the text is parsed into links or mentions.
NO_PARSING: dict[str, Any] = {"parse": "none", "link_names": False}
# chat.postMessage only: an alert's URL must not unfold into a preview of whatever it points at.
NO_UNFURLING: dict[str, Any] = {"unfurl_links": False, "unfurl_media": False}


def post_content(message: Message) -> dict[str, Any]:
    """`text` and `blocks` of a plain notification: the title as a header, then the text."""
    head = f"*{slack_text(message.title)}*\n" if message.title else ""
    blocks = [*_header(message.title), *_sections(message.text), *action_buttons(message.incident, message.status)]
    return _content(head + slack_text(message.text), blocks)


def summary_content(message: Message) -> dict[str, Any]:
    """`text` and `blocks` of a war room's pinned summary: title, facts, the text, when it was written."""
    title = message.title or f"Incident {message.incident}"
    facts = [("Status", message.status), ("Severity", message.severity), ("Service", message.service)]
    fact_line = " · ".join(f"*{k}:* {slack_text(v)}" for k, v in facts if v)
    incident_line = f"*Incident:* `{slack_text(message.incident)}`"
    updated = f"_Updated {message.at.isoformat(timespec='seconds')}_"
    text = "\n".join(
        [
            f":rotating_light: *{slack_text(title)}*",
            fact_line,
            incident_line,
            "",
            slack_text(message.text),
            "",
            updated,
        ]
    )
    blocks = [
        *_header(f"\N{POLICE CARS REVOLVING LIGHT} {title}"),
        _section("\n".join(line for line in (fact_line, incident_line) if line)),
        *_sections(message.text),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": updated}]},
        *action_buttons(message.incident, message.status),
    ]
    return _content(text, blocks)


def action_buttons(key: str, status: str) -> list[dict[str, Any]]:
    """The actions block of an incident in `status` (none once resolved, or for a key no click could name)."""
    verbs = BUTTONS.get(status, ())
    if not verbs or not key or len(key) > 128:
        return []
    buttons = []
    for verb in verbs:
        button: dict[str, Any] = {
            "type": "button",
            "action_id": f"tocsin_{verb}",
            "value": key,
            "text": {"type": "plain_text", "text": LABELS[verb]},
        }
        if verb == "acknowledge":
            button["style"] = "primary"
        if verb == "resolve":
            # One stray tap must not close an incident and start its post-mortem.
            button["style"] = "danger"
            button["confirm"] = {
                "title": {"type": "plain_text", "text": "Resolve this incident?"},
                "text": {"type": "plain_text", "text": fit(f"Resolve {key} and stop paging for it.", 300, slack_text)},
                "confirm": {"type": "plain_text", "text": "Resolve"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            }
        buttons.append(button)
    return [{"type": "actions", "elements": buttons}]


def acted_content(original: Mapping[str, Any] | None, key: str, status: str, said: str, tag: str) -> dict[str, Any]:
    """The answer to a click, replacing the message clicked in: its blocks without the old buttons or the
    previous click's line, then `said` (Tocsin's mrkdwn, values already escaped) and the buttons `status`
    still allows. `tag` (the click's id) makes the new line's block_id unique, as Slack asks of an update."""
    kept: list[dict[str, Any]] = []
    text = ""
    if original is not None:
        blocks = original.get("blocks")
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, dict) or block.get("type") == "actions":
                continue
            if str(block.get("block_id", "")).startswith(OUTCOME_BLOCK):
                continue
            kept.append(block)
        text = str(original.get("text") or "")
    outcome = {
        "type": "context",
        "block_id": f"{OUTCOME_BLOCK}_{tag}"[:255],
        "elements": [{"type": "mrkdwn", "text": said}],
    }
    blocks = [*kept[: MAX_SECTIONS + 2], outcome, *action_buttons(key, status)]
    # The fallback stays the message's own text (a second click would otherwise pile up outcome lines in it).
    return {"replace_original": True, "text": _cut_escaped(text or said, TEXT_LIMIT), "blocks": blocks}


def _content(text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    # Escaped before it is cut, and cut between whole entities: a cut `&am` would show as text.
    content: dict[str, Any] = {"text": _cut_escaped(text, TEXT_LIMIT)}
    if blocks:
        content["blocks"] = blocks
    return content


def _header(title: str) -> list[dict[str, Any]]:
    if not title.strip():
        return []
    text = fit(" ".join(title.split()), HEADER_LIMIT, slack_text)
    return [{"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}]


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn, "verbatim": True}}


def _sections(raw: str) -> list[dict[str, Any]]:
    """The untrusted text, escaped, in as many sections as it takes; lines are kept whole where they fit."""
    chunks: list[str] = []
    current = ""
    for line in raw.split("\n"):
        while len(slack_text(line)) > SECTION_LIMIT:  # one line longer than a section: split it
            head = _longest_prefix(line)
            chunks += [c for c in (current, slack_text(line[:head])) if c]
            current, line = "", line[head:]
        candidate = f"{current}\n{slack_text(line)}" if current else slack_text(line)
        if len(candidate) > SECTION_LIMIT:
            chunks.append(current)
            candidate = slack_text(line)
        current = candidate
    chunks.append(current)
    return [_section(chunk) for chunk in chunks if chunk.strip()][:MAX_SECTIONS]


def _longest_prefix(line: str) -> int:
    """How many characters of `line` fit in one section once escaped (at least one)."""
    low, high = 1, len(line)
    while low < high:
        middle = (low + high + 1) // 2
        if len(slack_text(line[:middle])) <= SECTION_LIMIT:
            low = middle
        else:
            high = middle - 1
    return low


def _cut_escaped(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    amp = cut.rfind("&", max(0, limit - 5))
    if amp != -1 and ";" not in cut[amp:]:  # an entity (at most 5 characters) would be split: drop it whole
        cut = cut[:amp]
    return cut
