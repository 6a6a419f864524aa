"""Handing alerts Tocsin detected itself to intake: the same path, keys and dedup as a received webhook."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from tocsin.detection import IngestRequest
from tocsin.intake.ingest import ingest_alerts
from tocsin.intake.models import IngestResult, TemporalUnavailable
from tocsin.policy.triage import TriageError


class IntakeActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name="ingest_detected_alerts")
    async def ingest(self, request: IngestRequest) -> IngestResult:
        """Signal-with-start per incident key. Safe to repeat: alerts fold into one record per fingerprint."""
        try:
            return await ingest_alerts(self.client, request.policy, request.alerts)
        except TemporalUnavailable as err:
            raise ApplicationError(str(err), type="TemporalUnavailable") from err
        except TriageError as err:
            # The policy cannot place these alerts: a retry would decide the same.
            raise ApplicationError(str(err), type="TriageError", non_retryable=True) from err
