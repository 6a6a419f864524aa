"""RunbookContext: what one runbook run records and reports, handed explicitly to each part of the workflow.

Every step's outcome is kept for the query `progress` and the result, shown in the Temporal UI, and told to
the incident (signal `runbook_progress`) as one line for its timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from tocsin.policy.roster_schema import Roster
    from tocsin.runbook.contracts import (
        ApproveStepRequest,
        RunbookInput,
        RunbookProgress,
        RunbookResult,
        RunOutcome,
        StepOutcome,
        StepRecord,
    )
    from tocsin.runbook.plan_contracts import PlannedApproval


@dataclass
class RunbookContext:
    name: str
    incident: str
    # The incident's workflow, told of each step; None when the runbook runs on its own.
    incident_workflow_id: str | None
    records: list[StepRecord] = field(default_factory=list)
    # sha256 of the worker's plan, once made.
    digest: str | None = None
    # Who may approve: the worker's policy's roster, from the planning activity. Empty (nobody) until then.
    roster: Roster = field(default_factory=Roster)
    # Decisions by step name (update `approve_step`), and the approval step waiting for one, if any.
    decisions: dict[str, ApproveStepRequest] = field(default_factory=dict)
    waiting_for: PlannedApproval | None = None

    @classmethod
    def of(cls, inp: RunbookInput) -> RunbookContext:
        name = inp.plan.runbook if inp.plan else inp.request.runbook if inp.request else "runbook"
        return cls(name=name, incident=inp.incident, incident_workflow_id=inp.incident_workflow_id)

    async def note(
        self, step: str, action: str, outcome: StepOutcome, detail: str, *, compensation: bool = False
    ) -> None:
        self.records.append(
            StepRecord(
                step=step, action=action, outcome=outcome, detail=detail, at=workflow.now(), compensation=compensation
            )
        )
        what = "compensation" if compensation else "step"
        await self.tell(f"{self.name} {what} {step} ({action}): {outcome}: {detail}")

    async def finish(self, outcome: RunOutcome, reason: str, verified: bool = False) -> RunbookResult:
        result = RunbookResult(
            runbook=self.name,
            outcome=outcome,
            reason=reason,
            verified=verified,
            steps=self.records,
            digest=self.digest,
        )
        await self.tell(f"{result.runbook} {outcome}: {reason}", result)
        return result

    async def tell(self, text: str, result: RunbookResult | None = None) -> None:
        """One line for the incident's timeline; the last one carries the outcome."""
        workflow.set_current_details(f"**{self.name}** for `{self.incident}`\n\n{text}")
        parent = self.incident_workflow_id
        if parent is None:
            return
        progress = RunbookProgress(
            workflow_id=workflow.info().workflow_id,
            text=text,
            outcome=result.outcome if result else None,
            verified=result.verified if result else False,
        )
        try:
            await workflow.get_external_workflow_handle(parent).signal("runbook_progress", progress)
        except FailureError as err:
            # The incident closed meanwhile: the runbook's own history still has everything.
            workflow.logger.info("incident %s not told: %s", parent, err)
