"""What the model answers, parsed and validated: `parse_answer` checks it against SCHEMA (a private pydantic
model; InvalidAnswer says what is wrong, for the model to try once more), `to_analysis` keeps only the claims
and action items that cite evidence that was gathered, each text bounded, and notes what it dropped. The
answer is only text for the report, never executed. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tocsin.postmortem.contracts import ActionItem, Analysis, AnalysisRequest, Claim

MAX_CLAIMS = 12
MAX_ITEMS = 12
TEXT_LIMIT = 1_000
TITLE_LIMIT = 120
OWNER_LIMIT = 80
LOW_CONFIDENCE = 0.2


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Claim(_Lenient):
    text: str = Field(min_length=1)
    evidence: list[str] = Field(default_factory=list)


class _Item(_Lenient):
    title: str = Field(min_length=1)
    description: str = ""
    owner: str | None = ""
    priority: Literal["P1", "P2", "P3"] = "P2"
    due_in_days: int | None = None
    evidence: list[str] = Field(default_factory=list)


class _Answer(_Lenient):
    """The JSON the model must answer (SCHEMA); `primary_cause` must be present, null when it has none."""

    primary_cause: _Claim | None
    contributing_factors: list[_Claim] = Field(default_factory=list)
    preventive_measures: list[_Claim] = Field(default_factory=list)
    lessons_learned: list[_Claim] = Field(default_factory=list)
    action_items: list[_Item] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)


class InvalidAnswer(ValueError):
    pass


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_answer(content: str | None, finish_reason: str | None = "stop") -> _Answer:
    """The model's answer validated, or InvalidAnswer saying what is wrong (sent back to the model once)."""
    if not content or not content.strip():
        raise InvalidAnswer("the answer was empty" + (f" (finish_reason {finish_reason})" if finish_reason else ""))
    fenced = _FENCE.match(content)
    text = fenced.group(1) if fenced else content
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        cut = " (the answer was cut off: finish_reason length)" if finish_reason == "length" else ""
        raise InvalidAnswer(f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}{cut}") from None
    if not isinstance(data, dict):
        raise InvalidAnswer(f"the answer must be one JSON object, not {type(data).__name__}")
    try:
        return _Answer.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in err.errors())
        raise InvalidAnswer(f"the JSON does not match the schema: {problems[:1500]}") from None


def _text(value: str, limit: int = TEXT_LIMIT) -> str:
    line = " ".join(value.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def to_analysis(answer: _Answer, request: AnalysisRequest, model: str, today: date) -> Analysis:
    """The Analysis the report shows: only claims and items citing gathered evidence, each text bounded."""
    known = {e.id for e in request.evidence}
    dropped_claims = dropped_items = 0
    unknown_ids: list[str] = []
    notes: list[str] = []

    def cites(ids: list[str]) -> list[str] | None:
        cleaned = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
        invented = [i for i in cleaned if i not in known]
        unknown_ids.extend(invented)
        return cleaned if cleaned and not invented else None

    def claims(raw: list[_Claim]) -> list[Claim]:
        nonlocal dropped_claims
        kept: list[Claim] = []
        for claim in raw[:MAX_CLAIMS]:
            evidence = cites(claim.evidence)
            if evidence is None:
                dropped_claims += 1
                continue
            kept.append(Claim(text=_text(claim.text), evidence=evidence))
        return kept

    total_claims = (
        (1 if answer.primary_cause else 0)
        + sum(min(len(x), MAX_CLAIMS) for x in (answer.contributing_factors, answer.preventive_measures))
        + min(len(answer.lessons_learned), MAX_CLAIMS)
    )
    primary = claims([answer.primary_cause])[0:1] if answer.primary_cause else []
    confidence = answer.confidence
    if answer.primary_cause and not primary:
        notes.append("the model's primary cause cited no gathered evidence and was dropped")
        confidence = min(confidence, LOW_CONFIDENCE)
    contributing = claims(answer.contributing_factors)
    preventive = claims(answer.preventive_measures)
    lessons = claims(answer.lessons_learned)

    defaults = request.settings.action_items
    items: list[ActionItem] = []
    for raw in answer.action_items[:MAX_ITEMS]:
        evidence = cites(raw.evidence)
        if evidence is None:
            dropped_items += 1
            continue
        days = defaults.due[raw.priority].days if raw.due_in_days is None else min(max(raw.due_in_days, 1), 365)
        items.append(
            ActionItem(
                title=_text(raw.title, TITLE_LIMIT),
                description=_text(raw.description),
                owner=_text(raw.owner or "", OWNER_LIMIT) or defaults.default_owner,
                priority=raw.priority,
                due=today + timedelta(days=days),
                origin="analysis",
                evidence=evidence,
            )
        )

    if dropped_claims or dropped_items:
        invented = sorted({_text(i, 40) for i in unknown_ids})
        which = (
            f" (ids not gathered: {', '.join(invented[:5])}{', …' if len(invented) > 5 else ''})" if invented else ""
        )
        notes.append(
            f"dropped {dropped_claims} of {total_claims} claims and {dropped_items} of "
            f"{min(len(answer.action_items), MAX_ITEMS)} action items citing no gathered evidence{which}"
        )
    overflow = [
        name
        for name, values in (
            ("contributing factors", answer.contributing_factors),
            ("preventive measures", answer.preventive_measures),
            ("lessons learned", answer.lessons_learned),
            ("action items", answer.action_items),
        )
        if len(values) > MAX_CLAIMS
    ]
    if overflow:
        notes.append(f"kept the first {MAX_CLAIMS} of the model's {', '.join(overflow)}")
    return Analysis(
        analyzer=f"llm:{model}",
        primary_cause=primary[0] if primary else None,
        contributing_factors=contributing,
        preventive_measures=preventive,
        lessons_learned=lessons,
        action_items=items,
        confidence=round(confidence, 2),
        notes=notes,
    )
