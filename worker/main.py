"""The worker: hosts the incident and post-mortem workflows and their activities. Thin on purpose."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.delivery import DeliveryActivities
from activities.detection import DetectionActivities
from activities.heartbeat import HeartbeatActivities
from activities.incident import IncidentActivities
from activities.intake import IntakeActivities
from activities.maintenance import MaintenanceActivities
from activities.outbox import Outbox
from activities.postmortem import PostMortemActivities
from activities.postmortem_analysis import AnalysisActivities
from activities.postmortem_gather import GatherActivities
from activities.postmortem_report import ReportActivities
from activities.runbook import GuardActivities, RunbookActivities
from activities.runbook_plan import RunbookPlanning
from activities.storm import StormActivities
from tocsin.channels.registry import channels_from_env
from tocsin.channels.registry import describe as describe_channels
from tocsin.client import connect_when_ready
from tocsin.detection.schedule import ensure_detector_schedule
from tocsin.incident.contracts import INCIDENT_TASK_QUEUE, PAGING_TASK_QUEUE, POSTMORTEM_TASK_QUEUE
from tocsin.policy.loader import load_policy
from tocsin.postmortem.artifacts import ArtifactStore
from tocsin.prometheus import prometheus_url_from_env
from tocsin.settings import Settings, load_settings
from tocsin.state_dir import prepare_home
from worker import sandbox_code
from workflows.detection import DetectionWorkflow
from workflows.heartbeat import HeartbeatWorkflow
from workflows.incident import IncidentWorkflow
from workflows.maintenance import MaintenanceWorkflow
from workflows.postmortem import PostMortemWorkflow
from workflows.runbook import RunbookWorkflow
from workflows.runbook_guard import RunbookGuardWorkflow
from workflows.storm_guard import StormGuardWorkflow

log = logging.getLogger("tocsin.worker")

# Long enough for an in-flight delivery to finish; the server retries anything cut off.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)
# Long enough for a busy worker to pick up its own sticky tasks (replaying from scratch elsewhere costs CPU
# in a storm), short enough that a page is not held behind a dead worker for long.
STICKY_TIMEOUT = timedelta(seconds=4)
# The paging queue's own slots. A delivery waiting for its vendor's rate-limit slot (tocsin.channels.pacing)
# holds one while it waits, cheaply (an asyncio sleep): in a burst of 30 sev1s, 50 slots filled with waiting
# notices and new pages could not even start (make bench: first delivery started 3.8 s late at p99). Nothing
# but deliveries runs in them, so a storm's bookkeeping or a slow enrichment never holds one.
PAGING_SLOTS = 200


def build_workers(
    client: Client,
    settings: Settings,
    delivery: DeliveryActivities | None = None,
    prometheus: DetectionActivities | None = None,
    runbooks: RunbookActivities | None = None,
    postmortem_env: Mapping[str, str] | None = None,
) -> list[Worker]:
    """The three task queues' workers: incidents (workflows and their bookkeeping), paging (the incidents'
    deliveries), postmortems. `postmortem_env` (tests) replaces os.environ for the post-mortem's sources,
    LLM and GitHub; in production each reads the worker's environment when it runs."""
    sandbox_code.install()  # every workflow run re-imports the workflow modules: compile them once
    outbox = Outbox(settings.outbox_path, settings.outbox_max_bytes, settings.outbox_keep)
    if delivery is None:
        # Live channels come from this worker's environment (secrets never travel through workflows).
        live = channels_from_env(os.environ)
        log.info("%s", describe_channels(live))
        delivery = DeliveryActivities(outbox, live)
    postmortem = PostMortemActivities(settings.postmortem_dir)
    store = ArtifactStore(settings.artifacts_dir)
    gathering = GatherActivities(store, postmortem_env, client=client)
    analysis = AnalysisActivities(postmortem_env)
    reports = ReportActivities(store, settings.postmortem_dir, settings.home, env=postmortem_env)
    lookup = IncidentActivities(client)
    # The detector's Prometheus comes from this worker's environment; without it, detection runs fail fast.
    prometheus = prometheus or DetectionActivities(prometheus_url_from_env())
    intake = IntakeActivities(client)
    # Cluster credentials, admin-endpoint secrets and Prometheus come from this worker's environment; what a
    # runbook runs, and every limit on it, from this worker's own policy, never from a caller.
    runbook_policy = load_policy(settings.policy)
    runbooks = runbooks or RunbookActivities(runbook_policy)
    planning = RunbookPlanning(runbook_policy)
    guard = GuardActivities(client, runbook_policy)
    # Storm thresholds and the storm incident's plan come from this worker's own policy, never from a caller.
    storms = StormActivities(client, load_policy(settings.policy))
    # A missed heartbeat's incident is triaged under this worker's policy, like `tocsin trigger`.
    heartbeats = HeartbeatActivities(client, load_policy(settings.policy))
    maintenance = MaintenanceActivities(client)
    return [
        Worker(
            client,
            task_queue=INCIDENT_TASK_QUEUE,
            # A dead worker's sticky queue holds its incidents' next tasks this long before any worker may take
            # them: short, so a killed worker delays paging by seconds (the SDK's default is 10 s).
            sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
            max_cached_workflows=settings.workflow_cache,
            workflows=[
                IncidentWorkflow,
                DetectionWorkflow,
                RunbookWorkflow,
                RunbookGuardWorkflow,
                StormGuardWorkflow,
                HeartbeatWorkflow,
                MaintenanceWorkflow,
            ],
            activities=[
                lookup.find_previous_incident,
                prometheus.evaluate,
                intake.ingest,
                planning.plan,
                runbooks.preflight,
                runbooks.get_scale,
                runbooks.apply_scale,
                runbooks.rollout,
                runbooks.http,
                runbooks.query_prometheus,
                guard.acquire,
                storms.admit,
                storms.join,
                heartbeats.missed,
                heartbeats.recovered,
                maintenance.lookup,
                maintenance.notify,
            ],
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        ),
        Worker(
            client,
            task_queue=PAGING_TASK_QUEUE,
            activities=[delivery.deliver],
            max_concurrent_activities=PAGING_SLOTS,
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        ),
        Worker(
            client,
            task_queue=POSTMORTEM_TASK_QUEUE,
            workflows=[PostMortemWorkflow],
            activities=[
                postmortem.record_input,
                gathering.metrics,
                gathering.logs,
                gathering.changes,
                gathering.pagerduty,
                gathering.incident,
                analysis.analyze,
                reports.render,
                reports.publish,
                reports.follow_up,
                # The post-mortem's notifications go out through the same channels as the incident's.
                delivery.deliver,
            ],
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        ),
    ]


async def run_workers(workers: list[Worker], stop: asyncio.Event) -> None:
    """Run until `stop` is set, then drain in-flight tasks before returning."""
    tasks = [asyncio.create_task(w.run()) for w in workers]
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*(w.shutdown() for w in workers))
    stopper.cancel()
    for task in tasks:
        if task.done() and task.exception():
            raise task.exception()  # type: ignore[misc]


async def serve(settings: Settings, delivery: DeliveryActivities | None = None) -> None:
    prepare_home(settings.home)  # owner-only umask, older too-open files tightened; no lock (see state_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = await connect_when_ready(settings)
    log.info(
        "worker connected to %s (namespace %s); outbox %s",
        settings.target,
        settings.namespace,
        settings.outbox_path,
    )
    url = prometheus_url_from_env()
    if url:
        # Deployed without `tocsin up` (docker-compose, Kubernetes), the worker keeps the detector's
        # schedule in step with its policy; creating or updating it is idempotent and keeps a pause.
        log.info("%s", await ensure_detector_schedule(client, load_policy(settings.policy), url))
    await run_workers(build_workers(client, settings, delivery), stop)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(load_settings()))


if __name__ == "__main__":
    main()
