"""DetectionWorkflow: one run per tick of the `tocsin-detector` schedule. Pure orchestration.

Each run evaluates every named trigger once (one activity), lets tocsin.detection.evaluate decide what is pending,
what now fires and what resolved, hands the transitions to intake (an activity), and returns the state the
schedule gives the next run as its last completion result. Nothing is lost when a run fails: a trigger
Prometheus could not evaluate keeps its state, and a transition intake did not accept is tried again.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.detection import CONCURRENCY, DetectionActivities
    from activities.intake import IntakeActivities
    from tocsin.detection.contracts import (
        HANDOFF_CHUNK,
        MAX_ERROR,
        DetectionInput,
        DetectionResult,
        DetectionState,
        Evaluation,
        EvaluationRequest,
        IngestRequest,
        Transition,
    )
    from tocsin.detection.evaluate import details_markdown, detection_triggers, plan_run, settle, to_alert
    from tocsin.intake.contracts import NormalizedAlert


def _quick_retries(permanent: str) -> RetryPolicy:
    """A few quick tries: the next run, one interval later, is the real retry."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
        non_retryable_error_types=[permanent],
    )


EVALUATION_RETRY = _quick_retries("DetectorNotConfigured")
INTAKE_RETRY = _quick_retries("TriageError")
INTAKE_TIMEOUT = timedelta(seconds=30)


def _why(err: ActivityError) -> str:
    text = str(err.cause or err)
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


@workflow.defn(name="DetectionWorkflow")
class DetectionWorkflow:
    @workflow.run
    async def run(self, inp: DetectionInput) -> DetectionResult:
        errors: dict[str, str] = {}
        previous = DetectionResult()
        if workflow.has_last_completion_result():
            try:
                previous = workflow.get_last_completion_result(DetectionResult) or previous
            except Exception as err:  # a result an older release wrote: start afresh rather than never run
                errors["state"] = f"previous state unreadable, starting afresh: {type(err).__name__}"
        policy = inp.policy
        detection = policy.detection
        specs = detection_triggers(policy)
        now = workflow.now()

        evaluation: Evaluation | None = None
        if specs:
            timeout = detection.query_timeout.total_seconds()
            rounds = math.ceil(len(specs) / CONCURRENCY)
            try:
                evaluation = await workflow.execute_activity_method(
                    DetectionActivities.evaluate,
                    EvaluationRequest(
                        queries=[s.query for s in specs],
                        max_series=detection.max_series_per_trigger,
                        timeout_seconds=timeout,
                    ),
                    start_to_close_timeout=timedelta(seconds=rounds * (timeout + 2) + 5),
                    retry_policy=EVALUATION_RETRY,
                    summary=f"evaluate {len(specs)} trigger{'s' if len(specs) != 1 else ''}",
                )
            except ActivityError as err:
                errors["prometheus"] = _why(err)

        plan = plan_run(previous.state, specs, evaluation, now, detection.max_series_per_trigger)
        errors.update(plan.errors)
        delivered: list[Transition] = []
        for start in range(0, len(plan.transitions), HANDOFF_CHUNK):
            chunk = plan.transitions[start : start + HANDOFF_CHUNK]
            try:
                handed = await workflow.execute_activity_method(
                    IntakeActivities.ingest,
                    IngestRequest(policy=policy, alerts=[_detected(t, now) for t in chunk]),
                    start_to_close_timeout=INTAKE_TIMEOUT,
                    retry_policy=INTAKE_RETRY,
                    summary=_handoff_summary(chunk),
                )
            except ActivityError as err:
                # The rest stays pending (or firing) and is handed over again next run; intake coalesces.
                errors["intake"] = _why(err)
                break
            delivered.extend(chunk)
            if handed.skipped:
                # Reported once, in this run's result; the series is not handed over again next run.
                skipped = [errors["intake.skipped"], *handed.skipped] if "intake.skipped" in errors else handed.skipped
                errors["intake.skipped"] = "; ".join(skipped)[:2000]

        state: DetectionState = settle(plan, delivered)
        result = DetectionResult(
            run=previous.run + 1,
            at=now,
            state=state,
            triggers=len(specs),
            evaluated=plan.evaluated,
            pending=sum(len(t.pending) for t in state.triggers.values()),
            firing=sum(len(t.firing) for t in state.triggers.values()),
            fired=sum(t.status == "firing" for t in delivered),
            resolved=sum(t.status == "resolved" for t in delivered),
            errors=errors,
        )
        workflow.set_current_details(details_markdown(result))
        return result


def _detected(t: Transition, now: datetime) -> NormalizedAlert:
    """The alert as intake takes it, stamped with this run's time: an incident it opens starts its clock when
    the detector saw the series fire, not when the hand-off activity (perhaps retried) ran."""
    return to_alert(t, now).model_copy(update={"received_at": now})


def _handoff_summary(chunk: list[Transition]) -> str:
    firing = sum(t.status == "firing" for t in chunk)
    parts = [f"{firing} firing"] if firing else []
    if len(chunk) - firing:
        parts.append(f"{len(chunk) - firing} resolved")
    return "hand to intake: " + ", ".join(parts)
