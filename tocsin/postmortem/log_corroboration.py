"""Whether gathered log lines corroborate the cause the responders stated. Pure.

A log line (evidence from the logs source, tocsin.postmortem.sources.logs) corroborates a stated cause when

- it was first seen within `LOG_WINDOW` of the first symptom (before or after: the line that records the
  trigger usually comes just before the metrics move), and
- it shares at least `SHARED_TERMS` distinct terms with the words: component and error terms, not the
  vocabulary every log line has. A term is a word of three letters or more that is not in `_COMMON`, compared by
  its first five letters (a plural's 's' dropped first), so "promote" meets "promoted", "rules" meets "rule".

Log lines are untrusted text (anyone who can make the service log can write them): this only compares words
and cites the line; nothing in a line is followed. A line that merely shares "error" or "failed" with the words
corroborates nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.postmortem.contracts import Evidence
from tocsin.postmortem.timeline import as_utc

LOG_WINDOW = timedelta(minutes=10)
SHARED_TERMS = 2
LINES_CITED = 3
_STEM = 5
_WORD = re.compile(r"[a-z][a-z]{2,}")
# Words any log line or any sentence has: they tell nothing about which component failed or how.
_COMMON_WORDS = """
    the and for with from that this than then was were are has had have not but its into onto over under out
    all any one two few far more most many much some such only also very just after before during while when
    where which whose who what why how there their they them our your his her she him it's been being will would
    could should may might must can did does done too off per via
    error errors err warn warning info debug fatal failed failure fail fails failing log line first
    request requests response responses service services status code http https true false null none
    took take taking time times timed second seconds minute minutes hour hours
    root cause caused causing because made make makes set get put
"""
_COMMON = frozenset(_COMMON_WORDS.split())


@dataclass(frozen=True)
class Corroboration:
    lines: list[Evidence]  # the corroborating lines, earliest first
    terms: list[str]  # the words they share with the statement, as the statement says them


def terms(text: str) -> dict[str, str]:
    """The text's distinctive terms: stem → the word as first said."""
    found: dict[str, str] = {}
    for word in _WORD.findall(text.lower()):
        if word not in _COMMON:
            # A plural is its singular ("rules" meets "rule"), then the first letters decide.
            stem = word[:-1] if word.endswith("s") and len(word) > 3 else word
            found.setdefault(stem[:_STEM], word)
    return found


def _line_text(line: Evidence) -> str:
    """The line itself, without the source's framing ('log line x3 (first 14:02Z): ...')."""
    framed = line.summary.startswith("log line") and "): " in line.summary
    return line.summary.split("): ", 1)[1] if framed else line.summary


def corroborating_lines(words: str, evidence: list[Evidence], anchor: datetime | None) -> Corroboration | None:
    """The log lines that support the words around `anchor` (the first symptom), or None when none do."""
    said = terms(words)
    lines = []
    shared: dict[str, str] = {}
    for line in sorted((e for e in evidence if e.source == "logs" and e.at is not None), key=lambda e: (e.at, e.id)):
        assert line.at is not None
        if anchor is not None and abs(as_utc(line.at) - as_utc(anchor)) > LOG_WINDOW:
            continue
        common = said.keys() & terms(_line_text(line)).keys()
        if len(common) >= SHARED_TERMS:
            lines.append(line)
            shared.update({stem: said[stem] for stem in common})
    if not lines:
        return None
    ordered = [said[stem] for stem in said if stem in shared]  # in the statement's order
    return Corroboration(lines[:LINES_CITED], ordered)
