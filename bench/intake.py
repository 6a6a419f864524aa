"""Intake: the receiver at its limit versus the raw temporalio client, and an alert storm.

(1) Alertmanager-format posts to the receiver and (2) the same signal-with-starts made directly with
temporalio, one alert per call into a pool of open incidents: alerts/s, p50/p99 latency, their ratio.
(3) A storm of alerts over a set of keys, batched as Alertmanager batches them: exactly one incident per
key, every alert counted, no history over 10,240 events.

`python -m bench --phases intake,storm` runs just these phases.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from bench.load import Result, alertmanager_payload, am_alert, drive
from bench.results import Section
from bench.stack import Stack
from tocsin.incident.client import open_or_signal
from tocsin.incident.contracts import AlertBatch, AlertEvent, IncidentState, incident_workflow_id
from tocsin.intake.contracts import NormalizedAlert
from tocsin.intake.routing import incident_key, plan_for_alert
from tocsin.policy.schema import Policy

HISTORY_WARNING = 10_240
# Bounds for phases that are counted rather than timed: a wedged system ends the phase, not the run.
WARM_SECONDS = 120.0
STORM_SECONDS = 600.0


@dataclass
class Pool:
    """The open incidents the timed phases send to (services pool-<run>-0 .. size-1); wrk uses it too."""

    run: str
    size: int
    opened: bool = False

    def service(self, i: int) -> str:
        return f"pool-{self.run}-{i % self.size}"


def limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


def bench_alert(service: str, fingerprint: str) -> NormalizedAlert:
    """The alert as the receiver normalizes it: its incident key is the one the receiver computes."""
    labels = {"alertname": "BenchAlert", "service": service, "environment": "bench"}
    return NormalizedAlert(source="alertmanager", status="firing", labels=labels, fingerprint=fingerprint)


def workflow_id_for(policy: Policy, service: str) -> str:
    return incident_workflow_id(incident_key(policy, bench_alert(service, "probe")))


async def open_pool(stack: Stack, pool: Pool, concurrency: int, out: Section) -> None:
    """Open the pool's incidents first: the timed phases then measure intake into open incidents, not the cost
    of starting workflows (each new incident also runs its triage actions and asks the storm guard)."""
    async with httpx.AsyncClient(limits=limits(concurrency), timeout=30) as http:

        async def post(i: int) -> int:
            service = pool.service(i)
            answer = await http.post(stack.alerts_url, json=alertmanager_payload([am_alert(service, f"{service}-w")]))
            answer.raise_for_status()
            return 1

        out.add((await drive("warm-up (opens pool)", post, WARM_SECONDS, concurrency, pool.size)).line())
    pool.opened = True
    await asyncio.sleep(5)  # let the worker finish the new incidents' first tasks before timing anything


async def receiver_vs_raw(
    stack: Stack, policy: Policy, pool: Pool, seconds: float, concurrency: int, batch: int, out: Section
) -> tuple[Result, Result]:
    async with httpx.AsyncClient(limits=limits(concurrency), timeout=30) as http:

        async def post(i: int) -> int:
            service = pool.service(i)
            alerts = [am_alert(service, f"{service}-rx-{i}-{j}") for j in range(batch)]
            answer = await http.post(stack.alerts_url, json=alertmanager_payload(alerts))
            answer.raise_for_status()
            return len(alerts)

        receiver = await drive("receiver (HTTP)", post, seconds, concurrency, 1_000_000)
    out.add(receiver.line())
    await asyncio.sleep(5)  # the worker's backlog from the receiver phase must not slow the raw phase

    async def direct(i: int) -> int:
        service = pool.service(i)
        alerts = [bench_alert(service, f"{service}-raw-{i}-{j}") for j in range(batch)]
        key = incident_key(policy, alerts[0])
        events = [AlertEvent(fingerprint=a.fingerprint, status="firing", labels=a.labels) for a in alerts]
        plan = plan_for_alert(policy, alerts[0], key, datetime.now(UTC))
        await open_or_signal(stack.client, plan, AlertBatch(events=events))
        return len(alerts)

    raw = await drive("temporalio directly", direct, seconds, concurrency, 1_000_000)
    out.add(raw.line())
    out.add(f"receiver/raw throughput ratio: {receiver.rate / raw.rate:.2f}" if raw.rate else "no raw throughput")
    out.add(f"(concurrency {concurrency}, {batch} alert(s) per call, into {pool.size} open incidents)")
    return receiver, raw


async def storm(stack: Stack, policy: Policy, total: int, keys: int, concurrency: int, out: Section) -> None:
    run = uuid.uuid4().hex[:6]
    services = [f"storm-{run}-{k}" for k in range(keys)]
    # One alert per key per payload, as Alertmanager groups a zone-wide outage: each payload costs `keys`
    # signal-with-starts.
    payloads = [[am_alert(services[k], f"{services[k]}-{p}") for k in range(keys)] for p in range(total // keys)]
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(limits=limits(concurrency), timeout=60) as http:

        async def post(i: int) -> int:
            answer = await http.post(stack.alerts_url, json=alertmanager_payload(payloads[i]))
            statuses[answer.status_code] += 1
            return len(payloads[i]) if answer.is_success else 0

        result = await drive(f"storm {total}/{keys} keys", post, STORM_SECONDS, concurrency, len(payloads))
    out.add(result.line() + "   (latency per POST of " + f"{keys} alerts)")
    out.add(f"  answers: {dict(sorted(statuses.items()))}")
    counted, runs, longest = 0, 0, 0
    for service in services:
        workflow_id = workflow_id_for(policy, service)
        handle = stack.client.get_workflow_handle(workflow_id)
        state: IncidentState = await handle.query("status", result_type=IncidentState)
        # Every notification, by status: past the per-incident cap alerts are counted, not kept one by one.
        counted += sum(state.alert_events.values())
        longest = max(longest, (await handle.describe()).raw_description.workflow_execution_info.history_length)
        runs += len([w async for w in stack.client.list_workflows(f"WorkflowId = '{workflow_id}'")])
    out.add(
        f"  incidents: {runs} runs for {keys} keys ({'exactly one each' if runs == keys else 'MISMATCH'}); "
        f"alerts counted: {counted} of {result.alerts} ({'all' if counted == result.alerts else 'MISSING'}); "
        f"longest history: {longest} events ({'under' if longest <= HISTORY_WARNING else 'OVER'} {HISTORY_WARNING})"
    )
