"""The runbook workflow, RunbookWorkflow, and the parts it runs.

workflow     the @workflow.defn class: its run method, the update `approve_step`, the queries
context      RunbookContext: the run's record, its approvals, and the incident it reports to
checks       before the first step: the worker's plan, the preflight, the guard (bounded retries)
execute      the steps in order, compensation of what was done, a person's approval
steps        how one planned step (or compensation) runs: the activity, timer or decision behind it

Each part takes what it needs (the context, the plan) as arguments; none imports the workflow.
"""

from workflows.runbook.workflow import RunbookWorkflow

__all__ = ["RunbookWorkflow"]
