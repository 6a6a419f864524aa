"""The system under measurement: a Temporal dev server, `tocsin worker` and `tocsin receiver`, each its own process.

The load generators run in the bench's own process, so separate processes keep them off the worker's and the
receiver's event loops (the machine's cores are still shared; results.md says how many). The dev server keeps
its state in memory: every run starts empty.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.load import ALERTS_PATH
from tocsin import search_attributes as sa
from tocsin.incident.contracts import INCIDENT_TASK_QUEUE

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_POLICY = ROOT / "policies" / "default.yaml"
# A developer's own settings must not point the children at their Temporal, their PagerDuty, their policy.
FOREIGN_PREFIXES = ("TEMPORAL_", "TOCSIN_")
READY_TIMEOUT = 60.0
# The worker drains in-flight tasks for up to 10 s on SIGTERM (worker/main.py); past this it is killed.
STOP_TIMEOUT = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc/<pid>/status (VmRSS is in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat, after the name)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def wait_quiet(pid: int, within: float, window: float = 2.0, busy: float = 0.05) -> float:
    """Wait until the process uses under `busy` of a core over `window` seconds (its backlog is done);
    returns the seconds waited. Raises TimeoutError after `within` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        if (cpu_seconds(pid) - before) / window < busy:
            return time.monotonic() - start
    raise TimeoutError(f"pid {pid} still busy after {within:.0f}s")


class Child:
    """One `tocsin` command in its own session, logging to a file under the bench's home."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def pid(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} is not running (see {self.log_path})")
        return self.proc.pid

    def check(self) -> None:
        """Raise, naming the log, if the process has exited: waiting on a dead child would wait for nothing."""
        _ = self.pid

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}-{self.runs}.log"

    def start(self, env: Mapping[str, str]) -> None:
        self.runs += 1
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        """SIGTERM (the worker shuts down gracefully on it), then SIGKILL if it outlives STOP_TIMEOUT."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Stack:
    """Start with `await Stack.start(extra_env)`, always `await stack.stop()`."""

    def __init__(self, env: WorkflowEnvironment, home: Path, extra_env: Mapping[str, str]) -> None:
        self.env = env
        self.client: Client = env.client
        self.home = home
        self.http_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.alerts_url = self.base_url + ALERTS_PATH
        self.extra_env = dict(extra_env)
        self.policy = DEFAULT_POLICY
        tocsin = str(BIN / "tocsin")
        self.worker = Child("worker", [tocsin, "worker"], home)
        self.receiver = Child("receiver", [tocsin, "receiver"], home)

    @classmethod
    async def start(cls, extra_env: Mapping[str, str]) -> Stack:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(BIN / "temporal"),
            search_attributes=list(sa.ALL),
            data_converter=pydantic_data_converter,
            # Stopping the worker mid-task (the restarts do) makes the server log errors that say only that;
            # they would bury the bench's own output.
            dev_server_log_level="never",
            # The SDK's 5 s is tight for a 2-core machine that is still busy with something else.
            dev_server_startup_timeout=timedelta(seconds=60),
        )
        stack = cls(env, Path(tempfile.mkdtemp(prefix="tocsin-bench-")), extra_env)
        try:
            stack.receiver.start(stack.child_env())
            stack.worker.start(stack.child_env())
            await stack.wait_receiver()
            await stack.wait_worker()
        except BaseException:
            await stack.stop()
            raise
        return stack

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
        # The one tuning knob the bench is for: `TOCSIN_WORKFLOW_CACHE=N make bench` compares cache sizes.
        if os.environ.get("TOCSIN_WORKFLOW_CACHE"):
            env["TOCSIN_WORKFLOW_CACHE"] = os.environ["TOCSIN_WORKFLOW_CACHE"]
        env.update(
            TEMPORAL_ADDRESS=self.client.service_client.config.target_host,
            TOCSIN_HOME=str(self.home),
            TOCSIN_HTTP_PORT=str(self.http_port),
            TOCSIN_POLICY=str(self.policy),
        )
        env.update(self.extra_env)
        return env

    async def wait_receiver(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                self.receiver.check()
                try:
                    if (await http.get(f"{self.base_url}/healthz", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.3)
        raise TimeoutError(f"receiver not healthy after {READY_TIMEOUT:.0f}s (see {self.receiver.log_path})")

    async def wait_worker(self) -> None:
        """Ready = the server has seen this very process poll the incidents queue (its identity is pid@host),
        so a restart is not mistaken for ready by the previous process's pollers."""
        request = DescribeTaskQueueRequest(
            namespace=self.client.namespace,
            task_queue=TaskQueue(name=INCIDENT_TASK_QUEUE),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            prefix = f"{self.worker.pid}@"
            answer = await self.client.workflow_service.describe_task_queue(request)
            if any(p.identity.startswith(prefix) for p in answer.pollers):
                return
            await asyncio.sleep(0.3)
        raise TimeoutError(f"worker not polling after {READY_TIMEOUT:.0f}s (see {self.worker.log_path})")

    async def restart_worker(self, policy: Path | None = None) -> float:
        """Stop the worker (SIGTERM, wait) and start a new one, optionally on another policy file; returns the
        seconds until the new one polls."""
        began = time.monotonic()
        await asyncio.to_thread(self.worker.stop)
        if policy is not None:
            self.policy = policy
        self.worker.start(self.child_env())
        await self.wait_worker()
        return time.monotonic() - began

    async def stop(self) -> None:
        for child in (self.receiver, self.worker):
            await asyncio.to_thread(child.stop)
        await self.env.shutdown()
