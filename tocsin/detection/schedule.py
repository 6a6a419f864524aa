"""The `tocsin-detector` schedule: Tocsin's own detection from Prometheus, for teams without Alertmanager.

`tocsin up` calls ensure_detector_schedule. The schedule's action carries the policy snapshot only; the
Prometheus URL (possibly with credentials) is read by each worker from its own environment.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import Priority

from tocsin.addresses import redact
from tocsin.detection.contracts import DetectionInput
from tocsin.detection.evaluate import detection_triggers
from tocsin.durations import format_duration
from tocsin.incident.contracts import INCIDENT_TASK_QUEUE
from tocsin.policy.priority import DETECTION
from tocsin.policy.schema import Policy
from tocsin.prometheus import URL_VARIABLE, check_url

SCHEDULE_ID = "tocsin-detector"
# The schedule appends the scheduled time: tocsin-detector-2025-01-01T00:00:30Z.
WORKFLOW_ID_PREFIX = "tocsin-detector"
OFF = f"detector off: {URL_VARIABLE} is not set"
# A run that hangs (it should not: every activity is bounded) must not hold the schedule forever.
RUN_TIMEOUT = timedelta(minutes=10)


def detector_schedule(policy: Policy) -> Schedule:
    interval = policy.detection.interval
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "DetectionWorkflow",
            DetectionInput(policy=policy),
            id=WORKFLOW_ID_PREFIX,
            task_queue=INCIDENT_TASK_QUEUE,
            # A tick finds alerts; the incidents it opens take their own severity's priority.
            priority=Priority(priority_key=DETECTION),
            execution_timeout=RUN_TIMEOUT,
            static_summary="Evaluate the policy's triggers against Prometheus",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(
            # One run at a time: a slow Prometheus skips a tick rather than piling runs (and states) up.
            overlap=ScheduleOverlapPolicy.SKIP,
            # After an outage, catch up at most the last minute, not every missed tick.
            catchup_window=max(interval, timedelta(minutes=1)),
        ),
    )


async def ensure_detector_schedule(client: Client, policy: Policy, prometheus_url: str | None) -> str:
    """Create or update (idempotent) the `tocsin-detector` schedule; a one-line message for `tocsin up`.

    Without a URL it creates nothing and deletes nothing: a schedule left from an earlier run stays as it
    was (its runs fail fast, non-retryably, on workers without the URL)."""
    if not prometheus_url:
        return OFF
    where = redact(check_url(prometheus_url))
    schedule = detector_schedule(policy)
    triggers = len(detection_triggers(policy))
    every = format_duration(policy.detection.interval)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
        done = "created"
    except ScheduleAlreadyRunningError:
        paused: list[bool] = []

        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
            # Keep what an operator set on the running schedule (paused, with a note): only the plan changes.
            schedule.state = current.description.schedule.state
            paused.append(schedule.state.paused)
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SCHEDULE_ID).update(replace)
        done = "updated, paused" if paused and paused[-1] else "updated"
    plural = "" if triggers == 1 else "s"
    return f"detector on: {triggers} trigger{plural} against {where} every {every} (schedule {SCHEDULE_ID} {done})"
