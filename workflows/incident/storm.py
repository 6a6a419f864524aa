"""Storm consolidation inside the incident: a new incident asks whether it pages on its own; a storm
incident lists the incidents it pages for and, when the burst is over, says what happened.

The decisions are tocsin.storm.consolidation's pure functions. The incident asks with the `storm_admit` activity (which
signals the guard, workflows/storm_guard.py), waits a few seconds for the `storm_decision` signal, and if
held joins the storm incident with the `storm_join` activity. If any of it fails, the incident pages on its
own: a page too many beats a page lost.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.storm import StormActivities
    from tocsin.policy.priority import background
    from tocsin.storm import consolidation as storm
    from tocsin.storm.contracts import (
        MEMBER_TITLE_MAX,
        AdmitAnswer,
        AdmitRequest,
        JoinRequest,
        StormMember,
        StormMembers,
        StormRecord,
    )
    from workflows.incident.core import IncidentCore
    from workflows.incident.deliveries import Deliveries

# Asking must not delay a page for long: a few quick attempts, a short wait, then page on its own.
ADMIT_TIMEOUT = timedelta(seconds=10)
ADMIT_ATTEMPTS = 3
ANSWER_TIMEOUT = timedelta(seconds=30)


def _quick(summary: str, priority: int) -> workflow.ActivityConfig:
    return workflow.ActivityConfig(
        start_to_close_timeout=ADMIT_TIMEOUT,
        retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_attempts=ADMIT_ATTEMPTS),
        summary=summary,
        priority=Priority(priority_key=priority),
    )


class StormMembership:
    def __init__(self, core: IncidentCore, deliveries: Deliveries) -> None:
        self._core = core
        self._deliveries = deliveries
        self._answer: AdmitAnswer | None = None

    async def admit(self) -> None:
        """Ask the storm guard whether this new incident pages on its own or joins a storm incident."""
        core, state = self._core, self._core.state
        member = StormMember(
            key=state.key,
            severity=state.severity,
            service=state.service,
            title=state.title[:MEMBER_TITLE_MAX],
            opened_at=state.opened_at,
        )
        try:
            sent = await workflow.execute_activity_method(
                StormActivities.admit,
                AdmitRequest(member=member, manual=core.input.source == "cli"),
                # At the incident's own priority: its first page waits for this answer.
                **_quick("ask the storm guard", core.priority()),
            )
        except ActivityError as err:
            core.record("storm", f"the storm guard could not be asked ({err.cause or err}); paging on its own")
            return
        if not sent.asked:
            return
        try:
            await workflow.wait_condition(
                lambda: self._answer is not None, timeout=ANSWER_TIMEOUT, timeout_summary="the storm guard"
            )
        except TimeoutError:
            core.record("storm", f"the storm guard did not answer within {ANSWER_TIMEOUT.seconds}s; paging on its own")
            return
        answer = self._answer
        if answer is None or not answer.held or not answer.storm_key:
            return
        try:
            await workflow.execute_activity_method(
                StormActivities.join,
                JoinRequest(storm_key=answer.storm_key, members=[*answer.earlier, member]),
                # Held: it pages no more, the storm incident does. Bookkeeping.
                **_quick(f"join storm {answer.storm_key}", background(core.priority())),
            )
        except ActivityError as err:
            # Nobody would page for it: it pages on its own.
            core.record("storm", f"could not join storm {answer.storm_key} ({err.cause or err}); paging on its own")
            return
        state.storm_key = answer.storm_key
        state.paging_held = True
        core.record("storm", f"{answer.reason}; paging held: the storm incident {answer.storm_key} pages for it")

    def decided(self, answer: AdmitAnswer) -> None:
        """The storm guard's answer to this incident's admission (a repeat is ignored)."""
        if self._answer is None:
            self._answer = answer

    def joined(self, batch: StormMembers) -> None:
        """A storm incident: list the incidents that joined, and become as severe as the worst of them."""
        core, state = self._core, self._core.state
        if state.status == "resolved":
            return
        record = state.storm or StormRecord(window=batch.window)
        state.storm = record
        added = storm.add_members(record, batch.members, workflow.now())
        if not added:
            return
        state.title = storm.title(record)
        worst = storm.most_severe([m.severity for m in added])
        known = core.policy.incident_classification.severity_levels
        if worst in known and storm.severity_rank(worst) < storm.severity_rank(state.severity):
            old, state.severity = state.severity, worst
            core.record("severity_changed", f"{old} → {worst}: a {worst} incident joined the storm")
        core.wake()

    async def summarize(self) -> None:
        """Once nobody has joined for a window, say what the burst was, on the timeline and to stakeholders."""
        record = self._core.state.storm
        due = storm.over_at(record) if record else None
        if record is None or due is None or workflow.now() < due:
            return
        record.summarized = True
        text = storm.summary(record)
        self._core.record("storm", text)
        await self._deliveries.tell_stakeholders(f"storm-over/{record.count}", text)
