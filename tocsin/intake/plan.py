"""A payload's plan: every incident key's Temporal calls, decided before the first one is made. Pure.

The receiver's schemas already refuse what triage would (tocsin.intake.limits), but not every alert comes
through them (the detector's series do not) and a policy template can still fail on some labels. Planning
the whole payload first means such an alert is found while nothing has been sent: the receiver refuses the
payload whole (IntakeRefused), the detector skips just that alert and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from tocsin.incident.contracts import AlertBatch, AlertEvent, IncidentInput
from tocsin.intake.contracts import NormalizedAlert
from tocsin.intake.limits import Labels
from tocsin.intake.routing import incident_key, plan_for_alert
from tocsin.intake.sources import describe_errors
from tocsin.policy.schema import Policy


@dataclass(frozen=True)
class KeyPlan:
    """What one incident key gets, in this order: the alerts (signal-with-start when any fires, else a plain
    signal that never opens an incident), then acknowledgements, then explicit resolutions."""

    key: str
    batch: AlertBatch | None
    start: IncidentInput | None = None
    acknowledgements: list[NormalizedAlert] = field(default_factory=list)
    resolutions: list[NormalizedAlert] = field(default_factory=list)


@dataclass(frozen=True)
class Refusal:
    """An alert that cannot be placed: its position in the payload, its incident key and why."""

    index: int
    key: str
    reason: str

    def __str__(self) -> str:
        return f"alert {self.index} (incident {self.key}): {self.reason}"


@dataclass(frozen=True)
class PayloadPlan:
    keys: list[KeyPlan]
    refused: list[Refusal]


def event_of(alert: NormalizedAlert) -> AlertEvent:
    summary = alert.summary or alert.labels.get("alertname", "")
    return AlertEvent(
        fingerprint=alert.fingerprint,
        status=alert.status,
        labels=alert.labels,
        summary=summary[:500],
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
    )


def _why(err: ValueError, prefix: str = "") -> str:
    if isinstance(err, ValidationError):
        return "; ".join(prefix + line for line in describe_errors(err, limit=3))
    return str(err) or type(err).__name__


def _label_problem(alert: NormalizedAlert) -> str | None:
    try:
        Labels.model_validate(alert.labels)
    except ValidationError as err:
        return _why(err, prefix="labels.")
    return None


def _indexed_groups(policy: Policy, alerts: list[NormalizedAlert]) -> dict[str, list[tuple[int, NormalizedAlert]]]:
    """Alerts by incident key, each with its position in the payload, in payload order."""
    groups: dict[str, list[tuple[int, NormalizedAlert]]] = {}
    for index, alert in enumerate(alerts):
        groups.setdefault(incident_key(policy, alert), []).append((index, alert))
    return groups


def _plan_key(
    policy: Policy, key: str, group: list[tuple[int, NormalizedAlert]], now: datetime, refused: list[Refusal]
) -> KeyPlan | None:
    usable = []
    for index, alert in group:
        problem = _label_problem(alert)
        if problem is None:
            usable.append((index, alert))
        else:
            refused.append(Refusal(index, key, problem))
    start = None
    # The first firing alert opens the incident; if triage refuses it, the next one is tried, so one bad
    # series does not keep the others of its key out.
    while start is None:
        firing = [(i, a) for i, a in usable if a.status == "firing" and not a.acknowledge]
        if not firing:
            break
        index, first = firing[0]
        try:
            start = plan_for_alert(policy, first, key, first.received_at or now)
        except ValueError as err:  # ValidationError, TriageError, TemplateError: a decision, not a bug
            refused.append(Refusal(index, key, _why(err)))
            usable = [(i, a) for i, a in usable if i != index]
    events = [event_of(a) for _, a in usable if not a.acknowledge]
    try:
        batch = AlertBatch(events=events) if events else None
    except ValidationError as err:
        refused.extend(Refusal(i, key, _why(err, prefix="incident batch: ")) for i, _ in usable)
        return None
    acknowledgements = [a for _, a in usable if a.acknowledge]
    if batch is None and not acknowledgements:
        return None
    return KeyPlan(
        key=key,
        batch=batch,
        start=start,
        acknowledgements=acknowledgements,
        resolutions=[a for _, a in usable if a.resolve_now],
    )


def plan_payload(policy: Policy, alerts: list[NormalizedAlert], now: datetime) -> PayloadPlan:
    """Every key's plan and every alert that cannot be placed; nothing is sent."""
    refused: list[Refusal] = []
    keys = []
    for key, group in _indexed_groups(policy, alerts).items():
        planned = _plan_key(policy, key, group, now, refused)
        if planned is not None:
            keys.append(planned)
    return PayloadPlan(keys=keys, refused=sorted(refused, key=lambda r: r.index))
