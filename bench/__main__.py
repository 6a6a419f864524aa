"""Tocsin's benchmark: `make bench`, or `.venv/bin/python -m bench [--seconds 20] [--phases ...]`.

One run starts a Temporal dev server (in memory), `tocsin worker` and `tocsin receiver` as processes of their
own, and a fake PagerDuty in this process; then measures, in order:

  intake   the receiver vs temporalio directly, one alert per call (Python load generator)
  wrk      the same receiver endpoint driven by wrk, a C load generator (skipped without wrk)
  storm    10,000 alerts over 100 keys, 100 per POST: one incident per key, every alert counted
  paging   time from a sev1 POST to its first page at the vendor, steady and mid-storm
  memory   worker RSS idle, with 1,000 open incidents, a minute later; then the re-warm of a new worker

prints each figure as it comes and writes bench/results.md (overwritten). It measures, it never fails: a
phase that breaks is reported as "failed: reason" and the next one runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable

from bench import intake, memory, paging, wrk
from bench.results import Section, load_average, write
from bench.stack import Stack
from tocsin.policy.loader import load_policy

PHASES = ("intake", "wrk", "storm", "paging", "memory")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset of: " + ", ".join(PHASES))
    parser.add_argument("--skip-wrk", action="store_true", help="same as leaving wrk out of --phases")
    parser.add_argument("--seconds", type=float, default=20, help="duration of each timed intake phase (and wrk's)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent posts (and wrk connections)")
    parser.add_argument("--batch", type=int, default=1, help="alerts per payload in the timed intake phases")
    parser.add_argument("--pool", type=int, default=100, help="open incidents the timed phases send alerts to")
    parser.add_argument("--storm", type=int, default=10_000, help="alerts in the storm phase")
    parser.add_argument("--keys", type=int, default=100, help="distinct incident keys in the storm phase")
    parser.add_argument("--probes", type=int, default=30, help="sev1 probes per paging measurement")
    # The PagerDuty channel sends to one routing key every 0.5 s (tocsin/channels/pagerduty.py) and a sev1 makes
    # about 5 sends (its page and its emergency-response notices): probes closer than 2.5 s would time the
    # pacer's queue, not the system. The burst measurement does that on purpose.
    parser.add_argument("--probe-gap", type=float, default=3.0, help="seconds between probes (steady, mid-storm)")
    parser.add_argument("--burst-gap", type=float, default=0.3, help="seconds between probes in the burst")
    parser.add_argument("--storm-senders", type=int, default=7, help="concurrent storm senders during probes")
    parser.add_argument("--incidents", type=int, default=1000, help="open incidents for the memory phase")
    parser.add_argument("--growth-wait", type=float, default=60, help="seconds between the two loaded RSS readings")
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if args.skip_wrk and "wrk" in args.phases:
        args.phases.remove("wrk")
    return args


async def run_phase(
    sections: list[Section], title: str, bound: float, body: Callable[[Section], Awaitable[None]]
) -> None:
    """One phase, bounded in time; whatever goes wrong is recorded and the run goes on."""
    section = Section(title)
    sections.append(section)
    print(f"\n== {title}", flush=True)
    began = time.monotonic()
    try:
        await asyncio.wait_for(body(section), bound)
    except TimeoutError:
        section.fail(f"did not finish within {bound:.0f}s")
    except Exception as err:
        traceback.print_exc()
        section.fail(f"{type(err).__name__}: {err}".splitlines()[0][:300])
    section.seconds = time.monotonic() - began


async def run(args: argparse.Namespace) -> list[Section]:
    sections: list[Section] = []
    vendor = paging.FakePagerDuty()
    vendor.start()
    started: list[Stack] = []  # a list, not a nonlocal: the start runs inside run_phase

    async def start(out: Section) -> None:
        stack = await Stack.start(vendor.env())
        started.append(stack)
        out.add(f"dev server {stack.client.service_client.config.target_host}, receiver {stack.base_url}")
        out.add(f"state and logs in {stack.home}")

    try:
        await run_phase(sections, "Start", 120, start)
        if not started:
            return sections
        up = started[0]
        policy = load_policy(up.policy)
        pool = intake.Pool(uuid.uuid4().hex[:6], args.pool)
        raw_rate: list[float] = []

        async def intake_body(out: Section) -> None:
            await intake.open_pool(up, pool, args.concurrency, out)
            _, raw = await intake.receiver_vs_raw(up, policy, pool, args.seconds, args.concurrency, args.batch, out)
            raw_rate.append(raw.rate)

        async def wrk_body(out: Section) -> None:
            if not pool.opened:
                await intake.open_pool(up, pool, args.concurrency, out)
            await asyncio.sleep(5)  # the previous phase's backlog drains before wrk is timed
            await wrk.wrk_phase(up, pool, args.seconds, args.concurrency, raw_rate[0] if raw_rate else None, out)

        async def storm_body(out: Section) -> None:
            await asyncio.sleep(5)
            await intake.storm(up, policy, args.storm, args.keys, args.concurrency, out)

        async def paging_body(out: Section) -> None:
            await paging.paging_phase(up, vendor, args.probes, args.probe_gap, args.burst_gap, args.storm_senders, out)

        async def memory_body(out: Section) -> None:
            await memory.memory_phase(up, args.incidents, args.growth_wait, out)

        # Three probe runs, each with up to 10 s for late pages; four waits of up to 30 s for the pacer and 60 s
        # for the worker to drain; two worker restarts.
        paging_bound = args.probes * (2 * args.probe_gap + args.burst_gap) + 4 * 100 + 120
        phases: dict[str, tuple[str, float, Callable[[Section], Awaitable[None]]]] = {
            "intake": ("1a. Receiver vs raw Temporal, Python load generator", 2 * args.seconds + 300, intake_body),
            "wrk": ("1b. Receiver vs raw Temporal, wrk load generator", args.seconds + 300, wrk_body),
            "storm": (f"2. Storm: {args.storm} alerts over {args.keys} keys", 900, storm_body),
            "paging": ("3. First-page latency (sev1 POST to PagerDuty)", paging_bound, paging_body),
            "memory": (f"4-5. Worker memory with {args.incidents} open incidents, and re-warm", 1500, memory_body),
        }
        for name in PHASES:
            if name in args.phases:
                title, bound, body = phases[name]
                await run_phase(sections, title, bound, body)
    finally:
        for stack in started:
            await stack.stop()
        vendor.server.stop()
    return sections


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    began = time.monotonic()
    load_before = load_average()
    print(f"load average before the run: {load_before} (1, 5, 15 min)", flush=True)
    try:
        sections = asyncio.run(run(args))
    except Exception as err:  # outside any phase (the fake vendor's port, say): still write what happened
        traceback.print_exc()
        sections = [Section("Run", failed=f"{type(err).__name__}: {err}"[:300])]
    path = write(sections, command.strip(), time.monotonic() - began, load_before)
    print(f"\nwrote {path}", flush=True)
    # Skip interpreter finalization: temporalio's core threads can abort it (sdk-python#300), as in the CLI.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
