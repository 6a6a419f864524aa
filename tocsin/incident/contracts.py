"""What travels between the CLI, the workflows and the activities: one pydantic model per input and output.

Everything here is serialised by temporalio's pydantic data converter into workflow histories, so it must
never hold a secret, and large things (logs, metrics) go by reference, never inline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tocsin.maintenance.contracts import IncidentMaintenance
from tocsin.policy.shared import SharedPolicy
from tocsin.postmortem.state import PostMortemState
from tocsin.runbook.plan_contracts import PlanRequest, RunbookPlan
from tocsin.storm.contracts import StormRecord

IncidentStatusValue = Literal["triggered", "acknowledged", "mitigated", "resolved"]
# Every status but resolved: what "open" means to a search (a responder's latest page, a window's incidents).
OPEN_STATUSES: tuple[IncidentStatusValue, ...] = ("triggered", "acknowledged", "mitigated")
KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
INCIDENT_TASK_QUEUE = "incidents"
# The incidents' deliveries (pages first), served by a worker of their own: no burst of bookkeeping on the
# incidents queue can take the slots a page needs (docs/paging-priority.md).
PAGING_TASK_QUEUE = "paging"
POSTMORTEM_TASK_QUEUE = "postmortems"


def incident_workflow_id(key: str) -> str:
    return f"incident-{key}"


def postmortem_workflow_id(key: str) -> str:
    return f"postmortem-{key}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimelineEntry(_Model):
    at: datetime
    kind: str
    text: str
    by: str | None = None
    # A delivery's step ("page/0/1", "sync/3/slack", "breach/response/#ops"): which decision it carried out,
    # for `tocsin why` and reports; the text shows only what a person reads.
    step: str | None = None


class PlannedAction(_Model):
    """A response-workflow action with its label templates already rendered."""

    type: str
    params: dict[str, str] = Field(default_factory=dict)


class AlertEvent(_Model):
    """An alert attached to an incident (signal `alert`)."""

    fingerprint: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class AlertBatch(_Model):
    """Signal `alerts`: every alert of one payload for one incident, so N alerts cost one signal, not N."""

    events: list[AlertEvent] = Field(min_length=1, max_length=1000)


class AlertRecord(_Model):
    """Repeated notifications of one alert fold into one record, so history grows with changes, not noise."""

    status: Literal["firing", "resolved"]
    summary: str = ""
    first_seen: datetime
    last_seen: datetime
    count: int = 1


class EscalationCursor(_Model):
    """Where the primary chain stands; the pure planner reads it, the workflow writes it."""

    step: int = -1
    attempt: int = 0
    next_at: datetime | None = None
    exhausted: bool = False
    pending_manual: int = 0
    management_fired: list[int] = Field(default_factory=list)
    breaches: list[Literal["response", "mitigation"]] = Field(default_factory=list)


class Follower(_Model):
    """A delivery that left state behind (PagerDuty's alert, the war room summary, the status page incident),
    and what it last showed, so the incident knows when it has gone stale (tocsin.policy.following)."""

    channel: str
    target: str
    synced: str


class PendingRunbook(_Model):
    """A runbook run asked for and not started yet: its id is fixed when asked, so the update can answer it."""

    workflow_id: str
    # Rendered at triage (the run checks it against the worker's policy), or asked for by name (update
    # run_runbook: the worker plans it). One of the two.
    plan: RunbookPlan | None = None
    request: PlanRequest | None = None
    requested_by: str


class IncidentState(_Model):
    """The whole incident, as the `status` query returns it and as continue-as-new carries it."""

    key: str
    title: str
    service: str
    severity: str
    status: IncidentStatusValue = "triggered"
    labels: dict[str, str] = Field(default_factory=dict)
    response_workflow: str | None = None
    opened_at: datetime
    # When the first alert reached Tocsin (the receiver, the detector, the CLI): the response clock starts
    # there, not at the workflow's first task, which a busy worker can run long after. Never after opened_at;
    # None only in histories older than the field, where opened_at stands in (`clock_start`).
    first_alert_at: datetime | None = None
    # When the first page was delivered (the provider took it): time to page is measured to here.
    first_paged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    # Who owns the incident now: the first to acknowledge, or whoever took it over (update `take`).
    owner: str | None = None
    # Acknowledged but neither mitigated nor resolved by then: the owner is paged again and the chain resumes
    # (the severity's `ack_timeout`). Set at each acknowledgement, cleared once it fires or the incident moves on.
    ack_deadline: datetime | None = None
    ack_timeouts: int = 0
    # Paging pauses until then (update `snooze`); management escalation does not.
    snoozed_until: datetime | None = None
    # The roster ids paged so far, most recent last (a reply "ACK" from one of them finds this incident).
    paged_people: list[str] = Field(default_factory=list, max_length=50)
    mitigated_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolution_summary: str | None = None
    escalation_level: int = 0
    next_escalation_at: datetime | None = None
    escalation: EscalationCursor = Field(default_factory=EscalationCursor)
    alerts: dict[str, AlertRecord] = Field(default_factory=dict)
    # When the last firing alert resolved; a new firing clears it. Drives auto-resolution.
    alerts_resolved_at: datetime | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    automatic_actions_done: list[str] = Field(default_factory=list)
    responded: bool = False
    # request_id -> the update it answered, so a retried CLI call is applied once.
    handled_requests: dict[str, str] = Field(default_factory=dict)
    postmortem_workflow_id: str | None = None
    # The last closed incident under the same key, when this one is a recurrence.
    previous_run_id: str | None = None
    # Channels that follow the incident's changes, and how many syncs have been sent (for idempotency keys).
    followers: list[Follower] = Field(default_factory=list)
    syncs: int = 0
    # Runbook runs asked for (ids runbook-<key>-<n>, in order) and those not started yet.
    runbooks: list[str] = Field(default_factory=list)
    runbooks_pending: list[PendingRunbook] = Field(default_factory=list)
    # Runs that have reported at least once (granted their service, or refused).
    runbooks_heard: list[str] = Field(default_factory=list)
    # Bounds (policy `limits`): every alert notification counted by status, fingerprints beyond the cap
    # counted but not kept, timeline entries folded away. Each signal and update stays in the history.
    alert_events: dict[str, int] = Field(default_factory=dict)
    alerts_untracked: int = 0
    timeline_folded: int = 0
    # A member of a storm: the storm incident it joined, and whether its own paging is held.
    storm_key: str | None = None
    paging_held: bool = False
    # A storm incident: the incidents it pages for.
    storm: StormRecord | None = None
    # Maintenance windows it was told of and the one holding its pages (tocsin.maintenance.windows).
    maintenance: IncidentMaintenance = Field(default_factory=IncidentMaintenance)

    @property
    def clock_start(self) -> datetime:
        """Where response times are measured from: the first alert, or the opening for an older incident."""
        return self.first_alert_at or self.opened_at

    @property
    def alert_count(self) -> int:
        """Alerts this incident has seen: one per tracked fingerprint, plus each untracked notification."""
        return len(self.alerts) + self.alerts_untracked


class IncidentInput(_Model):
    """Start input of IncidentWorkflow. The policy is a snapshot: the incident keeps the rules it opened under."""

    key: str = Field(pattern=KEY_PATTERN)
    title: str
    service: str
    severity: str
    labels: dict[str, str] = Field(default_factory=dict)
    response_workflow: str | None = None
    actions: list[PlannedAction] = Field(default_factory=list)
    source: str = "cli"
    # When the first alert arrived (the receiver took the payload, the detector saw it fire, the CLI was
    # asked), set where the incident is planned; the workflow's own opening can come much later.
    first_alert_at: datetime | None = None
    policy: SharedPolicy
    # The execute_runbook actions' plans, rendered at triage (Jinja cannot run in a workflow), in order.
    runbooks: list[RunbookPlan] = Field(default_factory=list)
    carried: IncidentState | None = Field(default=None, description="set only by continue-as-new")
    # A storm incident (opened by tocsin.storm.consolidation): it never asks to join a storm itself.
    storm: bool = False


class Delivery(_Model):
    """One notification: a page, a post, an email. `at` is workflow time, so replays and tests agree."""

    idempotency_key: str
    incident: str
    channel: str
    target: str
    message: str
    at: datetime
    # What an adapter needs to shape the notification: PagerDuty severity, a war room's summary, an email subject.
    title: str = ""
    severity: str = ""
    service: str = ""
    status: str = "triggered"


class DeliveryReceipt(_Model):
    delivered: bool
    provider_id: str
    duplicate: bool = False


class PreviousIncidentRequest(_Model):
    workflow_id: str
    run_id: str


class PreviousIncident(_Model):
    run_id: str
    closed_at: datetime


class PostMortemInput(_Model):
    """The hand-off contract: the incident's full final state and timeline, and the policy it ran under."""

    incident: IncidentState
    policy: SharedPolicy
    parent_workflow_id: str
    parent_run_id: str
    # Set only by continue-as-new, during the weeks of follow-through.
    carried: PostMortemState | None = None


class PostMortemResult(_Model):
    key: str
    input_ref: str
