"""`tocsin postmortem show | request-changes | approve` against a post-mortem in review (time-skipped).

Nothing is configured (no sources, no LLM, no GitHub): the draft names every missing source, the built-in
analyzer writes the analysis, and approval publishes the report to disk.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import outbox
from tocsin.cli import postmortems as cli
from tocsin.cli.common import CliError
from tocsin.incident.contracts import POSTMORTEM_TASK_QUEUE, IncidentState, PostMortemInput, TimelineEntry
from tocsin.policy.schema import Policy
from tocsin.postmortem.state import PostMortemState
from tocsin.settings import Settings


def resolved_incident(key: str) -> IncidentState:
    now = datetime.now(UTC)
    return IncidentState(
        key=key,
        title="Checkout down",
        service="checkout",
        severity="sev1",
        status="resolved",
        opened_at=now - timedelta(hours=2),
        acknowledged_by="alice",
        acknowledged_at=now - timedelta(hours=1, minutes=56),
        resolved_by="alice",
        resolved_at=now - timedelta(hours=1),
        timeline=[
            TimelineEntry(at=now - timedelta(hours=2), kind="opened", text="Checkout down (from cli)"),
            TimelineEntry(at=now - timedelta(hours=1), kind="resolved", text="resolved by alice", by="alice"),
        ],
    )


async def phase_of(client: Client, workflow_id: str, wanted: str, revision: int) -> PostMortemState:
    for _ in range(400):
        state: PostMortemState = await client.get_workflow_handle(workflow_id).query(
            "status", result_type=PostMortemState
        )
        if state.phase == wanted and state.revision >= revision:
            return state
        await asyncio.sleep(0.05)
    pytest.fail(f"{workflow_id} never reached {wanted} r{revision}")


async def test_show_request_changes_and_approve(
    env: WorkflowEnvironment,
    workers: Settings,
    default_policy: Policy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = "checkout-pm-cli"
    # One round of changes, then the revision must be approved (or left unreviewed).
    review = default_policy.postmortem.review.model_copy(update={"max_change_requests": 1})
    postmortem = default_policy.postmortem.model_copy(update={"review": review})
    handoff = PostMortemInput(
        incident=resolved_incident(key),
        policy=default_policy.model_copy(update={"postmortem": postmortem}),
        parent_workflow_id=f"incident-{key}",
        parent_run_id="run",
    )
    await env.client.start_workflow(
        "PostMortemWorkflow", handoff, id=f"postmortem-{key}", task_queue=POSTMORTEM_TASK_QUEUE
    )

    async def connect() -> Client:
        return env.client

    await phase_of(env.client, f"postmortem-{key}", "in_review", 1)
    await cli.show_postmortem(connect, workers, key)
    shown = capsys.readouterr().out
    assert shown.startswith(f"postmortem-{key}: in review, revision 1\n")
    assert "  metrics: skipped: " in shown and "TOCSIN_PROMETHEUS_URL" in shown
    assert "  changes: skipped: " in shown
    assert "# " in shown and "Checkout down" in shown, "the draft's Markdown follows the state"

    await cli.request_changes(connect, key, by="erin", notes="name the deploy")
    assert capsys.readouterr().out.strip() == (f"postmortem-{key}: changes requested by erin: revision 2 will follow")
    state = await phase_of(env.client, f"postmortem-{key}", "in_review", 2)
    assert [n.notes for n in state.review_notes] == ["name the deploy"]
    assert "name the deploy" in (workers.postmortem_dir / f"{key}.md").read_text(encoding="utf-8")

    with pytest.raises(CliError, match=r"has had 1 rounds of changes \(postmortem.review.max_change_requests\)"):
        await cli.request_changes(connect, key, by="erin", notes="and again")
    await cli.approve_postmortem(connect, key, by="erin")
    assert capsys.readouterr().out.strip() == f"postmortem-{key}: revision 2 approved by erin"
    await env.sleep(timedelta(minutes=1))
    final = await env.client.get_workflow_handle(f"postmortem-{key}").query("status", result_type=PostMortemState)
    assert final.approved_by == "erin" and final.phase in ("following_up", "done")
    assert "erin" in (workers.postmortem_dir / f"{key}.md").read_text(encoding="utf-8")
    sent = [line["id"].split("/", 2)[2] for line in outbox(workers, key)]
    assert any(step.startswith("draft/1/") for step in sent) and any(step.startswith("published/") for step in sent)

    with pytest.raises(CliError, match="no post-mortem for incident 'nope'"):
        await cli.show_postmortem(connect, workers, "nope")
