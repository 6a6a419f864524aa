"""The cause the responders stated, and what the gathered data says about it. Pure.

Responders usually know the cause before any tool does ("root cause: connection pool exhausted after deploy
2041 halved the pool size"). The built-in analyzer states it, cited to the words, and judges it:

- which words: an explicit "root cause: ..." wherever it was said (the resolution's first), else the
  resolution summary, else the mitigation summary, else the latest note (`STATEMENT_ORDER`);
- references in them (`references`): "deploy 2041", "#123" / "PR 123", a 7 to 40 character hex SHA; each is
  looked for among the gathered changes (`matching_changes`): a match corroborates, a change that went
  live only after the first symptom contradicts, changes gathered without the one named leave it unconfirmed;
  A change counts as "at the first symptom", not after it, up to `tolerance` after the onset: one sample of the
  metrics (the policy's `postmortem.step`, 60 s by default), since an onset is only known to a sample;
- the metrics the words name (tocsin.postmortem.series_words: the SLIs, and saturation series such as CPU,
  memory, pool, queue, disk or capacity when the words name that resource): a series that crossed its
  objective agrees; one gathered that never did disagrees;
- the log lines gathered around the first symptom that share the words' component and error terms
  (tocsin.postmortem.log_corroboration): they corroborate, cited.

A statement nothing corroborates keeps a low confidence: it is a person's account, not yet checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.postmortem.contracts import Evidence, SeriesSummary, Statement
from tocsin.postmortem.log_corroboration import corroborating_lines
from tocsin.postmortem.series_words import series_named
from tocsin.postmortem.timeline import as_utc

CONFIDENCE_STATED = 0.35  # a person's account, nothing gathered to check it against
CONFIDENCE_MATCHED = 0.7  # the change they named is in the changes, before the first symptom
CONFIDENCE_UNFOUND = 0.25  # changes were gathered, and the one named is not among them
CONFIDENCE_CONTRADICTED = 0.15
METRICS_AGREE = 0.1
LOGS_AGREE = 0.1
# One sample of the metrics: the default of the policy's postmortem.step.
DEFAULT_TOLERANCE = timedelta(seconds=60)

# Most telling first: the resolution is said once everything is known. A severity change's or an escalation's
# reason says how bad, not why: it is searched for an explicit "root cause:" only (EXPLICIT_ONLY).
STATEMENT_ORDER: tuple[Statement, ...] = ("resolution", "mitigation", "note", "severity", "escalation")
EXPLICIT_ONLY: tuple[Statement, ...] = ("severity", "escalation")
_EXPLICIT = re.compile(r"\b(?:root[ -]?cause|caused by|the cause)\b\s*(?:was|is|:|-)?\s*(?P<cause>\S.*)$", re.I)
_DEPLOY_REF = re.compile(r"\b(?:deploy(?:ment)?|release|rollout|build)\s*#?\s*(?P<id>v?\d[\w.\-]*\w|\d)", re.I)
_PULL_REF = re.compile(r"(?:\bPR\s*#?|\bpull request\s*#?|(?<![\w&])#)(?P<n>\d{1,7})\b", re.I)
_SHA_REF = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b")
_HEX = re.compile(r"\b[0-9a-f]{7,40}\b")
_DEPLOY_WORD = re.compile(r"deploy|release|roll ?out", re.I)
_CHANGE_VERB = (
    r"(?:halved|doubled|changed|reduced|lowered|raised|increased|bumped|cut|shrank|dropped|set|misconfigured)"
)
_SETTING_NOUN = (
    r"(?:[\w-]+ ){0,2}?[\w-]*(?:size|limit|timeout|ttl|threshold|replicas|capacity|interval|connections|workers|"
    r"threads|quota|flag|setting)s?"
)
# "... halved the pool size", "the pool size was halved": the setting the change touched.
_SETTING = re.compile(
    rf"\b{_CHANGE_VERB} (?:the |its |our )?(?P<a>{_SETTING_NOUN})\b|\b(?:the )?(?P<b>{_SETTING_NOUN}) (?:was|were) "
    rf"{_CHANGE_VERB}\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Stated:
    evidence: Evidence
    cause: str  # the words taken as the cause
    explicit: bool  # an explicit "root cause: ..."


@dataclass(frozen=True)
class Reference:
    kind: str  # 'deploy', 'pull', 'sha'
    value: str  # '2041', '123', 'abc1234'
    text: str  # as said: 'deploy 2041'


@dataclass(frozen=True)
class Judgement:
    text: str  # what the data says about the statement, one or more sentences
    evidence: list[str]
    confidence: float
    matched: list[Evidence]  # changes the words name


def _rank(item: Evidence) -> int:
    return STATEMENT_ORDER.index(item.said) if item.said in STATEMENT_ORDER else len(STATEMENT_ORDER)


def _words(item: Evidence) -> str:
    """The words themselves: the summary after its attribution ('alice, at resolution: ...')."""
    return item.summary.split(": ", 1)[1] if ": " in item.summary else item.summary


def stated_cause(evidence: list[Evidence]) -> Stated | None:
    """The cause the responders stated, or None when nobody said anything that could be one."""
    said = [e for e in evidence if e.said in STATEMENT_ORDER]
    # Later words know more: within a kind the latest first; an explicit cause anywhere before all the rest.
    ordered = sorted(said, key=lambda e: (_rank(e), -(as_utc(e.at).timestamp() if e.at else 0.0), e.id))
    for item in ordered:
        found = _EXPLICIT.search(_words(item))
        if found:
            return Stated(item, found["cause"].strip().rstrip("."), explicit=True)
    plain = [e for e in ordered if e.said not in EXPLICIT_ONLY]
    return Stated(plain[0], _words(plain[0]).strip().rstrip("."), explicit=False) if plain else None


def references(text: str) -> list[Reference]:
    found: list[Reference] = []
    for m in _DEPLOY_REF.finditer(text):
        found.append(Reference("deploy", m["id"].rstrip(".").lower(), m.group(0)))
    for m in _PULL_REF.finditer(text):
        found.append(Reference("pull", m["n"], m.group(0)))
    for m in _SHA_REF.finditer(text.lower()):
        found.append(Reference("sha", m.group(0), m.group(0)))
    return list({(r.kind, r.value): r for r in found}.values())


def _names(reference: Reference, change: Evidence) -> bool:
    text = change.summary
    if reference.kind == "deploy":
        token = re.compile(rf"(?<![\w.]){re.escape(reference.value)}(?![\w])", re.I)
        return bool(_DEPLOY_WORD.search(text)) and bool(token.search(text))
    if reference.kind == "pull":
        return bool(re.search(rf"(?:#|\bPR\s*)0*{reference.value}\b", text, re.I))
    hexes = _HEX.findall(f"{text} {change.link}".lower())
    return any(h.startswith(reference.value) or reference.value.startswith(h) for h in hexes)


def matching_changes(refs: list[Reference], changes: list[Evidence]) -> dict[Reference, list[Evidence]]:
    return {r: [c for c in changes if _names(r, c)] for r in refs}


def _hhmm(at: datetime) -> str:
    return as_utc(at).strftime("%H:%M")


def judge(
    stated: Stated,
    evidence: list[Evidence],
    series: list[SeriesSummary],
    onset: tuple[datetime, str, str | None] | None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> Judgement:
    """What the changes, metrics and logs say about the stated cause. `onset` is the first symptom: (when,
    'error_rate rose at 14:07', its evidence id); `tolerance`, how long after it a change still counts as at it."""
    changes = [e for e in evidence if e.source == "changes"]
    metrics = [e for e in evidence if e.source == "metrics"]
    # The words of every statement may name the change ("rolled back deploy 2041"), the cause's first.
    spoken = [stated.cause] + [_words(e) for e in evidence if e.said and e.id != stated.evidence.id]
    refs = list(dict.fromkeys(r for text in spoken for r in references(text)))
    found = matching_changes(refs, changes)
    matched = list({c.id: c for hits in found.values() for c in hits}.values())
    sentences: list[str] = []
    cites: list[str] = []
    confidence = CONFIDENCE_STATED
    if matched:
        change = matched[0]
        late = onset is not None and change.at is not None and as_utc(change.at) > as_utc(onset[0]) + tolerance
        if late and onset is not None:
            confidence = CONFIDENCE_CONTRADICTED
            sentences.append(
                f"Contradicted by the changes: {change.summary} landed after the first symptom ({onset[1]})."
            )
            cites += [change.id, *([onset[2]] if onset[2] else [])]
        else:
            confidence = CONFIDENCE_MATCHED
            named = ", ".join(r.text for r, hits in found.items() if hits)
            when = f" at {_hhmm(change.at)}" if change.at else ""
            after = onset is not None and change.at is not None and as_utc(change.at) > as_utc(onset[0])
            relation = "at the first symptom, within one sample of it" if after else "before the first symptom"
            before = f", {relation} ({onset[1]})" if onset else ""
            sentences.append(f"Corroborated by the changes: {named} is {change.summary}{when}{before}.")
            cites += [change.id, *([onset[2]] if onset and onset[2] else [])]
    elif refs and changes:
        confidence = CONFIDENCE_UNFOUND
        named = ", ".join(r.text for r in refs)
        sentences.append(f"Not corroborated: the {len(changes)} changes gathered do not include {named}.")
        cites.append(changes[-1].id)
    # The cause's own words first: "exhausted CPU" is checked against CPU even if a note spoke of 502s.
    named_series = series_named(stated.cause, series) or series_named(" ".join(spoken), series)
    crossed = [s for s in named_series if s.onset is not None]
    if crossed:
        first = min(crossed, key=lambda s: as_utc(s.onset or s.peak_at or datetime.max))
        assert first.onset is not None
        near = [m for m in metrics if first.name in m.summary] or metrics
        sentences.append(f"The metrics agree: {first.name} crossed its objective at {_hhmm(first.onset)}.")
        cites += [m.id for m in near[:1]]
        confidence += METRICS_AGREE if confidence >= CONFIDENCE_STATED else 0.0
    elif named_series and metrics:
        sentences.append(f"The metrics do not show it: {named_series[0].name} never crossed its objective.")
        cites.append(metrics[0].id)
        confidence = min(confidence, CONFIDENCE_UNFOUND)
    logs = corroborating_lines(stated.cause, evidence, onset[0] if onset else None)
    if logs is not None:
        quoted = "; ".join(f"{line.id}: {line.summary}" for line in logs.lines)
        sentences.append(f"Corroborated by the logs ({', '.join(logs.terms)}): {quoted}.")
        cites += [line.id for line in logs.lines]
        confidence += LOGS_AGREE if confidence >= CONFIDENCE_STATED else 0.0
    if not sentences:
        # The same words as before logs were read: with no log line gathered, nothing changed for the reader.
        if any(e.source == "logs" for e in evidence):
            sources = "no change, metric or log line naming it was gathered"
            sentences.append(f"A responder's statement, not yet corroborated by metrics, changes or logs ({sources}).")
        else:
            sources = "no change or metric named in it was gathered" if changes or metrics else "none were gathered"
            sentences.append(f"A responder's statement, not yet corroborated by metrics or changes ({sources}).")
    return Judgement(" ".join(sentences), list(dict.fromkeys(cites)), round(confidence, 2), matched)


def changed_setting(words: str) -> str | None:
    """The setting a change touched, as the words name it ("halved the pool size" → "pool size")."""
    found = _SETTING.search(words)
    if found is None:
        return None
    return " ".join((found["a"] or found["b"]).lower().split())
