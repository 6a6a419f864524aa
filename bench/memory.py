"""Worker memory with many open incidents, and how long a new worker takes to answer for all of them.

Memory: a fresh `tocsin worker` idle, then with N open sev3 incidents (a few alerts each, so they sleep on
their timers), then again after a wait, to see whether it grows while nothing happens. RSS is VmRSS from
/proc/<pid>/status, read once the worker has gone quiet (its backlog done), not while it is still busy.

Re-warm: SIGTERM that worker, start another, and time until every one of the N incidents has answered a
`status` query. The new worker's cache is empty, so each query replays that workflow's history.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from bench.intake import limits, workflow_id_for
from bench.load import alertmanager_payload, am_alert
from bench.results import Section
from bench.stack import Stack, rss_mib, wait_quiet
from tocsin.policy.loader import load_policy
from tocsin.settings import load_settings

ALERTS_EACH = 3
PER_POST = 100  # one alert for each of 100 incidents per payload, as Alertmanager batches a group
SENDERS = 4
QUERY_CONCURRENCY = 50
QUERY_ATTEMPTS = 5
QUERY_TIMEOUT = timedelta(seconds=30)
SETTLE_TIMEOUT = 300.0  # opening 1,000 incidents keeps a 2-core worker busy for a while
REWARM_TIMEOUT = 600.0


async def bounded(items: list[str], call: Callable[[str], Awaitable[bool]], concurrency: int) -> int:
    """Run `call` on every item with at most `concurrency` at once; returns how many returned True."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: str) -> bool:
        async with gate:
            return await call(item)

    return sum(await asyncio.gather(*(one(i) for i in items)))


async def settle(pid: int, within: float, out: Section) -> None:
    """Wait for the worker to go quiet; a worker still busy is measured anyway, and the line says so."""
    try:
        out.add(f"  worker quiet after {await wait_quiet(pid, within):.0f}s")
    except TimeoutError:
        out.add(f"  worker still busy after {within:.0f}s: the next reading is taken while it works")


def rss_line(label: str, value: float, before: float | None = None) -> str:
    change = f"   ({value - before:+.1f} MiB)" if before is not None else ""
    return f"{label:<44} {value:7.1f} MiB{change}"


async def memory_phase(stack: Stack, incidents: int, growth_wait: float, out: Section) -> None:
    policy = load_policy(stack.policy)
    await stack.restart_worker()
    pid = stack.worker.pid
    await settle(pid, 60, out)
    idle = rss_mib(pid)
    out.add(rss_line("worker RSS idle (fresh process, quiet)", idle))

    run = uuid.uuid4().hex[:6]
    services = [f"mem-{run}-{n}" for n in range(incidents)]
    payloads = [
        [am_alert(s, f"{s}-{round_}") for s in services[start : start + PER_POST]]
        for round_ in range(ALERTS_EACH)
        for start in range(0, incidents, PER_POST)
    ]
    statuses: Counter[int] = Counter()
    began = time.monotonic()
    queue = iter(payloads)
    async with httpx.AsyncClient(limits=limits(SENDERS), timeout=60) as http:

        async def sender() -> None:
            for alerts in queue:
                statuses[(await http.post(stack.alerts_url, json=alertmanager_payload(alerts))).status_code] += 1

        await asyncio.gather(*(sender() for _ in range(SENDERS)))
    posted = time.monotonic() - began
    out.add(
        f"opened {incidents} incidents x {ALERTS_EACH} warning alerts in {len(payloads)} POSTs "
        f"({posted:.1f}s, answers {dict(sorted(statuses.items()))})"
    )
    await settle(pid, SETTLE_TIMEOUT, out)
    workflow_ids = [workflow_id_for(policy, s) for s in services]

    async def running(workflow_id: str) -> bool:
        described = await stack.client.get_workflow_handle(workflow_id).describe()
        return described.status == WorkflowExecutionStatus.RUNNING

    open_now = await bounded(workflow_ids, running, QUERY_CONCURRENCY)
    loaded = rss_mib(pid)
    out.add(rss_line(f"worker RSS with {open_now} open incidents", loaded, idle))
    await asyncio.sleep(growth_wait)
    later = rss_mib(pid)
    out.add(rss_line(f"worker RSS {growth_wait:.0f}s later, nothing sent", later, loaded))

    restarted = await stack.restart_worker()
    pid = stack.worker.pid
    fresh = rss_mib(pid)
    out.add(f"re-warm: worker stopped (SIGTERM) and a new one polling {restarted:.1f}s later")
    out.add(rss_line("worker RSS before re-warm (new process)", fresh))
    failures: Counter[str] = Counter()

    async def answers(workflow_id: str) -> bool:
        handle = stack.client.get_workflow_handle(workflow_id)
        for _ in range(QUERY_ATTEMPTS):
            try:
                await handle.query("status", rpc_timeout=QUERY_TIMEOUT)
                return True
            except RPCError as err:  # the new worker too busy to answer in time: ask again
                failures[err.status.name] += 1
            except WorkflowQueryFailedError as err:  # the workflow itself failed to answer: asking again won't help
                failures[str(err)[:80]] += 1
                return False
        return False

    began = time.monotonic()
    answered = await asyncio.wait_for(bounded(workflow_ids, answers, QUERY_CONCURRENCY), REWARM_TIMEOUT)
    took = time.monotonic() - began
    after = rss_mib(pid)
    out.add(
        f"re-warm: {answered} of {len(workflow_ids)} incidents answered `status` in {took:.1f}s "
        f"({answered / took:.0f}/s, {QUERY_CONCURRENCY} queries at a time)"
        + (f"; failed attempts: {dict(failures)}" if failures else "")
    )
    out.add(rss_line("worker RSS after re-warm", after, fresh))
    # Past the worker's workflow cache the least recent workflows are evicted and replay on their next task.
    cache = load_settings(os.environ).workflow_cache
    out.add(f"(the worker caches at most {cache} workflows, TOCSIN_WORKFLOW_CACHE, which bounds RSS)")
