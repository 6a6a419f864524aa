"""Action items from an analysis: the seed's rules, the analysis' own items, one list without duplicates. Pure.

The seed's rules (incident-response-seed.txt, `_generate_action_items`), in Tocsin's terms:

- a deployment cause (the primary cause cites "changes" evidence, or speaks of a deployment; for a cause the
  responders stated, their words speak of a deploy, release, rollout or config change, or the change they
  named was found) → "Add deployment validation" (P1; "... of the pool size" when the words name the setting
  that changed: "halved the pool size") and "Roll out with canary deployments" (P2);
- slow detection (tocsin.postmortem.slow_detection: the built-in detection lag, or a cause or contributing
  factor whose own words say detection was missing, late or slow; a change's title that merely mentions
  detection is not) → "Improve monitoring coverage for <service>" (P1);
- each missed target (a contributing factor "Target missed: ... (response target missed)") → that target's
  item (P1): shorten the time to acknowledge, or to mitigate;
- how the response went (tocsin.postmortem.response_items, from the incident's own record): a status page
  updated by hand, late or failing → automate it (and keep it independent of what it reports on, when it
  failed); a slow mitigation no runbook helped → a tested runbook; the dashboard or console down with the
  service → keep it reachable independently;
- each preventive measure → an item of its own (P2), citing what the measure cites.

Then the analysis' own items. Titles that are the same once normalized (case, spacing, punctuation, an
"Implement:" prefix) are one item: the first keeps its place, gains the others' evidence and the most urgent
priority. Owners nobody named are the policy's `action_items.default_owner`; every item is due `today` plus
the policy's `action_items.due` for its priority (the date the report is drafted, or approved).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from tocsin.policy.postmortem import DEFAULT_DUE, PostmortemPolicy
from tocsin.postmortem.cause_classes import remedies
from tocsin.postmortem.contracts import ActionItem, Analysis, Claim, Evidence, Priority
from tocsin.postmortem.response_items import response_items
from tocsin.postmortem.slow_detection import slow_detection_claims
from tocsin.postmortem.stated_cause import changed_setting, stated_cause
from tocsin.postmortem.stated_claims import ELSEWHERE

_DEPLOYMENT = re.compile(r"\bdeploy|\brollout\b|\brelease\b", re.IGNORECASE)
_STATED_DEPLOYMENT = re.compile(
    r"\bdeploy|\brollout|\broll(ed)? out|\brelease|\bconfig(uration)? (change|push|update)|\bmigration", re.I
)
_TARGET = re.compile(r"\((?P<kind>response|mitigation) target missed\)")
_TARGET_ITEMS = {
    "response": (
        "Shorten the time to acknowledge",
        "Check who is paged first, how they are reached, and the levels' delays.",
    ),
    "mitigation": ("Shorten the time to mitigate", "Give responders a tested runbook or rollback for this failure."),
}
_PREFIX = re.compile(r"^(implement|todo|action)\s*:\s*", re.IGNORECASE)
_NOT_WORDS = re.compile(r"[^\w]+")
_UNOWNED = {"", "tbd", "unassigned", "unknown", "none", "n/a", "nobody"}
TITLE_LIMIT = 120


def title_key(title: str) -> str:
    """What two titles must share to be one item: 'Implement: Add deployment validation.' = 'add deployment
    validation'."""
    return _NOT_WORDS.sub(" ", _PREFIX.sub("", title.strip())).strip().casefold()


def is_deployment_cause(cause: Claim | None) -> bool:
    if cause is None:
        return False
    if cause.stated:  # the judgement's prose names changes either way: the words and the match decide
        matched = any(e.startswith("changes-") for e in cause.evidence) and "Contradicted" not in cause.text
        return matched or bool(_STATED_DEPLOYMENT.search(cause.stated))
    return any(e.startswith("changes-") for e in cause.evidence) or bool(_DEPLOYMENT.search(cause.text))


def _title(text: str) -> str:
    """A measure's text as a title: its first line, at most TITLE_LIMIT characters, cut at a word."""
    line = " ".join(text.split())
    if len(line) <= TITLE_LIMIT:
        return line.rstrip(".")
    cut = line[: TITLE_LIMIT - 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def _deployment_basis(analysis: Analysis, evidence: Sequence[Evidence]) -> tuple[str, list[str]] | None:
    """The words a deployment cause rests on, and what they cite: the analysis' own cause, or, when the analysis
    (a model's, say) missed it, the cause the responders stated (tocsin.postmortem.stated_cause)."""
    cause = analysis.primary_cause
    if cause is not None and is_deployment_cause(cause):
        return cause.stated or cause.text, list(cause.evidence)
    stated = stated_cause(list(evidence)) if evidence else None
    if stated is not None and _STATED_DEPLOYMENT.search(stated.cause):
        return stated.cause, [stated.evidence.id]
    # The responders' words name no change ("rolled back"), and a deploy went live just before the first
    # symptom: the gathered suspect, kept as a contributing factor, earns the deployment items as well.
    for factor in analysis.contributing_factors:
        if factor.text.startswith(ELSEWHERE) and is_deployment_cause(factor):
            return factor.text.removeprefix(ELSEWHERE), list(factor.evidence)
    return None


def _cause_words(analysis: Analysis, evidence: Sequence[Evidence]) -> list[tuple[str, list[str]]]:
    """The words a cause is stated in, each with what it cites: the responders' statement and the analysis' own
    cause (the same item from both merges into one, tocsin.postmortem.cause_classes)."""
    out: list[tuple[str, list[str]]] = []
    stated = stated_cause(list(evidence)) if evidence else None
    if stated is not None:
        out.append((stated.cause, [stated.evidence.id]))
    cause = analysis.primary_cause
    # "Unknown: nothing correlates…" names no cause: its words (which suggest manual investigation) are no class.
    if cause is not None and not cause.text.startswith("Unknown"):
        out.append((cause.stated or cause.text, list(cause.evidence)))
    return out


def _rules(
    analysis: Analysis, owner: str, service: str | None, today: date, evidence: Sequence[Evidence]
) -> list[ActionItem]:
    items: list[ActionItem] = []
    basis = _deployment_basis(analysis, evidence)
    if basis is not None:
        words, cited = basis
        setting = changed_setting(words)
        items.append(
            ActionItem(
                title=f"Add deployment validation of the {setting}" if setting else "Add deployment validation",
                description=(
                    f"Check changes to the {setting} against the load it must carry before they ship; "
                    if setting
                    else ""
                )
                + "Enhance pre-deployment testing and validation, so a change like this one is caught "
                "before it reaches production.",
                owner=owner,
                priority="P1",
                due=today,
                evidence=cited,
            )
        )
        items.append(
            ActionItem(
                title="Roll out with canary deployments",
                description="Deploy to a canary first, compare its error rate and latency with the baseline, and "
                "roll back automatically when they degrade.",
                owner=owner,
                priority="P2",
                due=today,
                evidence=list(cited),
            )
        )
    for words, cited_by in _cause_words(analysis, evidence):
        for remedy in remedies(words):
            items.append(
                ActionItem(
                    title=remedy.title,
                    description=remedy.description,
                    owner=owner,
                    priority=remedy.priority,
                    due=today,
                    evidence=cited_by,
                )
            )
    slow = slow_detection_claims(analysis, evidence)
    if slow:
        cited = [e for c in slow for e in c.evidence]
        items.append(
            ActionItem(
                title=f"Improve monitoring coverage for {service}" if service else "Improve monitoring coverage",
                description="Add the missing alerts and shorten the time to detect.",
                owner=owner,
                priority="P1",
                due=today,
                evidence=list(dict.fromkeys(cited)),
            )
        )
    for claim in analysis.contributing_factors:
        target = _TARGET.search(claim.text)
        if target is not None:
            title, description = _TARGET_ITEMS[target["kind"]]
            items.append(
                ActionItem(
                    title=title,
                    description=description,
                    owner=owner,
                    priority="P1",
                    due=today,
                    evidence=list(claim.evidence),
                )
            )
    for found in response_items(evidence, service):
        items.append(
            ActionItem(
                title=found.title,
                description=found.description,
                owner=owner,
                priority=found.priority,
                due=today,
                evidence=found.evidence,
            )
        )
    for measure in analysis.preventive_measures:
        items.append(
            ActionItem(
                title=_title(measure.text),
                description=measure.text,
                owner=owner,
                priority="P2",
                due=today,
                origin="analysis",
                evidence=list(measure.evidence),
            )
        )
    return items


def _more_urgent(a: Priority, b: Priority) -> Priority:
    return min(a, b)  # "P1" < "P2" < "P3"


def action_items(
    analysis: Analysis,
    settings: PostmortemPolicy,
    today: date,
    *,
    service: str | None = None,
    evidence: Sequence[Evidence] = (),
) -> list[ActionItem]:
    """The report's action items. `service` names the monitoring item ("... for checkout") when given;
    `evidence`, the gathered evidence, lets the seed's rules apply to what the responders said even when the
    analysis (a model's) did not take it up."""
    owner = settings.action_items.default_owner
    merged: dict[str, ActionItem] = {}
    for item in [*_rules(analysis, owner, service, today, evidence), *analysis.action_items]:
        key = title_key(item.title)
        if not key:
            continue
        found = merged.get(key)
        if found is None:
            merged[key] = item.model_copy()
            continue
        found.priority = _more_urgent(found.priority, item.priority)
        found.evidence = list(dict.fromkeys([*found.evidence, *item.evidence]))
        if not found.description and item.description:
            found.description = item.description
        if found.owner.strip().casefold() in _UNOWNED or found.owner == owner:
            named = item.owner.strip()
            if named.casefold() not in _UNOWNED:
                found.owner = named
    result: list[ActionItem] = []
    for item in merged.values():
        named = item.owner.strip()
        item.owner = owner if named.casefold() in _UNOWNED else named
        item.due = today + settings.action_items.due.get(item.priority, DEFAULT_DUE[item.priority])
        result.append(item)
    return result
