"""The incident source reads the incident's record back from Temporal: its recorded result is the final word,
longer than the hand-off taken just before it closed."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.postmortem_gather import GatherActivities
from tests.support.harness import settle_postmortem, start_incident
from tocsin.incident.client import send_update
from tocsin.incident.contracts import IncidentState
from tocsin.incident.updates import ResolveRequest
from tocsin.policy.schema import Policy
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import IncidentEvidenceRequest
from tocsin.postmortem.sources.incident import first_alert
from tocsin.settings import Settings


async def test_the_recorded_result_is_read_back_and_the_hand_off_is_the_fallback(
    env: WorkflowEnvironment, workers: Settings, default_policy: Policy, tmp_path: Path
) -> None:
    inp, handle = await start_incident(env.client, default_policy, severity="sev2")
    await send_update(env.client, inp.key, "resolve", ResolveRequest(by="alice", summary="fixed"))
    final = IncidentState.model_validate(await handle.result())
    await settle_postmortem(env.client, final.postmortem_workflow_id or "")
    # The hand-off is taken before the incident records that it started the post-mortem.
    handoff = final.model_copy(update={"timeline": [e for e in final.timeline if e.kind != "postmortem"]})
    run_id = (await handle.describe()).run_id
    request = IncidentEvidenceRequest(incident=handoff, parent_workflow_id=handle.id, parent_run_id=run_id)

    store = ArtifactStore(tmp_path / "artifacts")
    read_back = await ActivityEnvironment().run(GatherActivities(store, {}, client=env.client).incident, request)
    assert any("post-mortem started" in e.summary for e in read_back.evidence)
    # Every entry, and the first alert as an entry of its own when it came before the opening.
    first = 1 if first_alert(final) else 0
    assert len(read_back.evidence) == len(final.timeline) + first

    # Without a client (or with a run Temporal does not know), the hand-off is what there is.
    alone = await ActivityEnvironment().run(GatherActivities(store, {}).incident, request)
    assert len(alone.evidence) == len(handoff.timeline) + first
    unknown = request.model_copy(update={"parent_run_id": "00000000-0000-0000-0000-000000000000"})
    fallback = await ActivityEnvironment().run(GatherActivities(store, {}, client=env.client).incident, unknown)
    assert len(fallback.evidence) == len(handoff.timeline) + first
