"""SIGKILL all of `tocsin up` (worker, receiver and the Temporal dev server it started) mid-incident, with a page
in flight, then start it again on the same TOCSIN_HOME: the SQLite file carries the incident on.

The dev server runs in a session of its own and would get a SIGTERM when `tocsin up` dies (its parent-death
signal), shutting down in order; a power cut gives nobody that chance, so the test SIGKILLs the server itself
too, then `tocsin up`'s process group.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from temporalio.client import Client

from tests.integration.chaos.checks import (
    ON_TIME,
    Figure,
    assert_no_duplicate_effects,
    chain_done,
    resumed_at,
)
from tests.integration.chaos.conftest import CHAOS_POLICY, until
from tests.integration.chaos.test_worker_kills import STICKY_TIMEOUT
from tests.integration.chaos.vendors import Vendors, step_of
from tests.support.product import Product, accepts, dev_server_pids
from tocsin.client import connect_when_ready
from tocsin.incident.client import get_incident
from tocsin.policy.schema import Policy
from tocsin.settings import Settings


def kill_everything(product: Product) -> float:
    """The dev server first (so it never hears of its parent's death), then `tocsin up`'s whole group."""
    proc, product.proc = product.proc, None
    assert proc is not None and proc.poll() is None, f"`tocsin up` is not running:\n{product.log()}"
    servers = dev_server_pids(product.home)
    assert len(servers) == 1, servers
    at = time.time()
    os.kill(servers[0], signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return at


async def connect(product: Product) -> Client:
    return await connect_when_ready(Settings(home=product.home, temporal_port=product.port, ui_port=product.ui_port))


@pytest.mark.chaos
async def test_tocsin_up_killed_entirely_and_restarted_on_the_same_home(
    tmp_path_factory: pytest.TempPathFactory, vendors: Vendors, chaos_policy: Policy, figures: list[Figure]
) -> None:
    ledger, pagerduty, policy = vendors.ledger, vendors.pagerduty, chaos_policy
    product = Product(tmp_path_factory.mktemp("up") / "home")
    product.env.update(vendors.env(product.home), TOCSIN_POLICY=str(CHAOS_POLICY))
    try:
        await asyncio.to_thread(product.start)
        client = await connect(product)
        pagerduty.hold.arm("/page/0/2")
        key = await asyncio.to_thread(product.trigger, "--service", "payments", "--severity", "sev1")
        opened = (await get_incident(client, key)).opened_at.timestamp()
        await until(pagerduty.hold.reached.is_set, 30, "the second page to reach PagerDuty")
        killed = kill_everything(product)
        await until(lambda: not dev_server_pids(product.home), 10, "the killed dev server to be gone")
        assert not accepts(product.port) and not accepts(product.http_port), "something of `tocsin up` survived"

        await asyncio.to_thread(product.start)  # same home, same ports; the kernel released the home's lock
        restarted = time.time()
        client = await connect(product)
        await until(lambda: chain_done(ledger, policy, key), 90, "every timed step to reach its vendor")
        await asyncio.sleep(0.5)
        resumed = resumed_at(ledger, key, killed)
        state = await get_incident(client, key)

        # The page in flight was retried after the restart and absorbed by PagerDuty's dedup_key.
        retried = ledger.for_step("page/0/2", f"incident-{key}")
        assert [e.applied for e in retried] == [True, False], retried
        assert pagerduty.opened == 1 and list(pagerduty.alerts) == [key]
        assert_no_duplicate_effects(ledger)
        assert {step_of(k): n for (_, k), n in ledger.requests_per_key().items() if n > 1} == {"page/0/2": 2}
        assert len(vendors.statuspage.incidents) == 1
        # The channels without a live vendor (email here) went to the outbox once each, across both lives.
        ids = [line["id"] for line in product.outbox()]
        assert ids and len(ids) == len(set(ids)), ids
        assert {step_of(i) for i in ids} >= {"action/notify_executives", "breach/response/engineering_manager"}
        # The incident is the same run, carried on by the restarted server from its SQLite file.
        assert state.status == "triggered" and [e.kind for e in state.timeline].count("page") == 4
        # Back within the restart, the dead attempt's timeout and the sticky queue's; then on schedule.
        limit = policy.lifecycle.delivery_timeout.total_seconds() + 2.0 + STICKY_TIMEOUT + ON_TIME
        assert resumed - restarted <= limit, (resumed - restarted, limit)
        figures.append(
            Figure.one_kill(
                "`tocsin up` SIGKILLed (server included), restarted", ledger, policy, key, opened, killed, resumed
            )
        )
        product.stop_cleanly(signal.SIGTERM)
    finally:
        product.kill()
