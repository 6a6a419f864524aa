"""The post-mortem workflow, PostMortemWorkflow, and the parts it runs.

workflow     the @workflow.defn class: its run method and its update and query handlers, nothing else
context      PostMortemContext: the input, the state the `status` query answers, the review's decision flag
pipeline     gather → timeline and impact → analysis → action items → draft → review → publish
review       what the updates `approve` / `request_changes` check and do, and the wait for a decision
follow_up    the action items' issues checked on a timer until closed or the horizon
steps        the activities as the parts call them: options, the parallel gather, notifications

Each part takes what it needs (the context, a draft) as arguments; none imports the workflow.
"""

from workflows.postmortem.workflow import PostMortemWorkflow

__all__ = ["PostMortemWorkflow"]
