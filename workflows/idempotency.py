"""The idempotency key every side effect of a workflow carries: `<workflow id>/<first run id>/<step>`.

The first run id (not the current one) keeps a key stable across continue-as-new, and the step names what
is done, so a retried activity, a replayed workflow or a second worker all present the same key to the
outbox, PagerDuty's dedup, Slack's metadata, an email's Message-ID or GitHub's issue marker.
"""

from __future__ import annotations

from temporalio import workflow


def idempotency_key(step: str) -> str:
    info = workflow.info()
    return f"{info.workflow_id}/{info.first_execution_run_id[:8]}/{step}"
