"""What counts as evidence that detection was slow, for the "Improve monitoring coverage" item. Pure.

The item is earned by real slow-detection evidence only:

- the built-in analyzer's detection lag (the incident opened more than DETECTION_LAG after the first symptom:
  a claim starting "Detection lag:"), or
- a cause or contributing factor whose own words say detection was missing, late or slow ("no alert covered
  the queue", "monitoring did not alert", "alerting was delayed", "we were blind to it").

Merely mentioning monitoring, detection or alerts is not such evidence: a pull request titled "tighten
detection of inline JS" says what a change did, not that anything was detected late. So the words of any
change a claim cites (its summary, quoted into the claim's text) are taken out before matching.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tocsin.postmortem.contracts import Analysis, Claim, Evidence

DETECTION_LAG_PREFIX = "Detection lag:"
_SUBJECT = r"(?:monitor\w*|detect\w*|alert\w*)"
_SLOW = (
    r"(?:no|missing|without|lack\w*|late|later|slow\w*|delay\w*|did not|didn't|failed to|never|nothing|"
    r"not|blind|gap|lag|miss\w*|only after|until)"
)
# A slow-detection word and a detection subject near each other, either order, within one clause.
SLOW_DETECTION = re.compile(
    rf"\b{_SLOW}\b[^.;:]{{0,40}}?\b{_SUBJECT}|\b{_SUBJECT}[^.;:]{{0,40}}?\b{_SLOW}\b", re.IGNORECASE
)


def _own_words(claim: Claim, evidence: Sequence[Evidence]) -> str:
    """The claim's words without the summaries of the changes it cites (what those changes said they did)."""
    text = claim.stated or claim.text
    for item in evidence:
        if item.source == "changes" and item.id in claim.evidence and item.summary:
            text = text.replace(item.summary, " ")
    return text


def says_detection_was_slow(claim: Claim, evidence: Sequence[Evidence] = ()) -> bool:
    if claim.text.startswith(DETECTION_LAG_PREFIX):
        return True
    return bool(SLOW_DETECTION.search(_own_words(claim, evidence)))


def slow_detection_claims(analysis: Analysis, evidence: Sequence[Evidence] = ()) -> list[Claim]:
    """The claims (cause first, then contributing factors) that are evidence of slow detection."""
    claims = ([analysis.primary_cause] if analysis.primary_cause else []) + analysis.contributing_factors
    return [c for c in claims if says_detection_was_slow(c, evidence)]
