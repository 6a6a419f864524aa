"""What every phase sends and how it is timed: Alertmanager v4 payloads, a bounded driver, percentiles."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ALERTS_PATH = "/api/v1/alerts/alertmanager"


def pct(values: list[float], q: float) -> float:
    """The q-quantile by rank (no interpolation): with 30 samples p99 is the slowest, which is what we want."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass
class Result:
    name: str
    alerts: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.alerts / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        mean = statistics.fmean(self.latencies) * 1000 if self.latencies else 0.0
        return (
            f"{self.name:<24} {self.alerts:>7} alerts in {self.seconds:6.1f}s = {self.rate:8.1f} alerts/s   "
            f"p50 {pct(self.latencies, 0.50) * 1000:7.1f} ms   p99 {pct(self.latencies, 0.99) * 1000:7.1f} ms   "
            f"(mean {mean:6.1f} ms)"
        )


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


def am_alert(
    service: str, fingerprint: str, severity: str = "warning", alertname: str = "BenchAlert"
) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": alertname, "service": service, "environment": "bench", "severity": severity},
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
