"""Read-only look-ups in Temporal's visibility, for what a workflow cannot see from inside itself."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tocsin.incident.contracts import PreviousIncident, PreviousIncidentRequest


class IncidentActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name="find_previous_incident")
    async def find_previous_incident(self, request: PreviousIncidentRequest) -> PreviousIncident | None:
        """The most recent closed run of the same incident key: a new firing after resolution links to it."""
        query = f"WorkflowId = '{request.workflow_id}' AND ExecutionStatus != 'Running'"
        latest: PreviousIncident | None = None
        try:
            async for run in self.client.list_workflows(query, limit=50):
                if run.run_id == request.run_id or run.close_time is None:
                    continue
                if latest is None or run.close_time > latest.closed_at:
                    latest = PreviousIncident(run_id=run.run_id, closed_at=run.close_time)
        except RPCError as err:
            if err.status in (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.INVALID_ARGUMENT):
                # A server without visibility (or with a query it rejects) will not answer on a retry either.
                raise ApplicationError(f"visibility cannot answer: {err.message}", non_retryable=True) from err
            raise
        return latest
