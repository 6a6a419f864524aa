"""The post-mortem's gather activities: one per evidence source, each returning a SourceResult.

A source that is not configured on this worker is `skipped`, one that cannot answer is `failed`, with the
reason in the result: the activity itself completes, so the post-mortem goes on with what it has and says what
is missing. An activity raises only for what a retry may cure on this side (the artifact store cannot be
written) or for a bug. Configuration (URLs, tokens) comes from the worker's environment, never from the
workflow's input, so no secret enters a history. Raw data goes to the artifact store as `<key>/<source>.json`.

The workflow calls them with a bounded retry policy and a start-to-close timeout of a few minutes (each
request to a source is bounded by `request_timeout`, GitHub's scan as a whole by its own budget).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError

from tocsin.incident.contracts import IncidentState
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.postmortem.contracts import GatherRequest, IncidentEvidenceRequest, SourceResult
from tocsin.postmortem.sources.changes import gather_changes
from tocsin.postmortem.sources.incident import incident_evidence
from tocsin.postmortem.sources.logs import gather_logs
from tocsin.postmortem.sources.metrics import gather_metrics
from tocsin.postmortem.sources.pagerduty import gather_pagerduty
from tocsin.postmortem.sources.results import DEFAULT_TIMEOUT, artifact_path


class GatherActivities:
    """`env` None reads the worker's os.environ at each call; tests pass a dict."""

    def __init__(
        self,
        store: ArtifactStore,
        env: Mapping[str, str] | None = None,
        *,
        request_timeout: float = DEFAULT_TIMEOUT,
        client: Client | None = None,
    ) -> None:
        self.store = store
        self.env = env
        self.request_timeout = request_timeout
        # To read the incident's record from Temporal itself (its history is the source of truth).
        self.client = client

    @activity.defn(name="postmortem_gather_metrics")
    async def metrics(self, request: GatherRequest) -> SourceResult:
        return await gather_metrics(request, self.store, self.env, request_timeout=self.request_timeout)

    @activity.defn(name="postmortem_gather_logs")
    async def logs(self, request: GatherRequest) -> SourceResult:
        return await gather_logs(request, self.store, self.env, request_timeout=self.request_timeout)

    @activity.defn(name="postmortem_gather_changes")
    async def changes(self, request: GatherRequest) -> SourceResult:
        return await gather_changes(request, self.store, self.env, request_timeout=self.request_timeout)

    @activity.defn(name="postmortem_gather_pagerduty")
    async def pagerduty(self, request: GatherRequest) -> SourceResult:
        return await gather_pagerduty(request, self.store, self.env, request_timeout=self.request_timeout)

    @activity.defn(name="postmortem_gather_incident")
    async def incident(self, request: IncidentEvidenceRequest) -> SourceResult:
        """The timeline as evidence; the whole timeline (every entry, even those past the evidence limit) is
        kept in `<key>/incident.json`. The incident's run is read back from Temporal when it has closed: its
        result, recorded in its history, is the final word (the hand-off was taken just before it closed)."""
        recorded = await self._recorded(request)
        if recorded is not None:
            request = request.model_copy(update={"incident": recorded})
        result = incident_evidence(request)
        timeline = [entry.model_dump(mode="json") for entry in request.incident.timeline]
        ref = await asyncio.to_thread(
            self.store.write_json, artifact_path(request.incident.key, "incident"), {"timeline": timeline}
        )
        return result.model_copy(update={"artifact": ref})

    async def _recorded(self, request: IncidentEvidenceRequest) -> IncidentState | None:
        if self.client is None:
            return None
        handle = self.client.get_workflow_handle(request.parent_workflow_id, run_id=request.parent_run_id)
        try:
            description = await asyncio.wait_for(handle.describe(), self.request_timeout)
            if description.status != WorkflowExecutionStatus.COMPLETED:
                return None
            state = IncidentState.model_validate(await asyncio.wait_for(handle.result(), self.request_timeout))
        except (RPCError, WorkflowFailureError, TimeoutError, ValidationError) as err:
            activity.logger.info("incident %s read from the hand-off: %s", request.incident.key, err)
            return None
        # A longer record only: never trade the hand-off for a different incident's.
        return (
            state
            if state.key == request.incident.key and len(state.timeline) >= len(request.incident.timeline)
            else None
        )
