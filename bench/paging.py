"""First-page latency: from the POST of a sev1 alert to the moment its first page reaches the vendor.

The worker's PagerDuty channel (TOCSIN_PAGERDUTY_ROUTING_KEY, TOCSIN_PAGERDUTY_EVENTS_URL) points at a fake
Events API v2 in this process (tests/support/vendor_server.py's real socket server), which notes when each trigger
arrives by its dedup_key: the incident key, which the bench computes for each probe as the receiver does.
Each probe is a fresh service, so each opens a new incident that pages at once (sev1 is a paging severity).

Measured steady (probes only), mid-storm (the same probes while concurrent senders post 100-alert warning
payloads over 100 other keys) and as a burst (probes closer together than the PagerDuty channel's pacing
lets their sends through, so they queue in the worker's pacer: that line measures the pacer).

The worker runs on a copy of the policy with storm consolidation off: with it on, every probe past the 20th
new incident in 5 minutes is held and only the storm incident pages, so there would be no per-probe page
to time.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.intake import limits
from bench.load import alertmanager_payload, am_alert, pct
from bench.results import Section
from bench.stack import DEFAULT_POLICY, Stack, wait_quiet
from tests.support.vendor_server import Recorded, Reply, VendorServer
from tocsin.channels.pagerduty import PagerDutyChannel
from tocsin.intake.contracts import NormalizedAlert
from tocsin.intake.routing import incident_key
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy

ROUTING_KEY = "BENCHr0ut1ngKey0123456789abcdefAB"  # 32 letters and digits, the Events API v2 shape
POLL = 0.1
PAGE_TIMEOUT = 10.0  # a probe without a page this long after its POST counts as "no page"
STORM_KEYS = 100
STORM_LEAD = 3.0  # the storm runs this long before the first probe, so its 100 incidents are already open
STORM_MAX_POSTS = 5_000  # a bound on the storm senders, whatever the timing
QUIET_WITHIN = 60.0


class FakePagerDuty:
    """Events API v2 on a loopback port: answers 202 as PagerDuty does, and notes when each trigger arrived.

    `first_page` keeps, per dedup_key, the arrival of the first trigger whose delivery key (custom_details.
    delivery, `<workflow>/<run>/<step>`) is a page step: a sev1's automatic actions send PagerDuty events too
    (the emergency-response team's), and those are not its page."""

    def __init__(self) -> None:
        self.server = VendorServer()
        self.first_page: dict[str, float] = {}  # dedup_key -> time.monotonic() on arrival
        self.arrivals: list[float] = []  # every trigger, page or not
        self._lock = threading.Lock()
        self.server.on("POST", "/v2/enqueue", self._enqueue)

    def start(self) -> None:
        self.server.start()
        # A worker stopped mid-keep-alive resets its connection; http.server would print a traceback for each.
        httpd = self.server._httpd
        if httpd is not None:
            httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]

    def _enqueue(self, request: Recorded) -> Reply:
        arrived = time.monotonic()  # same clock as the probes' POSTs: this server runs in the bench process
        event: Any = request.json or {}
        dedup = str(event.get("dedup_key", ""))
        if event.get("event_action") == "trigger":
            delivery = str((event.get("payload") or {}).get("custom_details", {}).get("delivery", ""))
            with self._lock:
                self.arrivals.append(arrived)
                if "/page/" in delivery:
                    self.first_page.setdefault(dedup, arrived)
        return Reply(202, json={"status": "success", "message": "Event processed", "dedup_key": dedup})

    def env(self) -> dict[str, str]:
        return {"TOCSIN_PAGERDUTY_ROUTING_KEY": ROUTING_KEY, "TOCSIN_PAGERDUTY_EVENTS_URL": self.server.url}

    def since(self, start: float) -> int:
        with self._lock:
            return sum(1 for t in self.arrivals if t >= start)

    async def drained(self, quiet: float = 2.0, within: float = 30.0) -> None:
        """Wait until no trigger has arrived for `quiet` seconds: the worker's pacer queue is empty, so one
        measurement's leftover sends do not delay the next one's pages."""
        for _ in range(int(within / POLL)):
            with self._lock:
                last = self.arrivals[-1] if self.arrivals else 0.0
            if time.monotonic() - last >= quiet:
                return
            await asyncio.sleep(POLL)


def no_storm_policy(home: Path) -> Path:
    """The default policy with storm consolidation off (intake.storm.threshold: 0), checked by the loader."""
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["intake"]["storm"]["threshold"] = 0
    path = home / "policy-no-storm.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_policy(path)
    return path


@dataclass
class Probe:
    key: str
    posted: float = 0.0
    status: int = 0
    posted_at: float = 0.0  # wall clock, to compare with the server's event times (same machine)
    answered: float = 0.0  # monotonic, when the receiver's 202 arrived


STAGES = (
    "202 from the receiver",
    "incident's first workflow task",
    "first delivery scheduled",
    "first delivery started",
    "page at the vendor",
)


async def stages(stack: Stack, vendor: FakePagerDuty, sent: list[Probe]) -> dict[str, list[float]]:
    """Where a probe's time went, each stage measured from its POST: the receiver's answer, then (from the
    incident's history, server time) its first workflow task and its first delivery activity, then the
    vendor's arrival. Only probes that were paged count."""
    found: dict[str, list[float]] = {name: [] for name in STAGES}
    for probe in sent:
        if probe.key not in vendor.first_page:
            continue
        history = await stack.client.get_workflow_handle(f"incident-{probe.key}").fetch_history()
        times: dict[str, float] = {}
        for event in history.events:
            kind = event.WhichOneof("attributes")
            at = event.event_time.ToDatetime().timestamp()
            if kind == "workflow_task_started_event_attributes":
                times.setdefault(STAGES[1], at)
            elif kind == "activity_task_scheduled_event_attributes":
                if event.activity_task_scheduled_event_attributes.activity_type.name == "deliver":
                    times.setdefault(STAGES[2], at)
            elif kind == "activity_task_started_event_attributes" and STAGES[2] in times:
                times.setdefault(STAGES[3], at)
        found[STAGES[0]].append(probe.answered - probe.posted)
        for name in STAGES[1:4]:
            if name in times:
                found[name].append(times[name] - probe.posted_at)
        found[STAGES[4]].append(vendor.first_page[probe.key] - probe.posted)
    return found


async def probes(
    stack: Stack, policy: Policy, vendor: FakePagerDuty, count: int, gap: float, label: str, out: Section
) -> list[Probe]:
    """Send the probes, time their first pages; returns the probes that had none within PAGE_TIMEOUT."""
    run = uuid.uuid4().hex[:6]
    sent: list[Probe] = []
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(i: int) -> None:
            await asyncio.sleep(i * gap)
            service = f"probe-{run}-{i}"
            labels = {"alertname": "BenchPage", "service": service, "environment": "bench"}
            normalized = NormalizedAlert(source="alertmanager", status="firing", labels=labels, fingerprint=service)
            probe = Probe(incident_key(policy, normalized), time.monotonic(), posted_at=time.time())
            sent.append(probe)
            alert = am_alert(service, service, severity="critical", alertname="BenchPage")
            probe.status = (await http.post(stack.alerts_url, json=alertmanager_payload([alert]))).status_code
            probe.answered = time.monotonic()

        await asyncio.gather(*(one(i) for i in range(count)))
    deadline = max(p.posted for p in sent) + PAGE_TIMEOUT
    for _ in range(int(PAGE_TIMEOUT / POLL) + 1):
        if time.monotonic() >= deadline or all(p.key in vendor.first_page for p in sent):
            break
        await asyncio.sleep(POLL)
    latencies = [
        vendor.first_page[p.key] - p.posted
        for p in sent
        if p.key in vendor.first_page and vendor.first_page[p.key] - p.posted <= PAGE_TIMEOUT
    ]
    missing = len(sent) - len(latencies)
    refused = sum(1 for p in sent if not 200 <= p.status < 300)
    out.add(
        f"{label:<10} {len(sent)} probes {gap:.1f}s apart: p50 {pct(latencies, 0.5) * 1000:6.0f} ms   "
        f"p99 {pct(latencies, 0.99) * 1000:6.0f} ms   max {max(latencies, default=0) * 1000:6.0f} ms   "
        f"no page within {PAGE_TIMEOUT:.0f}s: {missing}" + (f"   POST refused: {refused}" if refused else "")
    )
    triggers = vendor.since(began)
    out.add(f"  PagerDuty triggers from the first probe to the last page: {triggers}")
    try:
        for name, values in (await stages(stack, vendor, sent)).items():
            out.add(
                f"  from POST to {name:<32} p50 {pct(values, 0.5) * 1000:6.0f} ms   "
                f"p99 {pct(values, 0.99) * 1000:6.0f} ms"
            )
    except Exception as err:  # the breakdown is an explanation, never a reason to lose the figures above
        out.add(f"  (no breakdown: {err})")
    return [p for p in sent if not (p.key in vendor.first_page and vendor.first_page[p.key] - p.posted <= PAGE_TIMEOUT)]


async def quiet(stack: Stack, vendor: FakePagerDuty, out: Section) -> None:
    """Each measurement starts from an idle worker and an empty pacer queue: the previous one's leftovers (the
    storm's incidents, the burst's queued sends) would otherwise be timed as this one's latency."""
    await vendor.drained()
    try:
        await wait_quiet(stack.worker.pid, QUIET_WITHIN)
    except TimeoutError:
        out.add(f"  (worker still busy after {QUIET_WITHIN:.0f}s; measuring anyway)")


async def paging_phase(
    stack: Stack, vendor: FakePagerDuty, count: int, gap: float, burst_gap: float, senders: int, out: Section
) -> None:
    await stack.restart_worker(no_storm_policy(stack.home))
    try:
        policy = load_policy(stack.policy)
        out.add(f"(worker on {stack.policy.name}: storm consolidation off, see bench/paging.py)")
        out.add(
            f"(the PagerDuty channel paces one routing key to a send every {PagerDutyChannel.min_interval}s, and "
            "a sev1 also sends its emergency-response notices through it: probes closer together than their "
            "sends' share of that pace queue behind each other, which the burst line shows)"
        )
        await quiet(stack, vendor, out)
        unpaged = await probes(stack, policy, vendor, count, gap, "steady", out)
        await quiet(stack, vendor, out)
        unpaged += await mid_storm(stack, policy, vendor, count, gap, senders, out)
        await quiet(stack, vendor, out)
        unpaged += await probes(stack, policy, vendor, count, burst_gap, "burst", out)
        await quiet(stack, vendor, out)
        # Late or lost? A page past the timeout still counts against it; one that never came is worse.
        late = [vendor.first_page[p.key] - p.posted for p in unpaged if p.key in vendor.first_page]
        if unpaged:
            out.add(
                f"of the {len(unpaged)} probes without a page within {PAGE_TIMEOUT:.0f}s: {len(late)} paged later "
                f"(slowest {max(late, default=0):.1f}s after its POST), {len(unpaged) - len(late)} not paged by the "
                "end of the phase"
            )
        else:
            out.add(f"every probe paged within {PAGE_TIMEOUT:.0f}s")
    finally:
        await stack.restart_worker(DEFAULT_POLICY)


async def mid_storm(
    stack: Stack, policy: Policy, vendor: FakePagerDuty, count: int, gap: float, senders: int, out: Section
) -> list[Probe]:
    run = uuid.uuid4().hex[:6]
    services = [f"pstorm-{run}-{k}" for k in range(STORM_KEYS)]
    stop = asyncio.Event()
    statuses: Counter[int] = Counter()
    posts = iter(range(STORM_MAX_POSTS))
    began = time.monotonic()
    async with httpx.AsyncClient(limits=limits(senders), timeout=60) as http:

        async def sender() -> None:
            for p in posts:
                if stop.is_set():
                    return
                alerts = [am_alert(s, f"{s}-{p}") for s in services]
                statuses[(await http.post(stack.alerts_url, json=alertmanager_payload(alerts))).status_code] += 1

        storm = [asyncio.create_task(sender()) for _ in range(senders)]
        try:
            await asyncio.sleep(STORM_LEAD)
            unpaged = await probes(stack, policy, vendor, count, gap, "mid-storm", out)
        finally:
            stop.set()
            await asyncio.gather(*storm, return_exceptions=True)
    seconds = time.monotonic() - began
    accepted = sum(n for s, n in statuses.items() if 200 <= s < 300) * STORM_KEYS
    out.add(
        f"  storm alongside: {senders} senders, {sum(statuses.values())} POSTs of {STORM_KEYS} warning alerts "
        f"over {STORM_KEYS} keys in {seconds:.1f}s = {accepted / seconds:.0f} alerts/s accepted; "
        f"answers {dict(sorted(statuses.items()))}"
    )
    return unpaged
