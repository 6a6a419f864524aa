"""PostMortemContext: what one post-mortem run works on, handed explicitly to each part of the workflow.

The workflow owns one; the handlers and the pipeline read and change it through its public fields, so no part
reaches into another's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tocsin.incident.contracts import PostMortemInput
    from tocsin.postmortem.state import PostMortemState


@dataclass
class PostMortemContext:
    data: PostMortemInput
    # What the query `status` answers and continue-as-new carries.
    state: PostMortemState
    # Set by the updates `approve` and `request_changes`; the review clears it for each new revision.
    decided: bool = False

    def stakeholders(self) -> list[str]:
        return list(self.data.policy.severity(self.data.incident.severity).stakeholders)

    def review_notes(self) -> list[str]:
        """The reviewers' notes so far, as the analysis and the report quote them."""
        return [f"{n.by}: {n.notes}" for n in self.state.review_notes]

    def show(self) -> None:
        """The run's details in the Temporal UI, refreshed on each change of state."""
        state = self.state
        lines = [f"**Post-mortem of {state.key}**: {state.phase.replace('_', ' ')}, revision {state.revision}"]
        if state.draft_markdown:
            lines.append(f"- draft: `{state.draft_markdown}` (analysis: {state.analyzer or 'pending'})")
        for source, status in state.sources.items():
            lines.append(f"- {source}: {status}")
        if state.approved_by:
            lines.append(f"- approved by {state.approved_by}")
        if state.report_url:
            lines.append(f"- published: {state.report_url}")
        if state.items:
            still = sum(1 for i in state.items if i.open)
            lines.append(f"- action items: {still} of {len(state.items)} open")
        workflow.set_current_details("\n".join(lines))
