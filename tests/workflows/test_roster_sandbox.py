"""Roster resolution inside the workflow sandbox, on the time-skipping test server: a worker resolves targets
in a workflow and gets what the pure resolver gets (the rest of the roster: tests/unit/test_roster.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.roster import ROSTER, ro, roster_policy
from tests.support.roster_workflow import RosterProbe, RosterProbeWorkflow
from tocsin.roster import resolve

MON = datetime(2025, 3, 10, 9, tzinfo=ZoneInfo("Europe/Berlin"))  # bob's week on primary_oncall begins


async def test_resolution_runs_in_the_workflow_sandbox(env: WorkflowEnvironment) -> None:
    # A zone nothing else here uses, dropped from zoneinfo's cache: the worker must read it inside the sandbox.
    kathmandu = "Asia/Kathmandu"
    text = ROSTER.replace("timezone: UTC\n      start", f"timezone: {kathmandu}\n      members: [carol]\n      start")
    policy = roster_policy(roster=text).with_overrides(
        [ro("primary_oncall", "dave", MON, MON + timedelta(days=1), covering="bob")]
    )
    ZoneInfo.clear_cache(only_keys=[kathmandu])  # after the policy is built: the worker reads it afresh
    queue = f"roster-{uuid.uuid4().hex[:8]}"
    at = MON + timedelta(hours=1)
    targets = ["primary_oncall", "nobody", "sre", "#incidents", "missing"]
    async with Worker(env.client, task_queue=queue, workflows=[RosterProbeWorkflow]):
        results = await env.client.execute_workflow(
            RosterProbeWorkflow.run,
            RosterProbe(policy=policy, targets=targets, at=at),
            id=f"roster-probe-{queue}",
            task_queue=queue,
        )
    assert results == [resolve(policy.roster, t, at) for t in targets]
    # Kathmandu has no abbreviation: its offset shows instead.
    assert results[1].people[0].id == "carol" and "09:00 +0545" in results[1].reason
