"""The built-in analyzer's claims from the story the incident's record tells. Pure.

- `stated_primary`: the responders' cause (tocsin.postmortem.stated_cause) as the primary cause, attributed,
  with what the changes and metrics say about it; the correlation's own suspect, when it is not the change
  they named, stays visible as a contributing factor;
- `missed_targets`: each response or mitigation target the incident missed, citing its breach;
- `lessons`: what the story teaches, each citing the words or entries it rests on: a cause nothing gathered
  could check, a changed setting nothing caught before production, a rollback that ended the impact.
"""

from __future__ import annotations

import re
from datetime import datetime

from tocsin.postmortem.contracts import AnalysisRequest, Claim, Evidence
from tocsin.postmortem.stated_cause import Judgement, Stated, changed_setting, judge

# A contributing factor that names what the gathered data suspects when the responders' words point elsewhere.
ELSEWHERE = "The gathered data points elsewhere: "

_ROLLBACK = re.compile(r"\broll(?:ed|ing)? ?back\b|\brevert(?:ed|ing)?\b", re.IGNORECASE)
_DEPLOY = re.compile(r"\bdeploy|\brelease|\brollout|\bconfig", re.IGNORECASE)


def _who(said: Evidence) -> str:
    """'alice, at resolution': the attribution the evidence's summary starts with."""
    return said.summary.split(": ", 1)[0] if ": " in said.summary else said.by


def stated_primary(
    stated: Stated,
    request: AnalysisRequest,
    onset: tuple[datetime, str, str | None] | None,
    gathered: Claim | None,
) -> tuple[Claim, float, list[Claim], Judgement]:
    """(primary cause, confidence, contributing factors to add first, the judgement)."""
    judgement = judge(stated, request.evidence, request.series, onset, request.settings.step)
    said = stated.evidence
    claim = Claim(
        text=f"Stated by {_who(said)}: {stated.cause}. {judgement.text}",
        evidence=list(dict.fromkeys([said.id, *judgement.evidence])),
        stated=stated.cause,
    )
    matched = {c.id for c in judgement.matched}
    more: list[Claim] = []
    suspect = gathered is not None and gathered.evidence and not gathered.text.startswith("Unknown")
    if gathered is not None and suspect and not matched & set(gathered.evidence):
        more.append(Claim(text=f"{ELSEWHERE}{gathered.text}", evidence=gathered.evidence))
    return claim, judgement.confidence, more, judgement


def missed_targets(evidence: list[Evidence]) -> list[Claim]:
    """'Target missed: not acknowledged within 5m (response target missed)', citing the breach."""
    return [
        Claim(text=f"Target missed: {e.summary.removeprefix('breach: ')}", evidence=[e.id])
        for e in evidence
        if e.source == "incident" and (e.kind == "breach" or e.summary.startswith("breach: "))
    ]


def lessons(stated: Stated, judgement: Judgement, evidence: list[Evidence]) -> list[Claim]:
    found: list[Claim] = []
    said = stated.evidence
    gathered = any(e.source in ("changes", "metrics") for e in evidence)
    if judgement.confidence < 0.5 and not gathered:
        found.append(
            Claim(
                text="The cause rests on the responders' word: no change or metric was gathered to check it "
                "(TOCSIN_GITHUB_REPO, TOCSIN_PROMETHEUS_URL would let the next post-mortem corroborate it)",
                evidence=[said.id],
            )
        )
    setting = changed_setting(stated.cause)
    if setting and (_DEPLOY.search(stated.cause) or judgement.matched):
        found.append(
            Claim(
                text=f"A change to the {setting} reached production and nothing before it caught the problem",
                evidence=[said.id, *(c.id for c in judgement.matched[:1])],
            )
        )
    for item in evidence:
        if item.said == "mitigation" and _ROLLBACK.search(item.summary):
            found.append(Claim(text=f"Rolling back ended the impact ({_who(item)})", evidence=[item.id]))
            break
    return found
