"""`tocsin why` on a real incident (time-skipped): a sev1 that escalated to level 2 names both people paged,
with times and channels; `--person` for someone off shift says they were not on call, and who was."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support.harness import start_incident
from tocsin.cli import why as cli
from tocsin.incident.client import get_incident, opened_under
from tocsin.policy.schema import Policy
from tocsin.roster import on_call
from tocsin.settings import Settings


async def test_why_names_both_levels_and_says_who_was_on_call(
    env: WorkflowEnvironment,
    workers: Settings,
    default_policy: Policy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Level 2 pages a named person other than whoever is on call now, so the two levels reach two people
    # (both levels of the default chain page the primary rotation, and the secondary may be the same person).
    members = default_policy.roster.rotations["primary_oncall"].members
    now_on_call = on_call(default_policy.roster, "primary_oncall", datetime.now(UTC))[1].person
    backup = next(p for p in members if p != now_on_call)
    steps = list(default_policy.escalation_policies.primary_oncall)
    steps[1] = steps[1].model_copy(update={"target": f"person:{backup}"})
    chain = default_policy.escalation_policies.model_copy(update={"primary_oncall": steps})
    policy = default_policy.model_copy(update={"escalation_policies": chain})
    inp, _ = await start_incident(env.client, policy, severity="sev1")
    # Level 1 is three PagerDuty attempts five minutes apart: level 2 (phone) is due after fifteen.
    await env.sleep(timedelta(minutes=16))
    state = await get_incident(env.client, inp.key)
    pages = [e for e in state.timeline if e.kind == "page"]
    assert [e.text.split(":")[0] for e in pages][-1] == "level 2"
    first, second = pages[0], pages[-1]
    primary = on_call(policy.roster, "primary_oncall", first.at)[1].person
    secondary = backup
    # A weekly handoff could fall inside these sixteen minutes: then level 2's person was the one on call.
    assert primary and primary != secondary

    # `why` reads the roster and chain the incident opened under, not today's policy file (the default here,
    # whose level 2 pages the primary rotation again, not `backup`).
    assert (await opened_under(env.client, inp.key)).escalation_policies.primary_oncall[1].target == f"person:{backup}"

    async def connect() -> Client:
        return env.client

    await cli.explain(connect, workers, inp.key, None, True)
    rows = json.loads(capsys.readouterr().out)
    paged = [(r["level"], r["who"], r["channel"], r["at"]) for r in rows if r["kind"] == "page"]
    # Each delivery is recorded when the provider answered: the server's clock runs in real time while the
    # activity does, so on a loaded machine that is a second or two after its page's decision.
    for level, who, channel, decided in ((1, primary, "pagerduty", first.at), (2, secondary, "phone", second.at)):
        stamps = [t for lv, w, ch, t in paged if (lv, w, ch) == (level, who, channel)]
        times = [datetime.strptime(t, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC) for t in stamps]
        assert any(timedelta(0) <= t - decided.replace(microsecond=0) <= timedelta(seconds=5) for t in times), paged
    assert all(r["outcome"].startswith("delivered: ") for r in rows if r["kind"] == "page")

    # The human table names both too, with their channels.
    await cli.explain(connect, workers, inp.key, None, False)
    table = capsys.readouterr().out
    assert any(primary in line and "pagerduty" in line for line in table.splitlines())
    assert any(secondary in line and "phone" in line for line in table.splitlines())

    off = next(p for p in policy.roster.rotations["primary_oncall"].members if p not in (primary, secondary))
    await cli.explain(connect, workers, inp.key, off, True)
    missed = [r for r in json.loads(capsys.readouterr().out) if r["kind"] == "not_paged"]
    assert missed, f"{off} was never reported as not paged"
    assert missed[0]["level"] == 1
    assert missed[0]["reason"].startswith(f"not on call for primary_oncall: {primary} was (shift ")
