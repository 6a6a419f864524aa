"""The chaos suite (`make chaos`): real processes killed with SIGKILL against the real dev server on its SQLite
file, with local vendor servers counting what reaches them (tests/integration/chaos/vendors.py).

Every case is marked `chaos`; the cheapest are also `chaos_quick` and run in `make test`. The others skip
unless TOCSIN_CHAOS=1 (`make chaos` sets it), so `make test` stays within its time. At the end of a run the
figures of the cases that ran are printed as a table (and written to $TOCSIN_CHAOS_FIGURES when set).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.integration.chaos.checks import TABLE_HEAD, Figure
from tests.integration.chaos.processes import Process, TemporalServer, Tocsin
from tests.integration.chaos.vendors import Vendors
from tests.support.harness import unique_key
from tests.support.vendor_server import VendorServer
from tocsin.client import connect_when_ready
from tocsin.incident.client import get_incident, open_incident
from tocsin.incident.contracts import IncidentState
from tocsin.policy.loader import load_policy
from tocsin.policy.schema import Policy
from tocsin.policy.triage import TriggerRequest, plan_incident
from tocsin.settings import Settings

CHAOS_POLICY = Path(__file__).with_name("chaos-policy.yaml")
FIGURES: list[Figure] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TOCSIN_CHAOS") == "1":
        return
    slow = pytest.mark.skip(reason="a slow chaos case: run `make chaos` (TOCSIN_CHAOS=1)")
    for item in items:
        if "chaos" in item.keywords and "chaos_quick" not in item.keywords:
            item.add_marker(slow)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    table = "\n".join([TABLE_HEAD, *(f.row() for f in FIGURES)])
    terminalreporter.write_sep("-", "chaos figures")
    terminalreporter.write_line(table)
    target = os.environ.get("TOCSIN_CHAOS_FIGURES")
    if target:
        Path(target).write_text(table + "\n", encoding="utf-8")


@pytest.fixture
def figures() -> list[Figure]:
    return FIGURES


@pytest.fixture(scope="session")
def chaos_policy() -> Policy:
    return load_policy(CHAOS_POLICY)


@pytest.fixture
def vendors() -> Iterator[Vendors]:
    with VendorServer() as server:
        yield Vendors(server)


async def until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until `condition` holds; returns when it did (epoch seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.time()


class Stack:
    """One case's world: its TOCSIN_HOME, a dev server on home/temporal.sqlite, the vendors, and the Tocsin
    processes it started (all SIGKILLed at the end, whatever happened)."""

    def __init__(self, home: Path, vendors: Vendors, policy: Policy) -> None:
        self.home = home
        self.vendors = vendors
        self.policy = policy
        self.temporal = TemporalServer(home)
        self.processes: list[Process] = [self.temporal]
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        assert self._client is not None
        return self._client

    def env(self) -> dict[str, str]:
        return {**self.vendors.env(self.home), "TOCSIN_POLICY": str(CHAOS_POLICY)}

    async def start_temporal(self) -> None:
        await asyncio.to_thread(self.temporal.start)
        settings = Settings(home=self.home, temporal_port=self.temporal.port, ui_port=self.temporal.ui_port)
        self._client = await connect_when_ready(settings)

    def tocsin(self, command: str, address: str | None = None, **env: str) -> Tocsin:
        process = Tocsin(command, self.home, address or self.temporal.address, {**self.env(), **env})
        self.processes.append(process)
        return process

    async def start(self, process: Process) -> float:
        """Start (or restart) a process and wait until it is connected; returns when it was."""
        await asyncio.to_thread(process.start)
        return time.time()

    async def open_incident(self, service: str, labels: dict[str, str] | None = None) -> str:
        """Open a sev1 as `tocsin trigger` does (a response workflow when the labels match one)."""
        request = TriggerRequest(service=service, severity="sev1", labels=labels or {}, key=unique_key(service))
        inp = plan_incident(self.policy, request, datetime.now(UTC))
        assert await open_incident(self.client, inp)
        return inp.key

    async def incident(self, key: str) -> IncidentState:
        return await get_incident(self.client, key)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
async def stack(tmp_path: Path, vendors: Vendors, chaos_policy: Policy) -> AsyncIterator[Stack]:
    running = Stack(tmp_path / "home", vendors, chaos_policy)
    try:
        await running.start_temporal()
        yield running
    finally:
        running.stop()
