"""The built-in analyzer: what the post-mortem says when no LLM is configured, or the LLM failed. Pure.

It only states what the evidence shows, and how sure that is:

- the first symptom is the earliest onset among the metric series (else the incident's opening);
- a change (source "changes": a deployment, a merged pull request, a commit) that landed within
  `CHANGE_WINDOW` before that onset, or at it, is the suspected primary cause, citing the change and the onset.
  "At it" has a tolerance of one sample (the policy's `postmortem.step`): an onset is the first sample past the
  objective, so a change recorded up to one sample after it may well be what the sample saw;
  Confidence 0.6 when it landed within `CLOSE_WINDOW`, 0.4 within the hour, 0.1 less when other changes
  landed in the same hour (they are listed as contributing factors);
- no such change: the primary cause is unknown, confidence 0.2;
- the order in which the series' symptoms began ("error_rate rose at 14:02, latency_p95 at 14:03:
  error_rate came first");
- an incident opened more than `DETECTION_LAG` after the first onset: detection lag, a monitoring cause,
  with a preventive measure to alert sooner.

When the responders stated a cause (tocsin.postmortem.stated_cause: a "root cause: ..." statement, the
resolution or mitigation summary, a note), it is the primary cause, attributed and cited to their words, with
what the changes and metrics say about it (tocsin.postmortem.stated_claims); what the correlation above found
besides becomes a contributing factor, and the story's lessons are drawn. Each response target the incident
missed is a contributing factor too, citing its breach.

Every claim cites evidence ids from the request; a fact without evidence to cite is not claimed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.postmortem.contracts import Analysis, AnalysisRequest, Claim, Evidence, SeriesSummary
from tocsin.postmortem.impact import service_of
from tocsin.postmortem.stated_cause import stated_cause
from tocsin.postmortem.stated_claims import lessons, missed_targets, stated_primary
from tocsin.postmortem.timeline import as_utc

ANALYZER = "built-in"
CHANGE_WINDOW = timedelta(minutes=60)
CLOSE_WINDOW = timedelta(minutes=15)
DETECTION_LAG = timedelta(minutes=10)
# How far a metric's evidence may be from the series' onset and still be the onset's evidence.
ONSET_MATCH = timedelta(minutes=2)

CONFIDENCE_CLOSE = 0.6
CONFIDENCE_HOUR = 0.4
CONFIDENCE_UNKNOWN = 0.2
CONFIDENCE_NOTHING = 0.1
AMBIGUITY_PENALTY = 0.1

_DEPLOY = re.compile(r"deploy|release|roll ?out|rolled out", re.IGNORECASE)
_PULL = re.compile(r"pull request|\bPR\b|#\d+|merge", re.IGNORECASE)


@dataclass(frozen=True)
class _Onset:
    at: datetime
    label: str  # 'error_rate', 'error_rate (payments)', 'the incident opened'
    verb: str  # 'rose', 'fell', 'opened'
    evidence: str | None


def hhmm(at: datetime) -> str:
    return as_utc(at).strftime("%H:%M")


def _minutes(delta: timedelta) -> int:
    return round(delta.total_seconds() / 60)


def _span(delta: timedelta) -> str:
    seconds = round(delta.total_seconds())
    return f"{seconds} s" if seconds < 120 else f"{_minutes(delta)} min"


def _when(evidence: Evidence) -> datetime:
    """A dated evidence's instant, comparable (only called on evidence filtered for `at`)."""
    assert evidence.at is not None
    return as_utc(evidence.at)


def _onset_evidence(evidence: list[Evidence], series: SeriesSummary) -> str | None:
    """The metrics evidence that reports this series' onset: nearest in time, naming the series if any does."""
    assert series.onset is not None
    onset = as_utc(series.onset)
    near = [
        e for e in evidence if e.source == "metrics" and e.at is not None and abs(as_utc(e.at) - onset) <= ONSET_MATCH
    ]
    if not near:
        return None
    naming = [e for e in near if series.name in e.summary] or near
    best = min(naming, key=lambda e: (abs(as_utc(e.at or onset) - onset), e.id))
    return best.id


def _onsets(request: AnalysisRequest) -> list[_Onset]:
    """Each series' onset (one per name and labels), earliest first."""
    dated = sorted(
        ((as_utc(s.onset), s.name, s.labels, s) for s in request.series if s.onset is not None),
        key=lambda entry: entry[:3],
    )
    found: list[_Onset] = []
    seen: set[tuple[str, str]] = set()
    for at, name, labels, series in dated:
        if (name, labels) in seen:
            continue
        seen.add((name, labels))
        service = service_of(labels)
        found.append(
            _Onset(
                at=at,
                label=name if not service or service == request.service else f"{name} ({service})",
                verb="rose" if series.worse_is == "higher" else "fell",
                evidence=_onset_evidence(request.evidence, series),
            )
        )
    return found


def _opening(evidence: list[Evidence]) -> Evidence | None:
    """The incident's opening: its own record's 'opened'/'triggered' entry, else its earliest dated entry."""
    own = sorted((e for e in evidence if e.source == "incident" and e.at is not None), key=_when)
    opened = [e for e in own if re.search(r"\b(opened|triggered)\b", e.summary, re.IGNORECASE)]
    if opened:
        return opened[0]
    return own[0] if own else None


def _kind(change: Evidence) -> str:
    if _DEPLOY.search(change.summary):
        return "Deployment"
    if _PULL.search(change.summary):
        return "Pull request"
    return "Change"


def _cites(*ids: str | None) -> list[str]:
    return list(dict.fromkeys(i for i in ids if i))


def builtin_analysis(request: AnalysisRequest) -> Analysis:
    notes: list[str] = []
    known = {e.id for e in request.evidence}
    onsets = _onsets(request)
    opening = _opening(request.evidence)

    first: _Onset | None = onsets[0] if onsets else None
    if first is None and opening is not None and opening.at is not None:
        first = _Onset(at=opening.at, label="the incident", verb="opened", evidence=opening.id)

    changes = sorted(
        (e for e in request.evidence if e.source == "changes" and e.at is not None),
        key=lambda e: (_when(e), e.id),
    )

    primary: Claim | None = None
    contributing: list[Claim] = []
    preventive: list[Claim] = []
    confidence = CONFIDENCE_NOTHING

    if first is None:
        notes.append("built-in analyzer: no metric onset and no incident record to anchor the analysis on")
    else:
        onset_at = as_utc(first.at)
        symptom = f"{first.label} {first.verb} at {hhmm(first.at)}"
        tolerance = request.settings.step
        window = [c for c in changes if onset_at - CHANGE_WINDOW <= _when(c) <= onset_at + tolerance]
        if window:
            cause = window[-1]  # the latest change before the onset
            gap = onset_at - _when(cause)
            confidence = CONFIDENCE_CLOSE if gap <= CLOSE_WINDOW else CONFIDENCE_HOUR
            others = window[:-1]
            if others:
                confidence -= AMBIGUITY_PENALTY
                contributing.append(
                    Claim(
                        text="Other changes in the hour before the first symptom: "
                        + "; ".join(f"{c.summary} at {hhmm(_when(c))}" for c in others),
                        evidence=[c.id for c in others],
                    )
                )
            if gap >= timedelta(0):
                lead, relation = "shortly before the onset", f"{_minutes(gap)} min before {symptom}"
            else:
                lead, relation = "at the onset", f"within one sample ({_span(tolerance)}) of {symptom}"
            primary = Claim(
                text=f"{_kind(cause)} {lead}: {cause.summary} at {hhmm(_when(cause))}, {relation}",
                evidence=_cites(cause.id, first.evidence),
            )
        else:
            before = [c for c in changes if _when(c) < onset_at - CHANGE_WINDOW]
            if not changes:
                why = "no change was gathered at all"
            elif before:
                why = f"no change landed in the {_minutes(CHANGE_WINDOW)} min before it"
                nearest = before[-1]
                # Said, and cited, apart from the cause: a cause citing a change would read as a deployment cause.
                contributing.append(
                    Claim(
                        text=f"The nearest earlier change, {nearest.summary} at {hhmm(_when(nearest))}, landed "
                        f"{_minutes(onset_at - _when(nearest))} min before the first symptom: too early to be "
                        "a likely cause",
                        evidence=[nearest.id],
                    )
                )
            else:
                why = "the only changes gathered came after it"
            if first.evidence:
                primary = Claim(
                    text=f"Unknown: nothing correlates with the first symptom ({symptom}): {why}. "
                    "Manual investigation is needed.",
                    evidence=[first.evidence],
                )
            else:
                notes.append(f"built-in analyzer: primary cause unknown ({why}), and no evidence of the onset to cite")
            confidence = CONFIDENCE_UNKNOWN

        order = _symptom_order(onsets)
        if order is not None:
            contributing.append(order)

        if opening is not None and opening.at is not None and onsets:
            lag = as_utc(opening.at) - onset_at
            if lag > DETECTION_LAG:
                cites = _cites(first.evidence, opening.id)
                contributing.append(
                    Claim(
                        text=f"Detection lag: {symptom} but the incident opened only at {hhmm(opening.at)}, "
                        f"{_minutes(lag)} min later; monitoring did not alert on it sooner",
                        evidence=cites,
                    )
                )
                name = first.label.split(" (")[0]
                preventive.append(
                    Claim(
                        text=f"Alert on {name} within {_minutes(DETECTION_LAG) // 2} min of it crossing its objective",
                        evidence=cites,
                    )
                )

    learned: list[Claim] = []
    stated = stated_cause(request.evidence)
    if stated is not None:
        # Only a metric's onset is a symptom to compare a change with; the opening is not.
        o = onsets[0] if onsets else None
        onset = (o.at, f"{o.label} {o.verb} at {hhmm(o.at)}", o.evidence) if o else None
        primary, confidence, elsewhere, judgement = stated_primary(stated, request, onset, primary)
        contributing[:0] = elsewhere
        learned = lessons(stated, judgement, request.evidence)
    contributing += missed_targets(request.evidence)

    if request.review_notes:
        notes.append("built-in analyzer: reviewers' notes are shown in the report, not interpreted")

    def cited(claims: list[Claim]) -> list[Claim]:  # every id comes from the request; this keeps it so
        return [c for c in claims if c.evidence and set(c.evidence) <= known]

    return Analysis(
        analyzer=ANALYZER,
        primary_cause=primary if primary is not None and cited([primary]) else None,
        contributing_factors=cited(contributing),
        preventive_measures=cited(preventive),
        lessons_learned=cited(learned),
        confidence=round(max(confidence, 0.0), 2),
        notes=notes,
    )


def _symptom_order(onsets: list[_Onset]) -> Claim | None:
    """'error_rate rose at 14:02, latency_p95 rose at 14:03: error_rate came first', citing each onset."""
    cited = [o for o in onsets if o.evidence]
    if len(cited) < 2:
        return None
    parts = ", ".join(f"{o.label} {o.verb} at {hhmm(o.at)}" for o in cited[:5])
    first, second = cited[0], cited[1]
    if hhmm(first.at) == hhmm(second.at):
        same = [o.label for o in cited if hhmm(o.at) == hhmm(first.at)]
        verdict = f"{' and '.join(same)} began in the same minute"
    else:
        verdict = f"{first.label} came first"
    return Claim(text=f"Symptom order: {parts}: {verdict}", evidence=_cites(*(o.evidence for o in cited[:5])))
