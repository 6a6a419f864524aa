"""Handing alerts Tocsin detected itself to intake: the same path, keys and dedup as a received webhook."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from tocsin.detection.contracts import IngestRequest
from tocsin.intake.contracts import IngestResult, TemporalUnavailable
from tocsin.intake.ingest import coalescing_sender, ingest_alerts


class IntakeActivities:
    def __init__(self, client: Client) -> None:
        self.client = client
        # Detection runs overlap with receiver traffic for the same incidents: their calls coalesce too.
        self.coalescer = coalescing_sender(client)

    @activity.defn(name="ingest_detected_alerts")
    async def ingest(self, request: IngestRequest) -> IngestResult:
        """Signal-with-start per incident key. Safe to repeat: alerts fold into one record per fingerprint.

        A series triage cannot place (or whose key Temporal refuses for good) is skipped, logged here and
        listed in the result's `skipped`; the rest of the chunk is ingested. Failing the activity instead
        would leave the whole chunk pending, handed over again every run, forever. The run counts a skipped
        series as handed over, so it is reported once, not on every tick."""
        try:
            result = await ingest_alerts(
                self.client, request.policy, request.alerts, skip_unplannable=True, coalescer=self.coalescer
            )
        except TemporalUnavailable as err:
            raise ApplicationError(str(err), type="TemporalUnavailable") from err
        for line in result.skipped or []:
            activity.logger.warning("detected alert skipped: %s", line)
        return result
