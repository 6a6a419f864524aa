"""The receiver driven by wrk (Debian's `wrk` package), a C load generator: the same one-alert posts as the
Python phase, without the Python client's own CPU cost on the shared cores.

wrk is optional: without it the phase says so and is skipped (`apt-get install wrk` adds it).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.intake import Pool
from bench.results import Section
from bench.stack import Stack

SCRIPT = Path(__file__).resolve().with_name("wrk_alerts.lua")
# wrk's default 2 s request timeout would drop the slow tail from its percentiles; no POST takes this long.
REQUEST_TIMEOUT = "30s"
# wrk runs for --duration; this much longer and it is killed (it never should be).
GRACE = 60.0
THREADS = 2  # one per core: more threads only take CPU from the receiver on this machine


@dataclass(frozen=True)
class WrkFigures:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def accepted_rate(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else 0.0


def parse(stdout: str) -> WrkFigures:
    match = re.search(r"^BENCH-WRK (.*)$", stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no BENCH-WRK line: {stdout[-300:]!r}")
    values = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    return WrkFigures(
        requests=values["requests"],
        seconds=values["duration_us"] / 1e6,
        non_2xx=values["status"],
        socket_errors=values["connect"] + values["read"] + values["write"] + values["timeout"],
        p50_ms=values["p50_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        max_ms=values["max_us"] / 1000,
    )


async def wrk_phase(
    stack: Stack, pool: Pool, seconds: float, connections: int, raw_rate: float | None, out: Section
) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        out.add("wrk is not installed (Debian package `wrk`): skipped")
        return
    argv = [
        wrk,
        f"-t{min(THREADS, connections)}",
        f"-c{connections}",
        f"-d{seconds:.0f}s",
        f"--timeout={REQUEST_TIMEOUT}",
        "--latency",
        "-s",
        str(SCRIPT),
        stack.alerts_url,
        "--",
        pool.run,
        str(pool.size),
    ]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), seconds + GRACE)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {stderr.decode(errors='replace')[-300:]}")
    figures = parse(text)
    accepted = figures.requests - figures.non_2xx
    out.add(
        f"{'receiver (wrk)':<24} {accepted:>7} alerts in {figures.seconds:6.1f}s = {figures.accepted_rate:8.1f} "
        f"alerts/s   p50 {figures.p50_ms:7.1f} ms   p99 {figures.p99_ms:7.1f} ms   (max {figures.max_ms:.0f} ms)"
    )
    out.add(
        f"  {figures.requests} POSTs: {figures.non_2xx} non-2xx, {figures.socket_errors} socket errors "
        f"(wrk -t{min(THREADS, connections)} -c{connections}, one alert per POST, a new fingerprint each, "
        f"into the same {pool.size} open incidents)"
    )
    if raw_rate:
        out.add(f"receiver(wrk)/raw throughput ratio: {figures.accepted_rate / raw_rate:.2f}")
    else:
        out.add("receiver(wrk)/raw ratio: no raw figure (the intake phase did not run)")
    # wrk's own summary, for anyone checking the parsed figures against it.
    for line in text.splitlines():
        if line.strip().startswith(("50%", "99%", "Non-2xx", "Socket errors", "Requests/sec")):
            out.add(f"  wrk: {line.strip()}")
